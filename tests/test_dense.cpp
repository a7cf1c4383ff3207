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
  SUBCASE("linear, batch 1") {
    check_layer(Dense<double>(3), {5}, 1);
  }
  SUBCASE("relu") {
    check_layer(Dense<double>(7, Activation::relu), {9}, 4);
  }
  SUBCASE("sigmoid") {
    check_layer(Dense<double>(2, Activation::sigmoid), {6}, 3);
  }
  SUBCASE("softmax") {
    check_layer(Dense<double>(4, Activation::softmax), {5}, 3);
  }
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

// In float, dW comes from the SIMD GEMM of kernels/gemm.hpp (in double, which the gradient
// checks use, from Eigen's), so the float layer is checked against the plain formulas too: odd
// sizes, batch 1, and more inputs than one thread's block (2048), which splits the forward pass
// into partial products.
TEST_CASE("Dense<float>: forward and backward match the plain formulas") {
  struct Case {
    Index batch, inputs, units;
  };
  for (const Case c :
       {Case{1, 5, 3}, Case{3, 37, 33}, Case{32, 300, 128}, Case{1, 4099, 7}, Case{5, 5000, 65}}) {
    CAPTURE(c.batch);
    CAPTURE(c.inputs);
    CAPTURE(c.units);
    Random rng(11);
    Dense<float> dense(c.units, Activation::relu);
    dense.build({c.inputs}, rng);
    Tensor<float> x({c.batch, c.inputs}), y, dy({c.batch, c.units}), dx;
    for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
    for (auto& v : dy) v = static_cast<float>(rng.uniform(-1, 1));
    for (auto& v : dense.bias().value) v = static_cast<float>(rng.uniform(-1, 1));
    dense.forward(x, y, Mode::training);
    dense.backward(x, y, dy, &dx);

    const auto& W = dense.kernel().value;
    // Largest error of each result against the formula, in double precision.
    double y_error = 0, dw_error = 0, dx_error = 0;
    std::vector<double> dz(static_cast<std::size_t>(c.batch * c.units));
    for (Index n = 0; n < c.batch; ++n)
      for (Index u = 0; u < c.units; ++u) {
        double z = dense.bias().value[u];
        for (Index i = 0; i < c.inputs; ++i)
          z += double(x[n * c.inputs + i]) * double(W[i * c.units + u]);
        y_error = std::max(y_error, std::abs(y[n * c.units + u] - std::max(z, 0.0)));
        dz[static_cast<std::size_t>(n * c.units + u)] = z > 0 ? double(dy[n * c.units + u]) : 0.0;
      }
    for (Index i = 0; i < c.inputs; ++i)
      for (Index u = 0; u < c.units; ++u) {
        double dw = 0;
        for (Index n = 0; n < c.batch; ++n)
          dw += double(x[n * c.inputs + i]) * dz[static_cast<std::size_t>(n * c.units + u)];
        dw_error = std::max(dw_error, std::abs(dense.kernel().grad[i * c.units + u] - dw));
      }
    for (Index n = 0; n < c.batch; ++n)
      for (Index i = 0; i < c.inputs; ++i) {
        double d = 0;
        for (Index u = 0; u < c.units; ++u)
          d += dz[static_cast<std::size_t>(n * c.units + u)] * double(W[i * c.units + u]);
        dx_error = std::max(dx_error, std::abs(dx[n * c.inputs + i] - d));
      }
    // float sums of k terms of size about 1 (x and dy in [-1, 1], W smaller): a few ulp times
    // sqrt(k)
    CHECK(y_error <= 1e-5 * std::sqrt(double(c.inputs)));
    CHECK(dw_error <= 1e-5 * std::sqrt(double(c.batch)));
    CHECK(dx_error <= 1e-5 * std::sqrt(double(c.units)));
  }
}
