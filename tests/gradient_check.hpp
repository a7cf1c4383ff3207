// Finite-difference gradient checks, in double precision, for layers, losses and whole models.
//
// A layer is checked through the scalar function L(x, params) = sum(y * R) for a fixed random
// R: then dL/dy = R, backward gives dL/dx and dL/dparams, and each is compared with the central
// difference (L(v + h) - L(v - h)) / 2h, whose error is O(h^2). With h = 1e-5 in double
// precision, a correct backward pass agrees to about 1e-9 relative; we require 1e-6.
#pragma once

#include <doctest/doctest.h>
#include <stratum/stratum.hpp>

#include "compare.hpp"

#include <cmath>
#include <functional>
#include <string>

namespace stratum::testing {

inline constexpr double step = 1e-5;
inline constexpr double tolerance = 1e-6;

/// |a - n| relative to their size, with an absolute floor for values near zero.
inline double gradient_error(double analytic, double numeric) {
  return std::abs(analytic - numeric) / std::max({std::abs(analytic), std::abs(numeric), 1e-3});
}

inline Tensor<double> random_tensor(const Shape& shape, Random& rng, double low = -1,
                                    double high = 1) {
  Tensor<double> t(shape);
  for (auto& v : t) v = rng.uniform(low, high);
  return t;
}

/// Compares `analytic` with the numerical derivative of `loss` with respect to every element
/// of `variable` (at most `max_checks` of them, spread evenly, for large tensors).
inline void check_against_numeric(const std::string& what, Tensor<double>& variable,
                                  const Tensor<double>& analytic,
                                  const std::function<double()>& loss, Index max_checks = 400) {
  REQUIRE(analytic.shape() == variable.shape());
  const Index stride = std::max<Index>(1, variable.size() / max_checks);
  double worst = 0;
  Index worst_index = 0;
  for (Index i = 0; i < variable.size(); i += stride) {
    const double saved = variable[i];
    variable[i] = saved + step;
    const double plus = loss();
    variable[i] = saved - step;
    const double minus = loss();
    variable[i] = saved;
    // (A NaN gradient counts as infinitely wrong, see compare.hpp.)
    const double error = gradient_error(analytic[i], (plus - minus) / (2 * step));
    if (worse_error(worst, error) > worst) {
      worst = worse_error(worst, error);
      worst_index = i;
    }
  }
  INFO(what << ": worst relative error " << worst << " at element " << worst_index
            << " (analytic " << analytic[worst_index] << ")");
  CHECK(worst < tolerance);
}

/// Checks dL/dx and every dL/dparameter of an already built layer on a random batch.
/// `before_forward` runs before every forward pass (to replay a dropout mask, say).
inline void check_layer_gradients(Layer<double>& layer, Index batch, std::uint64_t seed,
                                  Mode mode = Mode::training,
                                  const std::function<void()>& before_forward = {}) {
  Random rng(seed);
  Tensor<double> x = random_tensor(layer.input_shape().with_batch(batch), rng);
  const Tensor<double> weights = random_tensor(layer.output_shape().with_batch(batch), rng);
  Tensor<double> y, dx;
  auto loss = [&] {
    if (before_forward) before_forward();
    layer.forward(x, y, mode);
    return (y.array() * weights.array()).sum();
  };
  loss();
  layer.backward(x, y, weights, &dx);
  std::vector<Tensor<double>> param_grads;
  for (auto* p : layer.parameters()) param_grads.push_back(p->grad);

  INFO("layer " << layer.describe() << ", input " << x.shape().to_string());
  check_against_numeric("dL/dx", x, dx, loss);
  const auto params = layer.parameters();
  for (std::size_t i = 0; i < params.size(); ++i)
    if (params[i]->trainable)
      check_against_numeric("dL/d" + params[i]->name, params[i]->value, param_grads[i], loss);
}

/// Builds `layer` for `input_shape` and checks it (convenience for the common case).
template <typename L>
void check_layer(L layer, const Shape& input_shape, Index batch, std::uint64_t seed = 1) {
  Random rng(seed);
  layer.build(input_shape, rng);
  check_layer_gradients(layer, batch, seed + 100);
}

/// Checks a loss' gradient with respect to the model output.
inline void check_loss_gradient(const Loss<double>& loss, Tensor<double> output,
                                const std::vector<int>& labels) {
  Tensor<double> analytic;
  loss.compute(output, labels, &analytic);
  INFO("loss " << loss.name());
  check_against_numeric("dL/doutput", output, analytic,
                        [&] { return loss.compute(output, labels, nullptr); });
}

}  // namespace stratum::testing
