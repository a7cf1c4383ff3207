// The convolution kernels the layers call: each pass picks the fastest implementation for the
// layer's shape. Forward and backward weights run the direct kernels (GEMMs on the image as it
// lies) where the filter count allows, tiled im2col + GEMM otherwise; backward data runs the
// direct forward kernel on dz (stride 1, a channel count the kernels take), im2col + GEMM
// otherwise; where dz is made block by block, both backward passes on the direct kernels run
// together, image by image (conv2d_backward). All are tested against the plain loops of
// conv2d_reference.hpp.
#pragma once

#include "conv2d_direct.hpp"
#include "conv2d_im2col.hpp"

namespace stratum::kernels {

template <typename T, typename Epilogue = NoEpilogue>
void conv2d_forward(const WindowGeometry& g, const T* input, const T* kernel, const T* bias,
                    T* output, Conv2DWorkspace<T>& workspace, Epilogue&& epilogue = {}) {
  if (prefers_direct_convolution(g))
    conv2d_forward_direct(g, input, kernel, bias, output, epilogue);
  else
    conv2d_forward_im2col(g, input, kernel, bias, output, workspace, epilogue);
}

/// The convolution computed in bands of output rows, for a pooling that reads each band while it
/// is still in cache (max_pool2d_row, kernels/max_pool2d.hpp): the convolution's full output,
/// four times the size of the pooled one for 2x2 pools, is then never written to memory.
///
/// `pooling` is the geometry of the pooling over this convolution's output. Band oy holds the
/// rows that pooling output row oy reads, [oy * stride_h - pad_top, ... + kernel_h), clipped to
/// the output. consume(n, oy, values, first_row, rows) receives band oy of image n: `rows` output
/// rows from `first_row`, with the bias and without any activation, in a per-thread buffer.
/// Threads take (n, oy) pairs as they come free; each band is computed exactly as the whole-
/// tensor kernels compute those rows.
template <typename T, typename Consume>
void conv2d_forward_bands(const WindowGeometry& g, const WindowGeometry& pooling, const T* input,
                          const T* kernel, const T* bias, Conv2DWorkspace<T>& workspace,
                          Consume&& consume) {
  const bool direct = prefers_direct_convolution(g);
  const Index image_size = g.in_h * g.in_w * g.in_c, tile_rows = im2col_tile_rows(g);
  workspace.output_bands.prepare(pooling.kernel_h * g.out_w * g.out_c);
  if (!direct) workspace.patches.prepare(tile_rows * g.patch_size());

  parallel_for(g.batch * pooling.out_h, [&](Index item) {
    const Index n = item / pooling.out_h, oy = item % pooling.out_h;
    const Index top = oy * pooling.stride_h - pooling.pad_top;
    const Index first_row = std::max<Index>(top, 0);
    const Index rows = std::max<Index>(std::min(top + pooling.kernel_h, g.out_h) - first_row, 0);
    const T* image = input + n * image_size;
    T* values = workspace.output_bands.get();
    if (direct) {
      conv2d_forward_direct_rows(g, image, kernel, bias, first_row, rows, values);
    } else {
      const Index pixels = rows * g.out_w;
      for (Index p = 0; p < pixels; p += tile_rows)
        conv2d_forward_im2col_tile(g, image, kernel, bias, first_row * g.out_w + p,
                                   std::min(tile_rows, pixels - p), workspace.patches.get(),
                                   values + p * g.out_c);
    }
    consume(n, oy, values, first_row, rows);
  });
}

/// `gradient_rows`: see GradientAsGiven in conv2d_im2col.hpp.
template <typename T, typename GradientRows = GradientAsGiven>
void conv2d_backward_data(const WindowGeometry& g, const T* d_output, const T* kernel, T* d_input,
                          Conv2DWorkspace<T>& workspace, GradientRows&& gradient_rows = {}) {
  // The direct kernel reads dz where it lies, so on its own it runs only when dz is given
  // whole. Made block by block (a fused activation or pooling), writing it out first and
  // reading it back cost what the direct kernel saves: conv2's fused backward pass took
  // 29.4-30.1 ms that way (a steady-state driver timing the fused convolution + pooling),
  // against 28.8-30.7 ms through im2col (conv2_pool2_fused_backward in the benchmarks).
  // Layers call conv2d_backward, which runs such a layer's two passes image by image instead.
  if constexpr (std::is_same_v<std::decay_t<GradientRows>, GradientAsGiven>)
    if (direct_backward_data(g))
      return conv2d_backward_data_direct(g, d_output, kernel, d_input, workspace.transposed_kernel);
  conv2d_backward_data_im2col(g, d_output, kernel, d_input, workspace, gradient_rows);
}

/// `gradient_rows`: see GradientAsGiven in conv2d_im2col.hpp.
template <typename T, typename GradientRows = GradientAsGiven>
void conv2d_backward_weights(const WindowGeometry& g, const T* input, const T* d_output,
                             T* d_kernel, T* d_bias, Conv2DWorkspace<T>& workspace,
                             GradientRows&& gradient_rows = {}) {
  if (prefers_direct_convolution(g))
    conv2d_backward_weights_direct(g, input, d_output, d_kernel, d_bias, workspace, gradient_rows);
  else
    conv2d_backward_weights_im2col(g, input, d_output, d_kernel, d_bias, workspace, gradient_rows);
}

/// Both backward passes: the weight and bias gradients, and the input gradient unless d_input
/// is null. When the layer makes dz block by block (`gradient_rows`) and both passes can run on
/// the direct kernels, they run together image by image, so that each image's dz is made once
/// and read while in cache (conv2d_backward_direct_by_image); otherwise one pass after the other.
template <typename T, typename GradientRows = GradientAsGiven>
void conv2d_backward(const WindowGeometry& g, const T* input, const T* d_output, const T* kernel,
                     T* d_input, T* d_kernel, T* d_bias, Conv2DWorkspace<T>& workspace,
                     GradientRows&& gradient_rows = {}) {
  if constexpr (!std::is_same_v<std::decay_t<GradientRows>, GradientAsGiven>)
    if (d_input && direct_backward_by_image(g))
      return conv2d_backward_direct_by_image(g, input, kernel, d_input, d_kernel, d_bias, workspace,
                                             gradient_rows);
  conv2d_backward_weights(g, input, d_output, d_kernel, d_bias, workspace, gradient_rows);
  if (d_input) conv2d_backward_data(g, d_output, kernel, d_input, workspace, gradient_rows);
}

}  // namespace stratum::kernels
