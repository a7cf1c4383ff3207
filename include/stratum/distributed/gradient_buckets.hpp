// The gradients of a replica averaged over the ranks, bucket by bucket, while backward goes on
// (PyTorch's DistributedDataParallel and Horovod do the same).
//
// For each training step, with share_r = (samples of rank r's part) / (samples of the batch):
//
//   begin(share)     this rank's share_r
//   ready(i)         layers i.. have finished backward: every bucket whose layers are all
//                    among them is copied into its own buffer, scaled by share_r, and its
//                    MPI_Iallreduce (sum) starts; the buckets already in flight are given a
//                    chance to progress (MPI_Testall: Open MPI moves a non-blocking collective
//                    on only inside MPI calls, having no progress thread by default)
//   finish()         waits for every bucket and copies  sum_r share_r * grad_r  back into the
//                    gradients: the gradient of the mean loss over the whole global batch
//
// Which gradient goes to which bucket: bucket_plan.hpp.
//
// With GradientCompression::bf16 each bucket travels as bfloat16 (bfloat16.hpp): half the bytes
// of float, each partial sum added in float and rounded to bfloat16 between ranks, the result
// widened back to T. For networks whose step is bound by the all-reduce (docs/distributed.md's
// cost model); the gradients then carry about 3 significant digits.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "../layers/layer.hpp"
#include "bfloat16.hpp"
#include "bucket_plan.hpp"
#include "communicator.hpp"

namespace stratum {

/// How gradients travel in the all-reduce: as they are (T), or as bfloat16 summed in float.
enum class GradientCompression { none, bf16 };

inline GradientCompression parse_gradient_compression(const std::string& name) {
  if (name == "none") return GradientCompression::none;
  if (name == "bf16") return GradientCompression::bf16;
  throw Error("unknown gradient compression '" + name + "' (none or bf16)");
}

template <typename T>
class GradientBuckets {
 public:
  /// Buckets of `bucket_bytes` (at least one element) over `trainable_by_layer[i]`, layer i's
  /// trainable parameters.
  GradientBuckets(const Communicator& comm,
                  const std::vector<std::vector<Parameter<T>*>>& trainable_by_layer,
                  std::size_t bucket_bytes,
                  GradientCompression compression = GradientCompression::none)
      : comm_(comm), compression_(compression) {
    std::vector<std::vector<Index>> sizes(trainable_by_layer.size());
    for (std::size_t i = 0; i < trainable_by_layer.size(); ++i)
      for (auto* p : trainable_by_layer[i]) sizes[i].push_back(p->grad.size());
    const auto capacity = static_cast<Index>(std::max<std::size_t>(bucket_bytes / sizeof(T), 1));
    plan_ = plan_buckets(sizes, capacity);
    for (std::size_t i = trainable_by_layer.size(); i-- > 0;)  // the plan's order: backward
      for (auto* p : trainable_by_layer[i]) parameters_.push_back(p);
    // Each bucket's buffer, in what travels: T, or bfloat16.
    for (const Bucket& bucket : plan_.buckets) {
      const auto elements = static_cast<std::size_t>(bucket.elements);
      if (compression_ == GradientCompression::bf16)
        compressed_.emplace_back(elements);
      else
        buffers_.emplace_back(elements);
    }
    if (compression_ == GradientCompression::bf16)
      MpiSession::check(MPI_Op_create(&sum_bfloat16, 1, &sum_bf16_), "MPI_Op_create");
    requests_.assign(plan_.buckets.size(), MPI_REQUEST_NULL);
    started_at_.assign(plan_.buckets.size(), none);
    starts_.assign(plan_.buckets.size(), 0);
  }
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;
  ~GradientBuckets() {
    // A step left unfinished (an exception in backward) still owns MPI requests.
    for (auto& r : requests_)
      if (r != MPI_REQUEST_NULL) MPI_Wait(&r, MPI_STATUS_IGNORE);
    if (sum_bf16_ != MPI_OP_NULL) MPI_Op_free(&sum_bf16_);
  }

  [[nodiscard]] const BucketPlan& plan() const { return plan_; }
  /// For each bucket, the layer whose ready() started it in the latest step (or `none`), and
  /// how many times it was started in that step.
  [[nodiscard]] const std::vector<std::size_t>& started_at() const { return started_at_; }
  [[nodiscard]] const std::vector<int>& starts() const { return starts_; }
  static constexpr std::size_t none = static_cast<std::size_t>(-1);

