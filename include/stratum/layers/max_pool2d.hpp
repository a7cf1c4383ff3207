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
// Both passes are made of two public pieces, pool_row (forward, one output row) and
// route_gradient (backward, a run of input pixels), so that Conv2D can run a pool fused after
// it: pooling each band of its output while in cache, and making its dz from this layer's
// argmax block by block (Conv2D::forward_pooled).
#pragma once

#include <cstdint>
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
    start_forward(g, mode == Mode::training);
    const Index image_size = g.in_h * g.in_w * g.in_c;
    STRATUM_OMP(parallel for schedule(static))
    for (Index row = 0; row < g.batch * g.out_h; ++row) {
      const Index n = row / g.out_h, oy = row % g.out_h;
      if (argmax_recorded_)
        pool_row<true>(g, n, oy, x.data() + n * image_size, 0, y.data());
      else
        pool_row<false>(g, n, oy, x.data() + n * image_size, 0, y.data());
    }
  }

  void do_backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                   Tensor<T>* dx) override {
    if (!dx) return;
    if (!argmax_recorded_) {  // the forward pass ran in inference mode: find the argmax now
      Tensor<T> recomputed(y.shape());
      do_forward(x, recomputed, Mode::training);
    }
    const WindowGeometry g = geometry(x.dim(0));
    if (!disjoint_windows()) return backward_overlapping(g, dy, *dx);
    // Every input pixel lies in at most one window, so each dx is written exactly once, with
    // no zero-fill first and no scattered adds.
    STRATUM_OMP(parallel for schedule(static))
    for (Index row = 0; row < g.batch * g.in_h; ++row)
      route_gradient(g, dy.data(), row * g.in_w, g.in_w, dx->data() + row * g.in_w * g.in_c);
  }

 public:
  // The pieces Conv2D::forward_pooled and backward_pooled use to run this layer fused with the
  // convolution before it (see there), and that this layer's own passes are made of.

  /// Whether the windows do not overlap (stride >= pool size, the usual case).
  [[nodiscard]] bool disjoint_windows() const {
    return strides_.h >= pool_size_.h && strides_.w >= pool_size_.w;
  }

  /// The pooling's geometry over a batch of `batch` inputs of the built shape.
  [[nodiscard]] WindowGeometry geometry(Index batch) const {
    const Shape& in = this->input_shape();
    return make_window_geometry(batch, in[0], in[1], in[2], pool_size_, strides_, padding_, in[2]);
  }

  /// Readies the argmax for a forward pass of geometry `g` that records it (or not).
  void start_forward(const WindowGeometry& g, bool record_argmax) {
    argmax_recorded_ = record_argmax;
    if (record_argmax) argmax_.resize(static_cast<std::size_t>(g.batch * g.out_pixels() * g.out_c));
  }

  /// Output row oy of image n: y[n, oy, :, :], and the argmax if recording. `rows` holds input
  /// rows [first_row, ...) of image n: the whole image, or the band of a convolution's output
  /// that this row's windows read.
  template <bool record_argmax>
  void pool_row(const WindowGeometry& g, Index n, Index oy, const T* rows, Index first_row,
                T* y) {
    // The window's taps are tracked in 32 bits, the width of T, so that the branch-free loop
    // below vectorises; they are narrowed to bytes once the window is done.
    thread_local std::vector<std::int32_t> taps;
    if (record_argmax) taps.resize(static_cast<std::size_t>(g.in_c));
    for (Index ox = 0; ox < g.out_w; ++ox) {
      const Index out_offset = ((n * g.out_h + oy) * g.out_w + ox) * g.out_c;
      T* best = y + out_offset;
      const Index top = oy * g.stride_h - g.pad_top, left = ox * g.stride_w - g.pad_left;
      if (pool_size_ == Size2{2, 2} && top >= 0 && left >= 0 && top + 2 <= g.in_h &&
          left + 2 <= g.in_w) {  // the usual window, wholly inside the image
        pool_window_2x2<record_argmax>(g, rows + ((top - first_row) * g.in_w + left) * g.in_c,
                                       best, record_argmax ? argmax_.data() + out_offset : nullptr);
        continue;
      }
      std::int32_t* where = taps.data();
      bool first_tap = true;
      for_each_tap_inside(g, oy, ox, [&](Index ky, Index kx, Index iy, Index ix) {
        const T* v = rows + ((iy - first_row) * g.in_w + ix) * g.in_c;
        const auto tap = static_cast<std::int32_t>(ky * pool_size_.w + kx);
        if (first_tap) {  // every window has at least one tap inside the image
          std::copy(v, v + g.in_c, best);
          if (record_argmax) std::fill(where, where + g.in_c, tap);
          first_tap = false;
          return;
        }
        // Branch-free over channels, so the compiler vectorises it.
        for (Index c = 0; c < g.in_c; ++c) {
          const bool take = later_tap_wins(v[c], best[c]);
          best[c] = take ? v[c] : best[c];
          if (record_argmax) where[c] = take ? tap : where[c];
        }
      });
      if (record_argmax) std::copy(taps.begin(), taps.end(), argmax_.begin() + out_offset);
    }
  }

  /// Whether a later tap with value v replaces the window's maximum so far: if it is larger, or
  /// if it is the first NaN (so NaNs propagate; ties keep the first maximum).
  static bool later_tap_wins(T v, T best) { return v > best || (v != v && best == best); }

  /// A 2x2 window wholly inside the image: each channel's four taps are compared in registers
  /// and the result stored once. (The general loop above updates y tap by tap, and GCC guards
  /// each of those masked stores with a branch on "any lane changed", which mispredicts on
  /// every other tap: max_pool1_forward took 5.1-5.4 ms that way, 4.3-4.5 ms this way.)
  template <bool record_argmax>
  static void pool_window_2x2(const WindowGeometry& g, const T* top_left, T* best,
                              std::uint8_t* where) {
    const Index C = g.in_c;
    const T* taps[4] = {top_left, top_left + C, top_left + g.in_w * C,
                        top_left + (g.in_w + 1) * C};
    for (Index c = 0; c < C; ++c) {
      T m = taps[0][c];
      std::uint8_t w = 0;
      for (std::uint8_t t = 1; t < 4; ++t) {
        const T v = taps[t][c];
        // later_tap_wins(v, m), written out: through the function, GCC's code for this loop
        // measured slower (max_pool1_forward medians 3.8-4.1 ms against 3.4-3.9 ms).
        const bool take = v > m || (v != v && m == m);
        m = take ? v : m;
        w = take ? t : w;
      }
      best[c] = m;
      if (record_argmax) where[c] = w;
    }
  }

  /// For disjoint windows, after a forward pass that recorded the argmax: dx of the input
  /// pixels [first_pixel, first_pixel + count) of the batch (numbered image by image, row by
  /// row), which is dy where the pixel was its window's maximum and 0 everywhere else.
  void route_gradient(const WindowGeometry& g, const T* dy, Index first_pixel, Index count,
                      T* dx) const {
    const Index C = g.in_c, image_pixels = g.in_h * g.in_w;
    // Where pixel p lies: image n, row iy, column ix; in window (oy, ox) at tap (ky, kx). The
    // divisions run once per row; along a row the column counters just step.
    Index p = first_pixel;
    while (p < first_pixel + count) {
      const Index n = p / image_pixels, iy = p % image_pixels / g.in_w;
      const Index oy = (iy + g.pad_top) / g.stride_h, ky = iy + g.pad_top - oy * g.stride_h;
      const bool row_pooled = ky < pool_size_.h && oy < g.out_h;
      Index ix = p % g.in_w;
      Index ox = (ix + g.pad_left) / g.stride_w, kx = ix + g.pad_left - ox * g.stride_w;
      for (; ix < g.in_w && p < first_pixel + count; ++ix, ++p, dx += C) {
        if (!row_pooled || kx >= pool_size_.w || ox >= g.out_w) {
          std::fill(dx, dx + C, T(0));  // a pixel no window reads
        } else {
          const Index out_offset = ((n * g.out_h + oy) * g.out_w + ox) * C;
          const std::uint8_t* where = argmax_.data() + out_offset;
          const T* grad = dy + out_offset;
          const auto tap = static_cast<std::uint8_t>(ky * pool_size_.w + kx);
          for (Index c = 0; c < C; ++c) dx[c] = where[c] == tap ? grad[c] : T(0);
        }
        if (++kx == g.stride_w) {
          kx = 0;
          ++ox;
        }
      }
    }
  }

 private:
  /// Overlapping windows: zero dx, then add each window's gradient at its recorded tap.
  void backward_overlapping(const WindowGeometry& g, const Tensor<T>& dy, Tensor<T>& dx) const {
    const Index C = g.in_c, in_size = g.in_h * g.in_w * C, out_size = g.out_pixels() * C;
    STRATUM_OMP(parallel for schedule(static))
    for (Index n = 0; n < g.batch; ++n) {
      T* image_grad = dx.data() + n * in_size;
      std::fill(image_grad, image_grad + in_size, T(0));
      for (Index oy = 0; oy < g.out_h; ++oy)
        for (Index ox = 0; ox < g.out_w; ++ox) {
          const Index out_offset = n * out_size + (oy * g.out_w + ox) * C;
          for (Index c = 0; c < C; ++c) {
            const Index tap = argmax_[static_cast<std::size_t>(out_offset + c)];
            const Index iy = oy * g.stride_h - g.pad_top + tap / pool_size_.w;
            const Index ix = ox * g.stride_w - g.pad_left + tap % pool_size_.w;
            image_grad[(iy * g.in_w + ix) * C + c] += dy[out_offset + c];
          }
        }
    }
  }

  Size2 pool_size_;
  Size2 strides_;
  Padding padding_;
  std::vector<std::uint8_t> argmax_;  // per output element: its maximum's tap in the window
  bool argmax_recorded_ = false;      // by the latest forward pass
};

}  // namespace stratum
