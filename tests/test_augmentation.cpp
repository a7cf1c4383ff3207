#include <doctest/doctest.h>
#include <stratum/data/augmentation.hpp>
#include <stratum/data/image_dataset.hpp>
#include <stratum/parallel.hpp>

#include <algorithm>
#include <functional>
#include <numeric>

using namespace stratum;

namespace {

/// A collection of `count` random 8-bit images of width x height.
LabelledImages random_images(int count, int width, int height, std::uint64_t seed) {
  LabelledImages images;
  images.width = width;
  images.height = height;
  images.class_names = {"a", "b"};
  Random rng(seed);
  images.pixels.resize(static_cast<std::size_t>(count * width * height * 3));
  for (auto& p : images.pixels) p = static_cast<std::uint8_t>(rng.below(256));
  for (int i = 0; i < count; ++i) {
    images.labels.push_back(i % 2);
    images.files.push_back("f" + std::to_string(i));
    images.content_hashes.push_back(static_cast<std::uint64_t>(i));
  }
  return images;
}

AugmentationOptions none() {
  return {.horizontal_flip = false,
          .max_rotation_degrees = 0,
          .max_zoom = 0,
          .max_shift = 0,
          .max_brightness = 0,
          .max_contrast = 0,
          .corruptions = {}};
}

std::vector<float> augmented(const ImageAugmenter& augmenter, const LabelledImages& images,
                             Index image, std::uint64_t draw) {
  std::vector<float> out(static_cast<std::size_t>(images.image_size()));
  augmenter.augment(images.pixels.data() + image * images.image_size(), images.width, images.height,
                    out.data(), draw);
  return out;
}

}  // namespace

TEST_CASE("Augmentation with every range at zero is the plain x / 255 conversion") {
  const LabelledImages images = random_images(1, 13, 7, 1);  // odd sizes
  const ImageAugmenter identity(5, none());
  const auto out = augmented(identity, images, 0, 3);
  for (std::size_t i = 0; i < out.size(); ++i)
    REQUIRE(out[i] == doctest::Approx(images.pixels[i] / 255.0).epsilon(1e-6));
}

TEST_CASE("A flip alone mirrors the image exactly, for about half of the samples") {
  const LabelledImages images = random_images(1, 9, 5, 2);
  AugmentationOptions flip_only = none();
  flip_only.horizontal_flip = true;
  const ImageAugmenter augmenter(7, flip_only);
  int flipped = 0;
  for (std::uint64_t draw = 0; draw < 200; ++draw) {
    const auto out = augmented(augmenter, images, 0, draw);
    bool mirror = true, same = true;
    for (int y = 0; y < 5; ++y)
      for (int x = 0; x < 9; ++x)
        for (int c = 0; c < 3; ++c) {
          const float v = out[static_cast<std::size_t>((y * 9 + x) * 3 + c)];
          const double original =
              images.pixels[static_cast<std::size_t>((y * 9 + x) * 3 + c)] / 255.0;
          const double mirrored =
              images.pixels[static_cast<std::size_t>((y * 9 + 8 - x) * 3 + c)] / 255.0;
          mirror = mirror && std::abs(v - mirrored) < 1e-5;
          same = same && std::abs(v - original) < 1e-5;
        }
    REQUIRE((mirror || same));
    flipped += mirror && !same;
  }
  // 200 fair coin flips: 100 +- 30 is over four standard deviations.
  CHECK(std::abs(flipped - 100) < 30);
}

TEST_CASE("Augmentation is seeded per sample number, stays in [0, 1] and changes the image") {
  const LabelledImages images = random_images(2, 32, 24, 3);
  const ImageAugmenter a(11), b(11), other_seed(12);
  const auto first = augmented(a, images, 0, 4);
  CHECK(first == augmented(b, images, 0, 4));
  CHECK(first != augmented(a, images, 0, 5));
  CHECK(first != augmented(other_seed, images, 0, 4));
  for (float v : first) REQUIRE((v >= 0.0f && v <= 1.0f));
  double difference = 0;
  for (std::size_t i = 0; i < first.size(); ++i)
    difference += std::abs(first[i] - images.pixels[i] / 255.0);
  CHECK(difference / double(first.size()) > 0.01);
}

TEST_CASE("Brightness moves the mean; contrast scales deviations around it") {
  LabelledImages grey = random_images(1, 8, 8, 4);
  for (std::size_t i = 0; i < grey.pixels.size(); ++i) grey.pixels[i] = i % 2 ? 100 : 140;
  AugmentationOptions colour = none();
  colour.max_brightness = 0.1;
  colour.max_contrast = 0.5;
  const ImageAugmenter augmenter(3, colour);
  double lowest_mean = 1, highest_mean = 0, lowest_spread = 1, highest_spread = 0;
  for (std::uint64_t draw = 0; draw < 100; ++draw) {
    const auto out = augmented(augmenter, grey, 0, draw);
    double mean = 0;
    for (float v : out) mean += v / double(out.size());
    const double spread = std::abs(out[1] - out[0]);
    lowest_mean = std::min(lowest_mean, mean);
    highest_mean = std::max(highest_mean, mean);
    lowest_spread = std::min(lowest_spread, spread);
    highest_spread = std::max(highest_spread, spread);
    // The mean (120 / 255) moves by the brightness alone, at most 0.1.
    REQUIRE(std::abs(mean - 120 / 255.0) <= 0.1 + 1e-6);
    // The spread (40 / 255) is scaled by a factor in [0.5, 1.5].
    REQUIRE(spread >= 0.5 * 40 / 255.0 - 1e-6);
    REQUIRE(spread <= 1.5 * 40 / 255.0 + 1e-6);
  }
  CHECK(highest_mean - lowest_mean > 0.1);
  CHECK(highest_spread / lowest_spread > 2);
}

