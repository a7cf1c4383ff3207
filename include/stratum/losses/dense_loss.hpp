// The interface of a loss on a dense prediction: a tensor of any shape (N, ...) scored against
// a target of the same shape, as a detector's per-pixel heatmaps and box maps are, rather than
// one integer label per sample (Loss, loss.hpp).
//
// A mask (optional, the prediction's shape with any number of trailing dimensions set to 1, so
// (N, H, W, 1) masks every channel of a position) says which positions have a target: 1 where
// the loss applies, 0 where it does not (a size head has a target only at object centres).
// Each loss says in its own header how it normalises (by the batch, by the number of objects).
#pragma once

#include <string>

#include "../tensor.hpp"

namespace stratum {

template <typename T>
class DenseLoss {
 public:
  virtual ~DenseLoss() = default;
  [[nodiscard]] virtual std::string name() const = 0;

  /// The loss of the batch. If `d_prediction` is not null it is resized to the prediction's
  /// shape and set to the gradient of that loss with respect to `prediction`. `mask` may be
  /// null (every position counts). Throws ShapeError naming the loss on mismatched shapes.
  virtual double compute(const Tensor<T>& prediction, const Tensor<T>& target,
                         const Tensor<T>* mask, Tensor<T>* d_prediction) const = 0;
};

}  // namespace stratum
