// Adam (Kingma & Ba, 2015), with Keras' defaults and Keras' exact update order:
//
//   t     = t + 1
//   alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t)      (bias correction folded into the step)
//   m     = m + (g - m) * (1 - beta1)                   (running mean of the gradient)
//   v     = v + (g^2 - v) * (1 - beta2)                 (running mean of its square)
//   w     = w - alpha * m / (sqrt(v) + epsilon)
//
// Defaults: lr 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-7 (Keras' epsilon, not the paper's 1e-8).
//
// With weight_decay > 0 it is AdamW (Loshchilov & Hutter, 2019), as Keras' AdamW: before the
// step above, each kernel shrinks by  w = w - lr * weight_decay * w.  Decoupled from the
// gradient, the decay is not rescaled by Adam's per-weight step sizes, as an L2 term in the
// loss would be. Biases and normalisation weights are not decayed (Parameter::decayed).
#pragma once

#include <cmath>

#include "optimizer.hpp"

namespace stratum {

template <typename T>
class Adam final : public Optimizer<T> {
 public:
  explicit Adam(double learning_rate = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
                double epsilon = 1e-7, double weight_decay = 0.0)
      : Optimizer<T>(learning_rate), beta1_(beta1), beta2_(beta2), epsilon_(epsilon),
        weight_decay_(weight_decay) {
    if (!(weight_decay >= 0.0)) throw Error("Adam: weight_decay must be >= 0");
  }

  [[nodiscard]] std::string name() const override { return weight_decay_ > 0 ? "AdamW" : "Adam"; }
  [[nodiscard]] double weight_decay() const { return weight_decay_; }

  void step(std::span<Parameter<T>* const> parameters) override {
    this->ensure_state(m_, parameters);
    this->ensure_state(v_, parameters);
    const double t = static_cast<double>(++this->iterations_);
    const T alpha = static_cast<T>(this->learning_rate_ * std::sqrt(1 - std::pow(beta2_, t)) /
                                   (1 - std::pow(beta1_, t)));
    const T b1 = static_cast<T>(beta1_), b2 = static_cast<T>(beta2_);
    const T eps = static_cast<T>(epsilon_);
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      const T shrink = static_cast<T>(
          parameters[i]->decayed ? 1.0 - this->learning_rate_ * weight_decay_ : 1.0);
      T* w = parameters[i]->value.data();
      const T* g = parameters[i]->grad.data();
      T* m = m_[i].data();
      T* v = v_[i].data();
      this->for_blocks(m_[i].size(), [&](Index begin, Index end) {
        using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
        const Index n = end - begin;
        Eigen::Map<Array> wb(w + begin, n), mb(m + begin, n), vb(v + begin, n);
        Eigen::Map<const Array> gb(g + begin, n);
        if (shrink != T(1)) wb *= shrink;
        mb += (gb - mb) * (T(1) - b1);
        vb += (gb.square() - vb) * (T(1) - b2);
        wb -= alpha * mb / (vb.sqrt() + eps);
      });
    }
  }

  /// First and second moment estimates, one per parameter (for checkpoints and tests).
  [[nodiscard]] std::vector<Tensor<T>>& first_moments() { return m_; }
  [[nodiscard]] std::vector<Tensor<T>>& second_moments() { return v_; }

 private:
  std::vector<std::vector<Tensor<T>>*> state_slots() override { return {&m_, &v_}; }

  double beta1_, beta2_, epsilon_, weight_decay_;
  std::vector<Tensor<T>> m_, v_;
};

}  // namespace stratum
