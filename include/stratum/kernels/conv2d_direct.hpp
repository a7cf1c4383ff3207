// Direct convolution: the forward and backward-weights passes without an im2col copy, for any
// layer with 8, 16, 32 or 64 filters (the per-pixel code at padded edges keeps a pixel's sums
// in registers, 16 filters at a time, so F is fixed at compile time).
//
// im2col copies every input value KH*KW times into the patch matrix (for an RGB input layer,
// in pieces of C = 3 floats), then reads it back. But one kernel row's taps need no copy at
// all: for output row oy and kernel row ky, the KW*C values that pixel ox's window reads are
// contiguous in the image, and the next pixel's start stride_w*C further on. So that part of
// the patch matrix is the image itself, read through two strides, and our GEMM (gemm.hpp)
// takes it as it lies:
//
//   forward           Z_row (OW x F)       = b + sum over ky of  X_ky (OW x KW*C) * W_ky (KW*C x F)
//   backward weights  dW_ky (KW*C x F)    += X_ky^T (KW*C x OW) * dZ_row (OW x F)
//
//   X_ky[ox, kx*C + c] = x[oy*sh - pt + ky, ox*sw - pl + kx, c]    (row stride sw*C, column
//   W_ky = rows [ky*KW*C, (ky+1)*KW*C) of the HWIO kernel           stride 1: no copy)
//
// Pixels whose windows reach into the horizontal padding (only with "same" padding) are added
// one at a time, skipping the padded taps; kernel rows over the vertical padding are skipped.
//
// Backward data of a stride-1 convolution is itself a forward convolution, of dz:
//
//   dx[iy, ix, c] = sum over (ky, kx, f) of dz[iy + pt - ky, ix + pl - kx, f] * w[ky, kx, c, f]
//
// which is dz padded by KH-1-pt rows on top (KW-1-pl columns on the left; as many as the
// output needs below and to the right), convolved with the kernel turned by 180 degrees and
// its C and F axes swapped (w'[ky', kx', f, c] = w[KH-1-ky', KW-1-kx', c, f]). So it runs on
// the forward kernel, where C is a filter count the kernels take. Where the layer makes dz
// image by image (conv2d_backward_direct_by_image), dz is made into a zero-padded buffer, and
// the pass runs without padding over it: no edge pixels. Other strides go through im2col.
//
// Threads take whole output rows (n, oy) as they come free; backward weights accumulates one
// partial result per slot of rows (parallel.hpp) and sums them in slot order, so a thread
// count gives the same bits every time.
#pragma once

#include <algorithm>
#include <array>

#include "../parallel.hpp"
#include "conv2d_geometry.hpp"
#include "conv2d_im2col.hpp"
#include "simd_path.hpp"

