// Sigmoid: y = 1 / (1 + e^-x); dx = dy * y * (1 - y)
// (derivation in layers/activation.hpp and docs/backprop.md)
#pragma once

#include "activation.hpp"

namespace stratum {

template <typename T>
class Sigmoid final : public ActivationLayer<T> {
 public:
  Sigmoid() : ActivationLayer<T>(Activation::sigmoid) {}
  [[nodiscard]] std::string type_name() const override { return "Sigmoid"; }
};

}  // namespace stratum
