// ReLU: y = max(x, 0); dx = dy * [y > 0] (the subgradient 0 is taken at x = 0)
// (derivation in layers/activation.hpp and docs/backprop.md)
#pragma once

#include "activation.hpp"

namespace stratum {

template <typename T>
class ReLU final : public ActivationLayer<T> {
 public:
  ReLU() : ActivationLayer<T>(Activation::relu) {}
  [[nodiscard]] std::string type_name() const override { return "ReLU"; }
};

}  // namespace stratum
