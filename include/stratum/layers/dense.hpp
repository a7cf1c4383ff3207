// Dense: a fully connected layer with bias and an optional fused activation.
//
//   x (N, I)  kernel W (I, U)  bias b (U)  ->  y (N, U)      (Keras stores W as inputs x units)
//
//   forward   z = x W + b,  y = activation(z)
//   backward  dz = dy * activation'(z)          (layers/activation.hpp)
//             dW = x^T dz        since dL/dW[i,u] = sum_n dz[n,u] * x[n,i]
//             db = sum_n dz[n,:]
//             dx = dz W^T        since dL/dx[n,i] = sum_u dz[n,u] * W[i,u]
#pragma once

#include "../kernels/gemm.hpp"
#include "../parallel.hpp"
#include "activation.hpp"
#include "initializers.hpp"
#include "layer.hpp"

namespace stratum {

template <typename T>
class Dense final : public Layer<T> {
 public:
  explicit Dense(Index units, Activation activation = Activation::linear)
      : units_(units), activation_(activation) {
    if (units < 1) throw Error("Dense: units must be positive");
  }

  [[nodiscard]] std::string type_name() const override { return "Dense"; }
  std::vector<Parameter<T>*> parameters() override { return {&kernel_, &bias_}; }
  [[nodiscard]] LayerConfig config() const override {
    return {type_name(), {{"units", double(units_)}, {"activation", double(activation_)}}};
  }

  [[nodiscard]] Index units() const { return units_; }
  [[nodiscard]] Activation activation() const { return activation_; }
  Parameter<T>& kernel() { return kernel_; }
  Parameter<T>& bias() { return bias_; }

 protected:
  Shape do_build(const Shape& in, Random& rng) override {
    if (in.rank() != 1) this->fail_shape("(None, features) (add a Flatten layer before it)", in);
    kernel_.name = "kernel";
    kernel_.decayed = true;
    bias_.name = "bias";
    kernel_.allocate({in[0], units_});
    bias_.allocate({units_});
    glorot_uniform(kernel_.value, in[0], units_, rng);
    return {units_};
  }

  // The products are split over blocks of the I input features, one thread per block with a
  // single-threaded GEMM inside: the kernel W is the large operand (7.4 M values in the
  // notebook's first Dense layer) and each block streams a slice of it once. The forward pass
  // sums per-thread partial products in thread order, so a thread count gives the same bits.
  // Which GEMM: dW = x^T dz, whose depth is only the batch, runs on the register-blocked
  // kernel of kernels/gemm.hpp, which measured faster there than Eigen's; the forward product
  // and dx stay on Eigen's, faster for the forward (see docs/kernels.md for the figures) and
  // needing no transposed copy of W for dx.
  static constexpr Index block_features = 2048;

  void do_forward(const Tensor<T>& x, Tensor<T>& y, Mode /*mode*/) override {
    const Index inputs = x.matrix().cols(), batch = x.dim(0);
    auto z = y.matrix();
    if (inputs <= block_features) {
      z.noalias() = x.matrix() * kernel_.value.matrix();
    } else {
      partial_products_.prepare(batch * units_);
      for (int t = 0; t < partial_products_.count(); ++t)
        std::fill(partial_products_.get(t), partial_products_.get(t) + batch * units_, T(0));
      STRATUM_OMP(parallel for schedule(static))
      for (Index first = 0; first < inputs; first += block_features) {
        const Index count = std::min(block_features, inputs - first);
        Eigen::Map<RowMatrix<T>>(partial_products_.get(), batch, units_).noalias() +=
            x.matrix().middleCols(first, count) * kernel_.value.matrix().middleRows(first, count);
      }
      z = Eigen::Map<RowMatrix<T>>(partial_products_.get(0), batch, units_);
      for (int t = 1; t < partial_products_.count(); ++t)
        z += Eigen::Map<RowMatrix<T>>(partial_products_.get(t), batch, units_);
    }
    z.rowwise() += RowVectorMap<const T>(bias_.value.data(), units_);
    activation_forward(activation_, y.data(), y.size(), units_);
  }

  void do_backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                   Tensor<T>* dx) override {
    const Tensor<T>* dz = &dy;
    if (activation_ != Activation::linear) {
      dz_.resize(y.shape());
      activation_backward(activation_, y.data(), dy.data(), dz_.data(), y.size(), units_);
      dz = &dz_;
    }
    const Index inputs = x.matrix().cols(), batch = x.dim(0);
    const auto d_z = dz->matrix();
    // Each block of input features owns its rows of dW and its columns of dx: no reduction.
    STRATUM_OMP(parallel for schedule(static))
    for (Index first = 0; first < inputs; first += block_features) {
      const Index count = std::min(block_features, inputs - first);
      // dW rows (count x units) = x^T (count x batch: x read down its columns) * dz.
      kernels::gemm<T>(count, units_, batch, x.data() + first, 1, inputs, dz->data(), units_,
                       kernel_.grad.data() + first * units_, units_, false);
      if (dx)
        dx->matrix().middleCols(first, count).noalias() =
            d_z * kernel_.value.matrix().middleRows(first, count).transpose();
    }
    RowVectorMap<T>(bias_.grad.data(), units_) = d_z.colwise().sum();
  }

 private:
  template <typename S>
  using RowVectorMap = Eigen::Map<std::conditional_t<std::is_const_v<S>,
                                                     const Eigen::Matrix<T, 1, Eigen::Dynamic>,
                                                     Eigen::Matrix<T, 1, Eigen::Dynamic>>>;

  Index units_;
  Activation activation_;
  Parameter<T> kernel_;
  Parameter<T> bias_;
  Tensor<T> dz_;
  ThreadScratch<T> partial_products_;
};

}  // namespace stratum
