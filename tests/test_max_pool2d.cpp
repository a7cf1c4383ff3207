#include <stratum/kernels/max_pool2d.hpp>

#include <cstdint>
#include <limits>
#include <vector>

#include "gradient_check.hpp"

using namespace stratum;
using stratum::testing::check_layer;

namespace {

/// body(out, n, oy, ox, c) for every output element, `out` its NHWC index.
template <typename Body>
void for_each_pooled_output(const WindowGeometry& g, Body&& body) {
  for (Index n = 0; n < g.batch; ++n)
    for (Index oy = 0; oy < g.out_h; ++oy)
      for (Index ox = 0; ox < g.out_w; ++ox)
        for (Index c = 0; c < g.in_c; ++c)
          body(static_cast<std::size_t>(((n * g.out_h + oy) * g.out_w + ox) * g.in_c + c), n, oy,
               ox, c);
}

/// The pooling as plain loops, the definition the kernels are checked against: each window's
/// taps in row-major order, the first one inside the image taken, then replaced by a later one
/// that is larger or the first NaN; the argmax is the winning tap.
template <typename T>
void reference_max_pool(const WindowGeometry& g, const std::vector<T>& x, std::vector<T>& y,
                        std::vector<std::uint8_t>& argmax) {
  for_each_pooled_output(g, [&](std::size_t out, Index n, Index oy, Index ox, Index c) {
    bool found = false;
    for (Index ky = 0; ky < g.kernel_h; ++ky)
      for (Index kx = 0; kx < g.kernel_w; ++kx) {
        const Index iy = oy * g.stride_h - g.pad_top + ky, ix = ox * g.stride_w - g.pad_left + kx;
        if (iy < 0 || iy >= g.in_h || ix < 0 || ix >= g.in_w) continue;
        const T v = x[static_cast<std::size_t>(((n * g.in_h + iy) * g.in_w + ix) * g.in_c + c)];
        if (!found || v > y[out] || (std::isnan(v) && !std::isnan(y[out]))) {
          y[out] = v;
          argmax[out] = static_cast<std::uint8_t>(ky * g.kernel_w + kx);
          found = true;
        }
      }
  });
}

/// dx of the pooling given its argmax: each dy added at its window's argmax.
template <typename T>
std::vector<T> reference_max_pool_backward(const WindowGeometry& g,
                                           const std::vector<std::uint8_t>& argmax,
                                           const std::vector<T>& dy) {
  std::vector<T> dx(static_cast<std::size_t>(g.batch * g.in_h * g.in_w * g.in_c), T(0));
  for_each_pooled_output(g, [&](std::size_t out, Index n, Index oy, Index ox, Index c) {
    const Index iy = oy * g.stride_h - g.pad_top + argmax[out] / g.kernel_w;
    const Index ix = ox * g.stride_w - g.pad_left + argmax[out] % g.kernel_w;
    dx[static_cast<std::size_t>(((n * g.in_h + iy) * g.in_w + ix) * g.in_c + c)] += dy[out];
  });
  return dx;
}

/// Equal, or both NaN.
template <typename T>
bool same_values(const std::vector<T>& a, const std::vector<T>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](T u, T v) { return u == v || (std::isnan(u) && std::isnan(v)); });
}

}  // namespace

