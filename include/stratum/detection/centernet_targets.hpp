// CenterNet's training targets ("Objects as Points", Zhou et al. 2019): from the boxes of one
// (letterboxed) image, the maps a detector with output stride R learns to predict.
//
// Shapes (NHWC, one sample n of a batch of N; Ho x Wo is the network's output, the input is
// (R Ho) x (R Wo) pixels):
//   heatmap (N, Ho, Wo, C)  C = classes, or 1 with single_class (every box is class 0, "face":
//                           the detector-then-classifier design)
//   size    (N, Ho, Wo, 2)  (w, h) of the object centred in the cell
//   offset  (N, Ho, Wo, 2)  (dx, dy) sub-cell position of that centre
//   mask    (N, Ho, Wo, 1)  1 in cells that hold an object centre, 0 elsewhere (the size and
//                           offset losses count only these cells)
//
// For a box clipped to the input [0, R Wo] x [0, R Ho] (box.hpp's continuous coordinates; a
// box with nothing left inside is skipped), in output-stride units:
//   c = (cx / R, cy / R)              centre;  cell (i, j) = (floor(c_y), floor(c_x))
//   offset = (c_x - j, c_y - i)       in [0, 1): decoding puts the centre back at (j + dx) R
//   (w', h') = (w / R, h / R)
//   size = (log w', log h')           SizeEncoding::log (the default)
//        = (w', h')                   SizeEncoding::linear (CenterNet's own choice)
// Why log by default: the faces of the mask data have a shorter side from 1 pixel to a few
// hundred, median 21 (w' from 0.25 to about 100, median 5). An L1 loss on w' weighs a 2-pixel
// error on a 200-pixel face as much as on a 10-pixel one, though the first barely moves the IoU
// and the second ruins it; on log w' an error is a relative error, (almost) the same IoU loss at
// every scale, and the targets stay within about [-1.4, 4.6] instead of [0.25, 100], so one
// loss weight suits them all. The size head then predicts log w', and decode.hpp takes exp.
//
// The heatmap of the box's class gets a Gaussian at its cell, peak exactly 1 there:
//   Y(i + a, j + b) = max(Y, exp(-(a^2 + b^2) / (2 sigma^2))),  |a|, |b| <= r,
//   sigma = (2r + 1) / 6
// where r = gaussian_radius(ceil(h'), ceil(w'), 0.7): CenterNet's radius, the largest shift of
// a corner that keeps a box's IoU with the true one above min_overlap, computed with CenterNet's
// (and CornerNet's) own formula, kept as written there (its second and third roots divide by 2
// rather than 2a, so it is smaller than the exact solution; CornerNet issue #110) so that our
// targets are those the published CenterNet results, and the reference detector, trained on.
// Overlapping objects of a class keep the maximum of their Gaussians.
//
// Two objects whose centres fall in the same cell: the heatmap gets both peaks (in one channel
// or two), but the cell holds one size and one offset. The smaller box (by area; the earlier one
// on a tie) keeps them: a few pixels of size error cost a small box much more IoU than a large
// one, so the small one, the harder to find, is the one the targets keep exact.
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "box.hpp"

namespace stratum {

/// How a size is stored in the size map (see the file comment).
enum class SizeEncoding { log, linear };

/// How boxes become maps and back: shared by the targets and by decode.hpp.
struct CenterNetEncoding {
  int classes = 1;            ///< class ids of the boxes are in [0, classes)
  bool single_class = false;  ///< one heatmap channel, every class mapped to it
  int stride = 4;             ///< input pixels per output cell, R
  SizeEncoding size_encoding = SizeEncoding::log;
  double min_overlap = 0.7;  ///< of the Gaussian radius

  /// C, the channels of the heatmap.
  [[nodiscard]] int heatmap_channels() const { return single_class ? 1 : classes; }

  /// Throws Error naming `who` if a field is out of range.
  void check(const std::string& who) const {
    if (classes < 1 || stride < 1 || !(min_overlap > 0 && min_overlap < 1))
      throw Error(who + ": needs classes >= 1, stride >= 1 and 0 < min_overlap < 1 (given " +
                  std::to_string(classes) + ", " + std::to_string(stride) + ", " +
                  std::to_string(min_overlap) + ")");
  }
};

/// CenterNet's Gaussian radius (in cells, truncated to an integer, at least 0) for a box of
/// `height` x `width` cells: the smallest of the three radii of CornerNet's corner-shift cases
/// (both corners shifted outwards, inwards, one each), in CenterNet's formula (file comment).
[[nodiscard]] inline int centernet_gaussian_radius(double height, double width,
                                                   double min_overlap) {
  const double b1 = height + width;
  const double c1 = width * height * (1 - min_overlap) / (1 + min_overlap);
  const double r1 = (b1 + std::sqrt(b1 * b1 - 4 * c1)) / 2;

  const double a2 = 4, b2 = 2 * (height + width);
  const double c2 = (1 - min_overlap) * width * height;
  const double r2 = (b2 + std::sqrt(b2 * b2 - 4 * a2 * c2)) / 2;

  const double a3 = 4 * min_overlap, b3 = -2 * min_overlap * (height + width);
  const double c3 = (min_overlap - 1) * width * height;
  const double r3 = (b3 + std::sqrt(b3 * b3 - 4 * a3 * c3)) / 2;
  return std::max(0, static_cast<int>(std::min({r1, r2, r3})));
}

/// The four target maps of a batch (shapes in the file comment).
template <typename T>
struct CenterNetTargets {
  Tensor<T> heatmap, size, offset, mask;

