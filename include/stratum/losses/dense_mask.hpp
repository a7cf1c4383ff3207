// What every dense loss (dense_loss.hpp) checks before it computes, and how it walks its
// prediction: the target has the prediction's shape, and the mask, if any, the prediction's shape
// with trailing dimensions set to 1. In a row-major tensor such a mask entry covers a contiguous
// run of `span` prediction elements: an (N, H, W, 1) mask over (N, H, W, C) heatmaps covers
// the C channels of a position (span C); an (N, H, W, C) mask covers one element (span 1).
//
// A mask entry is 0 (the elements it covers do not count) or 1 (they count). Anything else is an
// error rather than a weight: a mask of 0.5 is far more often a heatmap passed by mistake than a
// weighting anyone meant, and the losses' normalisations count positions.
//
// The losses sum over many elements (a batch of 128x128 heatmaps is about a million), so they
// sum in parallel blocks of a fixed size whose partial sums are added in block order: the same
// bits for any number of threads.
#pragma once

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "../parallel.hpp"
#include "../tensor.hpp"

namespace stratum {
namespace detail {

/// "(n, i, j, c)": the coordinates of element `flat` of a row-major tensor of shape `shape`.
[[nodiscard]] inline std::string element_coordinates(const Shape& shape, Index flat) {
  std::vector<Index> coordinates(static_cast<std::size_t>(shape.rank()));
  for (int axis = shape.rank() - 1; axis >= 0; --axis) {
    coordinates[static_cast<std::size_t>(axis)] = flat % shape[axis];
    flat /= shape[axis];
  }
  return Shape(std::move(coordinates)).to_string();
}

/// A number as an error message shows it: "0.5", "2", "1e+30", "nan".
[[nodiscard]] inline std::string format_number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

/// Sums body(begin, end) (a double) over [0, count) in blocks of `block`, the blocks on the
/// thread pool, their partial sums added in block order: the same bits for any thread count.
template <typename Body>
[[nodiscard]] double sum_in_blocks(Index count, Index block, Body&& body) {
  const Index blocks = (count + block - 1) / block;
  std::vector<double> partial(static_cast<std::size_t>(std::max<Index>(blocks, 0)));
  parallel_for(blocks, [&](Index b) {
    partial[static_cast<std::size_t>(b)] = body(b * block, std::min(count, (b + 1) * block));
  });
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace detail

/// A dense loss' checked view of its mask (or of no mask: every element counts).
template <typename T>
class DenseMask {
 public:
  /// Throws ShapeError naming `loss` unless target and mask fit the prediction, and Error if a
  /// mask entry is neither 0 nor 1.
  DenseMask(const std::string& loss, const Tensor<T>& prediction, const Tensor<T>& target,
            const Tensor<T>* mask)
      : mask_(mask) {
    if (prediction.rank() == 0)
      throw ShapeError(loss + ": expects a prediction with a batch dimension, received a scalar");
    if (target.shape() != prediction.shape())
      throw ShapeError(loss + ": the target's shape " + target.shape().to_string() +
                       " differs from the prediction's " + prediction.shape().to_string());
    if (!mask_) {
      counted_ = prediction.size();
      return;
    }
    const Shape& p = prediction.shape();
    const Shape& m = mask_->shape();
    int matched = 0;  // leading axes the mask shares with the prediction; the rest must be 1
    while (matched < p.rank() && matched < m.rank() && m[matched] == p[matched]) ++matched;
    bool fits = m.rank() == p.rank();
    for (int axis = matched; fits && axis < m.rank(); ++axis) fits = m[axis] == 1;
    if (!fits) {
      std::vector<Index> example = p.dims();
      example.back() = 1;
      throw ShapeError(loss + ": a mask of shape " + m.to_string() +
                       " does not fit the prediction " + p.to_string() +
                       ": it must be the prediction's shape with trailing dimensions set to 1, "
                       "as " +
                       Shape(std::move(example)).to_string());
    }
    for (int axis = matched; axis < p.rank(); ++axis) span_ *= p[axis];
    Index counted_entries = 0;
    for (Index e = 0; e < mask_->size(); ++e) {
      const T value = (*mask_)[e];
      if (value != T(0) && value != T(1))
        throw Error(loss + ": the mask holds " + detail::format_number(double(value)) + " at " +
                    detail::element_coordinates(m, e) +
                    "; a mask entry is 0 (ignored) or 1 (counts)");
      counted_entries += value == T(1);
    }
    counted_ = counted_entries * span_;
  }

  /// Whether prediction element `element` (a flat index) counts.
  [[nodiscard]] bool counts(Index element) const {
    return !mask_ || (*mask_)[element / span_] == T(1);
  }
  /// Prediction elements one mask entry covers (1 without a mask).
  [[nodiscard]] Index span() const { return span_; }
  /// How many prediction elements count: the mask's sum broadcast to the prediction's shape.
  [[nodiscard]] Index counted_elements() const { return counted_; }

 private:
  const Tensor<T>* mask_;
  Index span_ = 1;
  Index counted_ = 0;
};

}  // namespace stratum
