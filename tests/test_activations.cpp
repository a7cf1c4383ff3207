#include "gradient_check.hpp"

using namespace stratum;
using stratum::testing::check_layer;

TEST_CASE("ReLU, Sigmoid and Softmax: values") {
  Random rng(0);
  Tensor<double> x({1, 3}, {-2, 0, 3}), y;
  ReLU<double> relu;
  relu.build({3}, rng);
  relu.forward(x, y, Mode::inference);
  CHECK(std::vector<double>(y.begin(), y.end()) == std::vector<double>{0, 0, 3});

  Sigmoid<double> sigmoid;
  sigmoid.build({3}, rng);
  sigmoid.forward(x, y, Mode::inference);
  CHECK(y[1] == 0.5);
  CHECK(y[2] == doctest::Approx(1 / (1 + std::exp(-3.0))));

  Softmax<double> softmax;
  softmax.build({3}, rng);
  softmax.forward(x, y, Mode::inference);
  const double s = std::exp(-2.0) + 1 + std::exp(3.0);
  CHECK(y[0] == doctest::Approx(std::exp(-2.0) / s));
  CHECK(y[2] == doctest::Approx(std::exp(3.0) / s));
}

TEST_CASE("Sigmoid and Softmax stay finite on extreme inputs") {
  Random rng(0);
  Tensor<float> x({1, 3}, {-1000, 0, 1000}), y;
  Sigmoid<float> sigmoid;
  sigmoid.build({3}, rng);
  sigmoid.forward(x, y, Mode::inference);
  CHECK(y[0] == 0.0f);
  CHECK(y[2] == 1.0f);
  Softmax<float> softmax;
  softmax.build({3}, rng);
  softmax.forward(x, y, Mode::inference);
  CHECK(y[2] == 1.0f);
  CHECK(y[0] == 0.0f);
}

TEST_CASE("the sigmoid activation gives a value the same bits wherever it lies in a buffer") {
  // A convolution applies it tile by tile, and how a pass is cut into tiles depends on the
  // batch: an image's output must not.
  Random rng(3);
  std::vector<float> values(61);
  for (auto& v : values) v = static_cast<float>(rng.uniform(-8, 8));
  std::vector<float> whole = values;
  activation_forward(Activation::sigmoid, whole.data(), Index{61}, Index{1});
  for (Index offset = 1; offset < 20; ++offset)
    for (Index length : {1, 5, 16, 17, 40}) {
      std::vector<float> part(values.begin() + offset, values.begin() + offset + length);
      activation_forward(Activation::sigmoid, part.data(), length, Index{1});
      INFO("offset " << offset << ", length " << length);
      CHECK(std::equal(part.begin(), part.end(), whole.begin() + offset));
    }
}

TEST_CASE("ReLU, Sigmoid and Softmax: gradient checks") {
  SUBCASE("relu on images") { check_layer(ReLU<double>(), {3, 5, 2}, 2); }
  SUBCASE("sigmoid") { check_layer(Sigmoid<double>(), {7}, 3); }
  SUBCASE("softmax over the last axis") { check_layer(Softmax<double>(), {2, 5}, 2); }
  SUBCASE("softmax, batch 1") { check_layer(Softmax<double>(), {4}, 1); }
}
