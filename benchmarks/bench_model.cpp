// Whole networks of the mask detector: one training step (forward, loss, backward, optimizer)
// at batch 32, and inference at batch 32 and 1, for the notebook's network ("seed") and the
// compact one (also folded, as the mask_detector program runs it). "images/s" is the figure to
// compare with other libraries.
//
// The *_train_step_loaded benchmarks run the training step with 1 and 2 threads, on the quiet
// machine (load:0) and beside a competing process that the benchmark starts and stops itself
// (load:1 a busy loop, load:2 a memory-bound copy; neighbour.hpp): a step under load should
// take at most about the one-thread time of the quiet machine (1.2 times, our target).
#include <mask_detection/architectures.hpp>
#include <stratum/model/fold_batch_normalization.hpp>

#include "bench_common.hpp"
#include "neighbour.hpp"

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

/// Inference at batch range(0); `folded`: as `predict`, `evaluate` and `detect` run a model,
/// its batch normalisation folded into the convolutions (fold_batch_normalization.hpp). The
/// FLOP count is the network's as built, so the two report the same work.
void inference(benchmark::State& state, const std::string& arch, bool folded = false) {
  const Index batch = state.range(0);
  auto model = network(arch);
  const double flops = flops_per_image(*model, false) * double(batch);
  if (folded) model = fold_batch_normalization(*model);
  const Tensor<float> x = random_images(batch);
  model->forward(x, Mode::inference);
  for (auto _ : state) benchmark::DoNotOptimize(model->forward(x, Mode::inference).data());
  report(state, flops, double(batch));
}

/// The training step with range(1) threads beside a Neighbour of kind range(2).
void train_step_loaded(benchmark::State& state, const std::string& arch) {
  const int saved_threads = num_threads();
  set_num_threads(static_cast<int>(state.range(1)));
  const auto load = static_cast<Load>(state.range(2));
  state.SetLabel(load == Load::none ? std::string("quiet")
                                    : std::string("beside a ") + to_string(load) + " process");
  {
    Neighbour neighbour(load);
    train_step(state, arch);
  }
  set_num_threads(saved_threads);
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
void compact_inference_folded(benchmark::State& state) {
  inference(state, "compact", true);
}
void notebook_train_step_loaded(benchmark::State& state) {
  train_step_loaded(state, "seed");
}
void compact_train_step_loaded(benchmark::State& state) {
  train_step_loaded(state, "compact");
}

/// batch 32; threads 1 and 2; quiet, then each kind of neighbour.
void loaded_arguments(benchmark::internal::Benchmark* b) {
  b->ArgNames({"", "threads", "load"});
  for (int load : {int(Load::none), int(Load::busy), int(Load::memory)})
    for (int threads : {1, 2}) b->Args({32, threads, load});
  b->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
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
BENCHMARK(compact_inference_folded)
    ->Arg(32)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);
BENCHMARK(notebook_train_step_loaded)->Apply(loaded_arguments);
BENCHMARK(compact_train_step_loaded)->Apply(loaded_arguments);

}  // namespace
}  // namespace stratum::bench
