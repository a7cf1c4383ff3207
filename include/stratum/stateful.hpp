// The extra state a training checkpoint stores besides the model and the optimizer.
#pragma once

#include <cstdint>

#include "data/binary_io.hpp"

namespace stratum {

/// Something whose state a checkpoint must capture (a callback's counters, an augmenter's
/// position in its random stream), so that a resumed run continues exactly where the
/// interrupted one stopped. Stateless things keep the empty defaults.
class Stateful {
 public:
  virtual ~Stateful() = default;
  virtual void save_state(BinaryWriter& /*out*/) const {}
  virtual void load_state(BinaryReader& /*in*/) {}
};

/// A source of seeded per-sample randomness (the augmenters): sample k draws from its own
/// stream seeded by (seed, k), so its whole state is how many sample numbers it has handed out.
class SampleNumbers : public Stateful {
 public:
  /// Samples handed out so far: the whole state (for checkpoints).
  [[nodiscard]] std::uint64_t draws() const { return draws_; }
  void set_draws(std::uint64_t draws) { draws_ = draws; }
  void save_state(BinaryWriter& out) const override { out.put(draws_); }
  void load_state(BinaryReader& in) override { draws_ = in.get<std::uint64_t>(); }

  /// Reserves `count` consecutive sample numbers and returns the first.
  std::uint64_t reserve(std::uint64_t count) {
    const std::uint64_t first = draws_;
    draws_ += count;
    return first;
  }

 private:
  std::uint64_t draws_ = 0;
};

}  // namespace stratum
