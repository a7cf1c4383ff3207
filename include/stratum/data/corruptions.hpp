// Corruptions of 8-bit RGB images: the ways users' photos differ from a curated dataset. Each
// function takes an image and returns a degraded copy of the same size; the random ones take
// the engine to draw from, so a seed gives the same bytes on every platform.
//
// With v a channel value in [0, 255] and round-and-clamp to [0, 255] applied last:
//
//   down-scale to s px    resize so the longer side is s px (Mitchell filter, which averages
//                         rather than aliases), then back to the original size (Catmull-Rom):
//                         what a face of s pixels scaled up to the network's input looks like
//   JPEG at quality q     encoded with stb_image_write (4:2:0 chroma below quality 91), decoded
//                         with stb_image: blocking, ringing and colour bleeding
//   Gaussian blur         v'(x, y) = sum_{i,j} g(i) g(j) v(x + i, y + j), with
//                         g(i) = exp(-i^2 / (2 sigma^2)) / sum_k exp(-k^2 / (2 sigma^2)) for
//                         |i| <= ceil(3 sigma), separable, border pixels repeated outside
//   Gaussian noise        v' = v + 255 sigma z, z ~ N(0, 1) drawn for every value (Box-Muller)
//   brightness            v' = v + 255 shift
//   contrast              v' = (v - m) factor + m, m the mean of all the image's values
//   grey-scale            R' = G' = B' = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601 luma)
//   cut-off crop          a window of `side` times the width and height, at a uniformly random
//                         position, resized back to the full size: the face fills more of the
//                         picture and part of it is outside
//
// The benchmark's strengths (mask_detector evaluate --corruptions) are the constants in
// `corruption_strength`, chosen for the 128x128 face crops the mask detector sees; the list is
// `benchmark_corruptions()`.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numbers>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../random.hpp"
#include "image.hpp"
#include "stb.hpp"

namespace stratum {

/// The benchmark's fixed strengths (docs/mask-detection.md lists them too).
namespace corruption_strength {
inline constexpr int downscale_sizes[] = {24, 32, 48};  // px, the longer side
inline constexpr int jpeg_qualities[] = {10, 20, 40};   // stb_image_write's 1 to 100
inline constexpr double blur_sigma = 2.0;               // px
inline constexpr double noise_sigma = 0.08;             // of the full scale: 20.4 of 255 levels
inline constexpr double brightness_shift = 0.25;        // of the full scale, down and up
inline constexpr double low_contrast = 0.5;             // factor on deviations from the mean
inline constexpr double high_contrast = 1.5;
inline constexpr double crop_side = 0.7;  // the window's side over the image's: 49 % of the area
}  // namespace corruption_strength

namespace detail {

inline void check_corruptible(const Image& image, const char* what) {
  if (image.width < 1 || image.height < 1 ||
      image.pixels.size() !=
          static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height) * 3)
    throw Error(std::string(what) + ": the image must be RGB with a positive size, not " +
                std::to_string(image.width) + "x" + std::to_string(image.height) + " with " +
                std::to_string(image.pixels.size()) + " values");
}

inline std::uint8_t to_byte(double v) {
  return static_cast<std::uint8_t>(std::clamp(std::round(v), 0.0, 255.0));
}

/// Applies v -> f(v) to every value.
template <typename F>
Image map_values(const Image& image, F f) {
  Image out = image;
  for (auto& v : out.pixels) v = to_byte(f(double(v)));
  return out;
}

}  // namespace detail

/// Down-scales `image` so that its longer side is `size` px (the shorter in proportion, at
/// least 1 px) and scales it back up to its own size. An image no larger than that is returned
/// as it is.
inline Image downscale(const Image& image, int size) {
  detail::check_corruptible(image, "downscale");
  if (size < 1)
    throw Error("downscale: the size must be at least 1 px, not " + std::to_string(size));
  const int longer = std::max(image.width, image.height);
  if (longer <= size) return image;
  const double scale = double(size) / longer;
  const int width = std::max(1, static_cast<int>(std::lround(image.width * scale)));
  const int height = std::max(1, static_cast<int>(std::lround(image.height * scale)));
  return resize_image(resize_image(image, width, height), image.width, image.height);
}

/// Encodes `image` as a JPEG of the given quality (1 to 100) and decodes it again.
inline Image jpeg_compress(const Image& image, int quality) {
  detail::check_corruptible(image, "jpeg_compress");
  if (quality < 1 || quality > 100)
    throw Error("jpeg_compress: the quality must be 1 to 100, not " + std::to_string(quality));
  const std::vector<std::uint8_t> bytes = encode_jpeg(image, quality);
  int width = 0, height = 0, channels = 0;
  stbi_uc* rgb = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width,
                                       &height, &channels, 3);
  if (!rgb)
    throw Error(std::string("jpeg_compress: cannot decode its own JPEG (") + stbi_failure_reason() +
                ")");
  Image out;
  out.width = width;
  out.height = height;
  out.pixels.assign(rgb,
                    rgb + static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3);
  stbi_image_free(rgb);
  return out;
}