TEST_CASE_TEMPLATE("max-pooling kernels match plain loops on random shapes", T, float, double) {
  // Odd sizes, batch 1, strides smaller and larger than the pool, both paddings; values from a
  // few integers so that ties are common, and some NaNs. Outputs start as NaN, so an element a
  // kernel never writes cannot pass.
  Random rng(11);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  int checked = 0;
  while (checked < 200) {
    const auto draw = [&](Index low, Index high) {
      return low + Index(rng.below(std::uint64_t(high - low + 1)));
    };
    // Each draw initialises a variable of its own, in order: the order in which a constructor's
    // arguments are evaluated is unspecified, and GCC and Clang differ.
    const Index pool_h = draw(1, 4), pool_w = draw(1, 4), stride_h = draw(1, 4),
                stride_w = draw(1, 4);
    const Size2 pool(pool_h, pool_w), strides(stride_h, stride_w);
    const Padding padding = rng.below(2) ? Padding::same : Padding::valid;
    const Index batch = draw(1, 3), height = draw(1, 11), width = draw(1, 11),
                channels = draw(1, 9);
    const WindowGeometry g =
        make_window_geometry(batch, height, width, channels, pool, strides, padding, channels);
    if (g.out_h < 1 || g.out_w < 1) continue;
    ++checked;
    CAPTURE(pool.h);
    CAPTURE(pool.w);
    CAPTURE(strides.h);
    CAPTURE(strides.w);
    CAPTURE(int(padding));
    CAPTURE(batch);
    CAPTURE(height);
    CAPTURE(width);
    CAPTURE(channels);

    std::vector<T> x(static_cast<std::size_t>(batch * height * width * channels));
    for (T& v : x) v = rng.below(20) == 0 ? nan : T(rng.below(5));
    const auto out_size = static_cast<std::size_t>(batch * g.out_h * g.out_w * channels);
    std::vector<T> expected(out_size), y(out_size, nan), y_only(out_size, nan);
    std::vector<std::uint8_t> expected_argmax(out_size), argmax(out_size, 255);
    reference_max_pool(g, x, expected, expected_argmax);
    kernels::max_pool2d_forward(g, x.data(), y.data(), argmax.data());
    kernels::max_pool2d_forward(g, x.data(), y_only.data(), static_cast<std::uint8_t*>(nullptr));
    CHECK(same_values(y, expected));
    CHECK(same_values(y_only, expected));
    CHECK(argmax == expected_argmax);

    // Row by row from bands of the input, as the convolution fused before the pool feeds it.
    std::vector<T> y_bands(out_size, nan);
    const Index image_size = height * width * channels;
    for (Index n = 0; n < batch; ++n)
      for (Index oy = 0; oy < g.out_h; ++oy) {
        const Index first_row = std::max<Index>(oy * g.stride_h - g.pad_top, 0);
        kernels::max_pool2d_row<false>(g, n, oy,
                                       x.data() + n * image_size + first_row * width * channels,
                                       first_row, y_bands.data(), nullptr);
      }
    CHECK(same_values(y_bands, expected));

    std::vector<T> dy(out_size);
    for (T& v : dy) v = T(rng.uniform(-1, 1));
    const std::vector<T> expected_dx = reference_max_pool_backward(g, expected_argmax, dy);
    std::vector<T> dx(expected_dx.size(), nan);
    kernels::max_pool2d_backward_overlapping(g, argmax.data(), dy.data(), dx.data());
    CHECK(dx == expected_dx);
    if (g.stride_h >= g.kernel_h && g.stride_w >= g.kernel_w) {
      std::fill(dx.begin(), dx.end(), nan);
      kernels::max_pool2d_backward_disjoint(g, argmax.data(), dy.data(), dx.data());
      CHECK(dx == expected_dx);
      // Any run of pixels, across rows and images, as the fused backward pass asks for them.
      const Index pixels = batch * height * width, first = draw(0, pixels - 1),
                  count = draw(1, pixels - first);
      std::vector<T> run(static_cast<std::size_t>(count * channels), nan);
      kernels::max_pool2d_route_gradient(g, argmax.data(), dy.data(), first, count, run.data());
      CHECK(std::equal(run.begin(), run.end(), expected_dx.begin() + first * channels));
    }
  }
}

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
  SUBCASE("batch 1, 2x2") {
    check_layer(MaxPool2D<double>(2), {4, 6, 3}, 1);
  }
  SUBCASE("odd sizes") {
    check_layer(MaxPool2D<double>(2), {5, 7, 2}, 3);
  }
  SUBCASE("overlapping windows") {
    check_layer(MaxPool2D<double>(3, 2), {7, 6, 2}, 2);
  }
  SUBCASE("stride beyond the pool: inputs between windows get no gradient") {
    check_layer(MaxPool2D<double>(2, 3), {8, 7, 2}, 2);
  }
  SUBCASE("same padding, stride 3 over 2x2 pools") {
    check_layer(MaxPool2D<double>(2, 3, Padding::same), {7, 8, 3}, 2);
  }
  SUBCASE("same padding") {
    check_layer(MaxPool2D<double>(2, 2, Padding::same), {5, 5, 3}, 2);
  }
  SUBCASE("rectangular") {
    check_layer(MaxPool2D<double>(Size2{1, 3}, Size2{1, 2}), {3, 7, 2}, 2);
  }
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
  CHECK_THROWS_WITH_AS(huge.build({40, 40, 1}, rng), doctest::Contains("more than 256"),
                       ShapeError);
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
