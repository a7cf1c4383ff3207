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
    bias_.name = "bias";
    kernel_.allocate({in[0], units_});
    bias_.allocate({units_});
    glorot_uniform(kernel_.value, in[0], units_, rng);
    return {units_};
  }

  void do_forward(const Tensor<T>& x, Tensor<T>& y, Mode /*mode*/) override {
    auto z = y.matrix();
    z.noalias() = x.matrix() * kernel_.value.matrix();
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
    kernel_.grad.matrix().noalias() = x.matrix().transpose() * dz->matrix();
    RowVectorMap<T>(bias_.grad.data(), units_) = dz->matrix().colwise().sum();
    if (dx) dx->matrix().noalias() = dz->matrix() * kernel_.value.matrix().transpose();
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
};

}  // namespace stratum
