// Whole networks of the mask detector: one training step (forward, loss, backward, optimizer)
// at batch 32, and inference at batch 32 and 1, for the notebook's network ("seed") and the
// compact one. "images/s" is the figure to compare with other libraries.
#include <mask_detection/architectures.hpp>

#include "bench_common.hpp"

namespace stratum::bench {
namespace {

std::unique_ptr<Sequential<float>> network(const std::string& arch) {
  auto model = mask_detection::build_network(arch, 1);
  const auto recipe = mask_detection::recipe(arch);
  model->compile(
      mask_detection::network_loss(arch),
      std::make_unique<Adam<float>>(recipe.learning_rate, 0.9, 0.999, 1e-7, recipe.weight_decay));
  return model;
}

/// FLOPs of one image through `model`: 2 per multiply-add of every layer with a kernel
/// (Conv2D: output pixels x kernel size; Dense: kernel size), and for training twice that again
/// for the backward passes, minus the first layer's input gradient, which is never computed.
/// Element-wise layers (normalisation, pooling, activations) are not counted.
double flops_per_image(Sequential<float>& model, bool training) {
  double forward = 0, first = 0;
  for (std::size_t i = 0; i < model.size(); ++i) {
    Layer<float>& layer = model.layer(i);
    for (auto* p : layer.parameters()) {
      if (p->name != "kernel") continue;
      const Shape& out = layer.output_shape();
      const double positions = double(out.num_elements()) / double(out[out.rank() - 1]);
      const double layer_flops = 2.0 * double(p->value.size()) * positions;
      if (forward == 0) first = layer_flops;
      forward += layer_flops;
    }
  }
  return training ? 3 * forward - first : forward;
}

Tensor<float> random_images(Index batch) {
  Tensor<float> x({batch, 128, 128, 3});
  Random rng(7);
  for (auto& v : x) v = static_cast<float>(rng.uniform());
  return x;
}

void train_step(benchmark::State& state, const std::string& arch) {
  const Index batch = state.range(0);
  auto model = network(arch);
  const Tensor<float> x = random_images(batch);
  std::vector<int> labels(static_cast<std::size_t>(batch));
  for (Index i = 0; i < batch; ++i) labels[static_cast<std::size_t>(i)] = static_cast<int>(i % 2);
  model->train_on_batch(x, labels);  // allocate every buffer before timing
  for (auto _ : state) benchmark::DoNotOptimize(model->train_on_batch(x, labels));
  report(state, flops_per_image(*model, true) * double(batch), double(batch));
}

void inference(benchmark::State& state, const std::string& arch) {
  const Index batch = state.range(0);
  auto model = network(arch);
  const Tensor<float> x = random_images(batch);
  model->forward(x, Mode::inference);
  for (auto _ : state) benchmark::DoNotOptimize(model->forward(x, Mode::inference).data());
  report(state, flops_per_image(*model, false) * double(batch), double(batch));
}

void notebook_train_step(benchmark::State& state) {
  train_step(state, "seed");
}
void notebook_inference(benchmark::State& state) {
  inference(state, "seed");
}
void compact_train_step(benchmark::State& state) {
  train_step(state, "compact");
}
void compact_inference(benchmark::State& state) {
  inference(state, "compact");
}

BENCHMARK(notebook_train_step)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
BENCHMARK(notebook_inference)
    ->Arg(32)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);
BENCHMARK(compact_train_step)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
BENCHMARK(compact_inference)
    ->Arg(32)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);

}  // namespace
}  // namespace stratum::bench
