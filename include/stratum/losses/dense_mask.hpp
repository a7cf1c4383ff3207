// How a dense loss's mask lines up with its prediction (dense_loss.hpp): the mask has the
// prediction's shape with any number of trailing dimensions set to 1, so in the row-major
// (NHWC) layout each mask value covers `repeat` consecutive prediction elements:
//
//   prediction (N, H, W, C), mask (N, H, W, 1)  ->  repeat = C     (one value per position)
//   prediction (N, H, W, C), mask (N, H, W, C)  ->  repeat = 1
//   prediction (N, H, W, C), mask (N, 1, 1, 1)  ->  repeat = H W C (one value per sample)
#pragma once

#include <string>

#include "../errors.hpp"
#include "../tensor.hpp"

namespace stratum {

/// The number of prediction elements each mask value covers; throws ShapeError naming `loss`
/// when the mask does not fit the prediction as described above.
template <typename T>
Index dense_mask_repeat(const Tensor<T>& prediction, const Tensor<T>& mask,
                        const std::string& loss) {
  bool fits =
      mask.rank() == prediction.rank() && mask.rank() >= 1 && mask.dim(0) == prediction.dim(0);
  bool trailing_ones = true;  // scanning from the last axis: still in the run of 1s
  for (int a = prediction.rank() - 1; fits && a >= 0; --a) {
    if (trailing_ones && mask.dim(a) == 1) continue;
    trailing_ones = false;
    fits = mask.dim(a) == prediction.dim(a);
  }
  if (!fits)
    throw ShapeError(loss + ": a mask of shape " + mask.shape().to_string() +
                     " does not fit a prediction of shape " + prediction.shape().to_string() +
                     " (it needs the prediction's shape, trailing dimensions may be 1)");
  return prediction.size() / mask.size();
}

}  // namespace stratum
