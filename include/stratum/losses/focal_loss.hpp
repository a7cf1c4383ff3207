// The heatmap focal loss of CenterNet ("Objects as Points", Zhou et al. 2019): a penalty-reduced
// focal loss on per-pixel class heatmaps whose targets are Gaussians splatted at object centres.
//
// Shapes: prediction, target (N, H, W, C), one heatmap per class, NHWC; mask (N, H, W, 1) or any
// shape dense_mask.hpp accepts. The prediction holds logits z; the sigmoid is fused in here.
//
// With p = sigmoid(z) and y the target in [0, 1] (exactly 1 at an object's centre):
//   y = 1:  L = -(1 - p)^alpha log p
//   y < 1:  L = -(1 - y)^beta p^alpha log(1 - p)
//   loss  = sum over counted elements of L / max(1, number of counted elements with y = 1)
// alpha = 2, beta = 4 by default, as in the paper. The normalisation is by the number of objects
// (each centre is one peak of 1 in its class' heatmap), not by the number of pixels, so the loss
// of an image does not shrink as its heatmap grows; a batch without objects divides by 1.
//
// Why this form and not RetinaNet's (-a (1 - p)^g log p on positives, -(1 - a) p^g log(1 - p) on
// negatives, with 0/1 labels from anchor assignment): our targets are Gaussians, not hard labels.
// At output stride 4 a median face (21 px) is about 5 heatmap pixels wide and its centre falls
// between pixels, so the pixels next to the peak are nearly as right as the peak itself. The
// (1 - y)^beta factor barely penalises them, where RetinaNet's form would push them to 0 as hard
// as the background; and with one positive per object among ~16,000 pixels of a 128x128 heatmap,
// the p^alpha factor and the per-object normalisation do the class balancing RetinaNet does with
// its weight a. (A detector with this loss usually starts its heatmap bias at -log((1 - 0.1) /
// 0.1) = -2.19, so that p = 0.1 everywhere and the first steps are not swamped by background.)
//
// Gradient with respect to the logit (dp/dz = p (1 - p); derived in docs/backprop.md):
//   y = 1:  dL/dz = (1 - p)^alpha (alpha p log p - (1 - p))
//   y < 1:  dL/dz = (1 - y)^beta p^alpha (p - alpha (1 - p) log(1 - p))
// Numerically stable for any logit: log p = -softplus(-z) and log(1 - p) = -softplus(z), with
// softplus(x) = max(x, 0) + log1p(e^-|x|), and 1 - p = sigmoid(-z); no log(0), no 0 * inf, no
// overflow.
// (CenterNet instead clamps p to [1e-4, 1 - 1e-4], which caps each loss term and zeroes the
// gradient of confident pixels; the exact form needs no clamp.)
//
// The target must lie in [0, 1] where the mask counts (elsewhere, as in letterbox padding, it is
// not read); a value outside is an error naming the element.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include "dense_loss.hpp"
#include "dense_mask.hpp"

namespace stratum {

template <typename T>
class HeatmapFocalLoss final : public DenseLoss<T> {
 public:
  explicit HeatmapFocalLoss(double alpha = 2, double beta = 4) : alpha_(alpha), beta_(beta) {
    if (!(alpha >= 0) || !(beta >= 0))
      throw Error(name() + ": alpha and beta must be non-negative, received alpha " +
                  detail::format_number(alpha) + " and beta " + detail::format_number(beta));
  }

  [[nodiscard]] std::string name() const override { return "HeatmapFocalLoss"; }
  [[nodiscard]] double alpha() const { return alpha_; }
  [[nodiscard]] double beta() const { return beta_; }

  double compute(const Tensor<T>& prediction, const Tensor<T>& target, const Tensor<T>* mask,
                 Tensor<T>* d_prediction) const override {
    const DenseMask<T> counted(name(), prediction, target, mask);
    const double objects = static_cast<double>(std::max<Index>(1, count_peaks(target, counted)));
    if (d_prediction) d_prediction->resize(prediction.shape());
    const double scale = 1.0 / objects;
    const double total =
        detail::sum_in_blocks(prediction.size(), block, [&](Index begin, Index end) {
          double sum = 0;
          for (Index i = begin; i < end; ++i) {
            if (!counted.counts(i)) {
              if (d_prediction) (*d_prediction)[i] = T(0);
              continue;
            }
            const Term term = evaluate(double(prediction[i]), double(target[i]));
            sum += term.loss;
            if (d_prediction) (*d_prediction)[i] = static_cast<T>(term.gradient * scale);
          }
          return sum;
        });
    return total * scale;
  }

 private:
  static constexpr Index block = 16384;

  struct Term {
    double loss, gradient;
  };

  /// The loss of one element and its derivative with respect to the logit z. One exp and one
  /// log1p: with e = e^-|z|, softplus(z) = max(z, 0) + log1p(e), softplus(-z) = softplus(z) - z,
  /// and p, 1 - p are 1/(1 + e) and e/(1 + e) in the order the sign of z gives.
  [[nodiscard]] Term evaluate(double z, double y) const {
    const double e = std::exp(-std::abs(z));
    const double log1p_e = std::log1p(e);
    const double p = z >= 0 ? 1 / (1 + e) : e / (1 + e);
    const double q = z >= 0 ? e / (1 + e) : 1 / (1 + e);  // 1 - p, without cancellation
    if (y == 1) {
      const double log_p = -(std::max(-z, 0.0) + log1p_e);
      const double q_alpha = power(q, alpha_);
      return {-q_alpha * log_p, q_alpha * (alpha_ * p * log_p - q)};
    }
    const double log_q = -(std::max(z, 0.0) + log1p_e);
    const double weight = power(1 - y, beta_) * power(p, alpha_);
    return {-weight * log_q, weight * (p - alpha_ * q * log_q)};
  }

  /// x^a, by multiplication for the usual small whole exponents (2 and 4): std::pow took most
  /// of the loss' time.
  static double power(double x, double a) {
    if (a == std::floor(a) && a <= 8) {
      double result = 1;
      for (int k = 0; k < static_cast<int>(a); ++k) result *= x;
      return result;
    }
    return std::pow(x, a);
  }

  /// The number of objects: counted elements whose target is exactly 1. Checks the range.
  [[nodiscard]] Index count_peaks(const Tensor<T>& target, const DenseMask<T>& counted) const {
    Index peaks = 0;
    for (Index i = 0; i < target.size(); ++i) {
      if (!counted.counts(i)) continue;
      const T y = target[i];
      if (!(y >= T(0) && y <= T(1)))
        throw Error(name() + ": the target holds " + detail::format_number(double(y)) + " at " +
                    detail::element_coordinates(target.shape(), i) +
                    "; a heatmap target lies in [0, 1], with 1 at object centres");
      peaks += y == T(1);
    }
    return peaks;
  }

  double alpha_, beta_;
};

}  // namespace stratum
