// Generalized IoU loss (Rezatofighi et al. 2019), 1 - GIoU, for per-position box predictions.
//
// Shapes: prediction, target (N, H, W, 4) (any (..., 4)): at each position the distances
// (left, top, right, bottom) from the position to the box's sides, FCOS style, in whatever unit
// the detector uses (pixels, or heatmap cells); mask (N, H, W, 1): 1 at positions that have an
// object. The box of distances d = (l, t, r, b) at a position (x, y) is
// [x - l, x + r] x [y - t, y + b]; prediction and target share the position, so it cancels.
//
// Per position, for the prediction (l, t, r, b) and the target (l', t', r', b'):
//   w_p = l + r, h_p = t + b, w_g = l' + r', h_g = t' + b'     (widths and heights)
//   w_i = [min(l, l') + min(r, r')]+, h_i = [min(t, t') + min(b, b')]+   (intersection, [x]+ =
//   max(x, 0)) w_c = max(l, l') + max(r, r'),    h_c = max(t, t') + max(b, b')      (enclosing box)
//   A = [w_p]+ [h_p]+, G = w_g h_g, I = w_i h_i, U = A + G - I, C = w_c h_c
//   GIoU = I/U - (C - U)/C,  L = 1 - GIoU = 2 - I/U - U/C,  in [0, 2]
//   loss = sum over positions with mask 1 of L / max(1, number of such positions)
// A perfect prediction gives L = 0; disjoint boxes give IoU 0 and L > 1, growing with the empty
// part of the enclosing box, which is what still pulls a disjoint prediction towards its target.
//
// Gradient (docs/backprop.md derives it). Taking L as a function of I, U and C, with U depending
// on I too, the total derivatives reaching the three quantities are
//   g_I = dL/dI + dL/dU dU/dI = -1/U - (I/U^2 - 1/C) = 1/C - (U + I)/U^2
//   g_A = dL/dU = I/U^2 - 1/C       (through U = A + G - I)
//   g_C = dL/dC = U/C^2
// and then, for the left distance (the right one alike, top and bottom with w and h exchanged):
//   dL/dl = g_I h_i [w_i > 0] [l < l'] + g_A [h_p]+ [w_p > 0] + g_C h_c [l > l']
// where [.] is 1 when true and 0 when false, and 1/2 on a tie (l = l', or a clamp at exactly 0):
// the mean of the two one-sided derivatives, which is what a central difference measures and
// makes the gradient 0 at a perfect prediction (every side tied; the loss has a kink there, as
// |x| has at 0), where either one-sided choice would push the prediction away from its target.
// (A single side equal to its target's gets the same mean, which need not be 0 there.)
//
// Distances are meant to be non-negative (the position inside both boxes; give the head a
// non-negative output such as ReLU, softplus or exp, as FCOS does). The loss is defined for any
// real distances all the same: a negative distance puts that side past the position, so the
// predicted box may not contain it and may be disjoint from the target (handled as above). A
// predicted box with a negative width or height is empty (A = I = 0, L = 2 - G/C), and only the
// enclosing box gives it a gradient. A target box must have a positive width and height where the
// mask counts (else U could be 0): anything else is an error naming the position.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "dense_loss.hpp"
#include "dense_mask.hpp"

namespace stratum {

template <typename T>
class GIoULoss final : public DenseLoss<T> {
 public:
  [[nodiscard]] std::string name() const override { return "GIoULoss"; }

