// Add: the element-wise sum of k inputs of one shape, as keras.layers.Add (a residual block's
// skip connection: y = x + F(x)).
//
//   forward   y[e] = sum_i x_i[e]                       every input (N, ...) of y's shape
//   backward  dL/dx_i[e] = dL/dy[e]                     since dy[e]/dx_i[e] = 1
//
// (derivation in docs/backprop.md). Each input gets a copy of dy: the graph model sums the
// gradients of a tensor that feeds several layers, so a skip connection's two paths meet there.
#pragma once

#include "merge_layer.hpp"

namespace stratum {

template <typename T>
class Add final : public MergeLayer<T> {
 public:
  [[nodiscard]] std::string type_name() const override { return "Add"; }

 protected:
  Shape do_build(const std::vector<Shape>& shapes) override {
    for (const auto& s : shapes)
      if (s != shapes[0])
        throw ShapeError(this->describe() + " needs inputs of one shape, received " +
                         this->list_shapes(shapes));
    return shapes[0];
  }

  void do_forward(std::span<const Tensor<T>* const> xs, Tensor<T>& y) override {
    y.array() = xs[0]->array();
    for (std::size_t i = 1; i < xs.size(); ++i) y.array() += xs[i]->array();
  }

  void do_backward(std::span<const Tensor<T>* const> /*xs*/, const Tensor<T>& dy,
                   std::span<Tensor<T>* const> dxs) override {
    for (Tensor<T>* dx : dxs)
      if (dx) dx->array() = dy.array();
  }
};

}  // namespace stratum