/// Convolves every channel with a Gaussian of standard deviation `sigma` px (0: unchanged).
inline Image gaussian_blur(const Image& image, double sigma) {
  detail::check_corruptible(image, "gaussian_blur");
  if (!(sigma >= 0 && sigma <= 100)) throw Error("gaussian_blur: sigma must be in [0, 100] px");
  if (sigma == 0) return image;
  const int radius = static_cast<int>(std::ceil(3 * sigma));
  std::vector<double> weights(static_cast<std::size_t>(2 * radius + 1));
  double total = 0;
  for (int i = -radius; i <= radius; ++i)
    total += weights[static_cast<std::size_t>(i + radius)] = std::exp(-i * i / (2 * sigma * sigma));
  for (auto& w : weights) w /= total;

  // Each pass is a sum of whole rows, shifted and weighted: contiguous multiply-adds, which
  // the compiler vectorises. Both passes keep doubles; only the final values are rounded.
  const int w = image.width, h = image.height;
  const std::size_t row = static_cast<std::size_t>(w) * 3;
  // Across: each row with its end pixels repeated `radius` times beyond either end, then
  // out(x) = sum_i g(i) padded(x + i).
  std::vector<double> padded((static_cast<std::size_t>(w) + 2 * static_cast<std::size_t>(radius)) *
                             3);
  std::vector<double> across(image.pixels.size(), 0.0);
  for (int y = 0; y < h; ++y) {
    const std::uint8_t* source = image.pixels.data() + static_cast<std::size_t>(y) * row;
    for (int x = -radius; x < w + radius; ++x)
      for (int c = 0; c < 3; ++c)
        padded[static_cast<std::size_t>(x + radius) * 3 + static_cast<std::size_t>(c)] =
            source[static_cast<std::size_t>(std::clamp(x, 0, w - 1)) * 3 +
                   static_cast<std::size_t>(c)];
    double* target = across.data() + static_cast<std::size_t>(y) * row;
    for (int i = 0; i <= 2 * radius; ++i) {
      const double g = weights[static_cast<std::size_t>(i)];
      const double* shifted = padded.data() + static_cast<std::size_t>(i) * 3;
      for (std::size_t k = 0; k < row; ++k) target[k] += g * shifted[k];
    }
  }
  // Down: output row y = sum_i g(i) across(row clamp(y + i)).
  Image out = image;
  std::vector<double> sum(row);
  for (int y = 0; y < h; ++y) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (int i = -radius; i <= radius; ++i) {
      const double g = weights[static_cast<std::size_t>(i + radius)];
      const double* source =
          across.data() + static_cast<std::size_t>(std::clamp(y + i, 0, h - 1)) * row;
      for (std::size_t k = 0; k < row; ++k) sum[k] += g * source[k];
    }
    for (std::size_t k = 0; k < row; ++k)
      out.pixels[static_cast<std::size_t>(y) * row + k] = detail::to_byte(sum[k]);
  }
  return out;
}

/// Adds independent Gaussian noise of standard deviation `sigma` (a fraction of the full scale)
/// to every value. The normal numbers come in pairs from Box-Muller, on our own uniform draws
/// (so the bytes do not depend on the standard library): with u1, u2 uniform in (0, 1],
/// r = sqrt(-2 ln u1) and t = 2 pi u2, both r cos t and r sin t are N(0, 1), independent.
inline Image gaussian_noise(const Image& image, double sigma, Random& rng) {
  detail::check_corruptible(image, "gaussian_noise");
  if (!(sigma >= 0 && sigma <= 1)) throw Error("gaussian_noise: sigma must be in [0, 1]");
  Image out = image;
  const double scale = 255 * sigma;
  auto& v = out.pixels;
  for (std::size_t i = 0; i < v.size(); i += 2) {
    const double r = scale * std::sqrt(-2.0 * std::log(1.0 - rng.uniform()));
    const double t = 2 * std::numbers::pi * (1.0 - rng.uniform());
    v[i] = detail::to_byte(v[i] + r * std::cos(t));
    if (i + 1 < v.size()) v[i + 1] = detail::to_byte(v[i + 1] + r * std::sin(t));
  }
  return out;
}

/// Adds `shift` (a fraction of the full scale, in [-1, 1]) to every value.
inline Image adjust_brightness(const Image& image, double shift) {
  detail::check_corruptible(image, "adjust_brightness");
  if (!(shift >= -1 && shift <= 1)) throw Error("adjust_brightness: the shift must be in [-1, 1]");
  return detail::map_values(image, [&](double v) { return v + 255 * shift; });
}

