// What every kind of model (Sequential, GraphModel) offers to the code that trains it from the
// outside: callbacks restore weights, stop training and set the learning rate through this
// interface, so one EarlyStopping or learning-rate schedule serves every model kind.
#pragma once

#include <string>
#include <vector>

#include "../layers/layer.hpp"
#include "../optimizers/optimizer.hpp"
#include "../random.hpp"

namespace stratum {

template <typename T>
class Model {
 public:
  virtual ~Model() = default;

  /// Every weight of every layer, trainable or not (what a model file stores).
  [[nodiscard]] virtual std::vector<Parameter<T>*> parameters() = 0;
  /// The weights the optimizer updates, in the order it sees them.
  [[nodiscard]] virtual std::vector<Parameter<T>*> trainable_parameters() = 0;
  /// The optimizer given to compile(); throws if there is none.
  [[nodiscard]] virtual Optimizer<T>& optimizer() = 0;
  /// The model's random engine: it initialised the weights and shuffles the training data.
  [[nodiscard]] virtual Random& rng() = 0;
  /// Set to true (from a callback) to end `fit` after the current epoch.
  virtual bool& stop_training() = 0;
};

/// `model` as the concrete kind M a callback was written for; throws Error naming `who`
/// when it is another kind.
template <typename M, typename T>
M& model_as(Model<T>& model, const char* who) {
  auto* concrete = dynamic_cast<M*>(&model);
  if (!concrete)
    throw Error(std::string(who) + " was made for another kind of model than the one training");
  return *concrete;
}

}  // namespace stratum