namespace stratum::kernels {

/// The filter counts the direct kernels are compiled for.
inline bool direct_filter_count(Index filters) {
  return filters == 8 || filters == 16 || filters == 32 || filters == 64;
}

/// Whether the direct kernels take this layer: whenever they can. They measured faster than
/// im2col + GEMM on both layers of the notebook's network, and the compact network's training
/// step and inference got faster with them too (docs/kernels.md).
inline bool prefers_direct_convolution(const WindowGeometry& g) {
  return direct_filter_count(g.out_c);
}

/// The output columns [first, last) whose windows lie inside the image horizontally.
inline std::pair<Index, Index> inside_columns(const WindowGeometry& g) {
  const Index first = std::min((g.pad_left + g.stride_w - 1) / g.stride_w, g.out_w);
  const Index fits = g.in_w + g.pad_left - g.kernel_w;  // ox * stride_w may go up to this
  const Index last = fits < 0 ? first : std::clamp(fits / g.stride_w + 1, first, g.out_w);
  return {first, last};
}

/// How many filters' sums a per-pixel loop keeps at once: 16, one AVX-512 vector (two AVX2
/// ones), which GCC keeps in registers. Over all 32 or 64 it kept the sums in memory, storing
/// and reloading them at every step.
template <int F>
inline constexpr int register_chunk = F < 16 ? F : 16;

/// The sums every output pixel starts from: the bias, or zeros without one.
template <typename T, int F>
std::array<T, F> direct_initial_sums(const T* bias) {
  std::array<T, F> initial{};
  if (bias) std::copy_n(bias, F, initial.begin());
  return initial;
}

/// Output row oy of one image: out[ox * F + f] for every ox, starting from `initial` (the bias).
/// (The per-pixel loops over F are plain loops run through `vectorized`, so that a build
/// without -march runs them on the AVX2 or AVX-512 vectors too, as Eigen's SSE code would not.)
template <typename T, int F>
void conv2d_forward_direct_row(const WindowGeometry& g, const T* image, Index oy, const T* kernel,
                               const std::array<T, F>& initial, T* out) {
  const Index C = g.in_c, row_taps = g.kernel_w * C;
  // (Named variables rather than a structured binding: Clang 14 cannot capture bindings in
  // lambdas.)
  const std::pair<Index, Index> columns = inside_columns(g);
  const Index first = columns.first, last = columns.second;
  vectorized([&] {
    for (Index ox = first; ox < last; ++ox) {
      STRATUM_CHANNEL_LOOP
      for (int f = 0; f < F; ++f) out[ox * F + f] = initial[f];
    }
  });
  for (Index ky = 0; ky < g.kernel_h; ++ky) {
    const Index iy = oy * g.stride_h - g.pad_top + ky;
    if (iy < 0 || iy >= g.in_h || last == first) continue;
    const T* x = image + (iy * g.in_w + first * g.stride_w - g.pad_left) * C;
    gemm(last - first, Index{F}, row_taps, x, g.stride_w * C, Index{1}, kernel + ky * row_taps * F,
         Index{F}, out + first * F, Index{F}, true);  // Z_row += X_ky W_ky
  }
  // Pixels whose windows reach into the padding, one at a time, register_chunk filters at a
  // time.
  constexpr int chunk = register_chunk<F>;
  auto edge_pixel = [&](Index ox) {
    for (int f0 = 0; f0 < F; f0 += chunk) {
      std::array<T, chunk> acc;
      std::copy_n(initial.begin() + f0, chunk, acc.begin());
      for_each_tap_inside(g, oy, ox, [&](Index ky, Index kx, Index iy, Index ix) {
        const T* x = image + (iy * g.in_w + ix) * C;
        const T* w = kernel + (ky * g.kernel_w + kx) * C * F + f0;
        for (Index c = 0; c < C; ++c) {
          STRATUM_CHANNEL_LOOP
          for (int f = 0; f < chunk; ++f) acc[f] += x[c] * w[c * F + f];
        }
      });
      std::copy_n(acc.begin(), chunk, out + ox * F + f0);
    }
  };
  vectorized([&] {
    for (Index ox = 0; ox < first; ++ox) edge_pixel(ox);
    for (Index ox = last; ox < g.out_w; ++ox) edge_pixel(ox);
  });
}

template <typename T, int F, typename Epilogue>
void conv2d_forward_direct_fixed(const WindowGeometry& g, const T* input, const T* kernel,
                                 const T* bias, T* output, Epilogue& epilogue) {
  const auto initial = direct_initial_sums<T, F>(bias);
  const Index row_size = g.out_w * F;
  parallel_for(g.batch * g.out_h, [&](Index row) {
    const Index n = row / g.out_h, oy = row % g.out_h;
    T* out = output + row * row_size;
    conv2d_forward_direct_row<T, F>(g, input + n * g.in_h * g.in_w * g.in_c, oy, kernel, initial,
                                    out);
    epilogue(out, row_size);
  });
}

/// Adds output row oy of one image to the weight gradient: dw (K x F, then the F bias sums)
/// += the row's share, for dz = that row's gradient (out_w x F).
template <typename T, int F>
void conv2d_backward_weights_direct_row(const WindowGeometry& g, const T* image, Index oy,
                                        const T* dz, T* dw) {
  const Index C = g.in_c, K = g.patch_size(), row_taps = g.kernel_w * C;
  const std::pair<Index, Index> columns = inside_columns(g);
  const Index first = columns.first, last = columns.second;
  for (Index ky = 0; ky < g.kernel_h; ++ky) {
    const Index iy = oy * g.stride_h - g.pad_top + ky;
    if (iy < 0 || iy >= g.in_h || last == first) continue;
    const T* x = image + (iy * g.in_w + first * g.stride_w - g.pad_left) * C;
    gemm(row_taps, Index{F}, last - first, x, Index{1}, g.stride_w * C, dz + first * F, Index{F},
         dw + ky * row_taps * F, Index{F}, true);  // dW_ky += X_ky^T dZ_row
  }
  // Pixels whose windows reach into the padding, one at a time; then the bias sums.
  auto edge_pixel = [&](Index ox) {
    const T* d = dz + ox * F;
    for_each_tap_inside(g, oy, ox, [&](Index ky, Index kx, Index iy, Index ix) {
      const T* x = image + (iy * g.in_w + ix) * C;
      T* w = dw + (ky * g.kernel_w + kx) * C * F;
      for (Index c = 0; c < C; ++c) {
        STRATUM_CHANNEL_LOOP
        for (int f = 0; f < F; ++f) w[c * F + f] += x[c] * d[f];
      }
    });
  };
  vectorized([&] {
    for (Index ox = 0; ox < first; ++ox) edge_pixel(ox);
    for (Index ox = last; ox < g.out_w; ++ox) edge_pixel(ox);
    // The bias sums in a local array, register_chunk filters at a time: added into db itself,
    // which might alias dz for all the compiler knows, each pixel's sum was stored and loaded
    // back for the next, a chain through memory that took conv1 of the notebook about 1 ms of
    // its step (perf: 1.6 % of the step's samples here, 0.3 % in ea67217). Same order of sums.
    constexpr int chunk = register_chunk<F>;
    T* db = dw + K * F;
    for (int f0 = 0; f0 < F; f0 += chunk) {
      std::array<T, chunk> sums;
      std::copy_n(db + f0, chunk, sums.begin());
      for (Index ox = 0; ox < g.out_w; ++ox) {
        STRATUM_CHANNEL_LOOP
        for (int f = 0; f < chunk; ++f) sums[f] += dz[ox * F + f0 + f];
      }
      std::copy_n(sums.begin(), chunk, db + f0);
    }
  });
}

template <typename T, int F, typename GradientRows>
void conv2d_backward_weights_direct_fixed(const WindowGeometry& g, const T* input,
                                          const T* d_output, T* d_kernel, T* d_bias,
                                          Conv2DWorkspace<T>& workspace,
                                          GradientRows& gradient_rows) {
  const Index K = g.patch_size(), row_size = g.out_w * F, rows = g.batch * g.out_h;
  const Index slots = reduction_slots(rows, K * F + F);
  detail::prepare_partials(workspace.weight_grads, slots, K, Index{F});
  workspace.gradient_rows.prepare(row_size);
  parallel_for_slots(rows, slots, [&](Index slot, Index begin, Index end) {
    T* partial = detail::zeroed_partial(workspace.weight_grads, slot, K, Index{F});
    for (Index row = begin; row < end; ++row) {
      const Index n = row / g.out_h, oy = row % g.out_h;
      const T* dz = detail::gradient_block(d_output, row * row_size, row_size,
                                           workspace.gradient_rows.get(), gradient_rows);
      conv2d_backward_weights_direct_row<T, F>(g, input + n * g.in_h * g.in_w * g.in_c, oy, dz,
                                               partial);
    }
  });
  detail::sum_partials(workspace.weight_grads, K, Index{F}, d_kernel, d_bias);
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

/// Output rows [first_row, first_row + rows) of image `image` (one image's input), single-threaded.
template <typename T>
void conv2d_forward_direct_rows(const WindowGeometry& g, const T* image, const T* kernel,
                                const T* bias, Index first_row, Index rows, T* output) {
  with_filter_count(g.out_c, [&](auto filters) {
    constexpr int F = decltype(filters)::value;
    const auto initial = direct_initial_sums<T, F>(bias);
    for (Index r = 0; r < rows; ++r)
      conv2d_forward_direct_row<T, F>(g, image, first_row + r, kernel, initial,
                                      output + r * g.out_w * F);
  });
}

/// Whether backward data can run as a forward convolution on the direct kernels.
inline bool direct_backward_data(const WindowGeometry& g) {
  return g.stride_h == 1 && g.stride_w == 1 && direct_filter_count(g.in_c) &&
         g.pad_top < g.kernel_h && g.pad_left < g.kernel_w;
}

/// The convolution whose forward pass is g's backward data (stride 1): dz (out_h x out_w x F)
/// -> dx (in_h x in_w x C), padded so that every tap that reached the input reaches back.
inline WindowGeometry transposed_geometry(const WindowGeometry& g) {
  WindowGeometry t = g;
  t.in_h = g.out_h, t.in_w = g.out_w, t.in_c = g.out_c;
  t.out_h = g.in_h, t.out_w = g.in_w, t.out_c = g.in_c;
  t.pad_top = g.kernel_h - 1 - g.pad_top, t.pad_left = g.kernel_w - 1 - g.pad_left;
  return t;
}

/// turned = the kernel turned by 180 degrees with its C and F axes swapped (see the top of the
/// file): the kernel of transposed_geometry(g).
template <typename T>
void turn_kernel(const WindowGeometry& g, const T* kernel, AlignedVector<T>& turned) {
  const Index C = g.in_c, F = g.out_c, KH = g.kernel_h, KW = g.kernel_w;
  turned.resize(static_cast<std::size_t>(KH * KW * C * F));
  for (Index ky = 0; ky < KH; ++ky)
    for (Index kx = 0; kx < KW; ++kx)
      for (Index c = 0; c < C; ++c)
        for (Index f = 0; f < F; ++f)
          turned[static_cast<std::size_t>((((KH - 1 - ky) * KW + KW - 1 - kx) * F + f) * C + c)] =
              kernel[((ky * KW + kx) * C + c) * F + f];
}

/// dx = the input gradient of a stride-1 convolution, as the forward convolution of dz with the
/// kernel turned and transposed (see the top of the file). `turned_kernel` receives that kernel.
template <typename T>
void conv2d_backward_data_direct(const WindowGeometry& g, const T* d_output, const T* kernel,
                                 T* d_input, AlignedVector<T>& turned_kernel) {
  turn_kernel(g, kernel, turned_kernel);
  conv2d_forward_direct(transposed_geometry(g), d_output, turned_kernel.data(),
                        static_cast<const T*>(nullptr), d_input);
}

/// Whether both backward passes can run on the direct kernels together, image by image: where
/// backward data can, and backward weights would take the direct kernel anyway.
inline bool direct_backward_by_image(const WindowGeometry& g) {
  return direct_backward_data(g) && prefers_direct_convolution(g);
}

/// Both backward passes (weights and data) of a convolution that direct_backward_by_image
/// takes, for dz made by the layer (see GradientAsGiven): image by image, the image's dz is
/// made once into a per-thread buffer, and the weights pass (into the thread's partial sums)
/// and the data pass (the transposed convolution) read it while it is still in cache. Run
/// apart, each pass would make dz again, and the data pass would need it tile by tile through
/// im2col. The image's dz is made into a buffer padded with zeros as the transposed
/// convolution's padding asks, so that the data pass is a convolution without padding over it:
/// every output pixel's window lies inside, and each output row is GEMMs only, without the edge
/// pixels that are computed one at a time (about 6 % of conv2's rows' pixels, but more of its
/// time).
template <typename T, typename GradientRows>
void conv2d_backward_direct_by_image(const WindowGeometry& g, const T* input, const T* kernel,
                                     T* d_input, T* d_kernel, T* d_bias,
                                     Conv2DWorkspace<T>& workspace, GradientRows&& gradient_rows) {
  // t: the data pass as a padded convolution of dz; unpadded: the same over dz padded.
  const WindowGeometry t = transposed_geometry(g);
  WindowGeometry unpadded = t;
  unpadded.in_h = t.out_h + t.kernel_h - 1, unpadded.in_w = t.out_w + t.kernel_w - 1;
  unpadded.pad_top = 0, unpadded.pad_left = 0;
  const Index K = g.patch_size(), F = g.out_c, row_size = g.out_w * F;
  const Index image_size = g.in_h * g.in_w * g.in_c, image_gradient_size = g.out_h * row_size;
  const Index padded_row_size = unpadded.in_w * F;
  turn_kernel(g, kernel, workspace.transposed_kernel);
  const T* turned = workspace.transposed_kernel.data();
  const Index slots = reduction_slots(g.batch, K * F + F);
  detail::prepare_partials(workspace.weight_grads, slots, K, F);
  // Each thread's buffer is zeroed once; images then write only dz's rows inside it, so the
  // padding stays zero for every image the thread takes.
  const Index padded_size = unpadded.in_h * padded_row_size;
  ThreadScratch<T>& buffers = workspace.gradient_rows;
  buffers.prepare(padded_size);
  parallel_for(buffers.count(), [&](Index b) { std::fill_n(buffers.get(b), padded_size, T(0)); });
  with_filter_count(F, [&](auto filters) {
    constexpr int FF = decltype(filters)::value;
    parallel_for_slots(g.batch, slots, [&](Index slot, Index begin, Index end) {
      T* partial = detail::zeroed_partial(workspace.weight_grads, slot, K, F);
      for (Index n = begin; n < end; ++n) {
        T* padded = buffers.get();
        // Where dz's row oy lies in the padded buffer.
        auto dz_row = [&](Index oy) {
          return padded + (t.pad_top + oy) * padded_row_size + t.pad_left * F;
        };
        for (Index oy = 0; oy < g.out_h; ++oy)
          gradient_rows(n * image_gradient_size + oy * row_size, row_size, dz_row(oy));
        const T* image = input + n * image_size;
        for (Index oy = 0; oy < g.out_h; ++oy)
          conv2d_backward_weights_direct_row<T, FF>(g, image, oy, dz_row(oy), partial);
        conv2d_forward_direct_rows(unpadded, padded, turned, static_cast<const T*>(nullptr), 0,
                                   unpadded.out_h, d_input + n * image_size);
      }
    });
  });
  detail::sum_partials(workspace.weight_grads, K, F, d_kernel, d_bias);
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
