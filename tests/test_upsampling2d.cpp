// UpSampling2D: worked examples, the gradient check, its configuration and its errors.
#include <stratum/model/serialization.hpp>

#include "gradient_check.hpp"
#include "simd_paths.hpp"

using namespace stratum;

TEST_CASE("UpSampling2D: each pixel becomes an fh x fw block") {
  UpSampling2D<double> up(Size2{2, 3});
  Random rng(0);
  REQUIRE(up.build({2, 2, 2}, rng) == Shape{4, 6, 2});
  // Two channels per pixel: (p, -p) for pixel p = 1..4.
  Tensor<double> x({1, 2, 2, 2}, {1, -1, 2, -2,  //
                                  3, -3, 4, -4});
  Tensor<double> y;
  up.forward(x, y, Mode::inference);
  REQUIRE(y.shape() == Shape{1, 4, 6, 2});
  const double expected_pixels[4][6] = {
      {1, 1, 1, 2, 2, 2}, {1, 1, 1, 2, 2, 2}, {3, 3, 3, 4, 4, 4}, {3, 3, 3, 4, 4, 4}};
  for (Index i = 0; i < 4; ++i)
    for (Index j = 0; j < 6; ++j) {
      INFO("output pixel (" << i << ", " << j << ")");
      CHECK(y[(i * 6 + j) * 2] == expected_pixels[i][j]);
      CHECK(y[(i * 6 + j) * 2 + 1] == -expected_pixels[i][j]);
    }
}

TEST_CASE("UpSampling2D: backward sums the gradient over each block") {
  testing::for_each_simd_path([] {
    UpSampling2D<float> up(2);
    Random rng(0);
    up.build({1, 2, 1}, rng);
    Tensor<float> x({1, 1, 2, 1}, {5, 7}), y, dx;
    up.forward(x, y, Mode::training);
    // dy over the 2x4 output; the left 2x2 block sums to 1+2+5+6, the right to 3+4+7+8.
    const Tensor<float> dy({1, 2, 4, 1}, {1, 2, 3, 4,  //
                                          5, 6, 7, 8});
    up.backward(x, y, dy, &dx);
    REQUIRE(dx.shape() == x.shape());
    CHECK(dx[0] == 14);
    CHECK(dx[1] == 22);
  });
}

TEST_CASE("UpSampling2D: gradient checks") {
  using testing::check_layer;
  SUBCASE("2x2, batch 1") {
    check_layer(UpSampling2D<double>(2), {3, 4, 2}, 1);
  }
  SUBCASE("odd sizes, unequal factors, many channels") {
    check_layer(UpSampling2D<double>(Size2{3, 1}), {5, 3, 7}, 3);
  }
  SUBCASE("factor 1 is the identity") {
    check_layer(UpSampling2D<double>(1), {2, 3, 5}, 2);
  }
}

TEST_CASE("UpSampling2D: configuration rebuilds the layer") {
  const UpSampling2D<float> up(Size2{4, 2});
  const LayerConfig config = up.config();
  CHECK(config.type == "UpSampling2D");
  auto rebuilt = layer_from_config<float>(config);
  CHECK(rebuilt->config().values == config.values);
  Random rng(0);
  CHECK(rebuilt->build({3, 5, 6}, rng) == Shape{12, 10, 6});
}

TEST_CASE("UpSampling2D: bad factors and inputs are refused by name") {
  CHECK_THROWS_WITH_AS(UpSampling2D<float>(Size2{0, 2}),
                       "UpSampling2D: the factors must be positive, got 0x2", Error);
  UpSampling2D<float> up(2);
  up.set_name("up_sampling2d_3");
  Random rng(0);
  CHECK_THROWS_WITH_AS(up.build({16, 16}, rng),
                       "UpSampling2D 'up_sampling2d_3' expects input of shape (None, height, "
                       "width, channels), received (None, 16, 16)",
                       ShapeError);
}