  double compute(const Tensor<T>& prediction, const Tensor<T>& target, const Tensor<T>* mask,
                 Tensor<T>* d_prediction) const override {
    const DenseMask<T> counted(name(), prediction, target, mask);
    if (prediction.shape().dims().back() != 4)
      throw ShapeError(name() +
                       ": expects boxes as (..., 4) distances (left, top, right, "
                       "bottom), received a prediction of shape " +
                       prediction.shape().to_string());
    if (mask && counted.span() % 4 != 0)
      throw ShapeError(name() + ": a mask of shape " + mask->shape().to_string() +
                       " masks single distances; it must cover whole boxes, as (..., 1)");
    const Index positions = prediction.size() / 4;
    check_targets(target, counted);
    const double scale =
        1.0 / static_cast<double>(std::max<Index>(1, counted.counted_elements() / 4));
    if (d_prediction) d_prediction->resize(prediction.shape());
    const double total = detail::sum_in_blocks(positions, block, [&](Index begin, Index end) {
      double sum = 0;
      for (Index position = begin; position < end; ++position) {
        const Index first = 4 * position;
        if (!counted.counts(first)) {
          if (d_prediction) std::fill_n(d_prediction->data() + first, 4, T(0));
          continue;
        }
        double gradient[4];
        sum += evaluate(prediction.data() + first, target.data() + first, gradient);
        if (d_prediction)
          for (int k = 0; k < 4; ++k)
            (*d_prediction)[first + k] = static_cast<T>(gradient[k] * scale);
      }
      return sum;
    });
    return total * scale;
  }

 private:
  static constexpr Index block = 4096;
  enum Distance { left = 0, top = 1, right = 2, bottom = 3 };

  /// d[x]+/dx, and d min(a, b)/da = step(b - a), d max(a, b)/da = step(a - b): 1/2 on a tie.
  static double step(double x) { return x > 0 ? 1.0 : x < 0 ? 0.0 : 0.5; }

  /// 1 - GIoU of one position, and its derivative with respect to the four predicted distances.
  static double evaluate(const T* predicted, const T* wanted, double* gradient) {
    double d[4], g[4];
    for (int k = 0; k < 4; ++k) {
      d[k] = double(predicted[k]);
      g[k] = double(wanted[k]);
    }
    const double w_p = d[left] + d[right], h_p = d[top] + d[bottom];
    const double w_g = g[left] + g[right], h_g = g[top] + g[bottom];
    const double w_i_raw = std::min(d[left], g[left]) + std::min(d[right], g[right]);
    const double h_i_raw = std::min(d[top], g[top]) + std::min(d[bottom], g[bottom]);
    const double w_i = std::max(w_i_raw, 0.0), h_i = std::max(h_i_raw, 0.0);
    const double w_c = std::max(d[left], g[left]) + std::max(d[right], g[right]);
    const double h_c = std::max(d[top], g[top]) + std::max(d[bottom], g[bottom]);
    const double area = std::max(w_p, 0.0) * std::max(h_p, 0.0);
    const double intersection = w_i * h_i;
    const double union_area = area + w_g * h_g - intersection;
    const double enclosing = w_c * h_c;

    const double g_i = 1 / enclosing - (union_area + intersection) / (union_area * union_area);
    const double g_a = intersection / (union_area * union_area) - 1 / enclosing;
    const double g_c = union_area / (enclosing * enclosing);
    // A horizontal distance k moves the box's width; its partner factors are the heights.
    for (int k : {left, right}) {
      gradient[k] = g_i * h_i * step(w_i_raw) * step(g[k] - d[k]) +
                    g_a * std::max(h_p, 0.0) * step(w_p) + g_c * h_c * step(d[k] - g[k]);
    }
    for (int k : {top, bottom}) {
      gradient[k] = g_i * w_i * step(h_i_raw) * step(g[k] - d[k]) +
                    g_a * std::max(w_p, 0.0) * step(h_p) + g_c * w_c * step(d[k] - g[k]);
    }
    return 2 - intersection / union_area - union_area / enclosing;
  }

  /// Every counted target box needs a positive width and height.
  void check_targets(const Tensor<T>& target, const DenseMask<T>& counted) const {
    for (Index first = 0; first < target.size(); first += 4) {
      if (!counted.counts(first)) continue;
      const double width = double(target[first + left]) + double(target[first + right]);
      const double height = double(target[first + top]) + double(target[first + bottom]);
      if (!(width > 0 && height > 0)) {
        std::vector<Index> positions = target.shape().dims();
        positions.back() = 1;
        throw Error(name() + ": the target box at " +
                    detail::element_coordinates(Shape(std::move(positions)), first / 4) +
                    " has width " + detail::format_number(width) + " and height " +
                    detail::format_number(height) +
                    "; a target box needs a positive width and height");
      }
    }
  }
};

}  // namespace stratum
