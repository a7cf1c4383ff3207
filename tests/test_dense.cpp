#include "gradient_check.hpp"

using namespace stratum;
using stratum::testing::check_layer;
using stratum::testing::same_bits;
using stratum::testing::worse_error;

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

// In float, the products come from the SIMD GEMM of kernels/gemm.hpp (in double, which the
// gradient checks use, from Eigen's), so the float layer is checked against the plain formulas
// too: odd sizes, batch 1 and batches under 4 (Eigen's matrix-vector product), 128 units and
// more (the GEMM copies W's panels), and more inputs than one thread's block (2048), which
// splits the forward pass into partial products. The outputs start as NaN, so a product that
// writes nothing fails.
TEST_CASE("Dense<float>: forward and backward match the plain formulas") {
  struct Case {
    Index batch, inputs, units;
  };
  for (const Case c :
       {Case{1, 5, 3}, Case{3, 37, 33}, Case{32, 300, 128}, Case{1, 4099, 7}, Case{5, 5000, 65},
        Case{2, 4100, 130}, Case{9, 6001, 128}}) {
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
    const float nan = std::numeric_limits<float>::quiet_NaN();
    y.resize({c.batch, c.units});
    dx.resize({c.batch, c.inputs});
    for (Tensor<float>* t : {&y, &dx, &dense.kernel().grad}) std::fill(t->begin(), t->end(), nan);
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
        y_error = worse_error(y_error, std::abs(y[n * c.units + u] - std::max(z, 0.0)));
        dz[static_cast<std::size_t>(n * c.units + u)] = z > 0 ? double(dy[n * c.units + u]) : 0.0;
      }
    for (Index i = 0; i < c.inputs; ++i)
      for (Index u = 0; u < c.units; ++u) {
        double dw = 0;
        for (Index n = 0; n < c.batch; ++n)
          dw += double(x[n * c.inputs + i]) * dz[static_cast<std::size_t>(n * c.units + u)];
        dw_error = worse_error(dw_error, std::abs(dense.kernel().grad[i * c.units + u] - dw));
      }
    for (Index n = 0; n < c.batch; ++n)
      for (Index i = 0; i < c.inputs; ++i) {
        double d = 0;
        for (Index u = 0; u < c.units; ++u)
          d += dz[static_cast<std::size_t>(n * c.units + u)] * double(W[i * c.units + u]);
        dx_error = worse_error(dx_error, std::abs(dx[n * c.inputs + i] - d));
      }
    // float sums of k terms of size about 1 (x and dy in [-1, 1], W smaller): a few ulp times
    // sqrt(k)
    CHECK(y_error <= 1e-5 * std::sqrt(double(c.inputs)));
    CHECK(dw_error <= 1e-5 * std::sqrt(double(c.batch)));
    CHECK(dx_error <= 1e-5 * std::sqrt(double(c.units)));
  }
}

TEST_CASE("Dense<float>: one and two threads agree") {
  // 6,000 inputs: blocks of inputs over the threads, the forward pass summing per-thread
  // partial products (so equal within rounding), dW and dx written block by block (bitwise).
  Random rng(12);
  Dense<float> dense(130, Activation::relu);
  dense.build({6000}, rng);
  Tensor<float> x({7, 6000}), dy({7, 130});
  for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
  for (auto& v : dy) v = static_cast<float>(rng.uniform(-1, 1));
  auto run = [&](int threads) {
    set_num_threads(threads);
    Tensor<float> y, dx;
    dense.forward(x, y, Mode::training);
    dense.backward(x, y, dy, &dx);
    return std::vector<Tensor<float>>{y, dx, dense.kernel().grad};
  };
  const int saved = num_threads();
  const auto one = run(1), two = run(2), two_again = run(2);
  set_num_threads(saved);
  double worst = 0;
  for (Index i = 0; i < one[0].size(); ++i)
    worst = worse_error(worst, std::abs(double(one[0][i]) - double(two[0][i])));
  CHECK(worst <= 1e-5);
  CHECK(same_bits(two[0], two_again[0]));
  CHECK(same_bits(one[1], two[1]));
  CHECK(same_bits(one[2], two[2]));
}
