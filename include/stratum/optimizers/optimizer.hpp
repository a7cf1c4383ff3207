// The interface of an optimizer: one update of every parameter from its gradient.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "../data/binary_io.hpp"
#include "../layers/layer.hpp"
#include "../parallel.hpp"

namespace stratum {

template <typename T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  [[nodiscard]] virtual std::string name() const = 0;

  /// Applies one update to every parameter, using its `grad`. The parameters must be the same
  /// ones, in the same order, on every call: the optimizer keeps per-parameter state.
  virtual void step(std::span<Parameter<T>* const> parameters) = 0;

  [[nodiscard]] double learning_rate() const { return learning_rate_; }
  void set_learning_rate(double lr) { learning_rate_ = lr; }
  /// Number of steps taken so far.
  [[nodiscard]] long long iterations() const { return iterations_; }

  /// Everything the next steps depend on (learning rate, step count, per-parameter state),
  /// for training checkpoints. Values keep their own precision, so a resumed run continues
  /// exactly.
  void save_state(BinaryWriter& out) {
    out.put_string(name());
    out.put(learning_rate_);
    out.put(static_cast<std::int64_t>(iterations_));
    const auto slots = state_slots();
    out.put(static_cast<std::uint32_t>(slots.size()));
    for (const auto* slot : slots) {
      out.put(static_cast<std::uint32_t>(slot->size()));
      for (const Tensor<T>& t : *slot) {
        out.put(static_cast<std::uint32_t>(t.rank()));
        for (Index d : t.shape().dims()) out.put(static_cast<std::int64_t>(d));
        out.put_array(std::span<const T>(t.data(), static_cast<std::size_t>(t.size())));
      }
    }
  }

  /// Restores what save_state wrote, checking it against `parameters` (the model's trainable
  /// ones, in order).
  void load_state(BinaryReader& in, std::span<Parameter<T>* const> parameters) {
    if (in.get_string() != name()) in.fail("holds the state of another optimizer than " + name());
    learning_rate_ = in.get<double>();
    iterations_ = in.get<std::int64_t>();
    const auto slots = state_slots();
    if (in.get<std::uint32_t>() != slots.size()) in.fail("holds optimizer state of the wrong kind");
    for (auto* slot : slots) {
      const auto count = in.get<std::uint32_t>();
      if (count != 0 && count != parameters.size())
        in.fail("holds optimizer state for " + std::to_string(count) + " parameters, not " +
                std::to_string(parameters.size()));
      slot->assign(count, {});
      for (std::uint32_t i = 0; i < count; ++i) {
        const auto rank = in.get<std::uint32_t>();
        if (rank > 8) in.fail("holds optimizer state of rank " + std::to_string(rank));
        std::vector<Index> dims(rank);
        for (auto& d : dims) d = static_cast<Index>(in.get<std::int64_t>());
        if (Shape(dims) != parameters[i]->value.shape())
          in.fail("holds optimizer state of shape " + Shape(dims).to_string() + " for parameter '" +
                  parameters[i]->name + "' of shape " + parameters[i]->value.shape().to_string());
        Tensor<T>& t = (*slot)[i];
        t.resize(Shape(dims));
        in.get_array(std::span<T>(t.data(), static_cast<std::size_t>(t.size())));
      }
    }
  }

 protected:
  explicit Optimizer(double learning_rate) : learning_rate_(learning_rate) {}

  /// The per-parameter state tensors (one vector per kind: Adam's two moments, SGD's velocity).
  virtual std::vector<std::vector<Tensor<T>>*> state_slots() { return {}; }

  /// Allocates one zeroed state tensor per parameter the first time, checks them afterwards.
  static void ensure_state(std::vector<Tensor<T>>& state,
                           std::span<Parameter<T>* const> parameters) {
    if (state.empty()) {
      for (auto* p : parameters) {
        state.emplace_back(p->value.shape());
        state.back().set_zero();
      }
    }
    if (state.size() != parameters.size())
      throw Error("optimizer: called with " + std::to_string(parameters.size()) +
                  " parameters after " + std::to_string(state.size()));
  }

  /// Runs update(begin, end) over [0, size) in blocks across threads. Updates are element-wise,
  /// so the result does not depend on the thread count.
  template <typename Update>
  static void for_blocks(Index size, Update&& update) {
    parallel_for_blocks(size, Index{1} << 14, update);
  }

  double learning_rate_;
  long long iterations_ = 0;
};

}  // namespace stratum
