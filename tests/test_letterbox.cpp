// Letterboxing: the geometry, boxes mapped both ways, and the pixels of a box staying under it.
#include <doctest/doctest.h>
#include <stratum/data/letterbox.hpp>
#include <stratum/random.hpp>

using namespace stratum;

namespace {

/// A width x height image of `background` with the pixels of `box` (integer corners) painted.
Image letterbox_test_scene(int width, int height, Rgb background, const Box& box, Rgb paint) {
  Image image{width, height,
              std::vector<std::uint8_t>(std::size_t(width) * std::size_t(height) * 3)};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const bool inside =
          x >= box.x_min && x + 1 <= box.x_max && y >= box.y_min && y + 1 <= box.y_max;
      const Rgb& colour = inside ? paint : background;
      std::copy(colour.begin(), colour.end(),
                image.pixels.begin() + (std::ptrdiff_t{y} * width + x) * 3);
    }
  return image;
}

Rgb letterbox_test_pixel(const Image& image, int x, int y) {
  const auto at = (std::size_t(y) * std::size_t(image.width) + std::size_t(x)) * 3;
  return {image.pixels[at], image.pixels[at + 1], image.pixels[at + 2]};
}

}  // namespace

TEST_CASE("letterbox geometry: aspect kept, the longer side fills the square, centred") {
  const Letterbox wide = letterbox_geometry(400, 267, 512);
  CHECK(wide.resized_width == 512);
  CHECK(wide.resized_height == 342);  // round(267 * 1.28) = round(341.76)
  CHECK(wide.offset_x == 0);
  CHECK(wide.offset_y == 85);  // floor((512 - 342) / 2)
  CHECK(wide.scale_x() == doctest::Approx(1.28));
  CHECK(wide.scale_y() == doctest::Approx(342.0 / 267));

  const Letterbox tall = letterbox_geometry(193, 400, 512);  // the narrowest scene
  CHECK(tall.resized_height == 512);
  CHECK(tall.resized_width == 247);  // round(193 * 1.28) = round(247.04)
  CHECK(tall.offset_x == 132);
  CHECK(tall.offset_y == 0);

  const Letterbox shrink = letterbox_geometry(600, 600, 512);
  CHECK(shrink.resized_width == 512);
  CHECK(shrink.offset_x == 0);
  const Letterbox thin = letterbox_geometry(1000, 1, 64);  // never below one pixel
  CHECK(thin.resized_height == 1);
  CHECK(thin.offset_y == 31);
  CHECK_THROWS_AS(letterbox_geometry(0, 10, 64), Error);
  CHECK_THROWS_AS(letterbox_geometry(10, 10, 0), Error);
}

