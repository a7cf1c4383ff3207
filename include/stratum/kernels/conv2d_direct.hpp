// Direct convolution for "thin" layers: few input values per window (K = KH*KW*C small, such as
// a 3x3 convolution of an RGB image, K = 27) and a small, fixed number of filters F.
//
// There im2col + GEMM spends most of its time copying: each patch row is assembled from KH*KW
// copies of C = 3 floats, and a GEMM with K = 27 barely gets going. Here each output pixel keeps
// its F sums in registers (an Eigen fixed-size array; F = 32 floats is two AVX-512 registers)
// and adds x * w[tap, :] for every tap of its window, reading the image where it lies:
//
//   forward           acc[0..F) = b;  for each tap t of the window: acc += x[t] * w[t, 0..F)
//   backward weights  for each tap t and each output row:
//                       dw[t, 0..F) += sum over the row's pixels p of x[tap t of p] * dz[p, 0..F)
//
// Threads take whole output rows (n, oy) in a static order; backward weights accumulates per
// thread and sums the partial results in thread order, so a thread count gives the same bits
// every time. The backward-data pass of a thin layer is rarely needed (it is usually the first
// layer) and goes through im2col.
#pragma once

#include <Eigen/Core>

#include "../parallel.hpp"
#include "conv2d_geometry.hpp"
#include "conv2d_im2col.hpp"

