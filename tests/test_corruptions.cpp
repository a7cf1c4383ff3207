// The corruptions of users' photos (data/corruptions.hpp): each does what its formula says on
// small generated images, keeps the size (odd ones too), repeats with a seed and refuses bad
// input.
#include <doctest/doctest.h>
#include <stratum/data/corruptions.hpp>

#include <cmath>
#include <functional>
#include <set>

using namespace stratum;

namespace {

/// A width x height image whose pixel (x, y) is f(x, y, channel).
Image make_image(int width, int height, const std::function<double(int, int, int)>& f) {
  Image image{width, height, {}};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c)
        image.pixels.push_back(
            static_cast<std::uint8_t>(std::clamp(std::round(f(x, y, c)), 0.0, 255.0)));
  return image;
}

/// Smooth colour ramps with a little texture: something like a photo.
Image photo_like(int width, int height) {
  return make_image(width, height, [&](int x, int y, int c) {
    return 40 +
           150.0 *
               (c == 0   ? x
                : c == 1 ? y
                         : x + y) /
               (width + height) +
           12 * std::sin(0.7 * x) * std::cos(0.5 * y);
  });
}

/// One-pixel black and white squares: nothing but the highest frequency.
Image checkerboard(int width, int height) {
  return make_image(width, height, [](int x, int y, int) { return (x + y) % 2 ? 255.0 : 0.0; });
}

int channel_value(const Image& image, int x, int y, int c) {
  return image.pixels[(static_cast<std::size_t>(y) * static_cast<std::size_t>(image.width) +
                       static_cast<std::size_t>(x)) *
                          3 +
                      static_cast<std::size_t>(c)];
}

double channel_mean(const Image& image, int channel) {
  double sum = 0;
  for (std::size_t i = static_cast<std::size_t>(channel); i < image.pixels.size(); i += 3)
    sum += image.pixels[i];
  return sum / double(image.pixels.size() / 3);
}

/// Mean absolute difference between horizontal neighbours: large only with high frequencies.
double roughness(const Image& image) {
  double sum = 0;
  for (int y = 0; y < image.height; ++y)
    for (int x = 1; x < image.width; ++x)
      for (int c = 0; c < 3; ++c)
        sum += std::abs(channel_value(image, x, y, c) - channel_value(image, x - 1, y, c));
  return sum / (double(image.height) * (image.width - 1) * 3);
}

double mean_absolute_difference(const Image& a, const Image& b) {
  REQUIRE(a.pixels.size() == b.pixels.size());
  double sum = 0;
  for (std::size_t i = 0; i < a.pixels.size(); ++i)
    sum += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
  return sum / double(a.pixels.size());
}

}  // namespace

TEST_CASE("Grey-scale: R = G = B = the BT.601 luma") {
  const Image image = photo_like(13, 7);
  const Image grey = greyscale(image);
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 13; ++x) {
      REQUIRE(channel_value(grey, x, y, 0) == channel_value(grey, x, y, 1));
      REQUIRE(channel_value(grey, x, y, 1) == channel_value(grey, x, y, 2));
      const double luma = 0.299 * channel_value(image, x, y, 0) +
                          0.587 * channel_value(image, x, y, 1) +
                          0.114 * channel_value(image, x, y, 2);
      REQUIRE(std::abs(channel_value(grey, x, y, 0) - luma) <= 0.5);
    }
  const Image red = make_image(1, 1, [](int, int, int c) { return c == 0 ? 255.0 : 0.0; });
  CHECK(channel_value(greyscale(red), 0, 0, 0) == 76);  // 0.299 * 255 = 76.2
}

TEST_CASE(
    "JPEG at quality 10 changes the image but keeps its mean colour; quality 90 barely changes "
    "it") {
  const Image image = photo_like(37, 23);
  const Image q10 = jpeg_compress(image, 10), q90 = jpeg_compress(image, 90);
  REQUIRE(q10.width == 37);
  REQUIRE(q10.height == 23);
  const double lost_at_10 = mean_absolute_difference(image, q10);
  const double lost_at_90 = mean_absolute_difference(image, q90);
  CHECK(lost_at_10 > 2);
  CHECK(lost_at_90 < lost_at_10 / 2);
  for (int c = 0; c < 3; ++c) CHECK(std::abs(channel_mean(q10, c) - channel_mean(image, c)) < 4);
}

