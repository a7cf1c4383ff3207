#include "gradient_check.hpp"

using namespace stratum;
using stratum::testing::check_layer;
using stratum::testing::check_layer_gradients;

TEST_CASE("Flatten keeps NHWC order and its gradient is the inverse reshape") {
  Random rng(0);
  Flatten<double> flatten;
  CHECK(flatten.build({2, 3, 4}, rng) == Shape{24});
  Tensor<double> x({2, 2, 3, 4}), y;
  for (Index i = 0; i < x.size(); ++i) x[i] = double(i);
  flatten.forward(x, y, Mode::inference);
  REQUIRE(y.shape() == Shape{2, 24});
  for (Index i = 0; i < x.size(); ++i) CHECK(y[i] == x[i]);
  check_layer(Flatten<double>(), {3, 2, 2}, 2);
}

TEST_CASE("Dropout: inverted scaling, inference identity, seeded masks") {
  Random rng(11);
  Dropout<double> dropout(0.5);
  dropout.build({10000}, rng);
  Tensor<double> x({1, 10000}), y;
  x.fill(1.0);

  dropout.forward(x, y, Mode::inference);
  CHECK(y.array().isApprox(x.array()));

  dropout.forward(x, y, Mode::training);
  Index kept = 0;
  for (double v : y) {
    CHECK((v == 0.0 || v == 2.0));
    kept += v != 0.0;
  }
  // 10,000 Bernoulli(0.5) draws: 5,000 +- 150 is over three standard deviations.
  CHECK(std::abs(double(kept) - 5000) < 150);

  // The same seed gives the same mask; the next step a different one.
  Random rng_again(11);
  Dropout<double> twin(0.5);
  twin.build({10000}, rng_again);
  Tensor<double> y_twin, y_next;
  twin.forward(x, y_twin, Mode::training);
  CHECK(y_twin.array().isApprox(y.array()));
  twin.forward(x, y_next, Mode::training);
  CHECK(!y_next.array().isApprox(y.array()));
}

TEST_CASE("Dropout: gradient check with the mask held fixed") {
  Random rng(3);
  Dropout<double> dropout(0.3);
  dropout.build({4, 5}, rng);
  const Random::State state = dropout.rng().state();
  check_layer_gradients(dropout, 3, 9, Mode::training,
                        [&] { dropout.rng().set_state(state); });
  check_layer_gradients(dropout, 2, 9, Mode::inference);
}

TEST_CASE("Dropout: a rate outside [0, 1) is rejected") {
  CHECK_THROWS_AS(Dropout<float>(1.0), Error);
  CHECK_THROWS_AS(Dropout<float>(-0.1), Error);
}
