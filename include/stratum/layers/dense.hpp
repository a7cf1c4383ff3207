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

  // Every product runs on kernels::gemm, split over blocks of the I input features, one thread
  // per block (the kernel W is the large operand, 7.4 M values in the notebook's first Dense
  // layer, and each block streams its slice of W once):
  //
  //   forward   partial_s (N x U) += x[:, block] W[block, :]    summed over slots in order
  //   dW        dW[block, :] (block x U) = x[:, block]^T dz       x read down its columns
  //   dx        dx[:, block]^T (block x N) = W[block, :] dz^T     then transposed into dx
  //
  // dx is computed transposed because the GEMM reads its right operand by rows: dz^T is a small
  // copy (U x N), where W^T would be the whole kernel. The forward pass sums the partial
  // products of a reduction's slots (parallel.hpp) in slot order, so a thread count gives the
  // same bits every time.
  void do_forward(const Tensor<T>& x, Tensor<T>& y, Mode /*mode*/) override {
    const Index inputs = x.matrix().cols(), batch = x.dim(0);
    const Index block = feature_block(inputs), blocks = (inputs + block - 1) / block;
    const Index slots = reduction_slots(blocks, batch * units_);
    partial_products_.prepare(batch * units_, slots);
    parallel_for_slots(blocks, slots, [&](Index slot, Index begin, Index end) {
      std::fill_n(partial_products_.get(slot), batch * units_, T(0));
      for (Index b = begin; b < end; ++b) {
        const Index first = b * block, count = std::min(block, inputs - first);
        kernels::gemm<T>(batch, units_, count, x.data() + first, inputs, 1,
                         kernel_.value.data() + first * units_, units_, partial_products_.get(slot),
                         units_, true);
      }
    });
    auto z = y.matrix();
    z = Eigen::Map<RowMatrix<T>>(partial_products_.get(0), batch, units_);
    for (int t = 1; t < partial_products_.count(); ++t)
      z += Eigen::Map<RowMatrix<T>>(partial_products_.get(t), batch, units_);
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
    const Index block = feature_block(inputs);
    const auto d_z = dz->matrix();
    if (dx) {
      dz_transposed_.resize(static_cast<std::size_t>(units_ * batch));
      Eigen::Map<RowMatrix<T>>(dz_transposed_.data(), units_, batch) = d_z.transpose();
      transposed_input_gradients_.prepare(block * batch);
    }
    // Each block of input features owns its rows of dW and its columns of dx: no reduction.
    parallel_for((inputs + block - 1) / block, [&](Index b) {
      const Index first = b * block, count = std::min(block, inputs - first);
      kernels::gemm<T>(count, units_, batch, x.data() + first, 1, inputs, dz->data(), units_,
                       kernel_.grad.data() + first * units_, units_, false);
      if (!dx) return;
      T* dx_transposed = transposed_input_gradients_.get();
      kernels::gemm<T>(count, batch, units_, kernel_.value.data() + first * units_, units_, 1,
                       dz_transposed_.data(), batch, dx_transposed, batch, false);
      dx->matrix().middleCols(first, count) =
          Eigen::Map<const RowMatrix<T>>(dx_transposed, count, batch).transpose();
    });
    RowVectorMap<T>(bias_.grad.data(), units_) = d_z.colwise().sum();
  }

 private:
  template <typename S>
  using RowVectorMap =
      Eigen::Map<std::conditional_t<std::is_const_v<S>, const Eigen::Matrix<T, 1, Eigen::Dynamic>,
                                    Eigen::Matrix<T, 1, Eigen::Dynamic>>>;

  static constexpr Index max_block_features = 2048;

  /// The input features of one thread's block: at most max_block_features, and the blocks as
  /// many as a multiple of the thread count, so that every thread gets the same share (57,600
  /// inputs on 2 threads: 30 blocks of 1,920, where blocks of 2,048 split 15 to 13.1).
  static Index feature_block(Index inputs) {
    const Index threads = num_threads();
    Index blocks = (inputs + max_block_features - 1) / max_block_features;
    if (blocks > 1) blocks = (blocks + threads - 1) / threads * threads;
    const Index block = (inputs + blocks - 1) / blocks;
    return (block + 15) / 16 * 16;  // whole vectors of x's rows
  }

  Index units_;
  Activation activation_;
  Parameter<T> kernel_;
  Parameter<T> bias_;
  Tensor<T> dz_;
  AlignedVector<T> dz_transposed_;
  ThreadScratch<T> partial_products_;
  ThreadScratch<T> transposed_input_gradients_;
};

}  // namespace stratum
