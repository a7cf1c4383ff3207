// The depthwise convolution kernels: forward, backward data and backward weights over NHWC
// batches. The sums are those of depthwise_conv2d_reference.hpp (shapes and formulas there).
//
// A depthwise convolution has no sum over channels, so it is no GEMM: each output value is a
// KH*KW-term dot product along one channel. What makes it fast in NHWC is that a pixel's
// channels are contiguous, and so are a tap's C*M weights (Keras' (KH, KW, C, M) kernel is
// (KH, KW, C*M) in the order of the output channels): every tap is one element-wise
// multiply-add of two contiguous vectors of C*M values into a third,
//
//   z[oy, ox, :] += x[iy, ix, :] (*) w[ky, kx, :]          (:) the C*M channels, (*) element-wise
//
// which the compiler vectorises for the SIMD path in force (kernels::vectorized, simd_path.hpp).
// For a depth multiplier M > 1 the input row is first "expanded", each channel repeated M times
// (x'[ix, c*M + m] = x[ix, c]), which makes it a depthwise convolution with multiplier 1 over
// C*M channels; backward data sums the expanded gradient over m at the end of each row.
//
//   forward          threads take output rows (n, oy); each row starts from the bias and adds
//                    the KH*KW taps' products
//   backward data    threads take input rows (n, iy) and gather from the output pixels whose
//                    windows read them, so every dx row is written by one thread, with no
//                    zero-fill of the whole tensor and no scattered adds
//   backward weights each slot of output rows (parallel.hpp) sums into its own KH*KW*C*M + C*M
//                    partial dw and db, added in slot order: a thread count always gives the
//                    same bits
#pragma once

#include <algorithm>

#include "../parallel.hpp"
#include "conv2d_geometry.hpp"
#include "conv2d_im2col.hpp"
#include "simd_path.hpp"

