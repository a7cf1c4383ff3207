// Binary cross-entropy on one output unit per sample, labels 0 or 1.
//
// From a logit z (stable for any z):
//   L_n = max(z, 0) - z*y + log(1 + e^-|z|)          (= -y log s - (1-y) log(1-s), s = sigmoid z)
//   dL_n/dz = sigmoid(z) - y
//
// From a probability p, as Keras computes it:
//   q = clip(p, eps, 1 - eps)
//   L_n = -(y log(q + eps) + (1 - y) log(1 - q + eps))
//   dL_n/dp = -(y / (q + eps) - (1 - y) / (1 - q + eps)) * [eps <= p <= 1 - eps]
//
// The reported loss is the batch mean, so gradients are divided by N. A sample is predicted
// positive when p > 0.5 (z > 0), Keras' binary accuracy.
#pragma once

#include <algorithm>
#include <cmath>

#include "loss.hpp"

namespace stratum {

template <typename T>
class BinaryCrossentropy final : public Loss<T> {
 public:
  explicit BinaryCrossentropy(bool from_logits = false) : from_logits_(from_logits) {}

  [[nodiscard]] std::string name() const override { return "BinaryCrossentropy"; }
  [[nodiscard]] bool from_logits() const override { return from_logits_; }

  void class_probabilities(const T* row, Index /*outputs*/, double* p) const override {
    p[1] = from_logits_ ? 1.0 / (1.0 + std::exp(-double(row[0]))) : std::clamp(double(row[0]), 0.0, 1.0);
    p[0] = 1.0 - p[1];
  }

  double compute(const Tensor<T>& output, std::span<const int> labels,
                 Tensor<T>* d_output) const override {
    this->check(output, labels);
    if (output.dim(1) != 1)
      throw ShapeError(name() + ": expects one output unit per sample, received " +
                       output.shape().to_string());
    const Index batch = output.dim(0);
    if (d_output) d_output->resize(output.shape());
    const double scale = 1.0 / static_cast<double>(batch);
    const double eps = keras_epsilon;
    double total = 0;
    for (Index n = 0; n < batch; ++n) {
      const double y = labels[static_cast<std::size_t>(n)];
      const double v = output[n];
      double loss = 0, grad = 0;
      if (from_logits_) {
        loss = std::max(v, 0.0) - v * y + std::log1p(std::exp(-std::abs(v)));
        grad = 1.0 / (1.0 + std::exp(-v)) - y;
      } else {
        const double q = std::clamp(v, eps, 1.0 - eps);
        loss = -(y * std::log(q + eps) + (1 - y) * std::log(1 - q + eps));
        const bool inside = v >= eps && v <= 1.0 - eps;
        grad = inside ? -(y / (q + eps) - (1 - y) / (1 - q + eps)) : 0.0;
      }
      total += loss;
      if (d_output) (*d_output)[n] = static_cast<T>(grad * scale);
    }
    return total * scale;
  }

  [[nodiscard]] int predicted_label(const T* row, Index /*outputs*/) const override {
    return from_logits_ ? row[0] > T(0) : row[0] > T(0.5);
  }

 private:
  bool from_logits_;
};

}  // namespace stratum
