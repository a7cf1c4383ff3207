// Mean squared error on a dense prediction, with an optional mask (dense_loss.hpp): the mean
// of (p - t)^2 over the elements the mask keeps. Keras' MeanSquaredError when there is no mask
// (the mean over every element of the batch).
//
// With m_e the mask value covering element e (1 everywhere without a mask; dense_mask.hpp says
// how a mask of trailing 1s broadcasts) and M = sum_e m_e the number of kept elements:
//
//   L          = sum_e m_e (p_e - t_e)^2 / max(M, 1)
//   dL/dp_e    = 2 m_e (p_e - t_e) / max(M, 1)
//
// M depends on the mask only, not on p, so it is a constant of the derivative. max(M, 1)
// makes a batch with nothing to learn (M = 0) cost 0 rather than divide by zero, and keeps the
// loss of a single kept element at its plain square (docs/backprop.md).
#pragma once

#include <algorithm>

#include "dense_loss.hpp"
#include "dense_mask.hpp"

namespace stratum {

template <typename T>
class MeanSquaredError final : public DenseLoss<T> {
 public:
  [[nodiscard]] std::string name() const override { return "MeanSquaredError"; }

  double compute(const Tensor<T>& prediction, const Tensor<T>& target, const Tensor<T>* mask,
                 Tensor<T>* d_prediction) const override {
    if (target.shape() != prediction.shape())
      throw ShapeError(name() + ": a target of shape " + target.shape().to_string() +
                       " for a prediction of shape " + prediction.shape().to_string());
    const Index repeat = mask ? dense_mask_repeat(prediction, *mask, name()) : 1;
    const Index groups = prediction.size() / repeat;
    // Sums in double: a 128x128 map of a batch of 32 is half a million terms.
    double kept = 0, sum = 0;
    for (Index g = 0; g < groups; ++g) {
      const double m = mask ? static_cast<double>((*mask)[g]) : 1.0;
      if (m == 0) continue;
      kept += m * static_cast<double>(repeat);
      for (Index e = g * repeat; e < (g + 1) * repeat; ++e) {
        const double diff = static_cast<double>(prediction[e]) - static_cast<double>(target[e]);
        sum += m * diff * diff;
      }
    }
    const double scale = 1.0 / std::max(kept, 1.0);
    if (d_prediction) {
      d_prediction->resize(prediction.shape());
      for (Index g = 0; g < groups; ++g) {
        const double m = mask ? static_cast<double>((*mask)[g]) : 1.0;
        for (Index e = g * repeat; e < (g + 1) * repeat; ++e)
          (*d_prediction)[e] =
              static_cast<T>(2.0 * scale * m *
                             (static_cast<double>(prediction[e]) - static_cast<double>(target[e])));
      }
    }
    return sum * scale;
  }
};

}  // namespace stratum
