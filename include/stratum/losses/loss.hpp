// The interface of a loss: the mean over the batch of a per-sample loss of the model's output
// (N, outputs) and integer labels, its gradient with respect to that output, and which outputs
// count as correct predictions (for the accuracy metric).
#pragma once

#include <span>
#include <string>

#include "../tensor.hpp"

namespace stratum {

/// Keras' epsilon(): the clipping margin for losses computed on probabilities.
inline constexpr double keras_epsilon = 1e-7;

template <typename T>
class Loss {
 public:
  virtual ~Loss() = default;
  [[nodiscard]] virtual std::string name() const = 0;

  /// Mean loss over the batch. If `d_output` is not null it is resized and set to the gradient
  /// of that mean with respect to `output`.
  virtual double compute(const Tensor<T>& output, std::span<const int> labels,
                         Tensor<T>* d_output) const = 0;

  /// Whether the model's outputs are logits (true) or probabilities (false).
  [[nodiscard]] virtual bool from_logits() const = 0;

  /// The probability of each class (2 for a one-unit binary output) that the output row of one
  /// sample stands for, in the loss' own reading of it.
  virtual void class_probabilities(const T* row, Index outputs, double* probabilities) const = 0;

  /// The label the output row of one sample predicts.
  [[nodiscard]] virtual int predicted_label(const T* row, Index outputs) const = 0;

  /// How many samples of the batch are predicted correctly.
  [[nodiscard]] Index count_correct(const Tensor<T>& output, std::span<const int> labels) const {
    check(output, labels);
    const Index outputs = output.dim(1);
    Index correct = 0;
    for (Index n = 0; n < output.dim(0); ++n)
      correct += predicted_label(output.data() + n * outputs, outputs) ==
                 labels[static_cast<std::size_t>(n)];
    return correct;
  }

 protected:
  /// Throws unless output is (N, outputs), there are N labels, and each is a valid class.
  void check(const Tensor<T>& output, std::span<const int> labels) const {
    if (output.rank() != 2 || output.dim(0) != static_cast<Index>(labels.size()))
      throw ShapeError(name() + ": expects an output of shape (" + std::to_string(labels.size()) +
                       ", classes) for " + std::to_string(labels.size()) +
                       " labels, received " + output.shape().to_string());
    const Index classes = output.dim(1) == 1 ? 2 : output.dim(1);  // one unit: a binary output
    for (std::size_t n = 0; n < labels.size(); ++n)
      if (labels[n] < 0 || labels[n] >= classes)
        throw Error(name() + ": label " + std::to_string(labels[n]) + " of sample " +
                    std::to_string(n) + " is outside [0, " + std::to_string(classes) + ")");
  }
};

}  // namespace stratum