TEST_CASE(
    "Down-scaling to 24 px and back removes the high frequencies and keeps the smooth parts") {
  const Image fine = checkerboard(96, 96);
  const Image blurred = downscale(fine, 24);
  REQUIRE(blurred.width == 96);
  REQUIRE(blurred.height == 96);
  CHECK(roughness(fine) == 255);
  CHECK(roughness(blurred) < 0.05 * 255);
  for (int c = 0; c < 3; ++c)
    CHECK(channel_mean(blurred, c) == doctest::Approx(127.5).epsilon(0.03));

  const Image smooth = make_image(96, 64, [](int x, int y, int c) { return 30 + x + y + 20 * c; });
  const Image small_smooth = downscale(smooth, 24);
  REQUIRE(small_smooth.height == 64);  // the longer side goes to 24 px, the other to 16, and back
  CHECK(mean_absolute_difference(smooth, small_smooth) < 1.5);
  CHECK(downscale(smooth, 96).pixels == smooth.pixels);  // not larger than the size: unchanged
}

TEST_CASE(
    "Gaussian blur: a flat image stays flat; an edge becomes the Gaussian's cumulative profile") {
  const Image flat = make_image(9, 5, [](int, int, int c) { return 50.0 + 60 * c; });
  CHECK(gaussian_blur(flat, 2.0).pixels == flat.pixels);
  CHECK(gaussian_blur(flat, 0.0).pixels == flat.pixels);

  // Black left of x = 16, white from there: blurred, pixel x is 255 * P(x + i >= 16) with i the
  // Gaussian's offset, which is close to 255 * Phi((x - 15.5) / sigma).
  const double sigma = 2.0;
  const Image edge = make_image(32, 3, [](int x, int, int) { return x >= 16 ? 255.0 : 0.0; });
  const Image blurred = gaussian_blur(edge, sigma);
  for (int x = 0; x < 32; ++x) {
    const double expected = 255 * 0.5 * std::erfc(-(x - 15.5) / (sigma * std::sqrt(2.0)));
    INFO("x = " << x);
    CHECK(std::abs(channel_value(blurred, x, 1, 0) - expected) <= 2.0);
  }
  CHECK(roughness(gaussian_blur(checkerboard(20, 20), 1.0)) < 0.1 * 255);
}

TEST_CASE("Gaussian noise has the standard deviation it is given, around the same mean") {
  const Image grey = make_image(64, 48, [](int, int, int) { return 128.0; });
  Random rng(7);
  const Image noisy = gaussian_noise(grey, 0.08, rng);
  double sum = 0, squares = 0;
  for (auto v : noisy.pixels) {
    sum += v - 128.0;
    squares += (v - 128.0) * (v - 128.0);
  }
  const auto n = double(noisy.pixels.size());  // 9,216 values: the estimates are within 2 %
  CHECK(std::abs(sum / n) < 0.6);
  CHECK(std::sqrt(squares / n) == doctest::Approx(0.08 * 255).epsilon(0.03));
}

TEST_CASE("Brightness adds to every value and clips; contrast scales deviations from the mean") {
  const Image image = make_image(4, 2, [](int x, int, int c) { return 60.0 * x + c; });  // 0..181
  const Image brighter = adjust_brightness(image, 0.25);
  for (std::size_t i = 0; i < image.pixels.size(); ++i)
    REQUIRE(int(brighter.pixels[i]) == std::min(255, image.pixels[i] + 64));  // 63.75 rounds to 64
  const Image darker = adjust_brightness(image, -0.25);
  for (std::size_t i = 0; i < image.pixels.size(); ++i)
    REQUIRE(int(darker.pixels[i]) == std::max(0, image.pixels[i] - 64));

  const Image two_tone = make_image(6, 3, [](int x, int, int) { return x % 2 ? 150.0 : 100.0; });
  const Image flatter = adjust_contrast(two_tone, 0.5);
  CHECK(channel_value(flatter, 0, 0, 0) == 113);  // mean 125: 125 - 25 / 2 = 112.5, rounded up
  CHECK(channel_value(flatter, 1, 0, 0) == 138);  // 125 + 12.5
  const Image sharper = adjust_contrast(two_tone, 1.5);
  CHECK(channel_value(sharper, 0, 0, 0) == 88);   // 125 - 37.5 = 87.5
  CHECK(channel_value(sharper, 1, 0, 0) == 163);  // 162.5
}

