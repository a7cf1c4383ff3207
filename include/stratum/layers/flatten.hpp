// Flatten: (N, d1, d2, ...) -> (N, d1*d2*...), keeping the NHWC element order, as Keras does
// for channels-last data. It only renames indices, so the backward pass is the inverse
// reshape: dx = dy viewed with x's shape.
#pragma once

#include "layer.hpp"

namespace stratum {

template <typename T>
class Flatten final : public Layer<T> {
 public:
  [[nodiscard]] std::string type_name() const override { return "Flatten"; }

 protected:
  Shape do_build(const Shape& in, Random& /*rng*/) override {
    if (in.rank() < 1) this->fail_shape("(None, ...)", in);
    return {in.num_elements()};
  }
  void do_forward(const Tensor<T>& x, Tensor<T>& y, Mode /*mode*/) override {
    std::copy(x.begin(), x.end(), y.begin());
  }
  void do_backward(const Tensor<T>& /*x*/, const Tensor<T>& /*y*/, const Tensor<T>& dy,
                   Tensor<T>* dx) override {
    if (dx) std::copy(dy.begin(), dy.end(), dx->begin());
  }
};

}  // namespace stratum