TEST_CASE("tight letterbox geometry: the square's scale and grid, sides of the multiple") {
  // A 4:3 photo at 512 with the detector's multiple of 32: no padding at all.
  const Letterbox camera = tight_letterbox_geometry(640, 480, 512, 32);
  CHECK(camera.width == 512);
  CHECK(camera.height == 384);
  CHECK(camera.resized_width == 512);
  CHECK(camera.resized_height == 384);
  CHECK(camera.offset_x == 0);
  CHECK(camera.offset_y == 0);

  // 400 x 267: the square's 512 x 342 at offset 85 = 2 x 32 + 21, here at 21 in 512 x 384
  // (21 + 342 = 363, rounded up to 12 x 32).
  const Letterbox wide = tight_letterbox_geometry(400, 267, 512, 32);
  const Letterbox square = letterbox_geometry(400, 267, 512);
  CHECK(wide.width == 512);
  CHECK(wide.height == 384);
  CHECK(wide.resized_width == square.resized_width);
  CHECK(wide.resized_height == square.resized_height);
  CHECK(wide.offset_x == 0);
  CHECK(wide.offset_y == 21);
  CHECK(wide.scale_x() == square.scale_x());
  CHECK(wide.scale_y() == square.scale_y());

  const Letterbox tall = tight_letterbox_geometry(193, 400, 512, 32);  // the narrowest scene
  CHECK(tall.width == 256);                                            // 4 + 247 rounded up
  CHECK(tall.height == 512);
  CHECK(tall.offset_x == 4);  // 132 = 4 x 32 + 4
  CHECK(tall.offset_y == 0);

  // A multiple of 1 leaves no padding; the box never exceeds the square, and the image moves
  // by whole multiples from its place in the square.
  Random rng(5);
  for (int trial = 0; trial < 100; ++trial) {
    const int width = 1 + static_cast<int>(rng.below(900)),
              height = 1 + static_cast<int>(rng.below(900));
    const int multiple = 1 << rng.below(6), size = multiple * (1 + static_cast<int>(rng.below(20)));
    CAPTURE(width);
    CAPTURE(height);
    CAPTURE(size);
    const Letterbox exact = tight_letterbox_geometry(width, height, size, 1);
    CHECK(exact.width == exact.resized_width);
    CHECK(exact.height == exact.resized_height);
    const Letterbox g = tight_letterbox_geometry(width, height, size, multiple);
    const Letterbox in_square = letterbox_geometry(width, height, size);
    CHECK(g.width % multiple == 0);
    CHECK(g.height % multiple == 0);
    CHECK(g.width <= size);
    CHECK(g.height <= size);
    CHECK(g.offset_x < multiple);
    CHECK(g.offset_y < multiple);
    CHECK((in_square.offset_x - g.offset_x) % multiple == 0);
    CHECK((in_square.offset_y - g.offset_y) % multiple == 0);
    CHECK(g.width - g.offset_x - g.resized_width < multiple);
    CHECK(g.height - g.offset_y - g.resized_height < multiple);
    CHECK(g.resized_width == exact.resized_width);
    CHECK(g.resized_height == exact.resized_height);
  }
  CHECK_THROWS_WITH_AS(tight_letterbox_geometry(640, 480, 512, 0),
                       doctest::Contains("multiple of the box's sides (0)"), Error);
}

TEST_CASE("letterbox geometry in a box of two sides") {
  const Letterbox g = letterbox_geometry(400, 267, 300, 100);  // the height limits the scale
  CHECK(g.width == 300);
  CHECK(g.height == 100);
  CHECK(g.resized_height == 100);
  CHECK(g.resized_width == 150);  // round(400 * 100 / 267) = round(149.8)
  CHECK(g.offset_x == 75);
  CHECK(g.offset_y == 0);
  CHECK_THROWS_WITH_AS(letterbox_geometry(400, 267, 300, 0),
                       doctest::Contains("the box (300x0) must have positive sizes"), Error);
}

TEST_CASE("letterbox boxes: image -> letterbox -> image is the identity") {
  Random rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    const int width = 1 + static_cast<int>(rng.below(700)),
              height = 1 + static_cast<int>(rng.below(700));
    const int size = 32 + static_cast<int>(rng.below(600));
    const Letterbox g = letterbox_geometry(width, height, size);
    const float x0 = static_cast<float>(rng.uniform(0, width)),
                x1 = static_cast<float>(rng.uniform(0, width));
    const float y0 = static_cast<float>(rng.uniform(0, height)),
                y1 = static_cast<float>(rng.uniform(0, height));
    const Box box{std::min(x0, x1), std::min(y0, y1), std::max(x0, x1), std::max(y0, y1)};
    const Box mapped = g.to_letterbox(box);
    // Inside the resized image, which lies inside the square.
    CHECK(mapped.x_min >= g.offset_x - 1e-3f);
    CHECK(mapped.x_max <= g.offset_x + g.resized_width + 1e-3f);
    CHECK(mapped.y_max <= size + 1e-3f);
    const Box back = g.to_image(mapped);
    const float tolerance = 1e-4f * static_cast<float>(std::max(width, height));
    CHECK(std::abs(back.x_min - box.x_min) <= tolerance);
    CHECK(std::abs(back.y_min - box.y_min) <= tolerance);
    CHECK(std::abs(back.x_max - box.x_max) <= tolerance);
    CHECK(std::abs(back.y_max - box.y_max) <= tolerance);
  }
  // The image's corners go to the resized image's corners.
  const Letterbox g = letterbox_geometry(400, 267, 512);
  CHECK(g.to_letterbox(Box{0, 0, 400, 267}) == Box{0, 85, 512, 85 + 342});
  // A detection that reaches onto the padding is clipped to the photo.
  const Box clipped = g.to_image(Box{-10, 0, 100, 512});
  CHECK(clipped.x_min == 0);
  CHECK(clipped.y_min == 0);
  CHECK(clipped.y_max == 267);
  CHECK(clipped.x_max == doctest::Approx(100 / 1.28));
}

