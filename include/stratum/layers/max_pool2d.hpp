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
#pragma once

#include <cstdint>
#include <limits>
#include <optional>

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
    if (in.num_elements() > std::numeric_limits<std::int32_t>::max())
      throw ShapeError(this->describe() + ": input " + in.to_batch_string() + " is too large");
    return {g.out_h, g.out_w, in[2]};
  }

  void do_forward(const Tensor<T>& x, Tensor<T>& y, Mode /*mode*/) override {
    const WindowGeometry g = geometry(x.dim(0), this->input_shape());
    argmax_.resize(static_cast<std::size_t>(y.size()));
    const Index in_size = g.in_h * g.in_w * g.in_c, out_size = g.out_pixels() * g.out_c;

    STRATUM_OMP(parallel for schedule(static))
    for (Index n = 0; n < g.batch; ++n) {
      const T* image = x.data() + n * in_size;
      for (Index oy = 0; oy < g.out_h; ++oy)
        for (Index ox = 0; ox < g.out_w; ++ox) {
          const Index out_offset = n * out_size + (oy * g.out_w + ox) * g.out_c;
          T* best = y.data() + out_offset;
          std::int32_t* where = argmax_.data() + out_offset;
          bool first_tap = true;
          for_each_tap_inside(g, oy, ox, [&](Index, Index, Index iy, Index ix) {
            const auto pixel = static_cast<std::int32_t>((iy * g.in_w + ix) * g.in_c);
            const T* v = image + pixel;
            if (first_tap) {  // every window has at least one tap inside the image
              for (Index c = 0; c < g.in_c; ++c) {
                best[c] = v[c];
                where[c] = pixel + static_cast<std::int32_t>(c);
              }
              first_tap = false;
              return;
            }
            // Branch-free over channels, so the compiler vectorises it: a later tap wins if it
            // is larger, or if it is the first NaN.
            for (Index c = 0; c < g.in_c; ++c) {
              const bool take = v[c] > best[c] || (v[c] != v[c] && best[c] == best[c]);
              best[c] = take ? v[c] : best[c];
              where[c] = take ? pixel + static_cast<std::int32_t>(c) : where[c];
            }
          });
        }
    }
  }

  void do_backward(const Tensor<T>& x, const Tensor<T>& /*y*/, const Tensor<T>& dy,
                   Tensor<T>* dx) override {
    if (!dx) return;
    const Index batch = x.dim(0);
    const Index in_size = x.size() / batch, out_size = dy.size() / batch;
    STRATUM_OMP(parallel for schedule(static))
    for (Index n = 0; n < batch; ++n) {
      T* image_grad = dx->data() + n * in_size;
      std::fill(image_grad, image_grad + in_size, T(0));
      for (Index o = n * out_size; o < (n + 1) * out_size; ++o)
        image_grad[argmax_[static_cast<std::size_t>(o)]] += dy[o];
    }
  }

 private:
  [[nodiscard]] WindowGeometry geometry(Index batch, const Shape& in) const {
    return make_window_geometry(batch, in[0], in[1], in[2], pool_size_, strides_, padding_, in[2]);
  }

  Size2 pool_size_;
  Size2 strides_;
  Padding padding_;
  std::vector<std::int32_t> argmax_;  // per output element: offset of its maximum in the sample
};

}  // namespace stratum
