// Augmentation for detection: each training sample is a fresh random view of a scene, and its
// boxes move with the pixels.
//
// Geometry: one scale-and-shift per sample from the scene (W x H) to the square network input
// (S x S), then an optional mirror. The scale is that of the scene's letterbox to a side L
// (`letterbox_size`, by default S itself): with L > S a sample is an S x S window of the scene
// as it would be letterboxed to L, so a network can train on small crops at the scale it will
// detect at on whole L x L letterboxes (a fully convolutional network does not care that the
// two sizes differ), for (S / L)^2 of the cost a sample. A source point (x, y) (continuous pixel
// coordinates, detection/box.hpp) lands at
//
//   x' = x s + offset_x,   y' = y s + offset_y,   then x' -> S - x' on a horizontal flip,
//
// with s = letterbox scale to L (letterbox.hpp) times a factor drawn in [min_scale, max_scale]:
// below 1 the scene shrinks inside the square (more padding, smaller faces), above 1 it is cropped.
// offset_x is drawn uniformly between 0 and S - W s (whichever is smaller first), so a scene
// smaller than the square is placed anywhere inside it and a larger one is cut by a window
// anywhere inside it: never more padding than the scale requires. The same for y.
//
// Pixels: output pixel (i, j) takes the bilinear sample of the scene at the source point of its
// centre (j + 1/2, i + 1/2); centres that fall outside the scene get the letterbox padding
// colour. Bilinear sampling aliases slightly when s < 1/2; with the default scales that needs
// a scene's longer side above 1.2 S (none of the face-mask scenes at S = 512: they are at most
// 600 px).
//
// Boxes: mapped like the points, then clipped to the square. A face cut by the window is kept
// when at least `min_visible` (default 1/2) of its area stays inside: half a face still looks
// like a face and the detector must find faces at the photo's border, but training it to fire
// on a sliver (an ear, a chin) teaches it false alarms along every edge.
//
// Colour (on the scene's pixels, not the padding; values in [0, 1]), in this order: brightness
// b added, contrast c about the mean m of the scene's pixels, saturation t about each pixel's
// luma Y = 0.299 R + 0.587 G + 0.114 B (Rec. 601), then clipped to [0, 1]:
//
//   v1 = v + b,   v2 = (v1 - m) c + m,   v3 = Y2 + (v2 - Y2) t
//
// Randomness is stateless per sample, as in augmentation.hpp: sample number k of the run draws
// from an engine seeded by (seed, k), so batches can be augmented on many threads with the same
// result, and a checkpoint stores one number (`draws`).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../detection/box.hpp"
#include "../errors.hpp"
#include "../random.hpp"
#include "../stateful.hpp"
#include "../tensor.hpp"
#include "letterbox.hpp"

namespace stratum {

/// Ranges of the random transforms, each drawn uniformly.
struct BoxAugmentationOptions {
  bool horizontal_flip = true;  // mirror half of the samples
  double min_scale = 0.6;       // scale factor relative to the letterbox, in [min, max]
  double max_scale = 1.4;
  double max_brightness = 0.1;  // added, in [-b, b]
  double max_contrast = 0.2;    // factor in [1 - c, 1 + c]
  double max_saturation = 0.3;  // factor in [1 - t, 1 + t]
  double min_visible = 0.5;     // keep a cut box if this fraction of its area stays visible
  int letterbox_size = 0;       // L of the file comment; 0: the sample's side
};

/// The transform of one sample: geometry and colour (see the file comment).
struct SceneTransform {
  int size = 0;  // S
  float scale = 1, offset_x = 0, offset_y = 0;
  bool flip = false;
  double brightness = 0, contrast = 1, saturation = 1;

  /// The letterbox of a width x height scene (no flip, no colour change). Its pixels are
  /// sampled bilinearly, not with letterbox()'s resampling filter; for training samples only.
  static SceneTransform letterbox(int width, int height, int size) {
    if (width < 1 || height < 1 || size < 1)
      throw Error("SceneTransform: the scene (" + std::to_string(width) + "x" +
                  std::to_string(height) + ") and the sample (" + std::to_string(size) +
                  ") must have positive sizes");
    SceneTransform t;
    t.size = size;
    t.scale = std::min(static_cast<float>(size) / static_cast<float>(width),
                       static_cast<float>(size) / static_cast<float>(height));
    t.offset_x = 0.5f * (static_cast<float>(size) - t.scale * static_cast<float>(width));
    t.offset_y = 0.5f * (static_cast<float>(size) - t.scale * static_cast<float>(height));
    return t;
  }

