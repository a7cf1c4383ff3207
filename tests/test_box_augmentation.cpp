// Detection augmentation: boxes move with the pixels (flip, scale and crop), cut boxes are
// clipped or dropped by the stated rule, colour follows its formula, and a seed reproduces a run.
#include <doctest/doctest.h>
#include <stratum/data/box_augmentation.hpp>
#include <stratum/parallel.hpp>

#include <cmath>

using namespace stratum;

namespace {

/// A width x height scene of blue with the pixels of each box (integer corners) painted red.
std::vector<std::uint8_t> box_augmentation_scene(int width, int height,
                                                 const std::vector<LabelledBox>& boxes) {
  std::vector<std::uint8_t> pixels(std::size_t(width) * std::size_t(height) * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      bool red = false;
      for (const LabelledBox& b : boxes)
        red = red || (x >= b.box.x_min && x + 1 <= b.box.x_max && y >= b.box.y_min &&
                      y + 1 <= b.box.y_max);
      std::uint8_t* p = pixels.data() + (std::size_t(y) * std::size_t(width) + std::size_t(x)) * 3;
      p[0] = red ? 230 : 20;
      p[1] = red ? 30 : 40;
      p[2] = red ? 10 : 220;
    }
  return pixels;
}

BoxAugmentationOptions geometry_only() {
  BoxAugmentationOptions o;
  o.max_brightness = o.max_contrast = o.max_saturation = 0;
  return o;
}

}  // namespace

TEST_CASE("box augmentation: a horizontal flip twice is the identity, for pixels and boxes") {
  const int size = 37;
  Random rng(5);
  std::vector<std::uint8_t> scene(std::size_t(size) * size * 3);
  for (auto& v : scene) v = static_cast<std::uint8_t>(rng.below(256));
  SceneTransform flip;
  flip.size = size;
  flip.flip = true;  // scale 1, no offset: output pixel centres fall on source pixel centres
  std::vector<float> once(scene.size()), twice(scene.size());
  flip.render(scene.data(), size, size, once.data());
  std::vector<std::uint8_t> once_bytes(scene.size());
  for (std::size_t i = 0; i < once.size(); ++i)
    once_bytes[i] = static_cast<std::uint8_t>(std::lround(once[i] * 255));
  int not_mirrored = 0;
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < 3; ++c)
        not_mirrored += once_bytes[std::size_t((y * size + x) * 3 + c)] !=
                        scene[std::size_t((y * size + (size - 1 - x)) * 3 + c)];
  CHECK(not_mirrored == 0);
  flip.render(once_bytes.data(), size, size, twice.data());
  int changed = 0;
  for (std::size_t i = 0; i < scene.size(); ++i) changed += std::lround(twice[i] * 255) != scene[i];
  CHECK(changed == 0);

  const Box box{3.5f, 7, 20, 30.25f};
  CHECK(flip.apply(box) == Box{17, 7, 33.5f, 30.25f});
  CHECK(flip.apply(flip.apply(box)) == box);
}

