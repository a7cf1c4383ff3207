// Data-parallel training over MPI, timed (docs/distributed.md): the training step of the
// notebook's or the compact network with N ranks against one process, and what the gradient
// all-reduce costs with and without overlapping backward.
//
//   bench_distributed --arch compact --threads 2                       one process
//   mpirun -np 2 --bind-to core bench_distributed --arch compact --threads 1   2 ranks
//   (scripts/bench-distributed.sh runs both networks both ways)
//
// Under mpirun, on every rank at once (so the ranks compete for the machine as in training):
//   allreduce     MPI_Allreduce of the model's gradient bytes alone (float sums)
//   compute       a step of the rank's own part of the batch, trained alone: no communication
//   overlap       a distributed step, gradients in buckets of 2 MB started during backward
//   no overlap    a distributed step, one bucket started when backward has ended
//   bf16          a distributed step as "overlap", the gradients sent as bfloat16 (half the bytes)
// Started by hand, only the one-process step is timed. Every figure is the median of --steps
// steps after 2 warm-up steps; the data are random images (what they show does not change the
// time).
#include <mask_detection/architectures.hpp>
#include <stratum/distributed/communicator.hpp>
#include <stratum/distributed/mpi_data_parallel.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

using namespace stratum;
using Clock = std::chrono::steady_clock;

namespace {

/// `size` samples that are the same `distinct` random images over and over (little memory).
class RepeatedImages final : public Dataset<float> {
 public:
  RepeatedImages(Index size, Index distinct) : size_(size), x_({distinct, 128, 128, 3}) {
    Random rng(1);
    for (Index i = 0; i < x_.size(); ++i) x_[i] = static_cast<float>(rng.uniform());
    for (Index i = 0; i < distinct; ++i) labels_.push_back(static_cast<int>(rng.below(2)));
  }
  [[nodiscard]] Index size() const override { return size_; }
  [[nodiscard]] Shape sample_shape() const override { return {128, 128, 3}; }
  void gather(std::span<const Index> indices, Tensor<float>& x,
              std::vector<int>& labels) const override {
    const Index sample = 128 * 128 * 3;
    x.resize(sample_shape().with_batch(static_cast<Index>(indices.size())));
    labels.resize(indices.size());
    for (std::size_t k = 0; k < indices.size(); ++k) {
      const Index i = indices[k] % x_.dim(0);
      std::copy_n(x_.data() + i * sample, sample, x.data() + static_cast<Index>(k) * sample);
      labels[k] = labels_[static_cast<std::size_t>(i)];
    }
  }

 private:
  Index size_;
  Tensor<float> x_;
  std::vector<int> labels_;
};

/// The wall time of each training step (on_batch_begin to on_batch_end).
class StepTimer final : public Callback<float> {
 public:
  void on_batch_begin(Model<float>&, int, Index) override { start_ = Clock::now(); }
  void on_batch_end(Model<float>&, const BatchLogs&) override {
    seconds_.push_back(std::chrono::duration<double>(Clock::now() - start_).count());
  }
  /// The median step in milliseconds, the first `warm_up` steps left out.
  [[nodiscard]] double median_ms(std::size_t warm_up) const {
    std::vector<double> s(seconds_.begin() + static_cast<std::ptrdiff_t>(warm_up), seconds_.end());
    std::nth_element(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(s.size() / 2), s.end());
    return 1000 * s[s.size() / 2];
  }

 private:
  Clock::time_point start_;
  std::vector<double> seconds_;
};

constexpr std::size_t warm_up = 2;

/// Trains `steps` + warm_up steps of `batch` samples; with `replicas`, distributed.
double time_steps(const std::string& arch, Index batch, Index steps,
                  DataParallel<float>* replicas) {
  auto model = mask_detection::build_network(arch, 7);
  model->compile(mask_detection::network_loss(arch), std::make_unique<Adam<float>>(1e-3));
  if (replicas) model->distribute(replicas);
  const RepeatedImages data(batch * (steps + static_cast<Index>(warm_up)), batch);
  StepTimer timer;
  FitOptions<float> options;
  options.batch_size = batch;
  options.verbose = 0;
  options.callbacks = {&timer};
  model->fit(data, options);
  return timer.median_ms(warm_up);
}

double median_allreduce_ms(const Communicator& world, Index floats, int repeats) {
  std::vector<float> gradient(static_cast<std::size_t>(floats), 1.0f);
  std::vector<double> ms;
  for (int r = 0; r < repeats + 1; ++r) {
    world.barrier();
    const auto start = Clock::now();
    world.sum(std::span<float>(gradient));
    ms.push_back(1000 * std::chrono::duration<double>(Clock::now() - start).count());
  }
  ms.erase(ms.begin());  // the first sets up the shared-memory buffers
  std::nth_element(ms.begin(), ms.begin() + static_cast<std::ptrdiff_t>(ms.size() / 2), ms.end());
  return ms[ms.size() / 2];
}

std::string option(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<MpiSession> mpi;
  if (launched_by_mpi()) mpi.emplace(argc, argv);
  const std::string arch = option(argc, argv, "arch", "compact");
  const Index batch = std::stol(option(argc, argv, "batch", "32"));
  const Index steps = std::stol(option(argc, argv, "steps", "20"));
  set_num_threads(std::stoi(option(argc, argv, "threads", "1")));
  const Index parameters = mask_detection::build_network(arch, 7)->parameter_count(true);
  const double megabytes = static_cast<double>(parameters) * 4 / 1e6;

  if (!mpi) {
    std::printf(
        "%s: %lld trainable parameters (%.2f MB of float gradients), batch %lld, "
        "1 process x %d threads\n  step: %.1f ms\n",
        arch.c_str(), static_cast<long long>(parameters), megabytes, static_cast<long long>(batch),
        num_threads(), time_steps(arch, batch, steps, nullptr));
    return 0;
  }
  const Communicator world;
  const double allreduce = median_allreduce_ms(world, parameters, 10);
  const double compute =
      time_steps(arch, shard_of(batch, world.rank(), world.size()).count, steps, nullptr);
  MpiDataParallel<float> buckets(world);
  const double overlap = time_steps(arch, batch, steps, &buckets);
  MpiDataParallel<float> one_bucket(world, std::size_t{1} << 40);
  const double no_overlap = time_steps(arch, batch, steps, &one_bucket);
  MpiDataParallel<float> bf16_buckets(world, MpiDataParallel<float>::default_bucket_bytes,
                                      GradientCompression::bf16);
  const double bf16 = time_steps(arch, batch, steps, &bf16_buckets);
  if (world.rank() == 0)
    std::printf(
        "%s: %lld trainable parameters (%.2f MB of float gradients), global batch %lld, "
        "%d ranks x %d threads\n"
        "  MPI_Allreduce of the gradients alone:           %7.1f ms\n"
        "  step, compute only (rank 0's part, no comm.):   %7.1f ms\n"
        "  step, buckets of 2 MB during backward (overlap): %7.1f ms\n"
        "  step, one bucket after backward (no overlap):   %7.1f ms\n"
        "  step, as overlap with bfloat16 gradients:       %7.1f ms\n",
        arch.c_str(), static_cast<long long>(parameters), megabytes, static_cast<long long>(batch),
        world.size(), num_threads(), allreduce, compute, overlap, no_overlap, bf16);
  return 0;
}
