// DepthwiseConv2D: each input channel convolved with its own M filters (M, the depth
// multiplier, is 1 in most networks), with bias and an optional fused activation; Keras'
// DepthwiseConv2D. Beside a 1x1 Conv2D it makes the "separable" block of MobileNet-style
// networks: about KH*KW / (KH*KW + C) of a full convolution's work.
//
//   x (N, H, W, C)  depthwise_kernel w (KH, KW, C, M)  bias b (C*M)  ->  y (N, OH, OW, C*M)
//
//   forward   z[n,oy,ox,c*M+m] = b[c*M+m] + sum_{ky,kx} x[n, oy*sh-pt+ky, ox*sw-pl+kx, c] *
//   w[ky,kx,c,m]
//             y = activation(z)
//   backward  dz = dy * activation'(z)                               (layers/activation.hpp)
//             dw[ky,kx,c,m] = sum_{n,oy,ox} dz[n,oy,ox,c*M+m] * x[n, oy*sh-pt+ky, ox*sw-pl+kx, c]
//             db[c*M+m]     = sum_{n,oy,ox} dz[n,oy,ox,c*M+m]
//             dx[n,iy,ix,c] = sum of dz[n,oy,ox,c*M+m] * w[ky,kx,c,m] over every window tap
//                             (oy,ox,ky,kx) that read x[n,iy,ix,c], and over m
// Output channel c*M + m is filter m of input channel c, as in TensorFlow, and the kernel is
// stored as Keras stores it, so weights carry over. Padding follows Keras ("valid" or "same",
// kernels/conv2d_geometry.hpp). The sums run in kernels/depthwise_conv2d.hpp;
// kernels/depthwise_conv2d_reference.hpp spells them out as plain loops.
//
// Initialisation as Keras': Glorot-uniform with Keras' fans for a (KH, KW, C, M) kernel,
// fan_in = KH*KW*C and fan_out = KH*KW*M (although each output sees only KH*KW inputs); zero
// biases.
#pragma once

#include "../kernels/depthwise_conv2d.hpp"
#include "activation.hpp"
#include "initializers.hpp"
#include "layer.hpp"

namespace stratum {

template <typename T>
class DepthwiseConv2D final : public Layer<T> {
 public:
  explicit DepthwiseConv2D(Size2 kernel_size, Size2 strides = 1, Padding padding = Padding::valid,
                           Index depth_multiplier = 1, Activation activation = Activation::linear,
                           bool use_bias = true)
      : kernel_size_(kernel_size),
        strides_(strides),
        padding_(padding),
        depth_multiplier_(depth_multiplier),
        activation_(activation),
        use_bias_(use_bias) {
    if (kernel_size.h < 1 || kernel_size.w < 1 || strides.h < 1 || strides.w < 1 ||
        depth_multiplier < 1)
      throw Error("DepthwiseConv2D: kernel size, strides and depth multiplier must be positive");
  }

  [[nodiscard]] std::string type_name() const override { return "DepthwiseConv2D"; }
  std::vector<Parameter<T>*> parameters() override {
    if (use_bias_) return {&kernel_, &bias_};
    return {&kernel_};
  }
  [[nodiscard]] LayerConfig config() const override {
    return {type_name(),
            {{"kernel_h", double(kernel_size_.h)},
             {"kernel_w", double(kernel_size_.w)},
             {"stride_h", double(strides_.h)},
             {"stride_w", double(strides_.w)},
             {"padding", double(padding_)},
             {"depth_multiplier", double(depth_multiplier_)},
             {"activation", double(activation_)},
             {"use_bias", use_bias_ ? 1.0 : 0.0}}};
  }

  [[nodiscard]] Size2 kernel_size() const { return kernel_size_; }
  [[nodiscard]] Size2 strides() const { return strides_; }
  [[nodiscard]] Padding padding() const { return padding_; }
  [[nodiscard]] Index depth_multiplier() const { return depth_multiplier_; }
  [[nodiscard]] Activation activation() const { return activation_; }
  [[nodiscard]] bool use_bias() const { return use_bias_; }
  Parameter<T>& kernel() { return kernel_; }
  /// The bias; only a layer built with use_bias has one.
  Parameter<T>& bias() {
    if (!use_bias_) throw Error(this->describe() + " has no bias (use_bias is false)");
    return bias_;
  }

 protected:
  Shape do_build(const Shape& in, Random& rng) override {
    if (in.rank() != 3) this->fail_shape("(None, height, width, channels)", in);
    const WindowGeometry g = geometry(1, in);
    if (g.out_h < 1 || g.out_w < 1)
      throw ShapeError(this->describe() + ": a " + std::to_string(kernel_size_.h) + "x" +
                       std::to_string(kernel_size_.w) + " kernel with " + to_string(padding_) +
                       " padding does not fit input of shape " + in.to_batch_string());
    kernel_.name = "depthwise_kernel";
    kernel_.decayed = true;
    kernel_.allocate({kernel_size_.h, kernel_size_.w, in[2], depth_multiplier_});
    const Index taps = kernel_size_.h * kernel_size_.w;
    glorot_uniform(kernel_.value, taps * in[2], taps * depth_multiplier_, rng);
    if (use_bias_) {
      bias_.name = "bias";
      bias_.allocate({g.out_c});
    }
    return {g.out_h, g.out_w, g.out_c};
  }

  void do_forward(const Tensor<T>& x, Tensor<T>& y, Mode /*mode*/) override {
    const WindowGeometry g = geometry(x.dim(0), this->input_shape());
    // The activation runs on each output row as the kernel finishes it, while in cache.
    kernels::depthwise_conv2d_forward(
        g, x.data(), kernel_.value.data(), bias_data(), y.data(), workspace_,
        [&](T* values, Index count) { activation_forward(activation_, values, count, g.out_c); });
  }

  void do_backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                   Tensor<T>* dx) override {
    const WindowGeometry g = geometry(x.dim(0), this->input_shape());
    const T* dz = dy.data();
    if (activation_ != Activation::linear) {
      dz_.resize(dy.shape());
      activation_backward_parallel(activation_, y.data(), dy.data(), dz_.data(), dy.size(),
                                   g.out_c);
      dz = dz_.data();
    }
    kernels::depthwise_conv2d_backward_weights(g, x.data(), dz, kernel_.grad.data(),
                                               use_bias_ ? bias_.grad.data() : nullptr, workspace_);
    if (dx)
      kernels::depthwise_conv2d_backward_data(g, dz, kernel_.value.data(), dx->data(), workspace_);
  }

 private:
  [[nodiscard]] WindowGeometry geometry(Index batch, const Shape& in) const {
    return make_window_geometry(batch, in[0], in[1], in[2], kernel_size_, strides_, padding_,
                                in[2] * depth_multiplier_);
  }

  [[nodiscard]] const T* bias_data() const { return use_bias_ ? bias_.value.data() : nullptr; }

  Size2 kernel_size_;
  Size2 strides_;
  Padding padding_;
  Index depth_multiplier_;
  Activation activation_;
  bool use_bias_;
  Parameter<T> kernel_;
  Parameter<T> bias_;
  kernels::DepthwiseConv2DWorkspace<T> workspace_;
  Tensor<T> dz_;  // dy * activation'(z), for an activation other than linear
};

}  // namespace stratum
