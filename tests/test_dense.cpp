#include "gradient_check.hpp"

using namespace stratum;
using stratum::testing::check_layer;

TEST_CASE("Dense: y = x W + b with W stored inputs x units") {
  Dense<double> dense(2);
  Random rng(0);
  dense.build({3}, rng);
  dense.kernel().value = Tensor<double>({3, 2}, {1, 2, 3, 4, 5, 6});
  dense.bias().value = Tensor<double>({2}, {0.5, -0.5});
  Tensor<double> x({2, 3}, {1, 1, 1, 1, 0, -1}), y;
  dense.forward(x, y, Mode::inference);
  CHECK(std::vector<double>(y.begin(), y.end()) == std::vector<double>{9.5, 11.5, -3.5, -4.5});
}

TEST_CASE("Dense: Glorot-uniform kernel within its limit, zero bias") {
  Dense<float> dense(128);
  Random rng(3);
  dense.build({512}, rng);
  const double limit = std::sqrt(6.0 / (512 + 128));
  double max_abs = 0, sum = 0;
  for (float w : dense.kernel().value) {
    max_abs = std::max(max_abs, double(std::abs(w)));
    sum += w;
  }
  CHECK(max_abs <= limit);
  CHECK(max_abs > 0.95 * limit);
  CHECK(std::abs(sum / double(dense.kernel().value.size())) < 0.01 * limit);
  for (float b : dense.bias().value) CHECK(b == 0.0f);
}

TEST_CASE("Dense: gradient checks") {
  SUBCASE("linear, batch 1") { check_layer(Dense<double>(3), {5}, 1); }
  SUBCASE("relu") { check_layer(Dense<double>(7, Activation::relu), {9}, 4); }
  SUBCASE("sigmoid") { check_layer(Dense<double>(2, Activation::sigmoid), {6}, 3); }
  SUBCASE("softmax") { check_layer(Dense<double>(4, Activation::softmax), {5}, 3); }
}

TEST_CASE("Dense: needs a flat input") {
  Random rng(0);
  Dense<float> dense(4);
  dense.set_name("dense_3");
  CHECK_THROWS_WITH_AS(dense.build({30, 30, 64}, rng),
                       "Dense 'dense_3' expects input of shape (None, features) (add a Flatten "
                       "layer before it), received (None, 30, 30, 64)",
                       ShapeError);
}
