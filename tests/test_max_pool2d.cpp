#include "gradient_check.hpp"

using namespace stratum;
using stratum::testing::check_layer;

TEST_CASE("MaxPool2D: values, ties and the backward routing by hand") {
  MaxPool2D<double> pool(2);
  Random rng(0);
  pool.build({2, 4, 1}, rng);
  // Two windows: [1 3 / 3 2] has a tie between (0,1) and (1,0); [5 0 / -1 4] has max 5.
  Tensor<double> x({1, 2, 4, 1}, {1, 3, 5, 0,  //
                                  3, 2, -1, 4});
  Tensor<double> y, dx;
  pool.forward(x, y, Mode::inference);
  REQUIRE(y.shape() == Shape{1, 1, 2, 1});
  CHECK(y[0] == 3);
  CHECK(y[1] == 5);
  pool.backward(x, y, Tensor<double>({1, 1, 2, 1}, {10, 20}), &dx);
  // The first maximum in row-major window order, (0,1), takes the whole gradient.
  CHECK(std::vector<double>(dx.begin(), dx.end()) == std::vector<double>{0, 10, 20, 0, 0, 0, 0, 0});
}

TEST_CASE("MaxPool2D: Keras' floor semantics drop the rows and columns a window cannot fill") {
  Random rng(0);
  MaxPool2D<float> pool(2);
  CHECK(pool.build({5, 7, 3}, rng) == Shape{2, 3, 3});
  MaxPool2D<float> notebook(2);
  CHECK(notebook.build({126, 126, 32}, rng) == Shape{63, 63, 32});
  CHECK(notebook.build({61, 61, 64}, rng) == Shape{30, 30, 64});
  MaxPool2D<float> overlapping(3, 2);
  CHECK(overlapping.build({7, 7, 1}, rng) == Shape{3, 3, 1});
  MaxPool2D<float> same(2, 2, Padding::same);
  CHECK(same.build({5, 7, 3}, rng) == Shape{3, 4, 3});
}

TEST_CASE("MaxPool2D: channels pool independently and NaN propagates") {
  MaxPool2D<float> pool(2);
  Random rng(0);
  pool.build({2, 2, 2}, rng);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor<float> x({1, 2, 2, 2}, {1, -1, nan, -2, 4, -3, 2, -4}), y;
  pool.forward(x, y, Mode::inference);
  CHECK(std::isnan(y[0]));
  CHECK(y[1] == -1);
}

TEST_CASE("MaxPool2D: gradient checks") {
  SUBCASE("batch 1, 2x2") { check_layer(MaxPool2D<double>(2), {4, 6, 3}, 1); }
  SUBCASE("odd sizes") { check_layer(MaxPool2D<double>(2), {5, 7, 2}, 3); }
  SUBCASE("overlapping windows") { check_layer(MaxPool2D<double>(3, 2), {7, 6, 2}, 2); }
  SUBCASE("stride beyond the pool: inputs between windows get no gradient") {
    check_layer(MaxPool2D<double>(2, 3), {8, 7, 2}, 2);
  }
  SUBCASE("same padding, stride 3 over 2x2 pools") {
    check_layer(MaxPool2D<double>(2, 3, Padding::same), {7, 8, 3}, 2);
  }
  SUBCASE("same padding") {
    check_layer(MaxPool2D<double>(2, 2, Padding::same), {5, 5, 3}, 2);
  }
  SUBCASE("rectangular") { check_layer(MaxPool2D<double>(Size2{1, 3}, Size2{1, 2}), {3, 7, 2}, 2); }
}

TEST_CASE("MaxPool2D: a pool larger than the input is a clear error") {
  Random rng(0);
  MaxPool2D<float> pool(4);
  pool.set_name("max_pooling2d_2");
  CHECK_THROWS_WITH_AS(pool.build({3, 3, 8}, rng),
                       "MaxPooling2D 'max_pooling2d_2': a 4x4 pool does not fit input of shape "
                       "(None, 3, 3, 8)",
                       ShapeError);
}

TEST_CASE("MaxPool2D: windows of more than 256 values are refused with the layer's name") {
  Random rng(0);
  MaxPool2D<float> huge(Size2{17, 16});
  CHECK_THROWS_WITH_AS(huge.build({40, 40, 1}, rng), doctest::Contains("more than 256"), ShapeError);
  MaxPool2D<float> largest(16);
  CHECK(largest.build({40, 40, 1}, rng) == Shape{2, 2, 1});
}

TEST_CASE("MaxPool2D: backward after an inference-mode forward finds the argmax itself") {
  // Inference does not record the argmax; the gradient must still be the same.
  Random rng(4);
  MaxPool2D<double> pool(2);
  pool.build({6, 5, 3}, rng);
  stratum::testing::check_layer_gradients(pool, 2, 5, Mode::inference);
  MaxPool2D<double> overlapping(3, 2);
  overlapping.build({7, 7, 2}, rng);
  stratum::testing::check_layer_gradients(overlapping, 2, 6, Mode::inference);
}
