// Hooks into `Sequential::fit`, as Keras' callbacks: subclass Callback and override what you
// need, or wrap lambdas in a LambdaCallback. Setting `model.stop_training()` to true ends
// training after the current epoch. The callbacks that come with stratum are in callbacks/.
#pragma once

#include <functional>
#include <optional>

#include "stateful.hpp"
#include "tensor.hpp"

namespace stratum {

template <typename T>
class Sequential;

/// Running figures after one batch (means over the epoch so far).
struct BatchLogs {
  int epoch = 0;  // 0-based
  Index batch = 0;
  Index batches = 0;
  double loss = 0;
  double accuracy = 0;
};

/// Figures of a finished epoch.
struct EpochLogs {
  int epoch = 0;  // 0-based
  int epochs = 0;
  double loss = 0;
  double accuracy = 0;
  std::optional<double> val_loss;
  std::optional<double> val_accuracy;
  double learning_rate = 0;  // the optimizer's, at the end of the epoch
  double seconds = 0;
};

template <typename T>
class Callback : public Stateful {
 public:
  virtual void on_train_begin(Sequential<T>& /*model*/) {}
  virtual void on_epoch_begin(Sequential<T>& /*model*/, int /*epoch*/) {}
  virtual void on_batch_begin(Sequential<T>& /*model*/, int /*epoch*/, Index /*batch*/) {}
  virtual void on_batch_end(Sequential<T>& /*model*/, const BatchLogs& /*logs*/) {}
  virtual void on_epoch_end(Sequential<T>& /*model*/, const EpochLogs& /*logs*/) {}
  virtual void on_train_end(Sequential<T>& /*model*/) {}
};

template <typename T>
class LambdaCallback final : public Callback<T> {
 public:
  std::function<void(Sequential<T>&, const BatchLogs&)> batch_end;
  std::function<void(Sequential<T>&, const EpochLogs&)> epoch_end;

  void on_batch_end(Sequential<T>& model, const BatchLogs& logs) override {
    if (batch_end) batch_end(model, logs);
  }
  void on_epoch_end(Sequential<T>& model, const EpochLogs& logs) override {
    if (epoch_end) epoch_end(model, logs);
  }
};

}  // namespace stratum
