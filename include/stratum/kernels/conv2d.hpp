// The convolution kernels the layers call: each pass picks the fastest implementation for the
// layer's shape. Thin layers (few inputs per window, such as the RGB input layer) run the
// direct kernels; everything else runs tiled im2col + GEMM. Both are tested against the plain
// loops of conv2d_reference.hpp.
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

/// `gradient_rows`: see GradientAsGiven in conv2d_im2col.hpp.
template <typename T, typename GradientRows = GradientAsGiven>
void conv2d_backward_data(const WindowGeometry& g, const T* d_output, const T* kernel, T* d_input,
                          Conv2DWorkspace<T>& workspace, GradientRows&& gradient_rows = {}) {
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

}  // namespace stratum::kernels