TEST_CASE("box augmentation: every kept box covers the pixels of its object") {
  const int width = 300, height = 200, size = 128;
  const std::vector<LabelledBox> boxes{
      {{20, 30, 60, 80}, 0}, {{150, 90, 200, 130}, 1}, {{250, 150, 300, 200}, 2}};  // at the corner
  const auto scene = box_augmentation_scene(width, height, boxes);
  const BoxAugmenter augmenter(11, size, geometry_only());
  std::vector<float> sample(std::size_t(size) * size * 3);
  int kept = 0, dropped = 0, flips = 0;
  for (std::uint64_t draw = 0; draw < 60; ++draw) {
    CAPTURE(draw);
    const SceneTransform t = augmenter.transform(draw, width, height);
    flips += t.flip;
    const auto out = augmenter.augment(scene.data(), width, height, boxes, sample.data(), draw);
    // Which boxes survived, by the rule: at least half the area inside the square.
    std::vector<LabelledBox> expected;
    for (const LabelledBox& b : boxes) {
      const Box m = t.apply(b.box);
      const Box c{std::max(m.x_min, 0.0f), std::max(m.y_min, 0.0f), std::min(m.x_max, float(size)),
                  std::min(m.y_max, float(size))};
      const bool visible = c.width() > 0 && c.height() > 0 && c.area() >= 0.5f * m.area();
      if (visible) expected.push_back({c, b.class_id});
      (visible ? kept : dropped) += 1;
    }
    REQUIRE(out.size() == expected.size());
    for (std::size_t k = 0; k < out.size(); ++k) {
      CHECK(out[k].box == expected[k].box);
      CHECK(out[k].class_id == expected[k].class_id);
    }
    // Pixels: red well inside every box, blue well outside all of them (on the photo),
    // padding off the photo. Bilinear sampling blurs one source pixel: `scale` output pixels.
    const float margin = t.scale + 1;
    const Box photo = t.apply(Box{0, 0, float(width), float(height)});
    int wrong = 0, red = 0, blue = 0;
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const float cx = x + 0.5f, cy = y + 0.5f;
        const float* p = sample.data() + (std::size_t(y) * size + std::size_t(x)) * 3;
        if (cx < photo.x_min || cx > photo.x_max || cy < photo.y_min || cy > photo.y_max) {
          wrong += std::abs(p[0] - 127 / 255.0f) > 1e-6f;
          continue;
        }
        bool inside = false, near = false;
        for (const LabelledBox& b : boxes) {
          const Box m = t.apply(b.box);
          inside = inside || (cx > m.x_min + margin && cx < m.x_max - margin &&
                              cy > m.y_min + margin && cy < m.y_max - margin);
          near = near || (cx > m.x_min - margin && cx < m.x_max + margin && cy > m.y_min - margin &&
                          cy < m.y_max + margin);
        }
        const bool on_photo = cx > photo.x_min + margin && cx < photo.x_max - margin &&
                              cy > photo.y_min + margin && cy < photo.y_max - margin;
        if (inside) {
          wrong += !(p[0] > 0.85f && p[2] < 0.1f);
          ++red;
        } else if (!near && on_photo) {
          wrong += !(p[2] > 0.8f && p[0] < 0.1f);
          ++blue;
        }
      }
    CHECK(wrong == 0);
    CHECK(blue > 0);
    for (const LabelledBox& b : out)  // a kept box shows red unless it is very thin
      if (b.box.width() > 2 * margin + 1 && b.box.height() > 2 * margin + 1) CHECK(red > 0);
  }
  // The draws exercised both outcomes and both orientations.
  CHECK(kept > 0);
  CHECK(dropped > 0);
  CHECK(flips > 10);
  CHECK(flips < 50);
}

TEST_CASE("box augmentation: a cut box is kept when at least half of it stays visible") {
  SceneTransform t;
  t.size = 100;
  t.offset_x = -50;  // the scene is shifted 50 px left: x = 50 is the square's left edge
  const std::vector<LabelledBox> boxes{{{40, 0, 60, 10}, 0},     // exactly half visible: kept
                                       {{39, 0, 60, 10}, 1},     // 10 of 21 px: dropped
                                       {{0, 0, 49, 10}, 2},      // entirely off the square
                                       {{60, 95, 70, 120}, 3}};  // 5 of 25 px tall: dropped
  const auto kept = t.apply(boxes, 0.5);
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].box == Box{0, 0, 10, 10});
  CHECK(kept[0].class_id == 0);
  CHECK(t.apply(boxes, 0.2).size() == 3);  // a lower threshold keeps the last two cut ones
}

TEST_CASE("box augmentation: colour follows brightness, contrast and saturation") {
  const int size = 24;
  Random rng(8);
  std::vector<std::uint8_t> scene(std::size_t(size) * size * 3);
  for (auto& v : scene) v = static_cast<std::uint8_t>(rng.below(256));
  BoxAugmentationOptions o;
  o.min_scale = o.max_scale = 1;  // a size x size scene: the geometry is the identity
  o.horizontal_flip = false;
  o.max_brightness = 0.2;
  o.max_contrast = 0.5;
  o.max_saturation = 0.8;
  const BoxAugmenter augmenter(21, size, o);
  std::vector<double> sample(scene.size());
  for (std::uint64_t draw = 0; draw < 5; ++draw) {
    const SceneTransform t = augmenter.transform(draw, size, size);
    CHECK(t.offset_x == 0);
    CHECK(t.offset_y == 0);
    CHECK(t.brightness != 0);
    augmenter.augment(scene.data(), size, size, std::vector<LabelledBox>{}, sample.data(), draw);
    double mean = 0;
    for (auto v : scene) mean += v / 255.0 + t.brightness;
    mean /= static_cast<double>(scene.size());
    double worst = 0;
    for (std::size_t p = 0; p < scene.size(); p += 3) {
      double v[3];
      for (int c = 0; c < 3; ++c)
        v[c] = (scene[p + c] / 255.0 + t.brightness - mean) * t.contrast + mean;
      const double luma = 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2];
      for (int c = 0; c < 3; ++c)
        worst = std::max(
            worst,
            std::abs(sample[p + c] - std::clamp(luma + (v[c] - luma) * t.saturation, 0.0, 1.0)));
    }
    CHECK(worst < 1e-12);
  }
  // Saturation 0 (about luma) makes every pixel grey.
  SceneTransform grey;
  grey.size = size;
  grey.saturation = 0;
  grey.render(scene.data(), size, size, sample.data());
  for (std::size_t p = 0; p < scene.size(); p += 3) {
    CHECK(sample[p] == doctest::Approx(sample[p + 1]));
    CHECK(sample[p] == doctest::Approx(sample[p + 2]));
  }
}