  /// Shapes the maps for `batch` samples of `height` x `width` cells, all zero.
  void resize(Index batch, Index height, Index width, const CenterNetEncoding& encoding) {
    encoding.check("CenterNetTargets");
    if (batch < 1 || height < 1 || width < 1)
      throw ShapeError("CenterNetTargets: needs a batch and an output of at least 1, given (" +
                       std::to_string(batch) + ", " + std::to_string(height) + ", " +
                       std::to_string(width) + ")");
    heatmap.resize({batch, height, width, encoding.heatmap_channels()});
    size.resize({batch, height, width, 2});
    offset.resize({batch, height, width, 2});
    mask.resize({batch, height, width, 1});
    for (Tensor<T>* map : {&heatmap, &size, &offset, &mask}) map->set_zero();
  }
};

/// Writes sample `sample` of `targets` (shaped by resize, any earlier content of that sample
/// replaced) from the boxes of one image, in network-input pixels. Returns the number of boxes
/// encoded (those with a part inside the input). Throws Error on a class id out of range or a
/// coordinate that is not finite, naming the box.
template <typename T>
Index encode_centernet_targets(std::span<const LabelledBox> boxes,
                               const CenterNetEncoding& encoding, CenterNetTargets<T>& targets,
                               Index sample) {
  const std::string who = "encode_centernet_targets";
  encoding.check(who);
  const Tensor<T>& heat = targets.heatmap;
  const Index channels = encoding.heatmap_channels();
  if (heat.rank() != 4 || heat.dim(3) != channels || sample < 0 || sample >= heat.dim(0))
    throw ShapeError(who + ": sample " + std::to_string(sample) + " of a heatmap " +
                     heat.shape().to_string() + " for " + std::to_string(channels) +
                     " channels (call CenterNetTargets::resize first)");
  const Index height = heat.dim(1), width = heat.dim(2), cells = height * width;
  const Shape map2{heat.dim(0), height, width, 2}, map1{heat.dim(0), height, width, 1};
  if (targets.size.shape() != map2 || targets.offset.shape() != map2 ||
      targets.mask.shape() != map1)
    throw ShapeError(who + ": size, offset and mask maps do not match the heatmap " +
                     heat.shape().to_string());

  T* heatmap = targets.heatmap.data() + sample * cells * channels;
  T* size = targets.size.data() + sample * cells * 2;
  T* offset = targets.offset.data() + sample * cells * 2;
  T* mask = targets.mask.data() + sample * cells;
  std::fill(heatmap, heatmap + cells * channels, T(0));
  std::fill(size, size + cells * 2, T(0));
  std::fill(offset, offset + cells * 2, T(0));
  std::fill(mask, mask + cells, T(0));

  const double stride = encoding.stride;
  // The boxes clipped to the input, smallest first (stable), so that the first to claim a cell
  // is the one that keeps its size and offset there.
  std::vector<Box> clipped(boxes.size());
  for (std::size_t k = 0; k < boxes.size(); ++k) {
    const Box& b = boxes[k].box;
    const int class_id = boxes[k].class_id;
    if (!std::isfinite(b.x_min) || !std::isfinite(b.y_min) || !std::isfinite(b.x_max) ||
        !std::isfinite(b.y_max))
      throw Error(who + ": box " + std::to_string(k) + " has a coordinate that is not finite");
    if (class_id < 0 || class_id >= encoding.classes)
      throw Error(who + ": box " + std::to_string(k) + " has class " + std::to_string(class_id) +
                  ", outside [0, " + std::to_string(encoding.classes) + ")");
    const auto input_w = static_cast<float>(stride * static_cast<double>(width));
    const auto input_h = static_cast<float>(stride * static_cast<double>(height));
    clipped[k] = {std::clamp(b.x_min, 0.0f, input_w), std::clamp(b.y_min, 0.0f, input_h),
                  std::clamp(b.x_max, 0.0f, input_w), std::clamp(b.y_max, 0.0f, input_h)};
  }
  std::vector<std::size_t> order(boxes.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return clipped[a].area() < clipped[b].area();
  });

  Index encoded = 0;
  for (std::size_t k : order) {
    const Box& b = clipped[k];
    if (!(b.width() > 0 && b.height() > 0)) continue;
    ++encoded;
    const double w = b.width() / stride, h = b.height() / stride;
    const double cx = b.center_x() / stride, cy = b.center_y() / stride;
    const Index j = std::min(static_cast<Index>(cx), width - 1);
    const Index i = std::min(static_cast<Index>(cy), height - 1);
    const Index cell = i * width + j;
    if (mask[cell] == T(0)) {
      mask[cell] = T(1);
      const bool log = encoding.size_encoding == SizeEncoding::log;
      size[2 * cell] = static_cast<T>(log ? std::log(w) : w);
      size[2 * cell + 1] = static_cast<T>(log ? std::log(h) : h);
      offset[2 * cell] = static_cast<T>(cx - static_cast<double>(j));
      offset[2 * cell + 1] = static_cast<T>(cy - static_cast<double>(i));
    }

    const Index channel = encoding.single_class ? 0 : boxes[k].class_id;
    const int r = centernet_gaussian_radius(std::ceil(h), std::ceil(w), encoding.min_overlap);
    const double sigma = (2 * r + 1) / 6.0;
    for (Index a = std::max<Index>(-r, -i); a <= std::min<Index>(r, height - 1 - i); ++a)
      for (Index c = std::max<Index>(-r, -j); c <= std::min<Index>(r, width - 1 - j); ++c) {
        const auto g =
            static_cast<T>(std::exp(-static_cast<double>(a * a + c * c) / (2 * sigma * sigma)));
        T& y = heatmap[((i + a) * width + (j + c)) * channels + channel];
        y = std::max(y, g);
      }
  }
  return encoded;
}

}  // namespace stratum