namespace stratum::kernels {

/// Direct kernels handle these filter counts (compile-time, so the sums stay in registers).
inline bool direct_filter_count(Index filters) {
  return filters == 8 || filters == 16 || filters == 32 || filters == 64;
}

/// Whether a layer is thin enough for the direct kernels to beat im2col + GEMM.
inline bool prefers_direct_convolution(const WindowGeometry& g) {
  return g.patch_size() <= 32 && direct_filter_count(g.out_c);
}

/// Whether every tap of the windows of output pixels [ox, ox + count) in output row oy reads
/// inside the image (no padding involved).
inline bool windows_inside(const WindowGeometry& g, Index oy, Index ox, Index count) {
  const Index top = oy * g.stride_h - g.pad_top, left = ox * g.stride_w - g.pad_left;
  const Index right = (ox + count - 1) * g.stride_w - g.pad_left + g.kernel_w;
  return top >= 0 && top + g.kernel_h <= g.in_h && left >= 0 && right <= g.in_w;
}

// One fused multiply-add has a latency of several cycles, so a single running sum per output
// would leave the FMA units mostly idle. Both kernels therefore keep four independent sums in
// flight (four output pixels forward; four interleaved partial sums over a row backward).

template <typename T, int F, typename Epilogue>
void conv2d_forward_direct_fixed(const WindowGeometry& g, const T* input, const T* kernel,
                                 const T* bias, T* output, Epilogue& epilogue) {
  using Vector = Eigen::Array<T, F, 1>;
  const Index C = g.in_c;
  const Vector initial = bias ? Vector(Eigen::Map<const Vector>(bias)) : Vector::Zero();
  const Index row_size = g.out_w * F;
  STRATUM_OMP(parallel for schedule(static))
  for (Index row = 0; row < g.batch * g.out_h; ++row) {
    const Index n = row / g.out_h, oy = row % g.out_h;
    T* out = output + row * row_size;
    const T* image = input + n * g.in_h * g.in_w * C;
    Index ox = 0;
    // Four pixels at a time where their windows lie inside the image.
    for (; ox + 4 <= g.out_w && windows_inside(g, oy, ox, 4); ox += 4) {
      Vector acc0 = initial, acc1 = initial, acc2 = initial, acc3 = initial;
      const Index step = g.stride_w * C;
      for (Index ky = 0; ky < g.kernel_h; ++ky) {
        const T* x =
            image +
            ((oy * g.stride_h - g.pad_top + ky) * g.in_w + ox * g.stride_w - g.pad_left) * C;
        const T* w = kernel + ky * g.kernel_w * C * F;
        for (Index t = 0; t < g.kernel_w * C; ++t) {  // taps (kx, c) of this kernel row
          const Vector w_row = Eigen::Map<const Vector>(w + t * F);
          acc0 += x[t] * w_row;
          acc1 += x[t + step] * w_row;
          acc2 += x[t + 2 * step] * w_row;
          acc3 += x[t + 3 * step] * w_row;
        }
      }
      Eigen::Map<Vector>(out + ox * F) = acc0;
      Eigen::Map<Vector>(out + (ox + 1) * F) = acc1;
      Eigen::Map<Vector>(out + (ox + 2) * F) = acc2;
      Eigen::Map<Vector>(out + (ox + 3) * F) = acc3;
    }
    // The rest one at a time, skipping taps over the padding.
    for (; ox < g.out_w; ++ox) {
      Vector acc = initial;
      for_each_tap_inside(g, oy, ox, [&](Index ky, Index kx, Index iy, Index ix) {
        const T* x = image + (iy * g.in_w + ix) * C;
        const T* w = kernel + (ky * g.kernel_w + kx) * C * F;
        for (Index c = 0; c < C; ++c) acc += x[c] * Eigen::Map<const Vector>(w + c * F);
      });
      Eigen::Map<Vector>(out + ox * F) = acc;
    }
    epilogue(out, row_size);
  }
}

template <typename T, int F, typename GradientRows>
void conv2d_backward_weights_direct_fixed(const WindowGeometry& g, const T* input,
                                          const T* d_output, T* d_kernel, T* d_bias,
                                          Conv2DWorkspace<T>& workspace,
                                          GradientRows& gradient_rows) {
  using Vector = Eigen::Array<T, F, 1>;
  const Index C = g.in_c, K = g.patch_size();
  detail::zero_thread_partials(workspace.weight_grads, K, F);
  workspace.gradient_rows.prepare(g.out_w * F);
  STRATUM_OMP(parallel for schedule(static))
  for (Index row = 0; row < g.batch * g.out_h; ++row) {
    const Index n = row / g.out_h, oy = row % g.out_h;
    const T* dz = detail::gradient_block(d_output, row * g.out_w * F, g.out_w * F,
                                         workspace.gradient_rows.get(), gradient_rows);
    T* dw = workspace.weight_grads.get();
    for (Index ky = 0; ky < g.kernel_h; ++ky) {
      const Index iy = oy * g.stride_h - g.pad_top + ky;
      if (iy < 0 || iy >= g.in_h) continue;
      const T* image_row = input + (n * g.in_h + iy) * g.in_w * C;
      for (Index kx = 0; kx < g.kernel_w; ++kx) {
        // The output pixels whose tap kx reads inside the row: ix = ox * sw - pl + kx in [0, W).
        const Index offset = kx - g.pad_left;
        const Index first = offset >= 0 ? 0 : (-offset + g.stride_w - 1) / g.stride_w;
        const Index last = std::min(g.out_w, (g.in_w - 1 - offset) / g.stride_w + 1);
        for (Index c = 0; c < C; ++c) {
          // x[i * step] is the value tap (kx, c) reads for output pixel first + i.
          const T* x = image_row + (first * g.stride_w + offset) * C + c;
          const T* d = dz + first * F;
          const Index step = g.stride_w * C, count = last - first;
          Vector sum0 = Vector::Zero(), sum1 = Vector::Zero(), sum2 = Vector::Zero(),
                 sum3 = Vector::Zero();
          Index i = 0;
          for (; i + 4 <= count; i += 4) {
            sum0 += x[i * step] * Eigen::Map<const Vector>(d + i * F);
            sum1 += x[(i + 1) * step] * Eigen::Map<const Vector>(d + (i + 1) * F);
            sum2 += x[(i + 2) * step] * Eigen::Map<const Vector>(d + (i + 2) * F);
            sum3 += x[(i + 3) * step] * Eigen::Map<const Vector>(d + (i + 3) * F);
          }
          for (; i < count; ++i) sum0 += x[i * step] * Eigen::Map<const Vector>(d + i * F);
          Eigen::Map<Vector>(dw + ((ky * g.kernel_w + kx) * C + c) * F) +=
              (sum0 + sum1) + (sum2 + sum3);
        }
      }
    }
    Eigen::Map<Vector> db(dw + K * F);
    for (Index ox = 0; ox < g.out_w; ++ox) db += Eigen::Map<const Vector>(dz + ox * F);
  }
  detail::sum_thread_partials(workspace.weight_grads, K, Index{F}, d_kernel, d_bias);
}

/// Calls body(std::integral_constant<int, F>) for the layer's filter count (one of
/// direct_filter_count's).
template <typename Body>
void with_filter_count(Index filters, Body&& body) {
  switch (filters) {
    case 8:
      return body(std::integral_constant<int, 8>());
    case 16:
      return body(std::integral_constant<int, 16>());
    case 32:
      return body(std::integral_constant<int, 32>());
    case 64:
      return body(std::integral_constant<int, 64>());
    default:
      throw Error("direct convolution: unsupported filter count " + std::to_string(filters));
  }
}

template <typename T, typename Epilogue = NoEpilogue>
void conv2d_forward_direct(const WindowGeometry& g, const T* input, const T* kernel, const T* bias,
                           T* output, Epilogue&& epilogue = {}) {
  with_filter_count(g.out_c, [&](auto filters) {
    conv2d_forward_direct_fixed<T, decltype(filters)::value>(g, input, kernel, bias, output,
                                                             epilogue);
  });
}

template <typename T, typename GradientRows = GradientAsGiven>
void conv2d_backward_weights_direct(const WindowGeometry& g, const T* input, const T* d_output,
                                    T* d_kernel, T* d_bias, Conv2DWorkspace<T>& workspace,
                                    GradientRows&& gradient_rows = {}) {
  with_filter_count(g.out_c, [&](auto filters) {
    conv2d_backward_weights_direct_fixed<T, decltype(filters)::value>(
        g, input, d_output, d_kernel, d_bias, workspace, gradient_rows);
  });
}

}  // namespace stratum::kernels
