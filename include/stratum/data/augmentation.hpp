// Data augmentation for 8-bit RGB images: each training sample is drawn through a fresh random
// transform, so the network never sees quite the same photo twice.
//
// Geometry: one affine map per sample, sampled bilinearly, with the border pixels repeated
// outside the image (Keras' fill_mode "nearest"). For output pixel p, relative to the image
// centre c, the source pixel is
//
//   source = c + shift + R(-angle) * F * (p - c) / zoom
//
// with F = diag(-1, 1) on a horizontal flip; zoom >= 1 shows a smaller part of the photo at
// full size (a random crop). Colour: with m the image's mean after the geometry,
//
//   value = clamp((v - m) * contrast + m + brightness, 0, 1)
//
// Corruptions (optional, off by default): then the degradations of users' photos of
// corruptions.hpp, each kind independently with probability p, at a strength drawn uniformly
// from its range, in the order a photo meets them: a cut-off crop, other light (brightness and
// contrast together), grey-scale, blur, noise, down-scaling and back, JPEG. A sample that draws
// one is rounded to 8 bits first (as the photos are); the others are not touched.
//
// Randomness is stateless per sample: sample number k of the whole run draws from an engine
// seeded by (seed, k). The augmenter only counts samples, so a batch can be augmented on many
// threads with the same result, and a checkpoint needs to store one number (`draws`).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "../errors.hpp"
#include "../random.hpp"
#include "../stateful.hpp"
#include "../tensor.hpp"
#include "corruptions.hpp"

namespace stratum {

/// The degradations of users' photos drawn in training: each kind with `probability`, its
/// strength uniform in its range. The ranges reach beyond the benchmark's strengths
/// (corruption_strength) so that those are not the hardest case the network has seen.
struct CorruptionAugmentation {
  double probability = 0;                 // of each kind, independently; 0 turns them all off
  double min_crop_side = 0.6;             // cut-off crop: window side in [min, 1) of the image's
  double max_brightness = 0.35;           // other light: shift in [-b, b] and
  double max_contrast = 0.6;              //   contrast factor in [1 - c, 1 + c]
  double max_blur_sigma = 3.0;            // Gaussian blur: sigma in [0.5, max] px
  double max_noise_sigma = 0.12;          // Gaussian noise: sigma in [0.01, max] of the full scale
  int min_size = 16, max_size = 64;       // down-scaling: the longer side to [min, max] px and back
  int min_quality = 5, max_quality = 50;  // JPEG quality in [min, max]
};

/// Ranges of the random transforms; each is drawn uniformly. All zero (and no flip) is the
/// identity.
struct AugmentationOptions {
  bool horizontal_flip = true;         // mirror half of the images
  double max_rotation_degrees = 10;    // angle in [-r, r]
  double max_zoom = 0.15;              // zoom in [1, 1 + z]: crop up to 1/(1+z) of each side
  double max_shift = 0.08;             // shift in [-s, s] times the width and height
  double max_brightness = 0.1;         // added, in [-b, b] (pixel values are in [0, 1])
  double max_contrast = 0.2;           // contrast factor in [1 - c, 1 + c]
  CorruptionAugmentation corruptions;  // off unless its probability is set
};

class ImageAugmenter final : public SampleNumbers {
 public:
  explicit ImageAugmenter(std::uint64_t seed, AugmentationOptions options = {})
      : seed_(seed), options_(options) {
    const double limits[] = {options.max_rotation_degrees, options.max_zoom, options.max_shift,
                             options.max_brightness, options.max_contrast};
    for (double v : limits)
      if (!(v >= 0.0 && v <= 1000.0)) throw Error("ImageAugmenter: every range must be >= 0");
    if (options.max_contrast > 1.0) throw Error("ImageAugmenter: max_contrast must be <= 1");
    const CorruptionAugmentation& c = options.corruptions;
    if (!(c.probability >= 0 && c.probability <= 1))
      throw Error("ImageAugmenter: the corruption probability must be in [0, 1]");
    if (!(c.min_crop_side > 0 && c.min_crop_side <= 1) ||
        !(c.max_brightness >= 0 && c.max_brightness <= 1) ||
        !(c.max_contrast >= 0 && c.max_contrast <= 1) ||
        !(c.max_blur_sigma >= 0.5 && c.max_blur_sigma <= 100) ||
        !(c.max_noise_sigma >= 0.01 && c.max_noise_sigma <= 1) || c.min_size < 1 ||
        c.max_size < c.min_size || c.min_quality < 1 || c.max_quality > 100 ||
        c.max_quality < c.min_quality)
      throw Error(
          "ImageAugmenter: a corruption range is out of bounds (crop side in (0, 1], brightness "
          "and contrast in [0, 1], blur sigma in [0.5, 100], noise sigma in [0.01, 1], sizes at "
          "least 1, qualities in [1, 100], each minimum at most its maximum)");
  }

  [[nodiscard]] const AugmentationOptions& options() const { return options_; }

