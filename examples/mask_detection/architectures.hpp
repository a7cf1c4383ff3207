// The networks the mask detector can train, by name (`train --arch NAME`).
#pragma once

#include <stratum/stratum.hpp>

#include <memory>
#include <string>

namespace mask_detection {

inline constexpr int image_size = 128;

/// The Keras notebook's layers, appended to `model` (whatever its input size; the tests and
/// benchmarks use them too): Conv2D(32, 3x3, relu) - MaxPool(2) - Conv2D(64, 3x3, relu) -
/// MaxPool(2) - Flatten - Dense(128, relu) - Dropout(0.5) - Dense(64, relu) - Dropout(0.5) -
/// Dense(2, sigmoid).
template <typename T>
void add_notebook_layers(stratum::Sequential<T>& model) {
  using namespace stratum;
  model.template add<Conv2D>(32, 3, Activation::relu);
  model.template add<MaxPool2D>(2);
  model.template add<Conv2D>(64, 3, Activation::relu);
  model.template add<MaxPool2D>(2);
  model.template add<Flatten>();
  model.template add<Dense>(128, Activation::relu);
  model.template add<Dropout>(0.5);
  model.template add<Dense>(64, Activation::relu);
  model.template add<Dropout>(0.5);
  model.template add<Dense>(2, Activation::sigmoid);
}

/// "seed": the notebook's network on 128x128 RGB (7,400,706 parameters), trained like the
/// notebook with sparse categorical cross-entropy on the sigmoid outputs (Keras clips and
/// renormalises them; see losses/sparse_categorical_crossentropy.hpp).
inline std::unique_ptr<stratum::Sequential<float>> notebook_network(std::uint64_t seed) {
  auto model = std::make_unique<stratum::Sequential<float>>(
      stratum::Shape{image_size, image_size, 3}, seed);
  add_notebook_layers(*model);
  return model;
}

inline std::unique_ptr<stratum::Loss<float>> notebook_loss() {
  return std::make_unique<stratum::SparseCategoricalCrossentropy<float>>(/*from_logits=*/false);
}

inline std::unique_ptr<stratum::Sequential<float>> build_network(const std::string& name,
                                                                 std::uint64_t seed) {
  if (name == "seed") return notebook_network(seed);
  throw stratum::Error("unknown architecture '" + name + "' (available: seed)");
}

}  // namespace mask_detection
