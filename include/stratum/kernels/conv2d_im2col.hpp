// Convolution as matrix products: im2col + GEMM, tiled over output pixels and threaded.
//
// For one image, gather every kernel window into a row of a "patch" matrix P; the HWIO kernel
// buffer is already the (K x F) matrix W, so the convolution is one product:
//
//            K = KH*KW*C                 F                      F
//        +----------------+      +-----------+          +-----------+
//  rows  | window of p0   |      |           |    rows  | z[p0, :]  |
//  of a  | window of p0+1 |  x   |  W (HWIO) |  + b  =  | z[p0+1,:] |   (rows of the NHWC
//  tile  |      ...       |    K |           |          |    ...    |    output, contiguous)
//        +----------------+      +-----------+          +-----------+
//
// A patch row holds the window's pixels in (ky, kx, c) order, which is the row order of W.
// Whole-batch patch matrices are large (137 MB for the notebook's second layer at batch 32)
// and stream through memory, so we build P for a tile of `tile_rows` output pixels at a time,
// sized to stay in the core's L2 cache, and run one GEMM per tile.
//
//   forward          Z_tile  = P_tile * W + b
//   backward data    dP_tile = dZ_tile * W^T, then scatter-add dP back onto dx (col2im)
//   backward weights dW     += P_tile^T * dZ_tile,  db += column sums of dZ_tile
//
// Threads take (image, tile) pairs in a fixed static order. Backward weights accumulates in one
// buffer per thread and sums them in thread order, so a given thread count always produces the
// same bits. Backward data gives each thread whole images, since the windows of neighbouring
// tiles overlap in dx.
#pragma once

#include <Eigen/Core>

#include "../parallel.hpp"
#include "conv2d_geometry.hpp"
#include "gemm.hpp"

namespace stratum::kernels {

/// Scratch memory the im2col kernels reuse between calls.
template <typename T>
struct Conv2DWorkspace {
  ThreadScratch<T> patches;
  ThreadScratch<T> weight_grads;
  AlignedVector<T> transposed_kernel;  // W^T (F x K) for im2col's backward data, or the turned
                                       // kernel for the direct one
  ThreadScratch<T> gradient_rows;      // dz rows made on the fly (see GradientAsGiven)
  ThreadScratch<T> output_bands;       // bands of output rows (see conv2d_forward_bands)
};

/// The backward kernels read dz from `d_output` when given this tag. Instead, a layer can
/// pass a function gradient_rows(offset, count, out) that writes dz[offset, offset + count) into
/// `out`: a layer that fuses an activation makes dz = dy * activation'(z) there, block by block
/// in cache, rather than in a separate pass over memory (d_output is then not read).
struct GradientAsGiven {};

namespace detail {
/// dz for `count` elements from `offset`: d_output itself, or rows made by the layer's function
/// into this thread's `buffer`.
template <typename T, typename GradientRows>
const T* gradient_block(const T* d_output, Index offset, Index count, T* buffer,
                        GradientRows& gradient_rows) {
  if constexpr (std::is_same_v<std::decay_t<GradientRows>, GradientAsGiven>) {
    (void)count;
    (void)buffer;
    (void)gradient_rows;
    return d_output + offset;
  } else {
    gradient_rows(offset, count, buffer);
    return buffer;
  }
}
}  // namespace detail

/// Output pixels per tile: about 512 KiB of patches (half a Zen 5 core's L2), but with more
/// than one thread small enough that the pass has four tiles per thread; at least 16. (Cut for
/// the cache alone, one image through the compact network's 16x16 convolution was two tiles of
/// 240 and 16 pixels, and its 8x8 one a single tile, which one thread ran alone: 188-192 us of
/// the 1.07 ms the image took.) Tiles never change an output's bits: the GEMM sums each output
/// the same in any block, and the epilogue's activations work value by value.
inline Index im2col_tile_rows(const WindowGeometry& g) {
  const Index cache_rows = Index{131072} / std::max<Index>(g.patch_size(), 1);
  const Index threads = threads_for_region();  // one thread needs no more than the cache's cut
  const Index share_rows = threads > 1 ? g.batch * g.out_pixels() / (4 * threads) : cache_rows;
  const Index rows = (std::min(cache_rows, share_rows) + 15) / 16 * 16;
  return std::clamp<Index>(rows, 16, std::max<Index>(g.out_pixels(), 16));
}

/// How the im2col kernels cut a pass into work items: tiles of `tile_rows` output pixels of one
/// image, numbered image by image.
struct Im2colTiling {
  Index K, F, P;           // patch size, filters, output pixels per image
  Index tile_rows, tiles;  // output pixels per tile, tiles per image
  Index image_size;        // input values per image

