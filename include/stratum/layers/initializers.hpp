// Keras' default initialisation: Glorot-uniform kernels, zero biases.
//
// Glorot & Bengio (2010) keep the variance of activations and gradients roughly constant from
// layer to layer by drawing w ~ U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)).
// For a convolution, fan_in = KH*KW*C and fan_out = KH*KW*F (Keras' definition).
#pragma once

#include <cmath>

#include "../random.hpp"
#include "../tensor.hpp"

namespace stratum {

template <typename T>
void glorot_uniform(Tensor<T>& weights, Index fan_in, Index fan_out, Random& rng) {
  const double limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  for (auto& w : weights) w = static_cast<T>(rng.uniform(-limit, limit));
}

}  // namespace stratum
