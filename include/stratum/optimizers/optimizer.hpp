// The interface of an optimizer: one update of every parameter from its gradient.
#pragma once

#include <span>
#include <string>
#include <vector>

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

 protected:
  explicit Optimizer(double learning_rate) : learning_rate_(learning_rate) {}

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
