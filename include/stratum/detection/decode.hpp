// From a CenterNet detector's output maps to detections (the inverse of centernet_targets.hpp).
//
// Inputs (NHWC, N images, Ho x Wo cells at output stride R, C = encoding.heatmap_channels()):
//   heatmap (N, Ho, Wo, C)  per-class centre scores: probabilities, or logits z with
//                           from_logits (score = sigmoid z)
//   size    (N, Ho, Wo, 2)  (w, h) in the encoding's units (log or linear, in cells)
//   offset  (N, Ho, Wo, 2)  (dx, dy) sub-cell centre
// Output: per image, at most top_k detections, by descending score. A heatmap value that is not
// a number, or a size or offset that makes a kept box infinite, throws Error naming the cell.
//
// 1. Peaks: a cell (i, j) of channel c is a candidate if no cell of its 3x3 neighbourhood in
//    that channel is greater (a 3x3 max-pool, stride 1, that leaves it unchanged: CenterNet's
//    replacement for non-maximum suppression; equal neighbours both stay) and its score is at
//    least score_threshold. Comparing logits or probabilities gives the same peaks (sigmoid is
//    increasing); we compare the values as given.
// 2. Top-K: the top_k candidates of the image over all channels, by score, ties by position
//    (row, column, channel) so the result does not depend on anything but the maps.
// 3. Box, in network-input pixels (the letterboxed image; mapping back to the original photo is
//    the letterbox's job, data/letterbox.hpp):
//      centre = ((j + dx) R, (i + dy) R)
//      (w, h) = (exp s_w, exp s_h) R       (SizeEncoding::log)
//             = (s_w, s_h) R               (SizeEncoding::linear)
//      box = [cx - w/2, cx + w/2] x [cy - h/2, cy + h/2], not clipped (the photo's edges are
//      not the input's: clip after mapping back)
//    class_id = c (0 with single_class: the "face" class).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "box.hpp"
#include "centernet_targets.hpp"

namespace stratum {

struct CenterNetDecodeOptions {
  int top_k = 100;            ///< detections kept per image at most (CenterNet's 100)
  float score_threshold = 0;  ///< candidates below are dropped; 0 keeps top_k for evaluation
  bool from_logits = false;   ///< the heatmap holds logits, not probabilities
};

/// Detections of every image of the batch (shapes and steps in the file comment). Throws
/// ShapeError naming the map at fault if the shapes do not agree with each other and the
/// encoding.
template <typename T>
std::vector<std::vector<Detection>> decode_centernet(const Tensor<T>& heatmap,
                                                     const Tensor<T>& size, const Tensor<T>& offset,
                                                     const CenterNetEncoding& encoding,
                                                     const CenterNetDecodeOptions& options = {}) {
  const std::string who = "decode_centernet";
  encoding.check(who);
  if (options.top_k < 0) throw Error(who + ": top_k must not be negative");
  const Index channels = encoding.heatmap_channels();
  if (heatmap.rank() != 4 || heatmap.dim(3) != channels)
    throw ShapeError(who + ": heatmap " + heatmap.shape().to_string() + ", expected (N, Ho, Wo, " +
                     std::to_string(channels) + ")");
  const Index batch = heatmap.dim(0), height = heatmap.dim(1), width = heatmap.dim(2);
  const Shape map2{batch, height, width, 2};
  if (size.shape() != map2)
    throw ShapeError(who + ": size map " + size.shape().to_string() + ", expected " +
                     map2.to_string());
  if (offset.shape() != map2)
    throw ShapeError(who + ": offset map " + offset.shape().to_string() + ", expected " +
                     map2.to_string());

  const auto score_of = [&](T value) {
    return options.from_logits ? static_cast<float>(1.0 / (1.0 + std::exp(-double(value))))
                               : static_cast<float>(value);
  };
  struct Candidate {
    float score;
    Index index;  // (i * Wo + j) * C + c within the image
  };
  const Index per_image = height * width * channels;
  std::vector<std::vector<Detection>> detections(static_cast<std::size_t>(batch));
  std::vector<Candidate> candidates;
  for (Index n = 0; n < batch; ++n) {
    const T* heat = heatmap.data() + n * per_image;
    candidates.clear();
    for (Index i = 0; i < height; ++i)
      for (Index j = 0; j < width; ++j)
        for (Index c = 0; c < channels; ++c) {
          const T value = heat[(i * width + j) * channels + c];
          if (std::isnan(value))
            throw Error(who + ": the heatmap of image " + std::to_string(n) +
                        " is not a number at (" + std::to_string(i) + ", " + std::to_string(j) +
                        ", " + std::to_string(c) + ")");
          const float score = score_of(value);
          if (!(score >= options.score_threshold)) continue;
          bool peak = true;
          for (Index a = std::max<Index>(i - 1, 0); peak && a <= std::min(i + 1, height - 1); ++a)
            for (Index b = std::max<Index>(j - 1, 0); b <= std::min(j + 1, width - 1); ++b)
              if (heat[(a * width + b) * channels + c] > value) peak = false;
          if (peak) candidates.push_back({score, (i * width + j) * channels + c});
        }
    const auto kept = std::min<std::size_t>(candidates.size(), std::size_t(options.top_k));
    std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(kept),
                      candidates.end(), [](const Candidate& a, const Candidate& b) {
                        return a.score > b.score || (a.score == b.score && a.index < b.index);
                      });

    auto& out = detections[static_cast<std::size_t>(n)];
    out.reserve(kept);
    const double stride = encoding.stride;
    for (std::size_t k = 0; k < kept; ++k) {
      const Index cell = candidates[k].index / channels;
      const Index i = cell / width, j = cell % width;
      const Index at = n * height * width + cell;
      const double cx = (static_cast<double>(j) + double(offset[2 * at])) * stride;
      const double cy = (static_cast<double>(i) + double(offset[2 * at + 1])) * stride;
      const bool log = encoding.size_encoding == SizeEncoding::log;
      const double w = (log ? std::exp(double(size[2 * at])) : double(size[2 * at])) * stride;
      const double h =
          (log ? std::exp(double(size[2 * at + 1])) : double(size[2 * at + 1])) * stride;
      Detection d;
      d.box = {static_cast<float>(cx - w / 2), static_cast<float>(cy - h / 2),
               static_cast<float>(cx + w / 2), static_cast<float>(cy + h / 2)};
      if (!std::isfinite(d.box.x_min) || !std::isfinite(d.box.y_min) ||
          !std::isfinite(d.box.x_max) || !std::isfinite(d.box.y_max))
        throw Error(who + ": the size or offset of image " + std::to_string(n) + " at (" +
                    std::to_string(i) + ", " + std::to_string(j) +
                    ") gives a box that is not finite");
      d.class_id = static_cast<int>(candidates[k].index % channels);
      d.score = candidates[k].score;
      out.push_back(d);
    }
  }
  return detections;
}

}  // namespace stratum
