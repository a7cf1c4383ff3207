// Kernels one by one at the notebook's shapes: each convolution pass as plain reference loops,
// as tiled im2col + GEMM and as the direct kernel (where it applies), plus the pooling and the
// GEMM itself; the compact network's first two convolutions; then the detector's new shapes: a
// stride-2 convolution, a depthwise convolution (reference loops and the fast kernels) and the
// upsampling. Argument 0 is the batch size.
#include "bench_common.hpp"

namespace stratum::bench {
namespace {

enum class Pass { forward, backward_data, backward_weights };
enum class Kernel { reference, im2col, direct };

template <Pass pass, Kernel kernel>
void convolution(benchmark::State& state, WindowGeometry (*geometry)(Index)) {
  const WindowGeometry g = geometry(state.range(0));
  const auto x = random_buffer(g.batch * g.in_h * g.in_w * g.in_c, 1);
  const auto w = random_buffer(g.patch_size() * g.out_c, 2);
  const auto b = random_buffer(g.out_c, 3);
  const auto dz = random_buffer(g.batch * g.out_pixels() * g.out_c, 4);
  std::vector<float> z(dz.size()), dx(x.size()), dw(w.size()), db(b.size());
  kernels::Conv2DWorkspace<float> ws;
  for (auto _ : state) {
    if constexpr (pass == Pass::forward) {
      if constexpr (kernel == Kernel::reference) kernels::conv2d_forward_reference(g, x.data(), w.data(), b.data(), z.data());
      if constexpr (kernel == Kernel::im2col) kernels::conv2d_forward_im2col(g, x.data(), w.data(), b.data(), z.data(), ws);
      if constexpr (kernel == Kernel::direct) kernels::conv2d_forward_direct(g, x.data(), w.data(), b.data(), z.data());
      benchmark::DoNotOptimize(z.data());
    } else if constexpr (pass == Pass::backward_data) {
      if constexpr (kernel == Kernel::reference) kernels::conv2d_backward_data_reference(g, dz.data(), w.data(), dx.data());
      if constexpr (kernel == Kernel::im2col) kernels::conv2d_backward_data_im2col(g, dz.data(), w.data(), dx.data(), ws);
      if constexpr (kernel == Kernel::direct) kernels::conv2d_backward_data_direct(g, dz.data(), w.data(), dx.data(), ws.transposed_kernel);
      benchmark::DoNotOptimize(dx.data());
    } else {
      if constexpr (kernel == Kernel::reference) kernels::conv2d_backward_weights_reference(g, x.data(), dz.data(), dw.data(), db.data());
      if constexpr (kernel == Kernel::im2col) kernels::conv2d_backward_weights_im2col(g, x.data(), dz.data(), dw.data(), db.data(), ws);
      if constexpr (kernel == Kernel::direct) kernels::conv2d_backward_weights_direct(g, x.data(), dz.data(), dw.data(), db.data(), ws);
      benchmark::DoNotOptimize(dw.data());
    }
    benchmark::ClobberMemory();
  }
  report(state, conv_flops(g), double(g.batch));
}

#define STRATUM_CONV_BENCH(name, pass, kernel, geometry)                                   \
  void name(benchmark::State& state) { convolution<pass, kernel>(state, geometry); }        \
  BENCHMARK(name)->Arg(32)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()

// conv1 (K = 27): the direct kernels are what the layer uses; its backward data is never needed
// in training (it is the first layer), so only forward and backward weights are measured.
STRATUM_CONV_BENCH(conv1_forward_reference, Pass::forward, Kernel::reference, conv1_geometry);
STRATUM_CONV_BENCH(conv1_forward_im2col, Pass::forward, Kernel::im2col, conv1_geometry);
STRATUM_CONV_BENCH(conv1_forward_direct, Pass::forward, Kernel::direct, conv1_geometry);
STRATUM_CONV_BENCH(conv1_backward_weights_reference, Pass::backward_weights, Kernel::reference, conv1_geometry);
STRATUM_CONV_BENCH(conv1_backward_weights_im2col, Pass::backward_weights, Kernel::im2col, conv1_geometry);
STRATUM_CONV_BENCH(conv1_backward_weights_direct, Pass::backward_weights, Kernel::direct, conv1_geometry);
// conv2 (K = 288): the layer runs the direct kernels forward and for the weights; backward data
// runs im2col when dz is made block by block (as with its ReLU and pooling), the direct kernel
// (the forward convolution of dz with the kernel turned) when dz is given whole.
STRATUM_CONV_BENCH(conv2_forward_reference, Pass::forward, Kernel::reference, conv2_geometry);
STRATUM_CONV_BENCH(conv2_forward_im2col, Pass::forward, Kernel::im2col, conv2_geometry);
STRATUM_CONV_BENCH(conv2_forward_direct, Pass::forward, Kernel::direct, conv2_geometry);
STRATUM_CONV_BENCH(conv2_backward_data_reference, Pass::backward_data, Kernel::reference, conv2_geometry);
STRATUM_CONV_BENCH(conv2_backward_data_im2col, Pass::backward_data, Kernel::im2col, conv2_geometry);
STRATUM_CONV_BENCH(conv2_backward_data_direct, Pass::backward_data, Kernel::direct, conv2_geometry);
STRATUM_CONV_BENCH(conv2_backward_weights_reference, Pass::backward_weights, Kernel::reference, conv2_geometry);
STRATUM_CONV_BENCH(conv2_backward_weights_im2col, Pass::backward_weights, Kernel::im2col, conv2_geometry);
STRATUM_CONV_BENCH(conv2_backward_weights_direct, Pass::backward_weights, Kernel::direct, conv2_geometry);

/// The GEMM at about conv2's forward tile shape (the tile is 464 x 288; 455 rows here, so the
/// last row block is a partial one) times 288 x 64, ours against Eigen's.
template <bool eigen>
void gemm_conv2_tile(benchmark::State& state) {
  const Index M = 455, K = 288, N = 64;
  const auto a = random_buffer(M * K, 1), b = random_buffer(K * N, 2);
  std::vector<float> c(static_cast<std::size_t>(M * N));
  for (auto _ : state) {
    if constexpr (eigen)
      kernels::detail::gemm_eigen<float>(M, N, K, a.data(), K, 1, b.data(), N, c.data(), N, false);
    else
      kernels::gemm<float>(M, N, K, a.data(), K, 1, b.data(), N, c.data(), N, false);
    benchmark::DoNotOptimize(c.data());
  }
  report(state, 2.0 * double(M * N * K), 0);
  state.SetLabel(eigen ? "eigen" : kernels::gemm_float_path());
}
void gemm_conv2_tile_stratum(benchmark::State& s) { gemm_conv2_tile<false>(s); }
void gemm_conv2_tile_eigen(benchmark::State& s) { gemm_conv2_tile<true>(s); }
BENCHMARK(gemm_conv2_tile_stratum)->Unit(benchmark::kMicrosecond);
BENCHMARK(gemm_conv2_tile_eigen)->Unit(benchmark::kMicrosecond);

/// A layer's forward and backward at the notebook's shape; argument 0 is the batch size.
template <typename LayerType>
void layer_pass(benchmark::State& state, LayerType layer, const Shape& input, bool backward) {
  Random rng(1);
  layer.build(input, rng);
  Tensor<float> x(input.with_batch(state.range(0))), y, dx;
  for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
  layer.forward(x, y, Mode::training);
  Tensor<float> dy(y.shape());
  for (auto& v : dy) v = static_cast<float>(rng.uniform(-1, 1));
  if (backward) layer.backward(x, y, dy, &dx);  // allocate before timing
  for (auto _ : state) {
    if (backward) layer.backward(x, y, dy, &dx);
    else layer.forward(x, y, Mode::training);
    benchmark::ClobberMemory();
  }
  const double flops = layer.parameter_count() > 0 ? 2.0 * double(state.range(0)) * double(layer.parameter_count()) * (backward ? 2 : 1) : 0;
  report(state, flops, double(state.range(0)));
}

void max_pool1_forward(benchmark::State& s) { layer_pass(s, MaxPool2D<float>(2), {126, 126, 32}, false); }
void max_pool1_backward(benchmark::State& s) { layer_pass(s, MaxPool2D<float>(2), {126, 126, 32}, true); }
void dense1_forward(benchmark::State& s) { layer_pass(s, Dense<float>(128, Activation::relu), {57600}, false); }
void dense1_backward(benchmark::State& s) { layer_pass(s, Dense<float>(128, Activation::relu), {57600}, true); }
BENCHMARK(max_pool1_forward)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(max_pool1_backward)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(dense1_forward)->Arg(32)->Arg(3)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(dense1_backward)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();

/// A Conv2D and the 2x2 MaxPool2D after it, fused as Sequential runs them (forward_pooled,
/// backward_pooled), at the notebook's shapes; argument 0 is the batch size. The first pair's
/// backward computes no input gradient, as in the model, where it is the first layer.
void pooled_convolution_pass(benchmark::State& state, const WindowGeometry& g, bool backward,
                             bool input_gradient) {
  Random rng(1);
  Conv2D<float> conv(g.out_c, Size2{g.kernel_h, g.kernel_w}, Activation::relu);
  MaxPool2D<float> pool(2);
  pool.build(conv.build({g.in_h, g.in_w, g.in_c}, rng), rng);
  Tensor<float> x({g.batch, g.in_h, g.in_w, g.in_c}), pooled, dx;
  for (auto& v : x) v = static_cast<float>(rng.uniform(0, 1));
  conv.forward_pooled(x, pool, pooled);
  Tensor<float> d_pooled(pooled.shape());
  for (auto& v : d_pooled) v = static_cast<float>(rng.uniform(-1, 1));
  // One pass before timing, so that the buffers it allocates the first time are not timed.
  if (backward) conv.backward_pooled(x, pool, pooled, d_pooled, input_gradient ? &dx : nullptr);
  for (auto _ : state) {
    if (backward)
      conv.backward_pooled(x, pool, pooled, d_pooled, input_gradient ? &dx : nullptr);
    else
      conv.forward_pooled(x, pool, pooled);
    benchmark::ClobberMemory();
  }
  // Forward computes only the rows some window reads (60 of conv2's 61); backward runs the
  // kernels over every row, one pass for the weights and one for the input gradient.
  const double forward_rows = double(pool.output_shape()[0] * 2) / double(g.out_h);
  report(state, conv_flops(g) * (backward ? (input_gradient ? 2 : 1) : forward_rows),
         double(g.batch));
}

void conv1_pool1_fused_forward(benchmark::State& s) { pooled_convolution_pass(s, conv1_geometry(s.range(0)), false, false); }
void conv1_pool1_fused_backward(benchmark::State& s) { pooled_convolution_pass(s, conv1_geometry(s.range(0)), true, false); }
void conv2_pool2_fused_forward(benchmark::State& s) { pooled_convolution_pass(s, conv2_geometry(s.range(0)), false, true); }
void conv2_pool2_fused_backward(benchmark::State& s) { pooled_convolution_pass(s, conv2_geometry(s.range(0)), true, true); }
BENCHMARK(conv1_pool1_fused_forward)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(conv1_pool1_fused_backward)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(conv2_pool2_fused_forward)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(conv2_pool2_fused_backward)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();


/// A stride-2 "same" 3x3 convolution, 128x128x16 -> 64x64x32: the down-sampling step of a
/// detector's backbone. Forward and backward weights run the direct kernels (F = 32), backward
/// data im2col + GEMM.
WindowGeometry stride2_geometry(Index batch) {
  return make_window_geometry(batch, 128, 128, 16, 3, 2, Padding::same, 32);
}
#define STRATUM_STRIDE2_BENCH(name, pass, kernel)                                           \
  void name(benchmark::State& state) { convolution<pass, kernel>(state, stride2_geometry); } \
  BENCHMARK(name)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime()
STRATUM_STRIDE2_BENCH(conv_stride2_forward_im2col, Pass::forward, Kernel::im2col);
STRATUM_STRIDE2_BENCH(conv_stride2_forward_direct, Pass::forward, Kernel::direct);
STRATUM_STRIDE2_BENCH(conv_stride2_backward_data_im2col, Pass::backward_data, Kernel::im2col);
STRATUM_STRIDE2_BENCH(conv_stride2_backward_weights_im2col, Pass::backward_weights, Kernel::im2col);
STRATUM_STRIDE2_BENCH(conv_stride2_backward_weights_direct, Pass::backward_weights, Kernel::direct);

/// The compact network's (the shipped classifier's) first two convolutions, "same" padding, so
/// that every output row has edge pixels: the stem, 128x128x3 -> 64x64x16 at stride 2, and
/// 64x64x16 -> 64x64x32, whose backward data is the forward convolution of dz with 16 filters.
/// These run the direct kernels with 16 filters, whose per-pixel loops GCC once vectorised
/// badly (STRATUM_CHANNEL_LOOP in simd_path.hpp).
WindowGeometry compact_stem_geometry(Index batch) {
  return make_window_geometry(batch, 128, 128, 3, 3, 2, Padding::same, 16);
}
WindowGeometry compact_conv2_geometry(Index batch) {
  return make_window_geometry(batch, 64, 64, 16, 3, 1, Padding::same, 32);
}
STRATUM_CONV_BENCH(compact_stem_forward_direct, Pass::forward, Kernel::direct,
                   compact_stem_geometry);
STRATUM_CONV_BENCH(compact_stem_backward_weights_direct, Pass::backward_weights, Kernel::direct,
                   compact_stem_geometry);
STRATUM_CONV_BENCH(compact_conv2_forward_direct, Pass::forward, Kernel::direct,
                   compact_conv2_geometry);
STRATUM_CONV_BENCH(compact_conv2_backward_data_direct, Pass::backward_data, Kernel::direct,
                   compact_conv2_geometry);
STRATUM_CONV_BENCH(compact_conv2_backward_weights_direct, Pass::backward_weights, Kernel::direct,
                   compact_conv2_geometry);

/// A depthwise 3x3 "same" convolution over 128x128x32 (multiplier 1), with the given stride:
/// each pass as reference loops and as the fast kernels. FLOPs: 2 * N * OH * OW * KH * KW * C*M.
template <Pass pass, bool reference>
void depthwise(benchmark::State& state, Index stride) {
  const WindowGeometry g =
      make_window_geometry(state.range(0), 128, 128, 32, 3, stride, Padding::same, 32);
  const auto x = random_buffer(g.batch * g.in_h * g.in_w * g.in_c, 1);
  const auto w = random_buffer(g.kernel_h * g.kernel_w * g.out_c, 2);
  const auto b = random_buffer(g.out_c, 3);
  const auto dz = random_buffer(g.batch * g.out_pixels() * g.out_c, 4);
  std::vector<float> z(dz.size()), dx(x.size()), dw(w.size()), db(b.size());
  kernels::DepthwiseConv2DWorkspace<float> ws;
  for (auto _ : state) {
    if constexpr (pass == Pass::forward) {
      if constexpr (reference) kernels::depthwise_conv2d_forward_reference(g, x.data(), w.data(), b.data(), z.data());
      else kernels::depthwise_conv2d_forward(g, x.data(), w.data(), b.data(), z.data(), ws);
      benchmark::DoNotOptimize(z.data());
    } else if constexpr (pass == Pass::backward_data) {
      if constexpr (reference) kernels::depthwise_conv2d_backward_data_reference(g, dz.data(), w.data(), dx.data());
      else kernels::depthwise_conv2d_backward_data(g, dz.data(), w.data(), dx.data(), ws);
      benchmark::DoNotOptimize(dx.data());
    } else {
      if constexpr (reference) kernels::depthwise_conv2d_backward_weights_reference(g, x.data(), dz.data(), dw.data(), db.data());
      else kernels::depthwise_conv2d_backward_weights(g, x.data(), dz.data(), dw.data(), db.data(), ws);
      benchmark::DoNotOptimize(dw.data());
    }
    benchmark::ClobberMemory();
  }
  report(state, 2.0 * double(g.batch * g.out_pixels() * g.kernel_h * g.kernel_w * g.out_c), double(g.batch));
}

#define STRATUM_DEPTHWISE_BENCH(name, pass, reference, stride)                 \
  void name(benchmark::State& state) { depthwise<pass, reference>(state, stride); } \
  BENCHMARK(name)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime()
STRATUM_DEPTHWISE_BENCH(depthwise3x3_forward_reference, Pass::forward, true, 1);
STRATUM_DEPTHWISE_BENCH(depthwise3x3_forward, Pass::forward, false, 1);
STRATUM_DEPTHWISE_BENCH(depthwise3x3_backward_data_reference, Pass::backward_data, true, 1);
STRATUM_DEPTHWISE_BENCH(depthwise3x3_backward_data, Pass::backward_data, false, 1);
STRATUM_DEPTHWISE_BENCH(depthwise3x3_backward_weights_reference, Pass::backward_weights, true, 1);
STRATUM_DEPTHWISE_BENCH(depthwise3x3_backward_weights, Pass::backward_weights, false, 1);
STRATUM_DEPTHWISE_BENCH(depthwise3x3_stride2_forward, Pass::forward, false, 2);
STRATUM_DEPTHWISE_BENCH(depthwise3x3_stride2_backward_data, Pass::backward_data, false, 2);
STRATUM_DEPTHWISE_BENCH(depthwise3x3_stride2_backward_weights, Pass::backward_weights, false, 2);

/// UpSampling2D by 2 over 64x64x32 (a detector's top-down path): memory-bound copies and sums.
void upsampling2d_forward(benchmark::State& s) { layer_pass(s, UpSampling2D<float>(2), {64, 64, 32}, false); }
void upsampling2d_backward(benchmark::State& s) { layer_pass(s, UpSampling2D<float>(2), {64, 64, 32}, true); }
BENCHMARK(upsampling2d_forward)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(upsampling2d_backward)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace stratum::bench
