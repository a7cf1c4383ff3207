// The networks the mask detector can train, by name (`train --arch NAME`).
#pragma once

#include <stratum/stratum.hpp>

#include <memory>
#include <string>

namespace mask_detection {

inline constexpr int image_size = 128;

/// "seed": the Keras notebook's network, layer for layer (7,400,706 parameters):
/// Conv2D(32, 3x3, relu) - MaxPool(2) - Conv2D(64, 3x3, relu) - MaxPool(2) - Flatten -
/// Dense(128, relu) - Dropout(0.5) - Dense(64, relu) - Dropout(0.5) - Dense(2, sigmoid),
/// trained like the notebook with sparse categorical cross-entropy on the sigmoid outputs
/// (Keras clips and renormalises them; see losses/sparse_categorical_crossentropy.hpp).
inline std::unique_ptr<stratum::Sequential<float>> notebook_network(std::uint64_t seed) {
  using namespace stratum;
  auto model = std::make_unique<Sequential<float>>(Shape{image_size, image_size, 3}, seed);
  model->add<Conv2D>(32, 3, Activation::relu);
  model->add<MaxPool2D>(2);
  model->add<Conv2D>(64, 3, Activation::relu);
  model->add<MaxPool2D>(2);
  model->add<Flatten>();
  model->add<Dense>(128, Activation::relu);
  model->add<Dropout>(0.5);
  model->add<Dense>(64, Activation::relu);
  model->add<Dropout>(0.5);
  model->add<Dense>(2, Activation::sigmoid);
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
