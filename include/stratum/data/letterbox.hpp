// Letterboxing: an aspect-preserving resize into a box of fixed sides, the rest padded. A
// detector sees faces with their true proportions, and one network input size serves photos of
// every shape.
//
// Geometry, for a W x H image and a box of BW x BH (a square: BW = BH = S):
//
//   scale = min(BW / W, BH / H),   W' = round(W scale),   H' = round(H scale)   (each >= 1)
//   offset_x = floor((BW - W') / 2),   offset_y = floor((BH - H') / 2)
//
// A square fits every photo, which training needs (a batch has one shape). A fully
// convolutional detector can take any box, though, and for one photo the square wastes work on
// padding: a 4:3 photo fills only 3/4 of it. The TIGHT letterbox keeps the square's scale and
// drops most of that padding. With the square's W', H' and offsets, and m the network's coarsest
// stride (so that every level of the network divides evenly):
//
//   offset_x = square's offset_x mod m,   offset_y = square's offset_y mod m
//   BW = W' + offset_x rounded up to a multiple of m,   BH likewise
//
// The image keeps its place on the grid of every level of the network (its offsets change by
// whole multiples of m), so each output cell sees the pixels it sees in the square, and the
// network's answers differ from the square's only where its receptive field reaches past the
// box, near the edges. A 640 x 480 photo at S = 512, m = 32: 512 x 384, the same pixels at the
// same scale for three quarters of the network's work; 400 x 267: 512 x 384 (offset 85 in the
// square, 21 here) instead of 512 x 512.
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

/// Where a W x H image lies in its letterbox.
struct Letterbox {
  int width = 0, height = 0;                  // BW, BH: the box's sides
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

/// The letterbox geometry of a width x height image in a box_width x box_height box.
inline Letterbox letterbox_geometry(int width, int height, int box_width, int box_height) {
  if (width < 1 || height < 1 || box_width < 1 || box_height < 1)
    throw Error("letterbox: the image (" + std::to_string(width) + "x" + std::to_string(height) +
                ") and the box (" + std::to_string(box_width) + "x" + std::to_string(box_height) +
                ") must have positive sizes");
  const double scale =
      std::min(static_cast<double>(box_width) / width, static_cast<double>(box_height) / height);
  Letterbox geometry;
  geometry.width = box_width;
  geometry.height = box_height;
  geometry.image_width = width;
  geometry.image_height = height;
  geometry.resized_width = std::clamp(static_cast<int>(std::lround(width * scale)), 1, box_width);
  geometry.resized_height =
      std::clamp(static_cast<int>(std::lround(height * scale)), 1, box_height);
  geometry.offset_x = (box_width - geometry.resized_width) / 2;
  geometry.offset_y = (box_height - geometry.resized_height) / 2;
  return geometry;
}

/// The letterbox geometry of a width x height image in a size x size square.
inline Letterbox letterbox_geometry(int width, int height, int size) {
  return letterbox_geometry(width, height, size, size);
}

/// The tight letterbox of the file comment: the image at the scale and, modulo `multiple`, the
/// place of its size x size square, in a box whose sides are multiples of `multiple`.
inline Letterbox tight_letterbox_geometry(int width, int height, int size, int multiple) {
  if (multiple < 1)
    throw Error("letterbox: the multiple of the box's sides (" + std::to_string(multiple) +
                ") must be positive");
  auto round_up = [&](int side) { return (side + multiple - 1) / multiple * multiple; };
  // The square's resized sides, not ones recomputed for the new box: its rounding must not
  // change the scale.
  Letterbox geometry = letterbox_geometry(width, height, size);
  geometry.offset_x %= multiple;
  geometry.offset_y %= multiple;
  geometry.width = round_up(geometry.offset_x + geometry.resized_width);
  geometry.height = round_up(geometry.offset_y + geometry.resized_height);
  return geometry;
}

struct LetterboxedImage {
  Image image;  // geometry.width x geometry.height
  Letterbox geometry;
};

/// `image` resized into its letterbox `geometry` (of letterbox_geometry or
/// tight_letterbox_geometry for this image's sides), the rest filled with `padding`.
inline LetterboxedImage letterbox(const Image& image, const Letterbox& geometry,
                                  Rgb padding = letterbox_padding) {
  if (geometry.image_width != image.width || geometry.image_height != image.height)
    throw Error("letterbox: the geometry is for a " + std::to_string(geometry.image_width) + "x" +
                std::to_string(geometry.image_height) + " image, not this " +
                std::to_string(image.width) + "x" + std::to_string(image.height) + " one");
  LetterboxedImage out;
  out.geometry = geometry;
  const Letterbox& g = out.geometry;
  out.image.width = g.width;
  out.image.height = g.height;
  out.image.pixels.resize(static_cast<std::size_t>(g.width) * static_cast<std::size_t>(g.height) *
                          3);
  for (std::size_t p = 0; p < out.image.pixels.size(); p += 3)
    std::copy(padding.begin(), padding.end(),
              out.image.pixels.begin() + static_cast<std::ptrdiff_t>(p));
  // The resampled image goes straight into its place in the box.
  const auto row_bytes = static_cast<std::size_t>(g.width) * 3;
  resize_image_into(image,
                    out.image.pixels.data() + static_cast<std::size_t>(g.offset_y) * row_bytes +
                        static_cast<std::size_t>(g.offset_x) * 3,
                    g.resized_width, g.resized_height, row_bytes);
  return out;
}

/// `image` resized into a size x size square without changing its aspect ratio, the rest
/// filled with `padding`.
inline LetterboxedImage letterbox(const Image& image, int size, Rgb padding = letterbox_padding) {
  return letterbox(image, letterbox_geometry(image.width, image.height, size), padding);
}

}  // namespace stratum