  explicit Im2colTiling(const WindowGeometry& g)
      : K(g.patch_size()),
        F(g.out_c),
        P(g.out_pixels()),
        tile_rows(im2col_tile_rows(g)),
        tiles((P + tile_rows - 1) / tile_rows),
        image_size(g.in_h * g.in_w * g.in_c) {}

  struct Tile {
    Index image, first, rows;  // the image, its first output pixel in the tile, how many
  };
  [[nodiscard]] Tile tile(Index item) const {
    const Index first = (item % tiles) * tile_rows;
    return {item / tiles, first, std::min(tile_rows, P - first)};
  }
};

/// Fills `patches` (rows x K, row-major) with the windows of output pixels
/// [first_pixel, first_pixel + rows) of one image; taps over the padding are zero.
template <typename T>
void im2col(const WindowGeometry& g, const T* image, Index first_pixel, Index rows, T* patches) {
  const Index channels = g.in_c;
  for (Index r = 0; r < rows; ++r) {
    const Index oy = (first_pixel + r) / g.out_w;
    const Index ox = (first_pixel + r) % g.out_w;
    T* row = patches + r * g.patch_size();
    for (Index ky = 0; ky < g.kernel_h; ++ky) {
      const Index iy = oy * g.stride_h - g.pad_top + ky;
      for (Index kx = 0; kx < g.kernel_w; ++kx) {
        const Index ix = ox * g.stride_w - g.pad_left + kx;
        T* dst = row + (ky * g.kernel_w + kx) * channels;
        if (iy < 0 || iy >= g.in_h || ix < 0 || ix >= g.in_w) {
          std::fill(dst, dst + channels, T(0));
        } else {
          const T* src = image + (iy * g.in_w + ix) * channels;
          std::copy(src, src + channels, dst);
        }
      }
    }
  }
}

/// The adjoint of im2col: adds each patch row back onto the pixels its window read.
template <typename T>
void col2im_add(const WindowGeometry& g, const T* patches, Index first_pixel, Index rows,
                T* image) {
  const Index channels = g.in_c;
  for (Index r = 0; r < rows; ++r) {
    const Index oy = (first_pixel + r) / g.out_w;
    const Index ox = (first_pixel + r) % g.out_w;
    const T* row = patches + r * g.patch_size();
    for_each_tap_inside(g, oy, ox, [&](Index ky, Index kx, Index iy, Index ix) {
      const T* src = row + (ky * g.kernel_w + kx) * channels;
      T* dst = image + (iy * g.in_w + ix) * channels;
      for (Index c = 0; c < channels; ++c) dst[c] += src[c];
    });
  }
}

namespace detail {
template <typename T>
using ConstMatrixMap = Eigen::Map<const RowMatrix<T>>;
template <typename T>
using MatrixMap = Eigen::Map<RowMatrix<T>>;
template <typename T>
using ConstRowVectorMap = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>;
template <typename T>
using RowVectorMap = Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>;

/// d_kernel (K x F) and d_bias (F) = the sum, in slot order, of the partial sums of a parallel
/// reduction's slots, kept in `partials` as K*F kernel values followed by F bias values. The
/// kernel's values are summed in parallel, block by block (each value's order stays the same).
template <typename T>
void sum_partials(ThreadScratch<T>& partials, Index K, Index F, T* d_kernel, T* d_bias) {
  parallel_for_blocks(K * F, 4096, [&](Index begin, Index end) {
    sum_slots(partials, begin, end - begin, d_kernel + begin);
  });
  if (d_bias) sum_slots(partials, K * F, F, d_bias);
}

/// Prepares one K*F + F accumulator for each of the `slots` of a parallel reduction (each slot
/// zeroes its own: zeroed_partial).
template <typename T>
void prepare_partials(ThreadScratch<T>& partials, Index slots, Index K, Index F) {
  partials.prepare(K * F + F, slots);
}

/// The accumulator of `slot`, zeroed: by the thread that fills it, so it is in that thread's
/// cache when the sums start.
template <typename T>
T* zeroed_partial(ThreadScratch<T>& partials, Index slot, Index K, Index F) {
  T* partial = partials.get(slot);
  std::fill_n(partial, K * F + F, T(0));
  return partial;
}
}  // namespace detail

/// No-op epilogue: leaves the convolution's output as it is.
struct NoEpilogue {
  template <typename T>
  void operator()(T* /*values*/, Index /*count*/) const {}
};

/// Output pixels [first_pixel, first_pixel + rows) of one image (`image` is its input), into
/// `output`, through `patches` (room for rows x K values). Single-threaded.
template <typename T>
void conv2d_forward_im2col_tile(const WindowGeometry& g, const T* image, const T* kernel,
                                const T* bias, Index first_pixel, Index rows, T* patches,
                                T* output) {
  const Index K = g.patch_size(), F = g.out_c;
  im2col(g, image, first_pixel, rows, patches);
  gemm(rows, F, K, patches, K, Index{1}, kernel, F, output, F, false);  // Z = P W
  if (bias)
    detail::MatrixMap<T>(output, rows, F).rowwise() += detail::ConstRowVectorMap<T>(bias, F);
}

/// z = conv(x, w) + b. `epilogue(values, count)` runs on each finished block of output while it
/// is still in cache (the layer applies its activation there, saving a pass over memory).
template <typename T, typename Epilogue = NoEpilogue>
void conv2d_forward_im2col(const WindowGeometry& g, const T* input, const T* kernel, const T* bias,
                           T* output, Conv2DWorkspace<T>& workspace, Epilogue&& epilogue = {}) {
  const Im2colTiling t(g);
  workspace.patches.prepare(t.tile_rows * t.K);

  parallel_for(g.batch * t.tiles, [&](Index item) {
    const auto [n, first, rows] = t.tile(item);
    T* z_tile = output + (n * t.P + first) * t.F;
    conv2d_forward_im2col_tile(g, input + n * t.image_size, kernel, bias, first, rows,
                               workspace.patches.get(), z_tile);
    epilogue(z_tile, rows * t.F);
  });
}

template <typename T, typename GradientRows = GradientAsGiven>
void conv2d_backward_data_im2col(const WindowGeometry& g, const T* d_output, const T* kernel,
                                 T* d_input, Conv2DWorkspace<T>& workspace,
                                 GradientRows&& gradient_rows = {}) {
  const Im2colTiling t(g);
  const Index K = t.K, F = t.F, P = t.P, tile_rows = t.tile_rows, image_size = t.image_size;
  workspace.patches.prepare(tile_rows * K);
  workspace.gradient_rows.prepare(tile_rows * F);
  workspace.transposed_kernel.resize(static_cast<std::size_t>(F * K));
  detail::MatrixMap<T>(workspace.transposed_kernel.data(), F, K) =
      detail::ConstMatrixMap<T>(kernel, K, F).transpose();
  const T* kernel_t = workspace.transposed_kernel.data();

  parallel_for(g.batch, [&](Index n) {
    T* image_grad = d_input + n * image_size;
    std::fill(image_grad, image_grad + image_size, T(0));
    T* patch_grads = workspace.patches.get();
    for (Index first = 0; first < P; first += tile_rows) {
      const Index rows = std::min(tile_rows, P - first);
      const T* dz = detail::gradient_block(d_output, (n * P + first) * F, rows * F,
                                           workspace.gradient_rows.get(), gradient_rows);
      gemm(rows, K, F, dz, F, Index{1}, kernel_t, K, patch_grads, K, false);  // dP = dZ W^T
      col2im_add(g, patch_grads, first, rows, image_grad);
    }
  });
}

template <typename T, typename GradientRows = GradientAsGiven>
void conv2d_backward_weights_im2col(const WindowGeometry& g, const T* input, const T* d_output,
                                    T* d_kernel, T* d_bias, Conv2DWorkspace<T>& workspace,
                                    GradientRows&& gradient_rows = {}) {
  const Im2colTiling t(g);
  const Index K = t.K, F = t.F, P = t.P;
  workspace.patches.prepare(t.tile_rows * K);
  const Index items = g.batch * t.tiles, slots = reduction_slots(items, K * F + F);
  detail::prepare_partials(workspace.weight_grads, slots, K, F);
  workspace.gradient_rows.prepare(t.tile_rows * F);

  parallel_for_slots(items, slots, [&](Index slot, Index begin, Index end) {
    T* accumulator = detail::zeroed_partial(workspace.weight_grads, slot, K, F);
    for (Index item = begin; item < end; ++item) {
      const auto [n, first, rows] = t.tile(item);
      T* patches = workspace.patches.get();
      im2col(g, input + n * t.image_size, first, rows, patches);
      const T* dz = detail::gradient_block(d_output, (n * P + first) * F, rows * F,
                                           workspace.gradient_rows.get(), gradient_rows);
      gemm(K, F, rows, patches, Index{1}, K, dz, F, accumulator, F, true);  // dW += P^T dZ
      detail::RowVectorMap<T>(accumulator + K * F, F) +=
          detail::ConstMatrixMap<T>(dz, rows, F).colwise().sum();
    }
  });

  detail::sum_partials(workspace.weight_grads, K, F, d_kernel, d_bias);
}

}  // namespace stratum::kernels
