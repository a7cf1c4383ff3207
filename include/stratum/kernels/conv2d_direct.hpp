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
//                       dw[t, 0..F) += sum over the row's pixels of x[t of that pixel] * dz[pixel, 0..F)
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

template <typename T, int F, typename Epilogue>
void conv2d_forward_direct_fixed(const WindowGeometry& g, const T* input, const T* kernel,
                                 const T* bias, T* output, Epilogue& epilogue) {
  using Vector = Eigen::Array<T, F, 1>;
  const Index C = g.in_c;
  STRATUM_OMP(parallel for schedule(static))
  for (Index row = 0; row < g.batch * g.out_h; ++row) {
    const Index n = row / g.out_h, oy = row % g.out_h;
    T* out = output + row * g.out_w * F;
    for (Index ox = 0; ox < g.out_w; ++ox) {
      Vector acc = bias ? Vector(Eigen::Map<const Vector>(bias)) : Vector::Zero();
      for (Index ky = 0; ky < g.kernel_h; ++ky) {
        const Index iy = oy * g.stride_h - g.pad_top + ky;
        if (iy < 0 || iy >= g.in_h) continue;
        for (Index kx = 0; kx < g.kernel_w; ++kx) {
          const Index ix = ox * g.stride_w - g.pad_left + kx;
          if (ix < 0 || ix >= g.in_w) continue;
          const T* x = input + ((n * g.in_h + iy) * g.in_w + ix) * C;
          const T* w = kernel + (ky * g.kernel_w + kx) * C * F;
          for (Index c = 0; c < C; ++c) acc += x[c] * Eigen::Map<const Vector>(w + c * F);
        }
      }
      Eigen::Map<Vector>(out + ox * F) = acc;
    }
    epilogue(out, g.out_w * F);
  }
}

template <typename T, int F>
void conv2d_backward_weights_direct_fixed(const WindowGeometry& g, const T* input,
                                          const T* d_output, T* d_kernel, T* d_bias,
                                          Conv2DWorkspace<T>& workspace) {
  using Vector = Eigen::Array<T, F, 1>;
  const Index C = g.in_c, K = g.patch_size();
  detail::zero_thread_partials(workspace.weight_grads, K, F);
  STRATUM_OMP(parallel for schedule(static))
  for (Index row = 0; row < g.batch * g.out_h; ++row) {
    const Index n = row / g.out_h, oy = row % g.out_h;
    const T* dz = d_output + row * g.out_w * F;
    T* dw = workspace.weight_grads.get();
    for (Index ky = 0; ky < g.kernel_h; ++ky) {
      const Index iy = oy * g.stride_h - g.pad_top + ky;
      if (iy < 0 || iy >= g.in_h) continue;
      const T* image_row = input + (n * g.in_h + iy) * g.in_w * C;
      for (Index kx = 0; kx < g.kernel_w; ++kx)
        for (Index c = 0; c < C; ++c) {
          Vector sum = Vector::Zero();
          for (Index ox = 0; ox < g.out_w; ++ox) {
            const Index ix = ox * g.stride_w - g.pad_left + kx;
            if (ix < 0 || ix >= g.in_w) continue;
            sum += image_row[ix * C + c] * Eigen::Map<const Vector>(dz + ox * F);
          }
          Eigen::Map<Vector>(dw + ((ky * g.kernel_w + kx) * C + c) * F) += sum;
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
    case 8: return body(std::integral_constant<int, 8>());
    case 16: return body(std::integral_constant<int, 16>());
    case 32: return body(std::integral_constant<int, 32>());
    case 64: return body(std::integral_constant<int, 64>());
    default: throw Error("direct convolution: unsupported filter count " + std::to_string(filters));
  }
}

template <typename T, typename Epilogue = NoEpilogue>
void conv2d_forward_direct(const WindowGeometry& g, const T* input, const T* kernel, const T* bias,
                           T* output, Epilogue&& epilogue = {}) {
  with_filter_count(g.out_c, [&](auto filters) {
    conv2d_forward_direct_fixed<T, decltype(filters)::value>(g, input, kernel, bias, output, epilogue);
  });
}

template <typename T>
void conv2d_backward_weights_direct(const WindowGeometry& g, const T* input, const T* d_output,
                                    T* d_kernel, T* d_bias, Conv2DWorkspace<T>& workspace) {
  with_filter_count(g.out_c, [&](auto filters) {
    conv2d_backward_weights_direct_fixed<T, decltype(filters)::value>(g, input, d_output, d_kernel,
                                                                      d_bias, workspace);
  });
}

}  // namespace stratum::kernels
