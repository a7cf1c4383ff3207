// Softmax: y_i = e^x_i / sum_j e^x_j over the last axis; dx_i = y_i * (dy_i - sum_j dy_j y_j)
// (derivation in layers/activation.hpp and docs/backprop.md)
#pragma once

#include "activation.hpp"

namespace stratum {

template <typename T>
class Softmax final : public ActivationLayer<T> {
 public:
  Softmax() : ActivationLayer<T>(Activation::softmax) {}
  [[nodiscard]] std::string type_name() const override { return "Softmax"; }
};

}  // namespace stratum