namespace stratum::kernels {

/// Scratch memory the depthwise kernels reuse between calls.
template <typename T>
struct DepthwiseConv2DWorkspace {
  ThreadScratch<T> expanded_row;  // an input row with each channel repeated M times (M > 1)
  ThreadScratch<T> gradient_row;  // backward data: a dx row before the sum over m (M > 1)
  ThreadScratch<T> weight_grads;  // backward weights: each slot's partial dw and db
};

namespace detail {

/// Input row iy of image n as C*M channels per pixel: the row itself when M = 1, else a copy in
/// `buffer` with each channel repeated M times.
template <typename T>
const T* depthwise_input_row(const WindowGeometry& g, const T* input, Index n, Index iy,
                             T* buffer) {
  const Index C = g.in_c, M = g.out_c / g.in_c;
  const T* row = input + (n * g.in_h + iy) * g.in_w * C;
  if (M == 1) return row;
  for (Index i = 0; i < g.in_w * C; ++i) std::fill_n(buffer + i * M, M, row[i]);
  return buffer;
}

/// acc[j] += a[j] * b[j] for j < size: one tap over a pixel's channels.
template <typename T>
inline void multiply_add(const T* a, const T* b, T* acc, Index size) {
  for (Index j = 0; j < size; ++j) acc[j] += a[j] * b[j];
}

}  // namespace detail

/// z = depthwise_conv(x, w) + b (no bias if `bias` is null). `epilogue(values, count)` runs on
/// each finished output row while it is in cache (the layer applies its activation there).
template <typename T, typename Epilogue = NoEpilogue>
void depthwise_conv2d_forward(const WindowGeometry& g, const T* input, const T* kernel,
                              const T* bias, T* output, DepthwiseConv2DWorkspace<T>& workspace,
                              Epilogue&& epilogue = {}) {
  const Index CM = g.out_c, row_size = g.out_w * CM;
  workspace.expanded_row.prepare(g.in_w * CM);
  parallel_for(g.batch * g.out_h, [&](Index row) {
    const Index n = row / g.out_h, oy = row % g.out_h;
    T* out = output + row * row_size;
    vectorized([&] {  // the channel loops use the widest vectors the CPU has (simd_path.hpp)
      for (Index ox = 0; ox < g.out_w; ++ox) {
        if (bias)
          std::copy(bias, bias + CM, out + ox * CM);
        else
          std::fill_n(out + ox * CM, CM, T(0));
      }
      for (Index ky = 0; ky < g.kernel_h; ++ky) {
        const Index iy = oy * g.stride_h - g.pad_top + ky;
        if (iy < 0 || iy >= g.in_h) continue;  // a kernel row over the padding reads zeros
        const T* in = detail::depthwise_input_row(g, input, n, iy, workspace.expanded_row.get());
        const T* w = kernel + ky * g.kernel_w * CM;
        for (Index ox = 0; ox < g.out_w; ++ox)
          for (Index kx = 0; kx < g.kernel_w; ++kx) {
            const Index ix = ox * g.stride_w - g.pad_left + kx;
            if (ix >= 0 && ix < g.in_w)
              detail::multiply_add(in + ix * CM, w + kx * CM, out + ox * CM, CM);
          }
      }
    });
    epilogue(out, row_size);
  });
}

/// dx = the input gradient, given dz = dL/dz. Each input pixel gathers, from every output pixel
/// (oy, ox) and tap (ky, kx) that read it (oy*sh - pt + ky = iy, ox*sw - pl + kx = ix),
/// dz[oy, ox, :] (*) w[ky, kx, :], summed over m when M > 1.
template <typename T>
void depthwise_conv2d_backward_data(const WindowGeometry& g, const T* d_output, const T* kernel,
                                    T* d_input, DepthwiseConv2DWorkspace<T>& workspace) {
  const Index C = g.in_c, M = g.out_c / g.in_c, CM = g.out_c;
  workspace.gradient_row.prepare(M == 1 ? 0 : g.in_w * CM);
  parallel_for(g.batch * g.in_h, [&](Index row) {
    const Index n = row / g.in_h, iy = row % g.in_h;
    T* dx = d_input + row * g.in_w * C;
    T* sums = M == 1 ? dx : workspace.gradient_row.get();
    vectorized([&] {
      std::fill_n(sums, g.in_w * CM, T(0));
      for (Index ky = 0; ky < g.kernel_h; ++ky) {
        const Index oy_strided = iy + g.pad_top - ky;  // = oy * stride_h for a tap that reads iy
        if (oy_strided < 0 || oy_strided % g.stride_h != 0) continue;
        const Index oy = oy_strided / g.stride_h;
        if (oy >= g.out_h) continue;
        const T* dz = d_output + (n * g.out_h + oy) * g.out_w * CM;
        const T* w = kernel + ky * g.kernel_w * CM;
        for (Index ix = 0; ix < g.in_w; ++ix)
          for (Index kx = 0; kx < g.kernel_w; ++kx) {
            const Index ox_strided = ix + g.pad_left - kx;
            if (ox_strided < 0 || ox_strided % g.stride_w != 0) continue;
            const Index ox = ox_strided / g.stride_w;
            if (ox < g.out_w) detail::multiply_add(dz + ox * CM, w + kx * CM, sums + ix * CM, CM);
          }
      }
      if (M > 1)
        for (Index i = 0; i < g.in_w * C; ++i) {
          T sum = sums[i * M];
          for (Index m = 1; m < M; ++m) sum += sums[i * M + m];
          dx[i] = sum;
        }
    });
  });
}

/// dw and db (unless `d_bias` is null) given x and dz = dL/dz: each tap's dw[ky, kx, :] is the
/// sum over output pixels of dz[oy, ox, :] (*) x'[iy, ix, :] (x' the expanded input).
template <typename T>
void depthwise_conv2d_backward_weights(const WindowGeometry& g, const T* input, const T* d_output,
                                       T* d_kernel, T* d_bias,
                                       DepthwiseConv2DWorkspace<T>& workspace) {
  const Index CM = g.out_c, taps = g.kernel_h * g.kernel_w, row_size = g.out_w * CM;
  const Index rows = g.batch * g.out_h, slots = reduction_slots(rows, taps * CM + CM);
  detail::prepare_partials(workspace.weight_grads, slots, taps, CM);
  workspace.expanded_row.prepare(g.in_w * CM);
  parallel_for_slots(rows, slots, [&](Index slot, Index begin, Index end) {
    T* dw = detail::zeroed_partial(workspace.weight_grads, slot, taps, CM);
    T* db = dw + taps * CM;
    vectorized([&] {
      for (Index row = begin; row < end; ++row) {
        const Index n = row / g.out_h, oy = row % g.out_h;
        const T* dz = d_output + row * row_size;
        for (Index ky = 0; ky < g.kernel_h; ++ky) {
          const Index iy = oy * g.stride_h - g.pad_top + ky;
          if (iy < 0 || iy >= g.in_h) continue;
          const T* in = detail::depthwise_input_row(g, input, n, iy, workspace.expanded_row.get());
          T* dw_row = dw + ky * g.kernel_w * CM;
          for (Index ox = 0; ox < g.out_w; ++ox)
            for (Index kx = 0; kx < g.kernel_w; ++kx) {
              const Index ix = ox * g.stride_w - g.pad_left + kx;
              if (ix >= 0 && ix < g.in_w)
                detail::multiply_add(dz + ox * CM, in + ix * CM, dw_row + kx * CM, CM);
            }
        }
        for (Index ox = 0; ox < g.out_w; ++ox)
          for (Index j = 0; j < CM; ++j) db[j] += dz[ox * CM + j];
      }
    });
  });
  detail::sum_partials(workspace.weight_grads, taps, CM, d_kernel, d_bias);
}

}  // namespace stratum::kernels
