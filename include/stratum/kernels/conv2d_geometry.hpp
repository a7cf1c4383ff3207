// The sizes that describe one 2-D convolution (or pooling window) over an NHWC batch, and the
// padding rules of Keras.
//
//   valid: no padding; out = floor((in - kernel) / stride) + 1
//   same:  out = ceil(in / stride); the total padding max((out - 1) * stride + kernel - in, 0)
//          is split with the smaller half on top/left, as TensorFlow does.
#pragma once

#include <string>

#include "../tensor.hpp"

namespace stratum {

enum class Padding { valid, same };

inline const char* to_string(Padding p) { return p == Padding::valid ? "valid" : "same"; }

/// A height and width (kernel size, stride, pool size); one number means a square.
struct Size2 {
  Index h = 1;
  Index w = 1;
  Size2(Index square) : h(square), w(square) {}  // NOLINT: implicit, so `3` reads as 3x3
  Size2(Index height, Index width) : h(height), w(width) {}
  friend bool operator==(const Size2&, const Size2&) = default;
};

struct WindowGeometry {
  Index batch = 0;
  Index in_h = 0, in_w = 0, in_c = 0;
  Index out_h = 0, out_w = 0, out_c = 0;
  Index kernel_h = 0, kernel_w = 0;
  Index stride_h = 1, stride_w = 1;
  Index pad_top = 0, pad_left = 0;

  [[nodiscard]] Index out_pixels() const { return out_h * out_w; }
  /// Length of one im2col patch row: kernel_h * kernel_w * in_c.
  [[nodiscard]] Index patch_size() const { return kernel_h * kernel_w * in_c; }
};

/// Calls body(ky, kx, iy, ix) for each tap (ky, kx) of output pixel (oy, ox)'s window that
/// reads inside the image, at input pixel (iy, ix); taps over the padding read zeros and are
/// skipped.
template <typename Body>
inline void for_each_tap_inside(const WindowGeometry& g, Index oy, Index ox, Body&& body) {
  for (Index ky = 0; ky < g.kernel_h; ++ky) {
    const Index iy = oy * g.stride_h - g.pad_top + ky;
    if (iy < 0 || iy >= g.in_h) continue;
    for (Index kx = 0; kx < g.kernel_w; ++kx) {
      const Index ix = ox * g.stride_w - g.pad_left + kx;
      if (ix < 0 || ix >= g.in_w) continue;
      body(ky, kx, iy, ix);
    }
  }
}

/// Output length and leading padding of one spatial axis, following Keras.
/// Returns out = 0 when a valid window does not fit.
inline std::pair<Index, Index> output_length(Index in, Index kernel, Index stride, Padding padding) {
  if (padding == Padding::valid) return {in >= kernel ? (in - kernel) / stride + 1 : 0, 0};
  const Index out = (in + stride - 1) / stride;
  const Index total_pad = std::max<Index>((out - 1) * stride + kernel - in, 0);
  return {out, total_pad / 2};
}

/// Geometry of a window op over input (in_h, in_w, in_c) per sample.
inline WindowGeometry make_window_geometry(Index batch, Index in_h, Index in_w, Index in_c,
                                           Size2 kernel, Size2 stride, Padding padding,
                                           Index out_c) {
  WindowGeometry g;
  g.batch = batch;
  g.in_h = in_h;
  g.in_w = in_w;
  g.in_c = in_c;
  g.kernel_h = kernel.h;
  g.kernel_w = kernel.w;
  g.stride_h = stride.h;
  g.stride_w = stride.w;
  std::tie(g.out_h, g.pad_top) = output_length(in_h, kernel.h, stride.h, padding);
  std::tie(g.out_w, g.pad_left) = output_length(in_w, kernel.w, stride.w, padding);
  g.out_c = out_c;
  return g;
}

}  // namespace stratum
