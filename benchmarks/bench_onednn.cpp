// The same convolution passes through oneDNN (libdnnl-dev), so that every figure of ours has
// its neighbour in the same run. Built only when CMake finds oneDNN: an optional,
// benchmark-only dependency.
//
// Two layouts: NHWC activations (ours, so the comparison is like for like) with the weights in
// whatever layout oneDNN prefers (a few hundred kilobytes, reordered once per step at most),
// and oneDNN's own choice for everything (format_tag::any: blocked layouts such as nChw16c),
// which is what oneDNN runs at its best. Converting to and from them is left out of the timing.
#include <dnnl.hpp>

#include "bench_common.hpp"

namespace stratum::bench {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;

enum class Pass { forward, backward_data, backward_weights };

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

/// A memory of descriptor `md` holding random values, written through a plain layout `plain`
/// and reordered into `md`'s (so that blocked layouts get their padding right).
memory random_memory(const memory::desc& md, const memory::dims& dims, Tag plain,
                     std::uint64_t seed, dnnl::stream& stream) {
  memory source({dims, memory::data_type::f32, plain}, engine());
  const auto values =
      random_buffer(static_cast<Index>(source.get_desc().get_size() / sizeof(float)), seed);
  std::copy(values.begin(), values.end(), static_cast<float*>(source.get_data_handle()));
  if (md == source.get_desc()) return source;
  memory target(md, engine());
  dnnl::reorder(source, target).execute(stream, source, target);
  stream.wait();
  return target;
}

template <Pass pass>
void convolution(benchmark::State& state, WindowGeometry (*geometry)(Index), bool blocked) {
  const WindowGeometry g = geometry(state.range(0));
  dnnl::stream stream(engine());
  // oneDNN's dimensions are always given in NCHW / OIHW order; the tag says the memory layout.
  const memory::dims src{g.batch, g.in_c, g.in_h, g.in_w},
      weights{g.out_c, g.in_c, g.kernel_h, g.kernel_w}, bias{g.out_c},
      dst{g.batch, g.out_c, g.out_h, g.out_w}, strides{g.stride_h, g.stride_w},
      pad_before{g.pad_top, g.pad_left},
      pad_after{(g.out_h - 1) * g.stride_h + g.kernel_h - g.in_h - g.pad_top,
                (g.out_w - 1) * g.stride_w + g.kernel_w - g.in_w - g.pad_left};
  const auto f32 = memory::data_type::f32;
  const Tag act = blocked ? Tag::any : Tag::nhwc;
  const memory::desc src_md(src, f32, act), w_md(weights, f32, Tag::any), b_md(bias, f32, Tag::x),
      dst_md(dst, f32, act);

  const dnnl::convolution_forward::primitive_desc forward_pd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                      dnnl::algorithm::convolution_direct, src_md, w_md, b_md,
                                      dst_md, strides, pad_before, pad_after),
      engine());
  memory x = random_memory(forward_pd.src_desc(), src, Tag::nhwc, 1, stream);
  memory w = random_memory(forward_pd.weights_desc(), weights, Tag::hwio, 2, stream);
  memory b = random_memory(forward_pd.bias_desc(), bias, Tag::x, 3, stream);
  memory dz = random_memory(forward_pd.dst_desc(), dst, Tag::nhwc, 4, stream);

  dnnl::primitive primitive;
  std::unordered_map<int, memory> args;
  if constexpr (pass == Pass::forward) {
    primitive = dnnl::convolution_forward(forward_pd);
    args = {{DNNL_ARG_SRC, x},
            {DNNL_ARG_WEIGHTS, w},
            {DNNL_ARG_BIAS, b},
            {DNNL_ARG_DST, memory(forward_pd.dst_desc(), engine())}};
  } else if constexpr (pass == Pass::backward_data) {
    const dnnl::convolution_backward_data::primitive_desc pd(
        dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, src_md, w_md,
                                              dst_md, strides, pad_before, pad_after),
        engine(), forward_pd);
    primitive = dnnl::convolution_backward_data(pd);
    memory w_for_pass = random_memory(pd.weights_desc(), weights, Tag::hwio, 2, stream);
    memory dz_for_pass = random_memory(pd.diff_dst_desc(), dst, Tag::nhwc, 4, stream);
    args = {{DNNL_ARG_DIFF_DST, dz_for_pass},
            {DNNL_ARG_WEIGHTS, w_for_pass},
            {DNNL_ARG_DIFF_SRC, memory(pd.diff_src_desc(), engine())}};
  } else {
    const dnnl::convolution_backward_weights::primitive_desc pd(
        dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src_md, w_md,
                                                 b_md, dst_md, strides, pad_before, pad_after),
        engine(), forward_pd);
    primitive = dnnl::convolution_backward_weights(pd);
    memory x_for_pass = random_memory(pd.src_desc(), src, Tag::nhwc, 1, stream);
    memory dz_for_pass = random_memory(pd.diff_dst_desc(), dst, Tag::nhwc, 4, stream);
    args = {{DNNL_ARG_SRC, x_for_pass},
            {DNNL_ARG_DIFF_DST, dz_for_pass},
            {DNNL_ARG_DIFF_WEIGHTS, memory(pd.diff_weights_desc(), engine())},
            {DNNL_ARG_DIFF_BIAS, memory(pd.diff_bias_desc(), engine())}};
  }
  primitive.execute(stream, args);  // first run: oneDNN's just-in-time code generation
  stream.wait();
  for (auto _ : state) {
    primitive.execute(stream, args);
    stream.wait();
  }
  report(state, conv_flops(g), double(g.batch));
  state.SetLabel(blocked ? "oneDNN, its own layout" : "oneDNN, NHWC");
}

#define STRATUM_ONEDNN_BENCH(name, pass, geometry)                                              \
  void name##_onednn_nhwc(benchmark::State& state) {                                            \
    convolution<pass>(state, geometry, false);                                                  \
  }                                                                                             \
  void name##_onednn_blocked(benchmark::State& state) {                                         \
    convolution<pass>(state, geometry, true);                                                   \
  }                                                                                             \
  BENCHMARK(name##_onednn_nhwc)->Arg(32)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK(name##_onednn_blocked)->Arg(32)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()

STRATUM_ONEDNN_BENCH(conv1_forward, Pass::forward, conv1_geometry);
STRATUM_ONEDNN_BENCH(conv1_backward_weights, Pass::backward_weights, conv1_geometry);
STRATUM_ONEDNN_BENCH(conv2_forward, Pass::forward, conv2_geometry);
STRATUM_ONEDNN_BENCH(conv2_backward_data, Pass::backward_data, conv2_geometry);
STRATUM_ONEDNN_BENCH(conv2_backward_weights, Pass::backward_weights, conv2_geometry);

}  // namespace
}  // namespace stratum::bench
