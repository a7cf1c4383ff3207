#include "gradient_check.hpp"

using namespace stratum;

namespace {
Parameter<double> parameter(std::initializer_list<double> values) {
  Parameter<double> p;
  p.allocate({static_cast<Index>(values.size())});
  std::copy(values.begin(), values.end(), p.value.begin());
  return p;
}
}  // namespace

TEST_CASE("Adam follows Keras' update with Keras' defaults") {
  Parameter<double> p = parameter({1.0, -2.0});
  std::vector<Parameter<double>*> params{&p};
  Adam<double> adam;
  CHECK(adam.learning_rate() == 1e-3);

  // Step 1 with g = (0.5, 0.1), worked out by hand:
  //   m = 0.1 g = (0.05, 0.01), v = 0.001 g^2 = (2.5e-4, 1e-5)
  //   alpha = 1e-3 * sqrt(1 - 0.999) / (1 - 0.9) = 3.16227766e-4
  //   w -= alpha * m / (sqrt(v) + 1e-7)
  p.grad = Tensor<double>({2}, {0.5, 0.1});
  adam.step(params);
  const double alpha1 = 1e-3 * std::sqrt(1 - 0.999) / (1 - 0.9);
  CHECK(p.value[0] == doctest::Approx(1.0 - alpha1 * 0.05 / (std::sqrt(2.5e-4) + 1e-7)).epsilon(1e-14));
  CHECK(p.value[1] == doctest::Approx(-2.0 - alpha1 * 0.01 / (std::sqrt(1e-5) + 1e-7)).epsilon(1e-14));
  // The first step moves every weight by about lr, whatever the gradient's scale.
  CHECK(1.0 - p.value[0] == doctest::Approx(1e-3).epsilon(1e-3));

  // Step 2 with g = (-0.5, 0.1).
  const double w0 = p.value[0];
  p.grad = Tensor<double>({2}, {-0.5, 0.1});
  adam.step(params);
  const double m = 0.9 * 0.05 + 0.1 * -0.5, v = 0.999 * 2.5e-4 + 0.001 * 0.25;
  const double alpha2 = 1e-3 * std::sqrt(1 - 0.999 * 0.999) / (1 - 0.9 * 0.9);
  CHECK(p.value[0] == doctest::Approx(w0 - alpha2 * m / (std::sqrt(v) + 1e-7)).epsilon(1e-14));
  CHECK(adam.iterations() == 2);
}

TEST_CASE("SGD: plain, momentum and Nesterov updates") {
  Parameter<double> p = parameter({1.0});
  std::vector<Parameter<double>*> params{&p};
  p.grad.fill(0.5);
  SGD<double> plain(0.1);
  plain.step(params);
  CHECK(p.value[0] == doctest::Approx(0.95));

  p.value.fill(1.0);
  SGD<double> momentum(0.1, 0.9);
  momentum.step(params);  // u = -0.05
  CHECK(p.value[0] == doctest::Approx(0.95));
  momentum.step(params);  // u = 0.9 * -0.05 - 0.05 = -0.095
  CHECK(p.value[0] == doctest::Approx(0.855));

  p.value.fill(1.0);
  SGD<double> nesterov(0.1, 0.9, true);
  nesterov.step(params);  // u = -0.05; w += 0.9 * u - 0.05
  CHECK(p.value[0] == doctest::Approx(0.905));
}

TEST_CASE("Adam minimises a quadratic") {
  Parameter<double> p = parameter({3.0, -4.0});
  std::vector<Parameter<double>*> params{&p};
  Adam<double> adam(0.05);
  for (int i = 0; i < 2000; ++i) {
    p.grad.array() = 2 * p.value.array();  // d/dw of |w|^2
    adam.step(params);
  }
  CHECK(std::abs(p.value[0]) < 1e-3);
  CHECK(std::abs(p.value[1]) < 1e-3);
}