TEST_CASE("letterbox pixels: the photo under its mapped box, padding around it") {
  const Rgb blue{20, 40, 200}, red{230, 20, 10};
  const std::tuple<int, int, int> shapes[] = {
      {400, 267, 512}, {193, 400, 128}, {600, 450, 160}, {45, 27, 64}};
  for (const auto& shape : shapes) {
    const int width = std::get<0>(shape), height = std::get<1>(shape), size = std::get<2>(shape);
    CAPTURE(width);
    const Box face{std::floor(0.3f * width), std::floor(0.4f * height), std::floor(0.6f * width),
                   std::floor(0.8f * height)};
    const Image scene = letterbox_test_scene(width, height, blue, face, red);
    // The square of training and the tight box of detection (multiple 32).
    for (const bool tight : {false, true}) {
      CAPTURE(tight);
      const LetterboxedImage out =
          tight ? letterbox(scene, tight_letterbox_geometry(width, height, size, 32))
                : letterbox(scene, size);
      const Letterbox& g = out.geometry;
      REQUIRE(out.image.width == g.width);
      REQUIRE(out.image.height == g.height);
      CHECK(g.width == (tight ? (g.offset_x + g.resized_width + 31) / 32 * 32 : size));
      const Box mapped = g.to_letterbox(face);
      const Box photo = g.to_letterbox(Box{0, 0, float(width), float(height)});
      // The resampling filter blurs an edge over two pixels either side, of the source when
      // enlarging and of the target when shrinking: look only at pixels that far inside or outside.
      const float margin = 2.5f * std::max({g.scale_x(), g.scale_y(), 1.0f}) + 1;
      int red_checked = 0, blue_checked = 0, wrong_padding = 0, wrong_red = 0, wrong_blue = 0;
      for (int y = 0; y < g.height; ++y)
        for (int x = 0; x < g.width; ++x) {
          const float cx = x + 0.5f, cy = y + 0.5f;
          const Rgb p = letterbox_test_pixel(out.image, x, y);
          const bool in_photo =
              cx > photo.x_min && cx < photo.x_max && cy > photo.y_min && cy < photo.y_max;
          if (!in_photo) {
            wrong_padding += p == letterbox_padding ? 0 : 1;
            continue;
          }
          const bool deep_inside = cx > mapped.x_min + margin && cx < mapped.x_max - margin &&
                                   cy > mapped.y_min + margin && cy < mapped.y_max - margin;
          const bool far_outside = cx < mapped.x_min - margin || cx > mapped.x_max + margin ||
                                   cy < mapped.y_min - margin || cy > mapped.y_max + margin;
          const bool photo_inner = cx > photo.x_min + margin && cx < photo.x_max - margin &&
                                   cy > photo.y_min + margin && cy < photo.y_max - margin;
          if (deep_inside) {
            wrong_red += p[0] > 200 && p[2] < 40 ? 0 : 1;
            ++red_checked;
          } else if (far_outside && photo_inner) {
            wrong_blue += p[2] > 170 && p[0] < 50 ? 0 : 1;
            ++blue_checked;
          }
        }
      CHECK(wrong_padding == 0);
      CHECK(wrong_red == 0);
      CHECK(wrong_blue == 0);
      CHECK(red_checked > 10);
      CHECK(blue_checked > 10);
    }
  }
  // A geometry made for another image is refused, not used to write out of bounds.
  const Image small = letterbox_test_scene(40, 30, blue, Box{1, 1, 5, 5}, red);
  CHECK_THROWS_WITH_AS(letterbox(small, letterbox_geometry(400, 300, 64)),
                       doctest::Contains("geometry is for a 400x300 image, not this 40x30 one"),
                       Error);
}
