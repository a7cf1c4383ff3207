// The max-pooling kernels over NHWC batches: the window maximum and its argmax (forward), and
// the gradient sent back to each argmax (backward). The math is written out above the pooling
// layer, which owns the argmax and calls these kernels; the convolution layer calls
// max_pool2d_row and max_pool2d_route_gradient too, to run a pool fused after it
// (docs/backprop.md).
//
// The pooling's WindowGeometry has the pool size as its kernel size. The argmax is one byte per
// output element, the maximum's tap in its window (ky * kernel_w + kx), so windows have at most
// 256 taps (the layer checks). On ties the first maximum in row-major window order wins, and a
// NaN is the maximum (later_tap_wins).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../parallel.hpp"
#include "conv2d_geometry.hpp"
#include "simd_path.hpp"

namespace stratum::kernels {

/// Whether a later tap with value v replaces the window's maximum so far: if it is larger, or
/// if it is the first NaN (so NaNs propagate; ties keep the first maximum).
template <typename T>
bool later_tap_wins(T v, T best) {
  return v > best || (v != v && best == best);
}

/// A 2x2 window wholly inside the image: each channel's four taps are compared in registers
/// and the result stored once. (The general loop in max_pool2d_row updates y tap by tap, and
/// GCC guards each of those masked stores with a branch on "any lane changed", which
/// mispredicts on every other tap: max_pool1_forward took 5.1-5.4 ms that way, 4.3-4.5 ms this
/// way.)
template <bool record_argmax, typename T>
void max_pool2d_window_2x2(const WindowGeometry& g, const T* top_left, T* best,
                           std::uint8_t* where) {
  const Index C = g.in_c;
  const T* taps[4] = {top_left, top_left + C, top_left + g.in_w * C, top_left + (g.in_w + 1) * C};
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

/// Output row oy of image n: y[n, oy, :, :], and its argmax if recording (`argmax` holds the
/// whole batch's, laid out as y). `rows` holds input rows [first_row, ...) of image n: the whole
/// image, or the band of a convolution's output that this row's windows read.
template <bool record_argmax, typename T>
void max_pool2d_row(const WindowGeometry& g, Index n, Index oy, const T* rows, Index first_row,
                    T* y, std::uint8_t* argmax) {
  // The window's taps are tracked in 32 bits, the width of T, so that the branch-free loop
  // below vectorises; they are narrowed to bytes once the window is done.
  thread_local std::vector<std::int32_t> taps;
  if (record_argmax) taps.resize(static_cast<std::size_t>(g.in_c));
  vectorized([&] {  // the channel loops use the widest vectors the CPU has (simd_path.hpp)
    for (Index ox = 0; ox < g.out_w; ++ox) {
      const Index out_offset = ((n * g.out_h + oy) * g.out_w + ox) * g.out_c;
      T* best = y + out_offset;
      const Index top = oy * g.stride_h - g.pad_top, left = ox * g.stride_w - g.pad_left;
      if (g.kernel_h == 2 && g.kernel_w == 2 && top >= 0 && left >= 0 && top + 2 <= g.in_h &&
          left + 2 <= g.in_w) {  // the usual window, wholly inside the image
        max_pool2d_window_2x2<record_argmax>(g, rows + ((top - first_row) * g.in_w + left) * g.in_c,
                                             best, record_argmax ? argmax + out_offset : nullptr);
        continue;
      }
      std::int32_t* where = taps.data();
      bool first_tap = true;
      for_each_tap_inside(g, oy, ox, [&](Index ky, Index kx, Index iy, Index ix) {
        const T* v = rows + ((iy - first_row) * g.in_w + ix) * g.in_c;
        const auto tap = static_cast<std::int32_t>(ky * g.kernel_w + kx);
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
      if (record_argmax) std::copy(taps.begin(), taps.end(), argmax + out_offset);
    }
  });
}

/// y = the pooling of x, and its argmax unless `argmax` is null. Threads take output rows.
template <typename T>
void max_pool2d_forward(const WindowGeometry& g, const T* x, T* y, std::uint8_t* argmax) {
  const Index image_size = g.in_h * g.in_w * g.in_c;
  parallel_for(g.batch * g.out_h, [&](Index row) {
    const Index n = row / g.out_h, oy = row % g.out_h;
    if (argmax)
      max_pool2d_row<true>(g, n, oy, x + n * image_size, 0, y, argmax);
    else
      max_pool2d_row<false>(g, n, oy, x + n * image_size, 0, y, argmax);
  });
}

/// For disjoint windows (stride >= pool size), given the argmax of a forward pass: dx of the input
/// pixels [first_pixel, first_pixel + count) of the batch (numbered image by image, row by row),
/// which is dy where the pixel was its window's maximum and 0 everywhere else.
template <typename T>
void max_pool2d_route_gradient(const WindowGeometry& g, const std::uint8_t* argmax, const T* dy,
                               Index first_pixel, Index count, T* dx) {
  const Index C = g.in_c, image_pixels = g.in_h * g.in_w;
  // Where pixel p lies: image n, row iy, column ix; in window (oy, ox) at tap (ky, kx). The
  // divisions run once per row; along a row the column counters just step.
  vectorized([&] {  // the channel loops use the widest vectors the CPU has (simd_path.hpp)
    Index p = first_pixel;
    while (p < first_pixel + count) {
      const Index n = p / image_pixels, iy = p % image_pixels / g.in_w;
      const Index oy = (iy + g.pad_top) / g.stride_h, ky = iy + g.pad_top - oy * g.stride_h;
      const bool row_pooled = ky < g.kernel_h && oy < g.out_h;
      Index ix = p % g.in_w;
      Index ox = (ix + g.pad_left) / g.stride_w, kx = ix + g.pad_left - ox * g.stride_w;
      for (; ix < g.in_w && p < first_pixel + count; ++ix, ++p, dx += C) {
        if (!row_pooled || kx >= g.kernel_w || ox >= g.out_w) {
          std::fill(dx, dx + C, T(0));  // a pixel no window reads
        } else {
          const Index out_offset = ((n * g.out_h + oy) * g.out_w + ox) * C;
          const std::uint8_t* where = argmax + out_offset;
          const T* grad = dy + out_offset;
          const auto tap = static_cast<std::uint8_t>(ky * g.kernel_w + kx);
          for (Index c = 0; c < C; ++c) dx[c] = where[c] == tap ? grad[c] : T(0);
        }
        if (++kx == g.stride_w) {
          kx = 0;
          ++ox;
        }
      }
    }
  });
}

/// dx from dy and the argmax of a forward pass, for disjoint windows: each dx is written exactly
/// once, with no zero-fill first and no scattered adds. Threads take input rows.
template <typename T>
void max_pool2d_backward_disjoint(const WindowGeometry& g, const std::uint8_t* argmax, const T* dy,
                                  T* dx) {
  parallel_for(g.batch * g.in_h, [&](Index row) {
    max_pool2d_route_gradient(g, argmax, dy, row * g.in_w, g.in_w, dx + row * g.in_w * g.in_c);
  });
}

/// dx from dy and the argmax of a forward pass, for windows that may overlap: zero dx, then add
/// each window's gradient at its recorded tap. Threads take images.
template <typename T>
void max_pool2d_backward_overlapping(const WindowGeometry& g, const std::uint8_t* argmax,
                                     const T* dy, T* dx) {
  const Index C = g.in_c, in_size = g.in_h * g.in_w * C, out_size = g.out_pixels() * C;
  parallel_for(g.batch, [&](Index n) {
    T* image_grad = dx + n * in_size;
    std::fill(image_grad, image_grad + in_size, T(0));
    for (Index oy = 0; oy < g.out_h; ++oy)
      for (Index ox = 0; ox < g.out_w; ++ox) {
        const Index out_offset = n * out_size + (oy * g.out_w + ox) * C;
        for (Index c = 0; c < C; ++c) {
          const Index tap = argmax[out_offset + c];
          const Index iy = oy * g.stride_h - g.pad_top + tap / g.kernel_w;
          const Index ix = ox * g.stride_w - g.pad_left + tap % g.kernel_w;
          image_grad[(iy * g.in_w + ix) * C + c] += dy[out_offset + c];
        }
      }
  });
}

}  // namespace stratum::kernels