TEST_CASE(
    "The cut-off crop keeps the size, shows a part of the image scaled up, where the seed says") {
  // Value 2x across: a crop of half the width shows a span of about half the values.
  const Image ramp = make_image(100, 60, [](int x, int, int) { return 2.0 * x + 20; });
  Random rng(3);
  const Image part = crop_part(ramp, 0.5, rng);
  REQUIRE(part.width == 100);
  REQUIRE(part.height == 60);
  const int left = channel_value(part, 0, 30, 0), right = channel_value(part, 99, 30, 0);
  CHECK(right - left ==
        doctest::Approx(0.5 * (channel_value(ramp, 99, 30, 0) - channel_value(ramp, 0, 30, 0)))
            .epsilon(0.05));
  Random whole(3);
  CHECK(crop_part(ramp, 1.0, whole).pixels == ramp.pixels);

  // Where the window lies depends on the engine only.
  std::set<int> positions;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    Random a(seed), b(seed);
    const Image first = crop_part(ramp, 0.5, a);
    CHECK(first.pixels == crop_part(ramp, 0.5, b).pixels);
    positions.insert(channel_value(first, 0, 0, 0));
  }
  CHECK(positions.size() > 10);
}

TEST_CASE("The benchmark: 14 corruptions at their documented strengths, seeded, sizes kept") {
  const auto benchmark = benchmark_corruptions();
  REQUIRE(benchmark.size() == 14);
  CHECK(benchmark[0].strength == "to 24 px and back");
  CHECK(benchmark[3].name == "JPEG");
  CHECK(benchmark[3].strength == "quality 10");
  CHECK(benchmark[6].strength == "sigma 2 px");
  CHECK(benchmark[7].strength == "sigma 0.08");
  CHECK(benchmark[13].strength == "0.7 of each side");
  for (const Image& image :
       {photo_like(128, 128), photo_like(37, 23), photo_like(1, 1), photo_like(2, 5)}) {
    for (const auto& corruption : benchmark) {
      INFO(corruption.name << " " << corruption.strength << " on " << image.width << "x"
                           << image.height);
      Random a(11), b(11), c(12);
      const Image first = corruption.apply(image, a);
      REQUIRE(first.width == image.width);
      REQUIRE(first.height == image.height);
      REQUIRE(first.pixels.size() == image.pixels.size());
      CHECK(first.pixels == corruption.apply(image, b).pixels);  // same seed, same bytes
      if (image.width == 128 &&
          (corruption.name == "Gaussian noise" || corruption.name == "cut-off crop"))
        CHECK(first.pixels != corruption.apply(image, c).pixels);  // another seed, another draw
    }
  }
}

TEST_CASE("Corruptions refuse images that are not RGB and strengths out of range") {
  Random rng(1);
  const Image empty;
  CHECK_THROWS_AS(greyscale(empty), Error);
  const Image short_pixels{4, 4, std::vector<std::uint8_t>(47)};
  CHECK_THROWS_WITH_AS(jpeg_compress(short_pixels, 50), doctest::Contains("jpeg_compress"), Error);
  const Image image = photo_like(8, 8);
  CHECK_THROWS_AS(jpeg_compress(image, 0), Error);
  CHECK_THROWS_AS(jpeg_compress(image, 101), Error);
  CHECK_THROWS_AS(downscale(image, 0), Error);
  CHECK_THROWS_AS(gaussian_blur(image, -1), Error);
  CHECK_THROWS_AS(gaussian_noise(image, std::nan(""), rng), Error);
  CHECK_THROWS_AS(adjust_brightness(image, 1.5), Error);
  CHECK_THROWS_AS(adjust_contrast(image, -0.5), Error);
  CHECK_THROWS_AS(crop_part(image, 0.0, rng), Error);
}
