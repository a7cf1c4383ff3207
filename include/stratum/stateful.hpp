// The extra state a training checkpoint stores besides the model and the optimizer.
#pragma once

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

}  // namespace stratum
