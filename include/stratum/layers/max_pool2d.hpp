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
// Backward finds each window's argmax again, as the first tap equal to the window's output y
// (or the first NaN when y is NaN): the same tap forward chose. Storing the argmax instead
// would cost an index per output element, 24 MB per training step in the notebook's network.
#pragma once

#include <optional>
#include <vector>

#include "../kernels/conv2d_geometry.hpp"
#include "../parallel.hpp"
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
            {{"pool_h", double(pool_size_.h)}, {"pool_w", double(pool_size_.w)},
             {"stride_h", double(strides_.h)}, {"stride_w", double(strides_.w)},
             {"padding", double(padding_)}}};
  }
  [[nodiscard]] Size2 pool_size() const { return pool_size_; }
  [[nodiscard]] Size2 strides() const { return strides_; }
  [[nodiscard]] Padding padding() const { return padding_; }

 protected:
  Shape do_build(const Shape& in, Random& /*rng*/) override {
    if (in.rank() != 3) this->fail_shape("(None, height, width, channels)", in);
    const WindowGeometry g = geometry(1, in);
    if (g.out_h < 1 || g.out_w < 1)
      throw ShapeError(this->describe() + ": a " + std::to_string(pool_size_.h) + "x" +
                       std::to_string(pool_size_.w) + " pool does not fit input of shape " +
                       in.to_batch_string());
    return {g.out_h, g.out_w, in[2]};
  }

  void do_forward(const Tensor<T>& x, Tensor<T>& y, Mode /*mode*/) override {
    const WindowGeometry g = geometry(x.dim(0), this->input_shape());
    const Index in_size = g.in_h * g.in_w * g.in_c, out_size = g.out_pixels() * g.out_c;

    STRATUM_OMP(parallel for schedule(static))
    for (Index n = 0; n < g.batch; ++n) {
      const T* image = x.data() + n * in_size;
      for (Index oy = 0; oy < g.out_h; ++oy)
        for (Index ox = 0; ox < g.out_w; ++ox) {
          T* best = y.data() + n * out_size + (oy * g.out_w + ox) * g.out_c;
          bool first_tap = true;
          for_each_tap_inside(g, oy, ox, [&](Index, Index, Index iy, Index ix) {
            const T* v = image + (iy * g.in_w + ix) * g.in_c;
            if (first_tap) {  // every window has at least one tap inside the image
              std::copy(v, v + g.in_c, best);
              first_tap = false;
              return;
            }
            // Branch-free over channels, so the compiler vectorises it: a later tap wins if it
            // is larger, or if it is the first NaN.
            for (Index c = 0; c < g.in_c; ++c) {
              const bool take = v[c] > best[c] || (v[c] != v[c] && best[c] == best[c]);
              best[c] = take ? v[c] : best[c];
            }
          });
        }
    }
  }

  void do_backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                   Tensor<T>* dx) override {
    if (!dx) return;
    const WindowGeometry g = geometry(x.dim(0), this->input_shape());
    const Index in_size = g.in_h * g.in_w * g.in_c, out_size = g.out_pixels() * g.out_c;
    STRATUM_OMP(parallel for schedule(static))
    for (Index n = 0; n < g.batch; ++n) {
      const T* image = x.data() + n * in_size;
      T* image_grad = dx->data() + n * in_size;
      std::fill(image_grad, image_grad + in_size, T(0));
      std::vector<unsigned char> pending(static_cast<std::size_t>(g.in_c));  // channel's max not yet found
      for (Index oy = 0; oy < g.out_h; ++oy)
        for (Index ox = 0; ox < g.out_w; ++ox) {
          const Index out_offset = n * out_size + (oy * g.out_w + ox) * g.out_c;
          const T* best = y.data() + out_offset;
          const T* grad = dy.data() + out_offset;
          std::fill(pending.begin(), pending.end(), 1);
          for_each_tap_inside(g, oy, ox, [&](Index, Index, Index iy, Index ix) {
            const T* v = image + (iy * g.in_w + ix) * g.in_c;
            T* d = image_grad + (iy * g.in_w + ix) * g.in_c;
            // Branch-free over channels: the first tap equal to the maximum (or the first NaN
            // when the maximum is NaN) takes the gradient.
            for (Index c = 0; c < g.in_c; ++c) {
              const bool is_max = v[c] == best[c] || (v[c] != v[c] && best[c] != best[c]);
              const bool take = pending[static_cast<std::size_t>(c)] && is_max;
              d[c] += take ? grad[c] : T(0);
              pending[static_cast<std::size_t>(c)] = pending[static_cast<std::size_t>(c)] && !take;
            }
          });
        }
    }
  }

 private:
  [[nodiscard]] WindowGeometry geometry(Index batch, const Shape& in) const {
    return make_window_geometry(batch, in[0], in[1], in[2], pool_size_, strides_, padding_, in[2]);
  }

  Size2 pool_size_;
  Size2 strides_;
  Padding padding_;
};

}  // namespace stratum
