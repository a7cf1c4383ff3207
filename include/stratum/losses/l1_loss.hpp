// Masked L1 loss, for the regression heads of a dense detector: the size head (N, H, W, 2) and
// the offset head (N, H, W, 2) of CenterNet, whose targets exist only at object centres.
//
// Shapes: prediction, target (N, ...), any shape; mask the prediction's shape with trailing
// dimensions set to 1 (dense_mask.hpp), typically (N, H, W, 1): 1 at object centres.
//
//   loss = sum over counted elements i of |p_i - t_i| / max(1, number of counted elements)
//   dloss/dp_i = sign(p_i - t_i) / max(1, number of counted elements)   (0 where not counted)
//
// The normalisation is by the number of counted elements, the mask broadcast to the prediction's
// shape: an (N, H, W, 1) mask with K ones over an (N, H, W, 2) size map divides by 2K. So the loss
// is the mean absolute error per target value, as CenterNet's RegL1Loss computes it, and that
// paper's loss weights (0.1 for size, 1 for offset) carry over. With nothing counted the loss is 0.
//
// |x| has no derivative at 0; we take the sub-gradient 0 there (sign(0) = 0), so a prediction
// that is exactly right is left alone. Elements not counted are not read: their target may hold
// anything.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include "dense_loss.hpp"
#include "dense_mask.hpp"

namespace stratum {

template <typename T>
class L1Loss final : public DenseLoss<T> {
 public:
  [[nodiscard]] std::string name() const override { return "L1Loss"; }

  double compute(const Tensor<T>& prediction, const Tensor<T>& target, const Tensor<T>* mask,
                 Tensor<T>* d_prediction) const override {
    const DenseMask<T> counted(name(), prediction, target, mask);
    const double scale = 1.0 / static_cast<double>(std::max<Index>(1, counted.counted_elements()));
    if (d_prediction) d_prediction->resize(prediction.shape());
    const double total =
        detail::sum_in_blocks(prediction.size(), block, [&](Index begin, Index end) {
          double sum = 0;
          for (Index i = begin; i < end; ++i) {
            double sign = 0;
            if (counted.counts(i)) {
              const double difference = double(prediction[i]) - double(target[i]);
              sum += std::abs(difference);
              sign = (difference > 0) - (difference < 0);
            }
            if (d_prediction) (*d_prediction)[i] = static_cast<T>(sign * scale);
          }
          return sum;
        });
    return total * scale;
  }

 private:
  static constexpr Index block = 16384;
};

}  // namespace stratum