/// Scales every value's deviation from the image's mean by `factor` (>= 0; 0 gives a flat image).
inline Image adjust_contrast(const Image& image, double factor) {
  detail::check_corruptible(image, "adjust_contrast");
  if (!(factor >= 0 && factor <= 100))
    throw Error("adjust_contrast: the factor must be in [0, 100]");
  double sum = 0;
  for (auto v : image.pixels) sum += v;
  const double mean = sum / static_cast<double>(image.pixels.size());
  return detail::map_values(image, [&](double v) { return (v - mean) * factor + mean; });
}

/// Replaces every pixel by its BT.601 luma in all three channels.
inline Image greyscale(const Image& image) {
  detail::check_corruptible(image, "greyscale");
  Image out = image;
  for (std::size_t p = 0; p < out.pixels.size(); p += 3) {
    const auto luma = detail::to_byte(0.299 * out.pixels[p] + 0.587 * out.pixels[p + 1] +
                                      0.114 * out.pixels[p + 2]);
    out.pixels[p] = out.pixels[p + 1] = out.pixels[p + 2] = luma;
  }
  return out;
}

/// Cuts a window of `side` (in (0, 1]) times the width and height out of `image`, at a position
/// drawn uniformly from `rng`, and scales it back up to the image's size.
inline Image crop_part(const Image& image, double side, Random& rng) {
  detail::check_corruptible(image, "crop_part");
  if (!(side > 0 && side <= 1)) throw Error("crop_part: the side must be in (0, 1]");
  const int width = std::max(1, static_cast<int>(std::lround(image.width * side)));
  const int height = std::max(1, static_cast<int>(std::lround(image.height * side)));
  const int left = static_cast<int>(rng.below(static_cast<std::uint64_t>(image.width - width + 1)));
  const int top =
      static_cast<int>(rng.below(static_cast<std::uint64_t>(image.height - height + 1)));
  Image window;
  window.width = width;
  window.height = height;
  window.pixels.resize(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3);
  for (int y = 0; y < height; ++y) {
    const auto* row =
        image.pixels.data() + (static_cast<std::size_t>(top + y) * image.width + left) * 3;
    std::copy(row, row + static_cast<std::size_t>(width) * 3,
              window.pixels.data() + static_cast<std::size_t>(y) * width * 3);
  }
  return resize_image(window, image.width, image.height);
}

/// One corruption of the benchmark at its fixed strength.
struct Corruption {
  std::string name;      // "JPEG"
  std::string strength;  // "quality 10"
  std::function<Image(const Image&, Random&)> apply;
};

/// The benchmark: each corruption the mask detector is measured under, at the strengths of
/// `corruption_strength`. Only the noise and the crop draw from the engine.
inline std::vector<Corruption> benchmark_corruptions() {
  namespace s = corruption_strength;
  std::vector<Corruption> list;
  for (int size : s::downscale_sizes)
    list.push_back({"down-scale", "to " + std::to_string(size) + " px and back",
                    [size](const Image& i, Random&) { return downscale(i, size); }});
  for (int quality : s::jpeg_qualities)
    list.push_back({"JPEG", "quality " + std::to_string(quality),
                    [quality](const Image& i, Random&) { return jpeg_compress(i, quality); }});
  auto number = [](double v) {
    std::string text = std::to_string(v);
    text.erase(text.find_last_not_of('0') + 1);
    if (text.back() == '.') text.pop_back();
    return text;
  };
  list.push_back({"Gaussian blur", "sigma " + number(s::blur_sigma) + " px",
                  [](const Image& i, Random&) { return gaussian_blur(i, s::blur_sigma); }});
  list.push_back(
      {"Gaussian noise", "sigma " + number(s::noise_sigma),
       [](const Image& i, Random& rng) { return gaussian_noise(i, s::noise_sigma, rng); }});
  list.push_back({"brightness", "-" + number(s::brightness_shift), [](const Image& i, Random&) {
                    return adjust_brightness(i, -s::brightness_shift);
                  }});
  list.push_back({"brightness", "+" + number(s::brightness_shift), [](const Image& i, Random&) {
                    return adjust_brightness(i, s::brightness_shift);
                  }});
  list.push_back({"contrast", "x" + number(s::low_contrast),
                  [](const Image& i, Random&) { return adjust_contrast(i, s::low_contrast); }});
  list.push_back({"contrast", "x" + number(s::high_contrast),
                  [](const Image& i, Random&) { return adjust_contrast(i, s::high_contrast); }});
  list.push_back(
      {"grey-scale", "BT.601 luma", [](const Image& i, Random&) { return greyscale(i); }});
  list.push_back({"cut-off crop", number(s::crop_side) + " of each side",
                  [](const Image& i, Random& rng) { return crop_part(i, s::crop_side, rng); }});
  return list;
}

}  // namespace stratum