  /// Where the scene's point x lands (before the mirror): x s + offset_x.
  [[nodiscard]] float map_x(float x) const {
    const float mapped = x * scale + offset_x;
    return flip ? static_cast<float>(size) - mapped : mapped;
  }
  [[nodiscard]] float map_y(float y) const { return y * scale + offset_y; }

  /// `box` in the sample's pixels, not clipped.
  [[nodiscard]] Box apply(const Box& box) const {
    const float a = map_x(box.x_min), b = map_x(box.x_max);
    return {std::min(a, b), map_y(box.y_min), std::max(a, b), map_y(box.y_max)};
  }

  /// The boxes that stay in the sample: mapped, clipped to the square, and kept when at least
  /// `min_visible` of their area is inside (see the file comment).
  [[nodiscard]] std::vector<LabelledBox> apply(std::span<const LabelledBox> boxes,
                                               double min_visible) const {
    std::vector<LabelledBox> kept;
    const auto s = static_cast<float>(size);
    for (const LabelledBox& labelled : boxes) {
      const Box mapped = apply(labelled.box);
      const Box clipped{std::max(mapped.x_min, 0.0f), std::max(mapped.y_min, 0.0f),
                        std::min(mapped.x_max, s), std::min(mapped.y_max, s)};
      if (clipped.width() <= 0 || clipped.height() <= 0) continue;
      if (clipped.area() < min_visible * mapped.area()) continue;
      kept.push_back({clipped, labelled.class_id});
    }
    return kept;
  }

  /// Renders the (height x width x 3, 8-bit) scene `source` into `target`, an S x S x 3 image
  /// of values in [0, 1] (see the file comment).
  template <typename T>
  void render(const std::uint8_t* source, int width, int height, T* target,
              Rgb padding = letterbox_padding) const {
    // The source coordinate of each output column's and row's pixel centre, or -1 outside.
    std::vector<double> source_x(static_cast<std::size_t>(size)),
        source_y(static_cast<std::size_t>(size));
    for (int j = 0; j < size; ++j) {
      const double centre = flip ? size - (j + 0.5) : j + 0.5;
      const double u = (centre - offset_x) / scale;
      source_x[static_cast<std::size_t>(j)] = u >= 0 && u <= width ? u - 0.5 : -1;
    }
    for (int i = 0; i < size; ++i) {
      const double v = (i + 0.5 - offset_y) / scale;
      source_y[static_cast<std::size_t>(i)] = v >= 0 && v <= height ? v - 0.5 : -1;
    }
    auto inside = [&](int i, int j) {
      return source_y[static_cast<std::size_t>(i)] > -1 &&
             source_x[static_cast<std::size_t>(j)] > -1;
    };

    double sum = 0;
    Index scene_pixels = 0;
    for (int i = 0; i < size; ++i) {
      for (int j = 0; j < size; ++j) {
        T* out = target + (Index{i} * size + j) * 3;
        if (!inside(i, j)) {
          for (int c = 0; c < 3; ++c)
            out[c] = static_cast<T>(padding[static_cast<std::size_t>(c)] / 255.0);
          continue;
        }
        const double sx = std::clamp(source_x[static_cast<std::size_t>(j)], 0.0, width - 1.0);
        const double sy = std::clamp(source_y[static_cast<std::size_t>(i)], 0.0, height - 1.0);
        const int x0 = static_cast<int>(sx), y0 = static_cast<int>(sy);
        const int x1 = std::min(x0 + 1, width - 1), y1 = std::min(y0 + 1, height - 1);
        const double ax = sx - x0, ay = sy - y0;
        const std::uint8_t* p00 = source + (Index{y0} * width + x0) * 3;
        const std::uint8_t* p01 = source + (Index{y0} * width + x1) * 3;
        const std::uint8_t* p10 = source + (Index{y1} * width + x0) * 3;
        const std::uint8_t* p11 = source + (Index{y1} * width + x1) * 3;
        for (int c = 0; c < 3; ++c) {
          const double top = p00[c] + ax * (p01[c] - p00[c]);
          const double bottom = p10[c] + ax * (p11[c] - p10[c]);
          const double value = (top + ay * (bottom - top)) / 255.0 + brightness;
          out[c] = static_cast<T>(value);
          sum += value;
        }
        ++scene_pixels;
      }
    }
    if (scene_pixels == 0 || (contrast == 1 && saturation == 1 && brightness == 0)) return;
    const double mean = sum / (3.0 * static_cast<double>(scene_pixels));
    for (int i = 0; i < size; ++i)
      for (int j = 0; j < size; ++j) {
        if (!inside(i, j)) continue;
        T* out = target + (Index{i} * size + j) * 3;
        double v[3];
        for (int c = 0; c < 3; ++c) v[c] = (double(out[c]) - mean) * contrast + mean;
        const double luma = 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2];
        for (int c = 0; c < 3; ++c)
          out[c] = static_cast<T>(std::clamp(luma + (v[c] - luma) * saturation, 0.0, 1.0));
      }
  }
};

