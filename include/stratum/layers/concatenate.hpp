// Concatenate: k inputs joined along the last (channel) axis, as keras.layers.Concatenate()
// (a multi-scale head's upsampled and lateral features side by side).
//
// Inputs (N, ..., C_i) agree on every dimension but the last; the output is (N, ..., C) with
// C = sum_i C_i. In NHWC each position's channels are contiguous, so position p of the output
// is the channels of input 1 at p, then those of input 2, and so on:
//
//   forward   y[p, o_i + c] = x_i[p, c]            o_i = C_1 + ... + C_{i-1},  0 <= c < C_i
//   backward  dL/dx_i[p, c] = dL/dy[p, o_i + c]   (y copies x_i, so the gradient is the slice)
//
// (derivation in docs/backprop.md). Rank-1 inputs (N, C) join the same way (Dense outputs).
#pragma once

#include <algorithm>

#include "merge_layer.hpp"

namespace stratum {

template <typename T>
class Concatenate final : public MergeLayer<T> {
 public:
  [[nodiscard]] std::string type_name() const override { return "Concatenate"; }

 protected:
  Shape do_build(const std::vector<Shape>& shapes) override {
    const int rank = shapes[0].rank();
    if (rank < 1)
      throw ShapeError(this->describe() + " needs inputs with a channel axis, received " +
                       this->list_shapes(shapes));
    std::vector<Index> dims = shapes[0].dims();
    dims.back() = 0;
    channels_.clear();
    for (const auto& s : shapes) {
      bool fits = s.rank() == rank;
      for (int a = 0; fits && a + 1 < rank; ++a) fits = s[a] == shapes[0][a];
      if (!fits)
        throw ShapeError(this->describe() +
                         " needs inputs that differ only in their last (channel) axis, received " +
                         this->list_shapes(shapes));
      channels_.push_back(s[rank - 1]);
      dims.back() += s[rank - 1];
    }
    return Shape(dims);
  }

  void do_forward(std::span<const Tensor<T>* const> xs, Tensor<T>& y) override {
    const Index out_channels = y.shape().dims().back();
    const Index positions = y.size() / out_channels;
    Index offset = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const Index c = channels_[i];
      const T* x = xs[i]->data();
      T* out = y.data() + offset;
      for (Index p = 0; p < positions; ++p) std::copy_n(x + p * c, c, out + p * out_channels);
      offset += c;
    }
  }

  void do_backward(std::span<const Tensor<T>* const> /*xs*/, const Tensor<T>& dy,
                   std::span<Tensor<T>* const> dxs) override {
    const Index out_channels = dy.shape().dims().back();
    const Index positions = dy.size() / out_channels;
    Index offset = 0;
    for (std::size_t i = 0; i < dxs.size(); ++i) {
      const Index c = channels_[i];
      if (Tensor<T>* dx = dxs[i]) {
        const T* in = dy.data() + offset;
        for (Index p = 0; p < positions; ++p)
          std::copy_n(in + p * out_channels, c, dx->data() + p * c);
      }
      offset += c;
    }
  }

 private:
  std::vector<Index> channels_;  // C_i of each input
};

}  // namespace stratum
