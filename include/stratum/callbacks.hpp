// Hooks into `fit` (Sequential's and GraphModel's), as Keras' callbacks: subclass Callback and
// override what you need, or wrap lambdas in a LambdaCallback. A callback sees the model
// through the Model<T> interface (model/model.hpp). Setting `model.stop_training()` to true
// ends training after the current epoch. The callbacks that come with stratum are in callbacks/.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/model.hpp"
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
  /// Further named figures, in a fixed order: a GraphModel's loss of each output
  /// ("heat_loss", and "val_heat_loss" with validation data), as Keras names them.
  std::vector<std::pair<std::string, double>> named;
};

template <typename T>
class Callback : public Stateful {
 public:
  virtual void on_train_begin(Model<T>& /*model*/) {}
  virtual void on_epoch_begin(Model<T>& /*model*/, int /*epoch*/) {}
  virtual void on_batch_begin(Model<T>& /*model*/, int /*epoch*/, Index /*batch*/) {}
  virtual void on_batch_end(Model<T>& /*model*/, const BatchLogs& /*logs*/) {}
  virtual void on_epoch_end(Model<T>& /*model*/, const EpochLogs& /*logs*/) {}
  virtual void on_train_end(Model<T>& /*model*/) {}
};

/// Lambdas that see the model as its concrete kind M: LambdaCallback<float> for a
/// Sequential<float>, LambdaCallback<float, GraphModel<float>> for a graph.
template <typename T, typename M = Sequential<T>>
class LambdaCallback final : public Callback<T> {
 public:
  std::function<void(M&, const BatchLogs&)> batch_end;
  std::function<void(M&, const EpochLogs&)> epoch_end;

  void on_batch_end(Model<T>& model, const BatchLogs& logs) override {
    if (batch_end) batch_end(model_as<M>(model, "LambdaCallback"), logs);
  }
  void on_epoch_end(Model<T>& model, const EpochLogs& logs) override {
    if (epoch_end) epoch_end(model_as<M>(model, "LambdaCallback"), logs);
  }
};

}  // namespace stratum