  void begin(double share) {
    share_ = static_cast<T>(share);
    next_ = 0;
    std::fill(started_at_.begin(), started_at_.end(), none);
    std::fill(starts_.begin(), starts_.end(), 0);
  }

  void ready(std::size_t first_finished_layer) {
    while (next_ < plan_.buckets.size() && plan_.buckets[next_].first_layer >= first_finished_layer)
      start(next_++, first_finished_layer);
    if (next_ > 0) {
      int all_done = 0;
      MpiSession::check(
          MPI_Testall(static_cast<int>(next_), requests_.data(), &all_done, MPI_STATUSES_IGNORE),
          "MPI_Testall");
    }
  }

  void finish() {
    if (next_ < plan_.buckets.size())
      throw Error("GradientBuckets: a step ended before layer 0 finished backward");
    MpiSession::check(
        MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE),
        "MPI_Waitall");
    for (std::size_t b = 0; b < plan_.buckets.size(); ++b) {
      if (compression_ == GradientCompression::bf16)
        unpack(b, compressed_[b].data(), [](std::uint16_t g) { return T(from_bfloat16(g)); });
      else
        unpack(b, buffers_[b].data(), [](T g) { return g; });
    }
  }

 private:
  /// Bucket b's gradients, times this rank's share, into its buffer; its all-reduce starts.
  /// A rank with no samples in the batch (share 0) sends zeros: its gradients are stale.
  void start(std::size_t b, std::size_t layer) {
    // What travels: bfloat16 summed by sum_bf16_, or T summed by MPI.
    void* wire = nullptr;
    MPI_Datatype type = mpi_type<T>();
    MPI_Op sum = MPI_SUM;
    if (compression_ == GradientCompression::bf16) {
      pack(b, compressed_[b].data(), [](T g) { return to_bfloat16(static_cast<float>(g)); });
      wire = compressed_[b].data();
      type = MPI_UINT16_T;
      sum = sum_bf16_;
    } else {
      pack(b, buffers_[b].data(), [](T g) { return g; });
      wire = buffers_[b].data();
    }
    MpiSession::check(
        MPI_Iallreduce(MPI_IN_PLACE, wire, static_cast<int>(plan_.buckets[b].elements), type, sum,
                       comm_.comm(), &requests_[b]),
        "MPI_Iallreduce");
    started_at_[b] = layer;
    ++starts_[b];
  }

  /// Bucket b's gradients times the share, each through `to_wire`, into `target`: one pass.
  template <typename Wire, typename ToWire>
  void pack(std::size_t b, Wire* target, ToWire to_wire) const {
    for (const BucketPiece& piece : plan_.buckets[b].pieces) {
      const T* grad = parameters_[piece.parameter]->grad.data();
      for (Index k = piece.begin; k < piece.end; ++k)
        *target++ = to_wire(share_ == T(0) ? T(0) : share_ * grad[k]);
    }
  }

  /// Bucket b's sums in `source`, each through `from_wire`, back into the gradients.
  template <typename Wire, typename FromWire>
  void unpack(std::size_t b, const Wire* source, FromWire from_wire) {
    for (const BucketPiece& piece : plan_.buckets[b].pieces) {
      T* grad = parameters_[piece.parameter]->grad.data();
      for (Index k = piece.begin; k < piece.end; ++k) grad[k] = from_wire(*source++);
    }
  }

  const Communicator& comm_;
  GradientCompression compression_;
  MPI_Op sum_bf16_ = MPI_OP_NULL;  // with bf16: sum_bfloat16 as an MPI operation
  BucketPlan plan_;
  std::vector<Parameter<T>*> parameters_;               // in the plan's order
  std::vector<std::vector<T>> buffers_;                 // without compression: what is sent
  std::vector<std::vector<std::uint16_t>> compressed_;  // with bf16: what is sent
  std::vector<MPI_Request> requests_;
  std::vector<std::size_t> started_at_;
  std::vector<int> starts_;
  T share_ = T(1);
  std::size_t next_ = 0;  // buckets started so far this step
};

}  // namespace stratum
