// MaxPool2D: the maximum over each pooling window, per channel.
//
//   x (N, H, W, C) -> y (N, OH, OW, C),  OH = floor((H - pool_h) / stride_h) + 1 for "valid"
//                                        (Keras' floor semantics: rows that do not fill a
//                                        window are dropped), ceil(H / stride_h) for "same".
//
//   forward   y[n,oy,ox,c] = max over the window of x[n, oy*sh-pt+ky, ox*sw-pl+kx, c]
//   backward  the max is locally the identity on its argument and constant in the others,
//             so dy[n,oy,ox,c] flows to the one input that was the maximum:
//             dx[argmax] += dy[n,oy,ox,c],  every other dx gets 0 from this window.
// On ties the first maximum in row-major window order wins (as in TensorFlow and PyTorch).
// Windows may overlap when stride < pool size, hence "+=". A NaN in a window is the maximum,
// so NaNs propagate instead of vanishing.
//
// Forward records each argmax as the tap's index in its window (ky * pool_w + kx), one byte per
// output element: a quarter of what full offsets would take (6 MB instead of 24 MB per
// training step of the notebook's network). Windows therefore have at most 256 taps.
//
// The loops are in kernels/max_pool2d.hpp. This layer owns the argmax, so that Conv2D can run
// a pool fused after it on the same kernels: pooling each band of its output while in cache
// (kernels::max_pool2d_row), and making its dz from this layer's argmax block by block
// (kernels::max_pool2d_route_gradient; Conv2D::forward_pooled).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "../kernels/max_pool2d.hpp"
#include "layer.hpp"

namespace stratum {

template <typename T>
class MaxPool2D final : public Layer<T> {
 public:
  /// `strides` defaults to the pool size, as in Keras.
  explicit MaxPool2D(Size2 pool_size = 2, std::optional<Size2> strides = std::nullopt,
                     Padding padding = Padding::valid)
      : pool_size_(pool_size), strides_(strides.value_or(pool_size)), padding_(padding) {
    if (pool_size_.h < 1 || pool_size_.w < 1 || strides_.h < 1 || strides_.w < 1)
      throw Error("MaxPool2D: pool size and strides must be positive");
  }

  [[nodiscard]] std::string type_name() const override { return "MaxPooling2D"; }
  [[nodiscard]] LayerConfig config() const override {
    return {type_name(),
            {{"pool_h", double(pool_size_.h)},
             {"pool_w", double(pool_size_.w)},
             {"stride_h", double(strides_.h)},
             {"stride_w", double(strides_.w)},
             {"padding", double(padding_)}}};
  }
  [[nodiscard]] Size2 pool_size() const { return pool_size_; }
  [[nodiscard]] Size2 strides() const { return strides_; }
  [[nodiscard]] Padding padding() const { return padding_; }

 protected:
  Shape do_build(const Shape& in, Random& /*rng*/) override {
    if (in.rank() != 3) this->fail_shape("(None, height, width, channels)", in);
    const WindowGeometry g = geometry(1);
    if (g.out_h < 1 || g.out_w < 1)
      throw ShapeError(this->describe() + ": a " + std::to_string(pool_size_.h) + "x" +
                       std::to_string(pool_size_.w) + " pool does not fit input of shape " +
                       in.to_batch_string());
    if (pool_size_.h * pool_size_.w > 256)
      throw ShapeError(this->describe() +
                       ": pools of more than 256 values are not supported, got " +
                       std::to_string(pool_size_.h) + "x" + std::to_string(pool_size_.w));
    return {g.out_h, g.out_w, in[2]};
  }

  void do_forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override {
    // Backward needs the argmax; inference, which rarely runs backward, skips recording it.
    const WindowGeometry g = geometry(x.dim(0));
    kernels::max_pool2d_forward(g, x.data(), y.data(), start_forward(g, mode == Mode::training));
  }

  void do_backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                   Tensor<T>* dx) override {
    if (!dx) return;
    if (!argmax_recorded_) {  // the forward pass ran in inference mode: find the argmax now
      Tensor<T> recomputed(y.shape());
      do_forward(x, recomputed, Mode::training);
    }
    const WindowGeometry g = geometry(x.dim(0));
    if (disjoint_windows())
      kernels::max_pool2d_backward_disjoint(g, argmax_.data(), dy.data(), dx->data());
    else
      kernels::max_pool2d_backward_overlapping(g, argmax_.data(), dy.data(), dx->data());
  }

 public:
  // What Conv2D::forward_pooled and backward_pooled need to run this layer fused with the
  // convolution before it (see there).

  /// Whether no input pixel lies in two windows (stride >= pool size, the usual case).
  [[nodiscard]] bool disjoint_windows() const {
    return strides_.h >= pool_size_.h && strides_.w >= pool_size_.w;
  }

  /// The pooling's geometry over a batch of `batch` inputs of the built shape.
  [[nodiscard]] WindowGeometry geometry(Index batch) const {
    const Shape& in = this->input_shape();
    return make_window_geometry(batch, in[0], in[1], in[2], pool_size_, strides_, padding_, in[2]);
  }

  /// Readies the argmax for a forward pass of geometry `g` that records it (or not), and returns
  /// where the pass records it (null if it does not).
  std::uint8_t* start_forward(const WindowGeometry& g, bool record_argmax) {
    argmax_recorded_ = record_argmax;
    if (!record_argmax) return nullptr;
    argmax_.resize(static_cast<std::size_t>(g.batch * g.out_pixels() * g.out_c));
    return argmax_.data();
  }

  /// The argmax of the latest forward pass that recorded it: per output element, its maximum's
  /// tap in the window (ky * pool_w + kx).
  [[nodiscard]] const std::uint8_t* argmax() const { return argmax_.data(); }

 private:
  Size2 pool_size_;
  Size2 strides_;
  Padding padding_;
  std::vector<std::uint8_t> argmax_;  // per output element: its maximum's tap in the window
  bool argmax_recorded_ = false;      // by the latest forward pass
};

}  // namespace stratum
