// Conv2D: a 2-D convolution with bias and an optional fused activation.
//
//   x (N, H, W, C)  kernel w (KH, KW, C, F)  bias b (F)  ->  y (N, OH, OW, F)
//
//   forward   z[n,oy,ox,f] = b[f] + sum_{ky,kx,c} x[n, oy*sh-pt+ky, ox*sw-pl+kx, c] * w[ky,kx,c,f]
//             y = activation(z)
//   backward  dz = dy * activation'(z)                       (layers/activation.hpp)
//             dw[ky,kx,c,f] = sum_{n,oy,ox} dz[n,oy,ox,f] * x[n, oy*sh-pt+ky, ox*sw-pl+kx, c]
//             db[f]         = sum_{n,oy,ox} dz[n,oy,ox,f]
//             dx[n,iy,ix,c] = sum of dz[n,oy,ox,f] * w[ky,kx,c,f] over every window tap
//                             (oy,ox,ky,kx) that read x[n,iy,ix,c]
// Padding follows Keras ("valid" or "same", kernels/conv2d_geometry.hpp). The sums run in
// kernels/conv2d.hpp (GEMMs straight on the image, or im2col + GEMM);
// kernels/conv2d_reference.hpp spells them out as plain loops.
//
// Followed by a MaxPool2D p = pool(y) whose windows do not overlap, Sequential runs the two
// layers fused (forward_pooled, backward_pooled), and y, four times the size of p for 2x2 pools,
// is never stored:
//   forward   the convolution runs in bands of output rows; each band gets its activation and
//             is pooled while it is in cache.
//   backward  the pool sends dp to each window's argmax and nothing elsewhere; at the argmax
//             y equals the pooled value p, so there dz = dp * activation'(p) (written in terms
//             of the output, as every activation's derivative here is), and dz = 0 elsewhere.
//             dp * activation'(p) is made once at the pooled size; the kernels scatter it into
//             blocks of dz as they need them, so no dz tensor exists. Where both backward
//             passes run on the direct kernels, they run together image by image and scatter
//             each image's dz once (kernels::conv2d_backward); otherwise each pass scatters
//             the blocks it reads (rows, and tiles of one image), so the scatter runs twice.
#pragma once

#include "../kernels/conv2d.hpp"
#include "../kernels/max_pool2d.hpp"
#include "activation.hpp"
#include "initializers.hpp"
#include "layer.hpp"
#include "max_pool2d.hpp"

namespace stratum {

template <typename T>
class Conv2D final : public Layer<T> {
 public:
  Conv2D(Index filters, Size2 kernel_size, Activation activation = Activation::linear,
         Size2 strides = 1, Padding padding = Padding::valid)
      : filters_(filters),
        kernel_size_(kernel_size),
        strides_(strides),
        padding_(padding),
        activation_(activation) {
    if (filters < 1 || kernel_size.h < 1 || kernel_size.w < 1 || strides.h < 1 || strides.w < 1)
      throw Error("Conv2D: filters, kernel size and strides must be positive");
  }

  [[nodiscard]] std::string type_name() const override { return "Conv2D"; }
  std::vector<Parameter<T>*> parameters() override { return {&kernel_, &bias_}; }
  [[nodiscard]] LayerConfig config() const override {
    return {type_name(),
            {{"filters", double(filters_)},
             {"kernel_h", double(kernel_size_.h)},
             {"kernel_w", double(kernel_size_.w)},
             {"stride_h", double(strides_.h)},
             {"stride_w", double(strides_.w)},
             {"padding", double(padding_)},
             {"activation", double(activation_)}}};
  }

  [[nodiscard]] Index filters() const { return filters_; }
  [[nodiscard]] Size2 kernel_size() const { return kernel_size_; }
  [[nodiscard]] Size2 strides() const { return strides_; }
  [[nodiscard]] Padding padding() const { return padding_; }
  [[nodiscard]] Activation activation() const { return activation_; }
  Parameter<T>& kernel() { return kernel_; }
  Parameter<T>& bias() { return bias_; }

  /// Whether `pool`, built on this layer's output, can run fused with it: its windows must not
  /// overlap, and the activation must be element-wise (softmax mixes the channels of a pixel).
  [[nodiscard]] bool fuses_with(const MaxPool2D<T>& pool) const {
    return pool.disjoint_windows() && activation_ != Activation::softmax &&
           pool.input_shape() == this->output_shape();
  }

  /// pooled = pool(this layer(x)), without storing this layer's output (see the top of the
  /// file). The pool records its argmax in every mode: backward cannot recompute it later.
  void forward_pooled(const Tensor<T>& x, MaxPool2D<T>& pool, Tensor<T>& pooled) {
    check_fusion(x, pool);
    const WindowGeometry g = geometry(x.dim(0), this->input_shape());
    const WindowGeometry pooling = pool.geometry(x.dim(0));
    pooled.resize(pool.output_shape().with_batch(x.dim(0)));
    std::uint8_t* argmax = pool.start_forward(pooling, true);
    kernels::conv2d_forward_bands(
        g, pooling, x.data(), kernel_.value.data(), bias_.value.data(), workspace_,
        [&](Index n, Index oy, T* band, Index first_row, Index rows) {
          activation_forward(activation_, band, rows * g.out_w * filters_, filters_);
          kernels::max_pool2d_row<true>(pooling, n, oy, band, first_row, pooled.data(), argmax);
        });
  }