/// Draws a SceneTransform per sample and applies it to the scene and its boxes.
class BoxAugmenter final : public SampleNumbers {
 public:
  /// Samples of `size` x `size` pixels.
  BoxAugmenter(std::uint64_t seed, int size, BoxAugmentationOptions options = {})
      : seed_(seed), size_(size), options_(options) {
    if (size < 1) throw Error("BoxAugmenter: the sample size must be positive");
    if (!(options.min_scale > 0 && options.min_scale <= options.max_scale &&
          options.max_scale <= 100))
      throw Error("BoxAugmenter: the scales must satisfy 0 < min_scale <= max_scale <= 100");
    if (!(options.max_brightness >= 0 && options.max_brightness <= 1) ||
        !(options.max_contrast >= 0 && options.max_contrast <= 1) ||
        !(options.max_saturation >= 0 && options.max_saturation <= 1))
      throw Error("BoxAugmenter: brightness, contrast and saturation ranges must be in [0, 1]");
    if (!(options.min_visible > 0 && options.min_visible <= 1))
      throw Error("BoxAugmenter: min_visible must be in (0, 1]");
    if (options.letterbox_size < 0)
      throw Error("BoxAugmenter: the letterbox size must be positive (or 0: the sample size)");
  }

  [[nodiscard]] int size() const { return size_; }
  /// L of the file comment: the side of the letterbox whose scale the samples have.
  [[nodiscard]] int letterbox_size() const {
    return options_.letterbox_size > 0 ? options_.letterbox_size : size_;
  }
  [[nodiscard]] const BoxAugmentationOptions& options() const { return options_; }

  /// Sample number `draw`'s transform of a width x height scene. Every number is drawn whether
  /// or not its option is on, so turning one off does not change the others.
  [[nodiscard]] SceneTransform transform(std::uint64_t draw, int width, int height) const {
    Random rng(seed_ ^ (0x9e3779b97f4a7c15ULL * (draw + 1)));
    const bool flip = rng.uniform() < 0.5;
    const double factor = rng.uniform(options_.min_scale, options_.max_scale);
    const double place_x = rng.uniform(), place_y = rng.uniform();
    const double brightness = rng.uniform(-1, 1) * options_.max_brightness;
    const double contrast = 1 + rng.uniform(-1, 1) * options_.max_contrast;
    const double saturation = 1 + rng.uniform(-1, 1) * options_.max_saturation;

    SceneTransform t = SceneTransform::letterbox(width, height, letterbox_size());
    t.size = size_;
    t.scale = static_cast<float>(t.scale * factor);
    auto offset = [&](int side, double place) {  // between 0 and S - side s
      const double room = size_ - side * static_cast<double>(t.scale);
      return static_cast<float>(std::min(room, 0.0) + place * std::abs(room));
    };
    t.offset_x = offset(width, place_x);
    t.offset_y = offset(height, place_y);
    t.flip = options_.horizontal_flip && flip;
    t.brightness = brightness;
    t.contrast = contrast;
    t.saturation = saturation;
    return t;
  }

  /// Writes sample number `draw` of the (height x width x 3, 8-bit) scene `source` into
  /// `target` (size x size x 3, values in [0, 1]) and returns its boxes. Thread-safe: it reads
  /// only the options and the seed.
  template <typename T>
  std::vector<LabelledBox> augment(const std::uint8_t* source, int width, int height,
                                   std::span<const LabelledBox> boxes, T* target,
                                   std::uint64_t draw) const {
    const SceneTransform t = transform(draw, width, height);
    t.render(source, width, height, target);
    return t.apply(boxes, options_.min_visible);
  }

 private:
  std::uint64_t seed_;
  int size_;
  BoxAugmentationOptions options_;
};

}  // namespace stratum
