// Mean squared error on a dense prediction, with an optional mask (dense_loss.hpp): the mean
// of (p - t)^2 over the elements the mask keeps. Keras' MeanSquaredError when there is no mask
// (the mean over every element of the batch).
//
// With m_e the mask entry (0 or 1) covering element e (1 everywhere without a mask;
// dense_mask.hpp says how a mask of trailing 1s broadcasts) and M = sum_e m_e the number of kept
// elements:
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
    const DenseMask<T> counted(name(), prediction, target, mask);
    const double scale = 1.0 / static_cast<double>(std::max<Index>(1, counted.counted_elements()));
    if (d_prediction) d_prediction->resize(prediction.shape());
    // Sums in double, in fixed blocks (dense_mask.hpp): a 128x128 map of a batch of 32 is half
    // a million terms.
    const double sum = detail::sum_in_blocks(prediction.size(), block, [&](Index begin, Index end) {
      double partial = 0;
      for (Index e = begin; e < end; ++e) {
        const bool counts = counted.counts(e);
        const double diff =
            counts ? static_cast<double>(prediction[e]) - static_cast<double>(target[e]) : 0.0;
        partial += diff * diff;
        if (d_prediction) (*d_prediction)[e] = static_cast<T>(2.0 * scale * diff);
      }
      return partial;
    });
    return sum * scale;
  }

 private:
  static constexpr Index block = Index{1} << 14;
};

}  // namespace stratum
