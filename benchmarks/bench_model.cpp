// The notebook's whole network: one training step (forward, loss, backward, Adam) at batch 32,
// and inference at batch 32 and 1. "images/s" is the figure to compare with other libraries.
#include <mask_detection/architectures.hpp>

#include "bench_common.hpp"

namespace stratum::bench {
namespace {

std::unique_ptr<Sequential<float>> notebook_network() {
  auto model = mask_detection::notebook_network(1);
  model->compile(mask_detection::notebook_loss(), std::make_unique<Adam<float>>());
  return model;
}

/// FLOPs of one image through the network: forward of every layer with parameters
/// (2 per multiply-add), and for training twice that again for the backward passes (minus the
/// first layer's unneeded input gradient).
double notebook_flops_per_image(bool training) {
  const double conv1 = 2.0 * 126 * 126 * 27 * 32, conv2 = 2.0 * 61 * 61 * 288 * 64;
  const double dense = 2.0 * (57600 * 128 + 128 * 64 + 64 * 2);
  const double forward = conv1 + conv2 + dense;
  return training ? forward + conv1 + 2 * conv2 + 2 * dense : forward;
}

Tensor<float> random_images(Index batch) {
  Tensor<float> x({batch, 128, 128, 3});
  Random rng(7);
  for (auto& v : x) v = static_cast<float>(rng.uniform());
  return x;
}

void notebook_train_step(benchmark::State& state) {
  const Index batch = state.range(0);
  auto model = notebook_network();
  const Tensor<float> x = random_images(batch);
  std::vector<int> labels(static_cast<std::size_t>(batch));
  for (Index i = 0; i < batch; ++i) labels[static_cast<std::size_t>(i)] = static_cast<int>(i % 2);
  model->train_on_batch(x, labels);  // allocate every buffer before timing
  for (auto _ : state) benchmark::DoNotOptimize(model->train_on_batch(x, labels));
  report(state, notebook_flops_per_image(true) * double(batch), double(batch));
}

void notebook_inference(benchmark::State& state) {
  const Index batch = state.range(0);
  auto model = notebook_network();
  const Tensor<float> x = random_images(batch);
  model->forward(x, Mode::inference);
  for (auto _ : state) benchmark::DoNotOptimize(model->forward(x, Mode::inference).data());
  report(state, notebook_flops_per_image(false) * double(batch), double(batch));
}

BENCHMARK(notebook_train_step)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
BENCHMARK(notebook_inference)->Arg(32)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);

}  // namespace
}  // namespace stratum::bench
