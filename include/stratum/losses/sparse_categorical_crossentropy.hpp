// Sparse categorical cross-entropy: integer labels y, one output per class.
//
// From logits z (numerically stable, softmax fused in):
//   L_n = -log softmax(z)_y = logsumexp(z) - z_y
//   dL_n/dz_j = softmax(z)_j - [j = y]
//
// From probabilities p, with Keras' exact semantics: Keras clips p to [eps, 1 - eps]
// (eps = 1e-7), takes the log, and runs softmax cross-entropy on those "logits". Since
// softmax(log q)_j = q_j / sum_k q_k, the probabilities are renormalised to sum to 1:
//   q = clip(p, eps, 1 - eps),  S = sum_k q_k
//   L_n = log S - log q_y
//   dL_n/dp_j = (1/S - [j = y]/q_j) * [eps <= p_j <= 1 - eps]   (clip passes no gradient outside)
// This is what the notebook's Dense(2, sigmoid) head trained under: two independent sigmoid
// outputs, renormalised by the loss.
//
// The loss reported is the mean over the batch, so every gradient is divided by N.
#pragma once

#include <algorithm>
#include <cmath>

#include "loss.hpp"

namespace stratum {

template <typename T>
class SparseCategoricalCrossentropy final : public Loss<T> {
 public:
  explicit SparseCategoricalCrossentropy(bool from_logits = false) : from_logits_(from_logits) {}

  [[nodiscard]] std::string name() const override { return "SparseCategoricalCrossentropy"; }
  [[nodiscard]] bool from_logits() const override { return from_logits_; }

  /// softmax(z), or the clipped probabilities renormalised to sum to 1 (what the loss scores).
  void class_probabilities(const T* row, Index classes, double* p) const override {
    double sum = 0;
    const double max = *std::max_element(row, row + classes);
    for (Index j = 0; j < classes; ++j) {
      p[j] = from_logits_ ? std::exp(double(row[j]) - max)
                          : std::clamp(double(row[j]), keras_epsilon, 1 - keras_epsilon);
      sum += p[j];
    }
    for (Index j = 0; j < classes; ++j) p[j] /= sum;
  }

  double compute(const Tensor<T>& output, std::span<const int> labels,
                 Tensor<T>* d_output) const override {
    this->check(output, labels);
    const Index batch = output.dim(0), classes = output.dim(1);
    if (d_output) d_output->resize(output.shape());
    const double inv_batch = 1.0 / static_cast<double>(batch);
    double total = 0;
    for (Index n = 0; n < batch; ++n) {
      const T* row = output.data() + n * classes;
      T* grad = d_output ? d_output->data() + n * classes : nullptr;
      const int y = labels[static_cast<std::size_t>(n)];
      total += from_logits_ ? from_logits_row(row, classes, y, grad, inv_batch)
                            : from_probabilities_row(row, classes, y, grad, inv_batch);
    }
    return total * inv_batch;
  }

  [[nodiscard]] int predicted_label(const T* row, Index outputs) const override {
    return static_cast<int>(std::max_element(row, row + outputs) - row);
  }

 private:
  static double from_logits_row(const T* z, Index classes, int y, T* grad, double scale) {
    const double max = *std::max_element(z, z + classes);
    double sum = 0;
    for (Index j = 0; j < classes; ++j) sum += std::exp(static_cast<double>(z[j]) - max);
    const double log_sum = std::log(sum) + max;
    if (grad)
      for (Index j = 0; j < classes; ++j)
        grad[j] = static_cast<T>((std::exp(static_cast<double>(z[j]) - log_sum) - (j == y)) * scale);
    return log_sum - static_cast<double>(z[y]);
  }

  static double from_probabilities_row(const T* p, Index classes, int y, T* grad, double scale) {
    const T low = static_cast<T>(keras_epsilon), high = T(1) - low;
    double sum = 0;
    for (Index j = 0; j < classes; ++j) sum += std::clamp(p[j], low, high);
    const double q_y = std::clamp(p[y], low, high);
    if (grad)
      for (Index j = 0; j < classes; ++j) {
        const bool inside = p[j] >= low && p[j] <= high;
        const double q = std::clamp(p[j], low, high);
        grad[j] = inside ? static_cast<T>((1.0 / sum - (j == y ? 1.0 / q : 0.0)) * scale) : T(0);
      }
    return std::log(sum) - std::log(q_y);
  }

  bool from_logits_;
};

}  // namespace stratum