  /// Writes sample number `draw`'s transform of the (height x width x 3) image `source` into
  /// `target` as values in [0, 1]. Thread-safe: it reads only the options and the seed.
  template <typename T>
  void augment(const std::uint8_t* source, int width, int height, T* target,
               std::uint64_t draw) const {
    Random rng(seed_ ^ (0x9e3779b97f4a7c15ULL * (draw + 1)));
    const bool flip = options_.horizontal_flip && rng.uniform() < 0.5;
    const double angle =
        rng.uniform(-1, 1) * options_.max_rotation_degrees * std::numbers::pi / 180;
    const double zoom = 1 + rng.uniform() * options_.max_zoom;
    const double shift_x = rng.uniform(-1, 1) * options_.max_shift * width;
    const double shift_y = rng.uniform(-1, 1) * options_.max_shift * height;
    const double brightness = rng.uniform(-1, 1) * options_.max_brightness;
    const double contrast = 1 + rng.uniform(-1, 1) * options_.max_contrast;

    // Source position = origin + x * step_x + y * step_y for output pixel (x, y).
    const double cx = 0.5 * (width - 1), cy = 0.5 * (height - 1);
    const double cos_a = std::cos(angle) / zoom, sin_a = std::sin(angle) / zoom;
    const double fx = flip ? -1.0 : 1.0;
    const double step_x[2] = {fx * cos_a, fx * -sin_a};  // d(source)/dx
    const double step_y[2] = {sin_a, cos_a};             // d(source)/dy
    const double origin[2] = {cx + shift_x - cx * step_x[0] - cy * step_y[0],
                              cy + shift_y - cx * step_x[1] - cy * step_y[1]};

    double sum = 0;
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        const double sx = std::clamp(origin[0] + x * step_x[0] + y * step_y[0], 0.0, width - 1.0);
        const double sy = std::clamp(origin[1] + x * step_x[1] + y * step_y[1], 0.0, height - 1.0);
        const int x0 = std::min(static_cast<int>(sx), width - 2 < 0 ? 0 : width - 2);
        const int y0 = std::min(static_cast<int>(sy), height - 2 < 0 ? 0 : height - 2);
        const int x1 = std::min(x0 + 1, width - 1), y1 = std::min(y0 + 1, height - 1);
        const double ax = sx - x0, ay = sy - y0;
        const std::uint8_t* p00 = source + (Index{y0} * width + x0) * 3;
        const std::uint8_t* p01 = source + (Index{y0} * width + x1) * 3;
        const std::uint8_t* p10 = source + (Index{y1} * width + x0) * 3;
        const std::uint8_t* p11 = source + (Index{y1} * width + x1) * 3;
        T* out = target + (Index{y} * width + x) * 3;
        for (int c = 0; c < 3; ++c) {
          const double top = p00[c] + ax * (p01[c] - p00[c]);
          const double bottom = p10[c] + ax * (p11[c] - p10[c]);
          const double v = (top + ay * (bottom - top)) / 255.0;
          out[c] = static_cast<T>(v);
          sum += v;
        }
      }
    }
    const Index values = Index{width} * height * 3;
    const double mean = sum / static_cast<double>(values);
    for (Index i = 0; i < values; ++i)
      target[i] = static_cast<T>(
          std::clamp((double(target[i]) - mean) * contrast + mean + brightness, 0.0, 1.0));
    if (options_.corruptions.probability > 0) corrupt(target, width, height, rng);
  }

 private:
  /// Draws which corruptions `image` (values in [0, 1]) gets and applies them. Every decision
  /// and strength is drawn whether or not it is used, and the crop and the noise get engines of
  /// their own, so one kind's draws never shift another's.
  template <typename T>
  void corrupt(T* image, int width, int height, Random& rng) const {
    const CorruptionAugmentation& o = options_.corruptions;
    auto chance = [&] { return rng.uniform() < o.probability; };
    const bool crop = chance();
    const double side = rng.uniform(o.min_crop_side, 1.0);
    Random crop_rng = rng.split();
    const bool light = chance();
    const double brightness = rng.uniform(-1, 1) * o.max_brightness;
    const double contrast = 1 + rng.uniform(-1, 1) * o.max_contrast;
    const bool grey = chance();
    const bool blur = chance();
    const double sigma = rng.uniform(0.5, o.max_blur_sigma);
    const bool noise = chance();
    const double noise_sigma = rng.uniform(0.01, o.max_noise_sigma);
    Random noise_rng = rng.split();
    const bool small = chance();
    const auto size =
        o.min_size +
        static_cast<int>(rng.below(static_cast<std::uint64_t>(o.max_size - o.min_size + 1)));
    const bool jpeg = chance();
    const auto quality =
        o.min_quality +
        static_cast<int>(rng.below(static_cast<std::uint64_t>(o.max_quality - o.min_quality + 1)));
    if (!(crop || light || grey || blur || noise || small || jpeg)) return;

    const Index values = Index{width} * height * 3;
    Image photo{width, height, std::vector<std::uint8_t>(static_cast<std::size_t>(values))};
    for (Index i = 0; i < values; ++i)
      photo.pixels[static_cast<std::size_t>(i)] = detail::to_byte(255.0 * double(image[i]));
    if (crop) photo = crop_part(photo, side, crop_rng);
    if (light) photo = adjust_contrast(adjust_brightness(photo, brightness), contrast);
    if (grey) photo = greyscale(photo);
    if (blur) photo = gaussian_blur(photo, sigma);
    if (noise) photo = gaussian_noise(photo, noise_sigma, noise_rng);
    if (small) photo = downscale(photo, size);
    if (jpeg) photo = jpeg_compress(photo, quality);
    for (Index i = 0; i < values; ++i)
      image[i] = static_cast<T>(photo.pixels[static_cast<std::size_t>(i)] / 255.0);
  }

  std::uint64_t seed_;
  AugmentationOptions options_;
};

}  // namespace stratum