TEST_CASE(
    "ImageDataset: augmentation only when given, the same on 1 and 2 threads, counted for "
    "checkpoints") {
  const LabelledImages images = random_images(10, 17, 11, 5);
  std::vector<Index> all(10);
  std::iota(all.begin(), all.end(), Index{0});
  const std::vector<Index> batch{3, 1, 4, 1, 5, 9, 2};

  ImageDataset<float> plain(images, all);
  Tensor<float> x;
  std::vector<int> labels;
  plain.gather(batch, x, labels);
  CHECK(x[0] ==
        doctest::Approx(images.pixels[static_cast<std::size_t>(3 * images.image_size())] / 255.0));
  CHECK(labels == std::vector<int>{1, 1, 0, 1, 1, 1, 0});

  auto run = [&](int threads) {
    set_num_threads(threads);
    ImageAugmenter augmenter(9);
    ImageDataset<float> training(images, all, &augmenter);
    Tensor<float> first, second;
    training.gather(batch, first, labels);
    training.gather(batch, second, labels);
    CHECK(augmenter.draws() == 2 * batch.size());
    CHECK(!first.array().isApprox(second.array()));  // the next batch draws new transforms
    return std::pair{first, second};
  };
  const auto one = run(1), two = run(2);
  CHECK(std::equal(one.first.begin(), one.first.end(), two.first.begin()));
  CHECK(std::equal(one.second.begin(), one.second.end(), two.second.begin()));

  // Restoring the count replays the stream: what a resumed run relies on.
  ImageAugmenter resumed(9);
  resumed.set_draws(batch.size());
  ImageDataset<float> again(images, all, &resumed);
  Tensor<float> replay;
  again.gather(batch, replay, labels);
  CHECK(std::equal(replay.begin(), replay.end(), one.second.begin()));
}

TEST_CASE("ImageAugmenter rejects negative ranges") {
  AugmentationOptions bad;
  bad.max_zoom = -0.1;
  CHECK_THROWS_AS(ImageAugmenter(1, bad), Error);
  bad = {};
  bad.max_contrast = 1.5;
  CHECK_THROWS_AS(ImageAugmenter(1, bad), Error);
}

TEST_CASE(
    "Corruptions: off by default; with probability p about (1 - p)^7 of the samples untouched") {
  const LabelledImages images = random_images(1, 24, 20, 6);
  const ImageAugmenter plain(21);
  AugmentationOptions ranges_only;
  ranges_only.corruptions.max_blur_sigma = 1;  // other ranges, probability still 0: no change
  const ImageAugmenter same(21, ranges_only);
  AugmentationOptions some;
  some.corruptions.probability = 0.1;
  const ImageAugmenter corrupting(21, some);
  int untouched = 0;
  for (std::uint64_t draw = 0; draw < 400; ++draw) {
    const auto reference = augmented(plain, images, 0, draw);
    REQUIRE(augmented(same, images, 0, draw) == reference);
    // The corruptions draw after the geometry and colour, so a sample that gets none is exactly
    // the plain augmenter's; one that gets any is rounded to 8 bits and differs.
    const auto out = augmented(corrupting, images, 0, draw);
    REQUIRE(std::all_of(out.begin(), out.end(), [](float v) { return v >= 0.0f && v <= 1.0f; }));
    if (out == reference) {
      ++untouched;
      continue;
    }
    REQUIRE(std::all_of(out.begin(), out.end(),
                        [](float v) { return std::abs(v * 255 - std::round(v * 255)) < 1e-3; }));
  }
  // 0.9^7 = 0.478 of 400 is 191; 50 is over five standard deviations (10).
  CHECK(std::abs(untouched - 191) < 50);
}

TEST_CASE(
    "Corruptions at probability 1 degrade every sample, seeded per sample and thread-independent") {
  const LabelledImages images = random_images(8, 32, 28, 7);
  AugmentationOptions options = none();
  options.corruptions.probability = 1;
  const ImageAugmenter augmenter(5, options), again(5, options);
  const ImageAugmenter identity(5, none());
  for (std::uint64_t draw = 0; draw < 20; ++draw) {
    const auto out = augmented(augmenter, images, 1, draw);
    CHECK(out != augmented(identity, images, 1, draw));
    CHECK(out == augmented(again, images, 1, draw));
    CHECK(out != augmented(augmenter, images, 1, draw + 1));
  }
  std::vector<Index> all(8);
  std::iota(all.begin(), all.end(), Index{0});
  auto gather = [&](int threads) {
    set_num_threads(threads);
    ImageAugmenter counting(5, options);
    ImageDataset<float> data(images, all, &counting);
    Tensor<float> x;
    std::vector<int> labels;
    data.gather(std::vector<Index>{0, 1, 2, 3, 4, 5, 6, 7}, x, labels);
    return std::vector<float>(x.begin(), x.end());
  };
  CHECK(gather(1) == gather(2));
}

TEST_CASE("ImageAugmenter rejects corruption ranges out of bounds") {
  for (auto breaks : std::vector<std::function<void(CorruptionAugmentation&)>>{
           [](auto& c) { c.probability = 1.5; }, [](auto& c) { c.probability = -0.1; },
           [](auto& c) { c.min_crop_side = 0; }, [](auto& c) { c.max_contrast = 2; },
           [](auto& c) { c.max_blur_sigma = 0.1; }, [](auto& c) { c.max_noise_sigma = 0; },
           [](auto& c) { c.min_size = 80; }, [](auto& c) { c.max_quality = 101; },
           [](auto& c) { c.min_quality = 0; }}) {
    AugmentationOptions options;
    breaks(options.corruptions);
    CHECK_THROWS_AS(ImageAugmenter(1, options), Error);
  }
}
