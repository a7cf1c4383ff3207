// Letterboxing: an aspect-preserving resize into a size x size square, the rest padded. A
// detector sees faces with their true proportions, and one network input size serves photos of
// every shape.
//
// Geometry, for a W x H image and a square of side S:
//
//   scale = min(S / W, S / H),   W' = round(W scale),   H' = round(H scale)   (each >= 1)
//   offset_x = floor((S - W') / 2),   offset_y = floor((S - H') / 2)
//
// The image is resampled to W' x H' (resize_image, image.hpp) and placed at the offset. Since
// W' and H' are rounded, the resampling stretches each axis by its own factor, sx = W' / W and
// sy = H' / H (they differ from `scale` by under half a pixel over the image); boxes map with
// those exact factors, so a box covers the same pixels before and after:
//
//   image -> letterbox:  x' = x sx + offset_x,   y' = y sy + offset_y
//   letterbox -> image:  x = (x' - offset_x) / sx,   y = (y' - offset_y) / sy
//
// Padding colour: mid-grey (127, 127, 127). The network then sees the padding as a flat area
// at the centre of its input range (pixel / 255 = 0.5), close to the mean of photos (the 853
// face-mask scenes average (122, 117, 115), measured), so the border between photo and padding
// is as weak an edge as a constant can make it. Black or white would draw a strong straight
// edge that a detector may learn to respond to. Training (box_augmentation.hpp) pads with the
// same colour, so the padding looks the same to the network in training and in detection.
#pragma once

#include <algorithm>
#include <cmath>

#include "../detection/box.hpp"
#include "../errors.hpp"
#include "image.hpp"

namespace stratum {

/// The padding colour of letterboxes and of augmented detection samples (see above).
inline constexpr Rgb letterbox_padding{127, 127, 127};

/// Where a W x H image lies in its size x size letterbox.
struct Letterbox {
  int size = 0;                               // the square's side
  int image_width = 0, image_height = 0;      // W, H
  int resized_width = 0, resized_height = 0;  // W', H'
  int offset_x = 0, offset_y = 0;             // the resized image's top-left corner in the square

  /// sx and sy of the file comment.
  [[nodiscard]] float scale_x() const {
    return static_cast<float>(resized_width) / static_cast<float>(image_width);
  }
  [[nodiscard]] float scale_y() const {
    return static_cast<float>(resized_height) / static_cast<float>(image_height);
  }

  /// A box in the image's pixels -> the same box in the letterbox's pixels.
  [[nodiscard]] Box to_letterbox(const Box& box) const {
    return {box.x_min * scale_x() + static_cast<float>(offset_x),
            box.y_min * scale_y() + static_cast<float>(offset_y),
            box.x_max * scale_x() + static_cast<float>(offset_x),
            box.y_max * scale_y() + static_cast<float>(offset_y)};
  }

  /// A box in the letterbox's pixels (a detection) -> the image's pixels, clipped to the image:
  /// the part of a detection that lies on the padding is not part of the photo.
  [[nodiscard]] Box to_image(const Box& box) const {
    const auto w = static_cast<float>(image_width), h = static_cast<float>(image_height);
    auto x = [&](float v) {
      return std::clamp((v - static_cast<float>(offset_x)) / scale_x(), 0.0f, w);
    };
    auto y = [&](float v) {
      return std::clamp((v - static_cast<float>(offset_y)) / scale_y(), 0.0f, h);
    };
    return {x(box.x_min), y(box.y_min), x(box.x_max), y(box.y_max)};
  }
};

/// The letterbox geometry of a width x height image in a size x size square.
inline Letterbox letterbox_geometry(int width, int height, int size) {
  if (width < 1 || height < 1 || size < 1)
    throw Error("letterbox: the image (" + std::to_string(width) + "x" + std::to_string(height) +
                ") and the square (" + std::to_string(size) + ") must have positive sizes");
  const double scale =
      std::min(static_cast<double>(size) / width, static_cast<double>(size) / height);
  Letterbox geometry;
  geometry.size = size;
  geometry.image_width = width;
  geometry.image_height = height;
  geometry.resized_width = std::clamp(static_cast<int>(std::lround(width * scale)), 1, size);
  geometry.resized_height = std::clamp(static_cast<int>(std::lround(height * scale)), 1, size);
  geometry.offset_x = (size - geometry.resized_width) / 2;
  geometry.offset_y = (size - geometry.resized_height) / 2;
  return geometry;
}

struct LetterboxedImage {
  Image image;  // size x size
  Letterbox geometry;
};

/// `image` resized into a size x size square without changing its aspect ratio, the rest
/// filled with `padding`.
inline LetterboxedImage letterbox(const Image& image, int size, Rgb padding = letterbox_padding) {
  LetterboxedImage out;
  out.geometry = letterbox_geometry(image.width, image.height, size);
  const Letterbox& g = out.geometry;
  out.image.width = out.image.height = size;
  out.image.pixels.resize(static_cast<std::size_t>(size) * static_cast<std::size_t>(size) * 3);
  for (std::size_t p = 0; p < out.image.pixels.size(); p += 3)
    std::copy(padding.begin(), padding.end(),
              out.image.pixels.begin() + static_cast<std::ptrdiff_t>(p));
  // The resampled image goes straight into its place in the square.
  const auto row_bytes = static_cast<std::size_t>(size) * 3;
  resize_image_into(image,
                    out.image.pixels.data() + static_cast<std::size_t>(g.offset_y) * row_bytes +
                        static_cast<std::size_t>(g.offset_x) * 3,
                    g.resized_width, g.resized_height, row_bytes);
  return out;
}

}  // namespace stratum
