// Plain reference convolution: the definition, written as loops, against which the fast
// kernels are tested. Clear, and slow; nothing in training calls it.
//
// Shapes (NHWC activations, HWIO kernel, Keras layout):
//   input   x (N, H, W, C)        kernel w (KH, KW, C, F)     bias b (F)
//   output  z (N, OH, OW, F)
//
//   z[n,oy,ox,f] = b[f] + sum_{ky,kx,c} x[n, oy*sh - pt + ky, ox*sw - pl + kx, c] * w[ky,kx,c,f]
//
// with x read as 0 outside the image (the padding). The two backward passes follow from the
// sum by the chain rule: every product x*w sends dz*w back to x and dz*x back to w.
//   dx[n,iy,ix,c] = sum over the (oy,ox,ky,kx,f) that read x[n,iy,ix,c] of dz[n,oy,ox,f]*w[ky,kx,c,f]
//   dw[ky,kx,c,f] = sum_{n,oy,ox} dz[n,oy,ox,f] * x[n, oy*sh - pt + ky, ox*sw - pl + kx, c]
//   db[f]         = sum_{n,oy,ox} dz[n,oy,ox,f]
#pragma once

#include "conv2d_geometry.hpp"

namespace stratum::kernels {

namespace detail {
/// Calls body(n, oy, ox, ky, kx, iy, ix) for every output pixel and kernel tap that reads a
/// pixel inside the image (taps over the padding read zeros and contribute nothing).
template <typename Body>
void for_each_tap(const WindowGeometry& g, Body&& body) {
  for (Index n = 0; n < g.batch; ++n)
    for (Index oy = 0; oy < g.out_h; ++oy)
      for (Index ox = 0; ox < g.out_w; ++ox)
        for_each_tap_inside(g, oy, ox, [&](Index ky, Index kx, Index iy, Index ix) {
          body(n, oy, ox, ky, kx, iy, ix);
        });
}
}  // namespace detail

template <typename T>
void conv2d_forward_reference(const WindowGeometry& g, const T* input, const T* kernel,
                              const T* bias, T* output) {
  for (Index i = 0; i < g.batch * g.out_pixels(); ++i)
    for (Index f = 0; f < g.out_c; ++f) output[i * g.out_c + f] = bias ? bias[f] : T(0);
  detail::for_each_tap(g, [&](Index n, Index oy, Index ox, Index ky, Index kx, Index iy, Index ix) {
    const T* x = input + ((n * g.in_h + iy) * g.in_w + ix) * g.in_c;
    const T* w = kernel + (ky * g.kernel_w + kx) * g.in_c * g.out_c;
    T* z = output + ((n * g.out_h + oy) * g.out_w + ox) * g.out_c;
    for (Index c = 0; c < g.in_c; ++c)
      for (Index f = 0; f < g.out_c; ++f) z[f] += x[c] * w[c * g.out_c + f];
  });
}

template <typename T>
void conv2d_backward_data_reference(const WindowGeometry& g, const T* d_output, const T* kernel,
                                    T* d_input) {
  std::fill(d_input, d_input + g.batch * g.in_h * g.in_w * g.in_c, T(0));
  detail::for_each_tap(g, [&](Index n, Index oy, Index ox, Index ky, Index kx, Index iy, Index ix) {
    T* dx = d_input + ((n * g.in_h + iy) * g.in_w + ix) * g.in_c;
    const T* w = kernel + (ky * g.kernel_w + kx) * g.in_c * g.out_c;
    const T* dz = d_output + ((n * g.out_h + oy) * g.out_w + ox) * g.out_c;
    for (Index c = 0; c < g.in_c; ++c)
      for (Index f = 0; f < g.out_c; ++f) dx[c] += dz[f] * w[c * g.out_c + f];
  });
}

template <typename T>
void conv2d_backward_weights_reference(const WindowGeometry& g, const T* input, const T* d_output,
                                       T* d_kernel, T* d_bias) {
  std::fill(d_kernel, d_kernel + g.patch_size() * g.out_c, T(0));
  detail::for_each_tap(g, [&](Index n, Index oy, Index ox, Index ky, Index kx, Index iy, Index ix) {
    const T* x = input + ((n * g.in_h + iy) * g.in_w + ix) * g.in_c;
    T* dw = d_kernel + (ky * g.kernel_w + kx) * g.in_c * g.out_c;
    const T* dz = d_output + ((n * g.out_h + oy) * g.out_w + ox) * g.out_c;
    for (Index c = 0; c < g.in_c; ++c)
      for (Index f = 0; f < g.out_c; ++f) dw[c * g.out_c + f] += dz[f] * x[c];
  });
  if (d_bias) {
    std::fill(d_bias, d_bias + g.out_c, T(0));
    for (Index i = 0; i < g.batch * g.out_pixels(); ++i)
      for (Index f = 0; f < g.out_c; ++f) d_bias[f] += d_output[i * g.out_c + f];
  }
}

}  // namespace stratum::kernels
