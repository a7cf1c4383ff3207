// Stochastic gradient descent with optional (Nesterov) momentum, as Keras defines it:
//
//   plain      w = w - lr * g
//   momentum   u = momentum * u - lr * g;  w = w + u
//   nesterov   u = momentum * u - lr * g;  w = w + momentum * u - lr * g
#pragma once

#include "optimizer.hpp"

namespace stratum {

template <typename T>
class SGD final : public Optimizer<T> {
 public:
  explicit SGD(double learning_rate = 0.01, double momentum = 0.0, bool nesterov = false)
      : Optimizer<T>(learning_rate), momentum_(momentum), nesterov_(nesterov) {
    if (momentum < 0.0 || momentum >= 1.0)
      throw Error("SGD: momentum must be in [0, 1), got " + std::to_string(momentum));
  }

  [[nodiscard]] std::string name() const override { return "SGD"; }

  void step(std::span<Parameter<T>* const> parameters) override {
    ++this->iterations_;
    const T lr = static_cast<T>(this->learning_rate_), mu = static_cast<T>(momentum_);
    if (momentum_ > 0) this->ensure_state(velocity_, parameters);
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      T* w = parameters[i]->value.data();
      const T* g = parameters[i]->grad.data();
      T* u = momentum_ > 0 ? velocity_[i].data() : nullptr;
      this->for_blocks(parameters[i]->value.size(), [&](Index begin, Index end) {
        using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
        const Index n = end - begin;
        Eigen::Map<Array> wb(w + begin, n);
        Eigen::Map<const Array> gb(g + begin, n);
        if (!u) {
          wb -= lr * gb;
          return;
        }
        Eigen::Map<Array> ub(u + begin, n);
        ub = mu * ub - lr * gb;
        if (nesterov_)
          wb += mu * ub - lr * gb;
        else
          wb += ub;
      });
    }
  }

 private:
  std::vector<std::vector<Tensor<T>>*> state_slots() override { return {&velocity_}; }

  double momentum_;
  bool nesterov_;
  std::vector<Tensor<T>> velocity_;
};

}  // namespace stratum
