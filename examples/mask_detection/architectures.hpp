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
  auto model =
      std::make_unique<stratum::Sequential<float>>(stratum::Shape{image_size, image_size, 3}, seed);
  add_notebook_layers(*model);
  return model;
}

inline std::unique_ptr<stratum::Loss<float>> notebook_loss() {
  return std::make_unique<stratum::SparseCategoricalCrossentropy<float>>(/*from_logits=*/false);
}

/// "compact": a small all-convolutional network on 128x128 RGB (about 245 thousand
/// parameters, 3 % of the notebook's). A stride-2 stem halves the image at once; four 3x3
/// convolutions, each followed by BatchNormalization and ReLU, double the channels as max
/// pooling halves the size; global average pooling and one Dense layer classify. The outputs
/// are logits, trained with cross-entropy on their softmax.
///
///   128x128x3 -> conv 16 /2 -> 64x64x16 -> conv 32, pool -> 32x32x32 -> conv 64, pool
///   -> 16x16x64 -> conv 128, pool -> 8x8x128 -> conv 128 -> 8x8x128 -> average -> 128 -> 2
inline std::unique_ptr<stratum::Sequential<float>> compact_network(std::uint64_t seed) {
  using namespace stratum;
  auto model = std::make_unique<Sequential<float>>(Shape{image_size, image_size, 3}, seed);
  auto conv_block = [&](Index filters, Index stride) {
    model->add<Conv2D>(filters, 3, Activation::linear, stride, Padding::same);
    model->add<BatchNormalization>();
    model->add<ReLU>();
  };
  conv_block(16, 2);
  for (Index filters : {32, 64, 128}) {
    conv_block(filters, 1);
    model->add<MaxPool2D>(2);
  }
  conv_block(128, 1);
  model->add<GlobalAveragePooling2D>();
  model->add<Dropout>(0.3);
  model->add<Dense>(2);
  return model;
}

/// How each network is trained unless the command line says otherwise.
struct Recipe {
  int epochs;
  double learning_rate;
  std::string schedule;  // constant, cosine, step or plateau
  double weight_decay;   // AdamW's; 0 is plain Adam
  bool augment;
  int early_stopping;  // patience in epochs on val_loss, restoring the best weights; 0: off
  double corruption_probability;  // of each corruption of users' photos, with augmentation
};

/// "seed" is trained exactly as the notebook trains it. "compact" sees augmented photos, with
/// AdamW and a cosine schedule that ends near zero, so that its last epochs settle; about half
/// of its photos are also degraded the ways users' photos are (each of the 7 corruptions of
/// data/augmentation.hpp with probability 0.1), so that it keeps working on them.
inline Recipe recipe(const std::string& name) {
  if (name == "compact") return {30, 2e-3, "cosine", 5e-4, true, 0, 0.1};
  return {25, 1e-3, "constant", 0.0, false, 0, 0.0};
}

/// Names `train --arch` accepts, and what each is.
inline const char* architecture_help =
    "network: seed (the notebook's, 7.4 M parameters) or compact (245 k, batch-normalised; "
    "default: seed)";

inline std::unique_ptr<stratum::Sequential<float>> build_network(const std::string& name,
                                                                 std::uint64_t seed) {
  if (name == "seed") return notebook_network(seed);
  if (name == "compact") return compact_network(seed);
  throw stratum::Error("unknown architecture '" + name + "' (available: seed, compact)");
}

/// The loss each network is trained with.
inline std::unique_ptr<stratum::Loss<float>> network_loss(const std::string& name) {
  if (name == "compact")
    return std::make_unique<stratum::SparseCategoricalCrossentropy<float>>(/*from_logits=*/true);
  return notebook_loss();
}

}  // namespace mask_detection
