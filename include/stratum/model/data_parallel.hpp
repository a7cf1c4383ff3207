// What a model's training loop asks of data-parallel training, with no transport in sight: the
// MPI implementation lives in distributed/ (its own CMake target, stratum::distributed), so
// that a program that trains on one process includes and links no MPI.
//
// Every process (rank) holds a full replica of the model. A global batch of B samples is cut
// into one contiguous part per rank (shard_of); each rank runs forward and backward on its part
// and the training loop reports, layer by layer from the last, which gradients are final, so
// that the implementation can start averaging them while backward goes on:
//
//   begin_gradients(share)       share = (samples of this rank's part) / B
//   gradients_ready(i)           layers i.. have finished backward (called for i = last..0)
//   finish_gradients()           every gradient is now  sum over ranks of share_r * grad_r,
//                                which is the gradient of the mean loss over the global batch
//   (optimizer step, the same on every rank)
//   after_update()               the non-trainable weights agree on every rank again
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "../layers/layer.hpp"

namespace stratum {

/// The part [first, first + count) of `total` items that rank `rank` of `ranks` takes: the
/// items cut into `ranks` contiguous parts whose sizes differ by at most one.
struct Shard {
  Index first = 0;
  Index count = 0;
};

inline Shard shard_of(Index total, int rank, int ranks) {
  const Index begin = total * rank / ranks;
  const Index end = total * (rank + 1) / ranks;
  return {begin, end - begin};
}

template <typename T>
class DataParallel {
 public:
  virtual ~DataParallel() = default;

  [[nodiscard]] virtual int rank() const = 0;
  [[nodiscard]] virtual int ranks() const = 0;
  [[nodiscard]] Shard shard(Index total) const { return shard_of(total, rank(), ranks()); }

  /// Called once the model is complete. `trainable_by_layer[i]` are layer i's trainable
  /// parameters; `all` every weight, trainable or not. Makes every replica equal rank 0's.
  virtual void attach(const std::vector<std::vector<Parameter<T>*>>& trainable_by_layer,
                      const std::vector<Parameter<T>*>& all) = 0;

  virtual void begin_gradients(double share) = 0;
  virtual void gradients_ready(std::size_t first_finished_layer) = 0;
  virtual void finish_gradients() = 0;
  virtual void after_update() = 0;

  /// Replaces each value by its sum over the ranks (losses, counts of correct answers).
  virtual void sum(std::span<double> values) = 0;
};

}  // namespace stratum
