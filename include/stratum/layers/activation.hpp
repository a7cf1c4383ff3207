// Element-wise activations, shared by the ReLU / Sigmoid / Softmax layers and by the activation
// that Conv2D and Dense can fuse into their output.
//
// Each backward pass is written in terms of the activation's *output* y, which the layer keeps
// anyway, so nothing else has to be stored:
//   linear   y = z                       dz = dy
//   relu     y = max(z, 0)               dz = dy * [y > 0]
//   sigmoid  y = 1 / (1 + e^-z)          dz = dy * y * (1 - y)
//   softmax  y_i = e^z_i / sum_j e^z_j   dz_i = y_i * (dy_i - sum_j dy_j * y_j)
// (softmax runs over the last axis; its Jacobian is diag(y) - y y^T, and the last line is that
// Jacobian applied to dy.)
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include "../kernels/simd_path.hpp"
#include "../parallel.hpp"
#include "../tensor.hpp"

namespace stratum {

enum class Activation { linear, relu, sigmoid, softmax };

inline const char* to_string(Activation a) {
  switch (a) {
    case Activation::linear:
      return "linear";
    case Activation::relu:
      return "relu";
    case Activation::sigmoid:
      return "sigmoid";
    case Activation::softmax:
      return "softmax";
  }
  return "?";
}

/// values = 1 / (1 + e^-values), 16 at a time through Eigen's vectorised exp, the last few
/// padded to 16: over a whole buffer, Eigen would take the elements before the first aligned
/// one and after the last whole vector through std::exp, whose last bits differ, so a value's
/// result would depend on where it lies (and a convolution's output on how its pass is cut
/// into tiles, which depends on the batch). (1/(1+e^-z) overflows e^-z for very negative z in
/// float; the result is still 0 then.)
template <typename T>
void sigmoid_in_place(T* values, Index size) {
  using Chunk = Eigen::Array<T, 16, 1>;
  auto sigmoid = [](const Chunk& z) -> Chunk { return T(1) / (T(1) + (-z).exp()); };
  Index i = 0;
  for (; i + 16 <= size; i += 16) {
    Eigen::Map<Chunk> chunk(values + i);
    chunk = sigmoid(chunk);
  }
  if (i == size) return;
  Chunk last = Chunk::Zero();
  std::copy(values + i, values + size, last.data());
  last = sigmoid(last);
  std::copy_n(last.data(), size - i, values + i);
}

/// y = activation(z), in place on `values`; softmax works on rows of length `row_length`.
/// (ReLU is a plain loop that the compiler vectorises for the SIMD path in force, which
/// Eigen's SSE code in a build without -march would not be.)
template <typename T>
void activation_forward(Activation activation, T* values, Index size, Index row_length) {
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> v(values, size);
  switch (activation) {
    case Activation::linear:
      break;
    case Activation::relu:
      kernels::vectorized([&] {
        for (Index i = 0; i < size; ++i) values[i] = values[i] < T(0) ? T(0) : values[i];
      });
      break;
    case Activation::sigmoid:
      sigmoid_in_place(values, size);
      break;
    case Activation::softmax:
      for (Index row = 0; row < size / row_length; ++row) {
        auto r = v.segment(row * row_length, row_length);
        r = (r - r.maxCoeff()).exp();  // shifting by the max keeps exp() from overflowing
        r /= r.sum();
      }
      break;
  }
}

/// dz = dy * activation'(z), given y = activation(z). `dz` may alias `dy`.
template <typename T>
void activation_backward(Activation activation, const T* y, const T* dy, T* dz, Index size,
                         Index row_length) {
  Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> out(y, size), d_out(dy, size);
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> d_in(dz, size);
  switch (activation) {
    case Activation::linear:
      d_in = d_out;
      break;
    case Activation::relu:
      kernels::vectorized([&] {
        for (Index i = 0; i < size; ++i) {
          // dy[i] is read whatever y[i] is: a load under the condition would keep the loop
          // scalar, with a branch per element (it measured 4 times slower than Eigen's select).
          const T gradient = dy[i];
          dz[i] = y[i] > T(0) ? gradient : T(0);
        }
      });
      break;
    case Activation::sigmoid:
      d_in = d_out * out * (T(1) - out);
      break;
    case Activation::softmax:
      for (Index row = 0; row < size / row_length; ++row) {
        const Index start = row * row_length;
        const T dot = (d_out.segment(start, row_length) * out.segment(start, row_length)).sum();
        d_in.segment(start, row_length) =
            out.segment(start, row_length) * (d_out.segment(start, row_length) - dot);
      }
      break;
  }
}

/// y = activation(z) over a large buffer, split across threads in whole rows. Each block is
/// copied, then activated in place while it is still in cache: one pass over memory on every
/// thread, where a copy of the whole buffer first was a single-threaded pass of its own (2.6 %
/// of the samples of `detect` on a 640 x 480 photo).
template <typename T>
void activation_forward_parallel(Activation activation, const T* z, T* y, Index size,
                                 Index row_length) {
  const Index block = std::max<Index>(1, (Index{1} << 15) / row_length) * row_length;
  parallel_for_blocks(size, block, [&](Index begin, Index end) {
    std::copy(z + begin, z + end, y + begin);
    activation_forward(activation, y + begin, end - begin, row_length);
  });
}

/// activation_backward over a large buffer, split across threads in whole rows.
template <typename T>
void activation_backward_parallel(Activation activation, const T* y, const T* dy, T* dz, Index size,
                                  Index row_length) {
  const Index block = std::max<Index>(1, (Index{1} << 15) / row_length) * row_length;
  parallel_for_blocks(size, block, [&](Index begin, Index end) {
    activation_backward(activation, y + begin, dy + begin, dz + begin, end - begin, row_length);
  });
}

}  // namespace stratum

#include "layer.hpp"

namespace stratum {

/// A layer that applies one activation element-wise (softmax: over the last axis).
/// ReLU, Sigmoid and Softmax are this layer with their activation fixed.
template <typename T>
class ActivationLayer : public Layer<T> {
 public:
  explicit ActivationLayer(Activation activation) : activation_(activation) {}
  [[nodiscard]] Activation activation() const { return activation_; }

 protected:
  Shape do_build(const Shape& input_shape, Random& /*rng*/) override {
    if (input_shape.rank() < 1) this->fail_shape("(None, ..., features)", input_shape);
    return input_shape;
  }
  void do_forward(const Tensor<T>& x, Tensor<T>& y, Mode /*mode*/) override {
    activation_forward_parallel(activation_, x.data(), y.data(), y.size(), last_dim(y));
  }
  void do_backward(const Tensor<T>& /*x*/, const Tensor<T>& y, const Tensor<T>& dy,
                   Tensor<T>* dx) override {
    if (dx)
      activation_backward_parallel(activation_, y.data(), dy.data(), dx->data(), y.size(),
                                   last_dim(y));
  }

 private:
  static Index last_dim(const Tensor<T>& t) { return t.dim(t.rank() - 1); }
  Activation activation_;
};

}  // namespace stratum
