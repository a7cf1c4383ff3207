// Plain reference depthwise convolution: the definition, written as loops, against which the
// fast kernels (depthwise_conv2d.hpp) are tested. Nothing in training calls it.
//
// Shapes (NHWC activations; the kernel as Keras stores it):
//   input   x (N, H, W, C)        kernel w (KH, KW, C, M)     bias b (C*M)
//   output  z (N, OH, OW, C*M)    M = depth multiplier; output channel c*M + m is filter m of
//                                 input channel c (TensorFlow's order)
//
//   z[n,oy,ox,c*M+m] = b[c*M+m] + sum_{ky,kx} x[n, oy*sh - pt + ky, ox*sw - pl + kx, c] *
//   w[ky,kx,c,m]
//
// with x read as 0 outside the image (the padding). Each input channel is convolved with its own
// M filters only: no sum over channels, unlike Conv2D. The chain rule gives
//   dx[n,iy,ix,c]  = sum over the (oy,ox,ky,kx,m) that read x[n,iy,ix,c] of
//   dz[n,oy,ox,c*M+m]*w[ky,kx,c,m] dw[ky,kx,c,m]  = sum_{n,oy,ox} dz[n,oy,ox,c*M+m] * x[n, oy*sh -
//   pt + ky, ox*sw - pl + kx, c] db[c*M+m]      = sum_{n,oy,ox} dz[n,oy,ox,c*M+m]
//
// The geometry is a WindowGeometry with in_c = C and out_c = C*M.
#pragma once

#include <algorithm>

#include "conv2d_geometry.hpp"

namespace stratum::kernels {

template <typename T>
void depthwise_conv2d_forward_reference(const WindowGeometry& g, const T* input, const T* kernel,
                                        const T* bias, T* output) {
  const Index C = g.in_c, M = g.out_c / g.in_c;
  for (Index i = 0; i < g.batch * g.out_pixels(); ++i)
    for (Index j = 0; j < g.out_c; ++j) output[i * g.out_c + j] = bias ? bias[j] : T(0);
  for (Index n = 0; n < g.batch; ++n)
    for (Index oy = 0; oy < g.out_h; ++oy)
      for (Index ox = 0; ox < g.out_w; ++ox)
        for_each_tap_inside(g, oy, ox, [&](Index ky, Index kx, Index iy, Index ix) {
          const T* x = input + ((n * g.in_h + iy) * g.in_w + ix) * C;
          const T* w = kernel + (ky * g.kernel_w + kx) * g.out_c;
          T* z = output + ((n * g.out_h + oy) * g.out_w + ox) * g.out_c;
          for (Index c = 0; c < C; ++c)
            for (Index m = 0; m < M; ++m) z[c * M + m] += x[c] * w[c * M + m];
        });
}

template <typename T>
void depthwise_conv2d_backward_data_reference(const WindowGeometry& g, const T* d_output,
                                              const T* kernel, T* d_input) {
  const Index C = g.in_c, M = g.out_c / g.in_c, CM = g.out_c;
  std::fill(d_input, d_input + g.batch * g.in_h * g.in_w * C, T(0));
  for (Index n = 0; n < g.batch; ++n)
    for (Index oy = 0; oy < g.out_h; ++oy)
      for (Index ox = 0; ox < g.out_w; ++ox)
        for_each_tap_inside(g, oy, ox, [&](Index ky, Index kx, Index iy, Index ix) {
          T* dx = d_input + ((n * g.in_h + iy) * g.in_w + ix) * C;
          const T* w = kernel + (ky * g.kernel_w + kx) * CM;
          const T* dz = d_output + ((n * g.out_h + oy) * g.out_w + ox) * CM;
          for (Index c = 0; c < C; ++c)
            for (Index m = 0; m < M; ++m) dx[c] += dz[c * M + m] * w[c * M + m];
        });
}

template <typename T>
void depthwise_conv2d_backward_weights_reference(const WindowGeometry& g, const T* input,
                                                 const T* d_output, T* d_kernel, T* d_bias) {
  const Index C = g.in_c, M = g.out_c / g.in_c, CM = g.out_c;
  std::fill(d_kernel, d_kernel + g.kernel_h * g.kernel_w * CM, T(0));
  for (Index n = 0; n < g.batch; ++n)
    for (Index oy = 0; oy < g.out_h; ++oy)
      for (Index ox = 0; ox < g.out_w; ++ox)
        for_each_tap_inside(g, oy, ox, [&](Index ky, Index kx, Index iy, Index ix) {
          const T* x = input + ((n * g.in_h + iy) * g.in_w + ix) * C;
          T* dw = d_kernel + (ky * g.kernel_w + kx) * CM;
          const T* dz = d_output + ((n * g.out_h + oy) * g.out_w + ox) * CM;
          for (Index c = 0; c < C; ++c)
            for (Index m = 0; m < M; ++m) dw[c * M + m] += dz[c * M + m] * x[c];
        });
  if (d_bias) {
    std::fill(d_bias, d_bias + CM, T(0));
    for (Index i = 0; i < g.batch * g.out_pixels(); ++i)
      for (Index j = 0; j < CM; ++j) d_bias[j] += d_output[i * CM + j];
  }
}

}  // namespace stratum::kernels