TEST_CASE("box augmentation: a crop of a larger letterbox has that letterbox's scale") {
  const int width = 300, height = 200, size = 64, letterbox = 256;
  const std::vector<LabelledBox> boxes{{{20, 30, 60, 80}, 0}, {{150, 90, 200, 130}, 1}};
  const auto scene = box_augmentation_scene(width, height, boxes);
  BoxAugmentationOptions o = geometry_only();
  o.horizontal_flip = false;
  o.letterbox_size = letterbox;
  const BoxAugmenter augmenter(3, size, o);
  CHECK(augmenter.size() == size);
  CHECK(augmenter.letterbox_size() == letterbox);
  CHECK(BoxAugmenter(3, size).letterbox_size() == size);
  const float letterbox_scale = float(letterbox) / float(width);
  std::vector<float> crop(std::size_t(size) * size * 3),
      whole(std::size_t(letterbox) * letterbox * 3);
  for (std::uint64_t draw = 0; draw < 20; ++draw) {
    CAPTURE(draw);
    const SceneTransform t = augmenter.transform(draw, width, height);
    CHECK(t.size == size);
    const double factor = t.scale / letterbox_scale;
    CHECK(factor >= o.min_scale - 1e-6);
    CHECK(factor <= o.max_scale + 1e-6);
    // A window of the scene: it is larger than the sample at every drawn scale.
    CHECK(t.offset_x <= 0);
    CHECK(t.offset_x >= size - width * t.scale - 1e-3f);
    CHECK(t.offset_y <= 0);
    CHECK(t.offset_y >= size - height * t.scale - 1e-3f);
    // Its pixels are the top-left corner of the same view rendered at the letterbox's side.
    augmenter.augment(scene.data(), width, height, boxes, crop.data(), draw);
    SceneTransform view = t;
    view.size = letterbox;
    view.render(scene.data(), width, height, whole.data());
    int differ = 0;
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size * 3; ++x)
        differ += crop[std::size_t(y * size * 3 + x)] != whole[std::size_t(y * letterbox * 3 + x)];
    CHECK(differ == 0);
  }
  o.letterbox_size = -1;
  CHECK_THROWS_AS(BoxAugmenter(1, size, o), Error);
}

TEST_CASE("box augmentation: a seed reproduces every sample, on any thread") {
  const int width = 90, height = 60, size = 48;
  const std::vector<LabelledBox> boxes{{{10, 10, 40, 30}, 0}, {{50, 20, 85, 55}, 1}};
  const auto scene = box_augmentation_scene(width, height, boxes);
  const std::size_t sample_size = std::size_t(size) * size * 3;
  const int count = 16;
  auto run = [&](std::uint64_t seed, bool threaded) {
    BoxAugmenter augmenter(seed, size);
    const std::uint64_t first = augmenter.reserve(count);
    std::vector<float> samples(sample_size * count);
    std::vector<std::vector<LabelledBox>> out(count);
    auto one = [&](Index k) {
      out[std::size_t(k)] = augmenter.augment(scene.data(), width, height, boxes,
                                              samples.data() + std::size_t(k) * sample_size,
                                              first + std::uint64_t(k));
    };
    if (threaded)
      parallel_for(count, one);
    else
      for (Index k = 0; k < count; ++k) one(k);
    CHECK(augmenter.draws() == count);
    return std::pair{samples, out};
  };
  const auto a = run(4, false), b = run(4, true), c = run(5, false);
  CHECK(a.first == b.first);
  for (int k = 0; k < count; ++k) {
    REQUIRE(a.second[k].size() == b.second[k].size());
    for (std::size_t i = 0; i < a.second[k].size(); ++i)
      CHECK(a.second[k][i].box == b.second[k][i].box);
  }
  CHECK(a.first != c.first);
  // Consecutive samples differ from each other.
  CHECK(!std::equal(a.first.begin(), a.first.begin() + std::ptrdiff_t(sample_size),
                    a.first.begin() + std::ptrdiff_t(sample_size)));
}

TEST_CASE("box augmentation: bad options are refused") {
  BoxAugmentationOptions o;
  o.min_scale = 1.5;
  o.max_scale = 1.0;
  CHECK_THROWS_AS(BoxAugmenter(1, 64, o), Error);
  o = {};
  o.min_visible = 0;
  CHECK_THROWS_AS(BoxAugmenter(1, 64, o), Error);
  o = {};
  o.max_saturation = 2;
  CHECK_THROWS_AS(BoxAugmenter(1, 64, o), Error);
  CHECK_THROWS_AS(BoxAugmenter(1, 0), Error);
  CHECK_THROWS_AS(SceneTransform::letterbox(0, 5, 64), Error);
}