  /// The backward pass of the fused pair: given x, pooled = forward_pooled(x) and d_pooled =
  /// dL/dpooled, sets this layer's parameter gradients and, unless `dx` is null, dx = dL/dx.
  void backward_pooled(const Tensor<T>& x, MaxPool2D<T>& pool, const Tensor<T>& pooled,
                       const Tensor<T>& d_pooled, Tensor<T>* dx) {
    check_fusion(x, pool);
    if (pooled.shape() != pool.output_shape().with_batch(x.dim(0)) ||
        d_pooled.shape() != pooled.shape())
      throw ShapeError(this->describe() + " fused with " + pool.describe() +
                       ": backward received a pooled output of shape " +
                       pooled.shape().to_string() + " and a gradient of shape " +
                       d_pooled.shape().to_string() + " for input " + x.shape().to_string());
    const WindowGeometry g = geometry(x.dim(0), this->input_shape());
    const WindowGeometry pooling = pool.geometry(x.dim(0));
    d_pooled_z_.resize(static_cast<std::size_t>(pooled.size()));
    activation_backward_parallel(activation_, pooled.data(), d_pooled.data(), d_pooled_z_.data(),
                                 pooled.size(), filters_);
    const std::uint8_t* argmax = pool.argmax();
    auto gradient_rows = [&](Index offset, Index count, T* dz) {
      kernels::max_pool2d_route_gradient(pooling, argmax, d_pooled_z_.data(), offset / filters_,
                                         count / filters_, dz);
    };
    if (dx) dx->resize(x.shape());
    kernels::conv2d_backward(g, x.data(), static_cast<const T*>(nullptr), kernel_.value.data(),
                             dx ? dx->data() : nullptr, kernel_.grad.data(), bias_.grad.data(),
                             workspace_, gradient_rows);
  }

 protected:
  Shape do_build(const Shape& in, Random& rng) override {
    if (in.rank() != 3) this->fail_shape("(None, height, width, channels)", in);
    const WindowGeometry g = geometry(1, in);
    if (g.out_h < 1 || g.out_w < 1)
      throw ShapeError(this->describe() + ": a " + std::to_string(kernel_size_.h) + "x" +
                       std::to_string(kernel_size_.w) + " kernel with " + to_string(padding_) +
                       " padding does not fit input of shape " + in.to_batch_string());
    kernel_.name = "kernel";
    kernel_.decayed = true;
    bias_.name = "bias";
    kernel_.allocate({kernel_size_.h, kernel_size_.w, in[2], filters_});
    bias_.allocate({filters_});
    glorot_uniform(kernel_.value, g.patch_size(), kernel_size_.h * kernel_size_.w * filters_, rng);
    return {g.out_h, g.out_w, filters_};
  }

  void do_forward(const Tensor<T>& x, Tensor<T>& y, Mode /*mode*/) override {
    const WindowGeometry g = geometry(x.dim(0), this->input_shape());
    // The activation runs on each block of output as the kernel finishes it, while in cache.
    kernels::conv2d_forward(g, x.data(), kernel_.value.data(), bias_.value.data(), y.data(),
                            workspace_, [this](T* values, Index count) {
                              activation_forward(activation_, values, count, filters_);
                            });
  }

  void do_backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                   Tensor<T>* dx) override {
    const WindowGeometry g = geometry(x.dim(0), this->input_shape());
    T* d_input = dx ? dx->data() : nullptr;
    if (activation_ == Activation::linear)
      return kernels::conv2d_backward(g, x.data(), dy.data(), kernel_.value.data(), d_input,
                                      kernel_.grad.data(), bias_.grad.data(), workspace_);
    // dz = dy * activation'(z) is made block by block inside the kernels, in cache, rather than
    // as a whole tensor (30 MB for the notebook's second layer): made once per image when both
    // passes run image by image, else once in each pass (the cheap element-wise work twice).
    auto gradient_rows = [&](Index offset, Index count, T* dz) {
      activation_backward(activation_, y.data() + offset, dy.data() + offset, dz, count, filters_);
    };
    kernels::conv2d_backward(g, x.data(), dy.data(), kernel_.value.data(), d_input,
                             kernel_.grad.data(), bias_.grad.data(), workspace_, gradient_rows);
  }

 private:
  [[nodiscard]] WindowGeometry geometry(Index batch, const Shape& in) const {
    return make_window_geometry(batch, in[0], in[1], in[2], kernel_size_, strides_, padding_,
                                filters_);
  }

  void check_fusion(const Tensor<T>& x, const MaxPool2D<T>& pool) const {
    this->check_input(x);
    if (!fuses_with(pool))
      throw Error(this->describe() + " cannot run fused with " + pool.describe() +
                  " (overlapping windows, softmax, or a pool not built on this layer's output)");
  }

  Index filters_;
  Size2 kernel_size_;
  Size2 strides_;
  Padding padding_;
  Activation activation_;
  Parameter<T> kernel_;
  Parameter<T> bias_;
  kernels::Conv2DWorkspace<T> workspace_;
  AlignedVector<T> d_pooled_z_;  // dp * activation'(p) of the fused backward pass
};

}  // namespace stratum
