// Data-parallel training over MPI: one replica of the model per rank (model/data_parallel.hpp
// says what the training loop does with it; docs/distributed.md why).
//
//   stratum::MpiSession mpi(argc, argv);
//   stratum::Communicator world;
//   auto model = build(seed);                    // the same network and seed on every rank
//   model.compile(...);
//   stratum::MpiDataParallel<float> replicas(world);
//   model.distribute(&replicas);                 // rank 0's weights on every rank
//   model.fit(data, options);                    // each rank trains on its part of each batch
//
// Non-trainable weights (BatchNormalization's moving mean and variance) are updated by each
// rank from its own part of the batch, then averaged over the ranks after every step, so the
// replicas stay equal and the moving statistics follow all the data, not rank 0's part alone.
// The batch statistics a BatchNormalization normalises with in training are its rank's part's
// (as DistributedDataParallel without SyncBatchNorm): exact averaging of them would cost two
// more all-reduces in every BatchNormalization's forward and backward.
#pragma once

#include <memory>
#include <vector>

#include "../model/data_parallel.hpp"
#include "communicator.hpp"
#include "gradient_buckets.hpp"

namespace stratum {

template <typename T>
class MpiDataParallel final : public DataParallel<T> {
 public:
  /// Gradient buckets of about 2 MB: small enough that the first starts early in backward,
  /// large enough that the per-message latency (tens of microseconds) stays small beside it.
  static constexpr std::size_t default_bucket_bytes = std::size_t{2} << 20;

  /// `compression`: GradientCompression::bf16 sends the gradients as bfloat16, half the bytes
  /// (gradient_buckets.hpp).
  explicit MpiDataParallel(const Communicator& comm,
                           std::size_t bucket_bytes = default_bucket_bytes,
                           GradientCompression compression = GradientCompression::none)
      : comm_(comm), bucket_bytes_(bucket_bytes), compression_(compression) {}

  [[nodiscard]] int rank() const override { return comm_.rank(); }
  [[nodiscard]] int ranks() const override { return comm_.size(); }
  [[nodiscard]] const GradientBuckets<T>& buckets() const { return *buckets_; }

  void attach(const std::vector<std::vector<Parameter<T>*>>& trainable_by_layer,
              const std::vector<Parameter<T>*>& all) override {
    non_trainable_.clear();
    Index non_trainable_elements = 0;
    for (auto* p : all) {
      comm_.broadcast(std::span<T>(p->value.data(), static_cast<std::size_t>(p->value.size())));
      if (!p->trainable) {
        non_trainable_.push_back(p);
        non_trainable_elements += p->value.size();
      }
    }
    statistics_.resize(static_cast<std::size_t>(non_trainable_elements));
    buckets_ = std::make_unique<GradientBuckets<T>>(comm_, trainable_by_layer, bucket_bytes_,
                                                    compression_);
  }

  void begin_gradients(double share) override { checked().begin(share); }
  void gradients_ready(std::size_t first_finished_layer) override {
    checked().ready(first_finished_layer);
  }
  void finish_gradients() override { checked().finish(); }

  /// The non-trainable weights become their mean over the ranks.
  void after_update() override {
    if (statistics_.empty()) return;
    T* cursor = statistics_.data();
    for (auto* p : non_trainable_) cursor = std::copy_n(p->value.data(), p->value.size(), cursor);
    comm_.sum(std::span<T>(statistics_));
    const T scale = T(1) / static_cast<T>(comm_.size());
    const T* source = statistics_.data();
    for (auto* p : non_trainable_)
      for (Index k = 0; k < p->value.size(); ++k) p->value[k] = *source++ * scale;
  }

  void sum(std::span<double> values) override { comm_.sum(values); }

 private:
  GradientBuckets<T>& checked() {
    if (!buckets_) throw Error("MpiDataParallel: call model.distribute(&replicas) before training");
    return *buckets_;
  }

  const Communicator& comm_;
  std::size_t bucket_bytes_;
  GradientCompression compression_;
  std::unique_ptr<GradientBuckets<T>> buckets_;
  std::vector<Parameter<T>*> non_trainable_;
  std::vector<T> statistics_;
};

}  // namespace stratum
