// Shared pieces of the benchmark suite: the notebook's layer shapes, random buffers, and the
// counters every benchmark reports (GFLOP/s from the FLOPs one iteration performs, images/s).
#pragma once

#include <benchmark/benchmark.h>
#include <stratum/stratum.hpp>

#include <vector>

namespace stratum::bench {

/// The notebook's two convolutions: 128x128x3 -> 32 filters, 63x63x32 -> 64 filters, 3x3 valid.
inline WindowGeometry conv1_geometry(Index batch) {
  return make_window_geometry(batch, 128, 128, 3, 3, 1, Padding::valid, 32);
}
inline WindowGeometry conv2_geometry(Index batch) {
  return make_window_geometry(batch, 63, 63, 32, 3, 1, Padding::valid, 64);
}

/// FLOPs of one convolution pass (each of forward, backward data, backward weights):
/// 2 * N * OH * OW * K * F (a multiply and an add per kernel tap and filter).
inline double conv_flops(const WindowGeometry& g) {
  return 2.0 * double(g.batch * g.out_pixels() * g.patch_size() * g.out_c);
}

inline std::vector<float> random_buffer(Index size, std::uint64_t seed) {
  Random rng(seed);
  std::vector<float> v(static_cast<std::size_t>(size));
  for (auto& x : v) x = static_cast<float>(rng.uniform(-1, 1));
  return v;
}

/// Reports images/s for a benchmark whose iterations each handle `images`.
inline void report_images(benchmark::State& state, double images) {
  state.counters["images/s"] = benchmark::Counter(images, benchmark::Counter::kIsIterationInvariantRate);
}

/// Reports GFLOP/s and images/s for a benchmark whose iterations each do `flops` over `images`.
inline void report(benchmark::State& state, double flops, double images) {
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  report_images(state, images);
}

}  // namespace stratum::bench
