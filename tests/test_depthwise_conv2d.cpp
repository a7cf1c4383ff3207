// DepthwiseConv2D: worked examples, the fast kernels against the reference loops on every SIMD
// path, threads, gradient checks, configuration and model files, and errors.
#include <stratum/kernels/depthwise_conv2d_reference.hpp>
#include <stratum/model/serialization.hpp>

#include "gradient_check.hpp"
#include "simd_paths.hpp"

#include <limits>

using namespace stratum;

TEST_CASE("DepthwiseConv2D: a hand-computed convolution, one filter per channel") {
  // A 3x3 image with two channels, a 2x2 kernel: channel 0's filter is all ones, channel 1's
  // picks the top-left tap times 10. Biases 0.5 and -1.
  DepthwiseConv2D<double> conv(2);
  Random rng(0);
  REQUIRE(conv.build({3, 3, 2}, rng) == Shape{2, 2, 2});
  conv.kernel().value = Tensor<double>({2, 2, 2, 1}, {1, 10, 1, 0, 1, 0, 1, 0});
  conv.bias().value = Tensor<double>({2}, {0.5, -1});
  Tensor<double> x({1, 3, 3, 2}, {1, 9, 2, 8, 3, 7,  //
                                  4, 6, 5, 5, 6, 4,  //
                                  7, 3, 8, 2, 9, 1});
  Tensor<double> y;
  conv.forward(x, y, Mode::inference);
  REQUIRE(y.shape() == Shape{1, 2, 2, 2});
  CHECK(y[0] == 1 + 2 + 4 + 5 + 0.5);  // channel 0: window sums
  CHECK(y[2] == 2 + 3 + 5 + 6 + 0.5);
  CHECK(y[4] == 4 + 5 + 7 + 8 + 0.5);
  CHECK(y[6] == 5 + 6 + 8 + 9 + 0.5);
  CHECK(y[1] == 90 - 1);  // channel 1: 10 x the window's top-left value
  CHECK(y[3] == 80 - 1);
  CHECK(y[5] == 60 - 1);
  CHECK(y[7] == 50 - 1);
}

TEST_CASE("DepthwiseConv2D: Keras' kernel layout and output channel order c*M + m") {
  // 1x1 kernel (1, 1, C=2, M=3): y[c*3 + m] = x[c] * w[0, 0, c, m].
  DepthwiseConv2D<double> conv(1, 1, Padding::valid, 3, Activation::linear, false);
  Random rng(0);
  REQUIRE(conv.build({1, 1, 2}, rng) == Shape{1, 1, 6});
  CHECK(conv.parameters().size() == 1);
  CHECK(conv.kernel().name == "depthwise_kernel");
  conv.kernel().value = Tensor<double>({1, 1, 2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor<double> x({1, 1, 1, 2}, {10, 100}), y;
  conv.forward(x, y, Mode::inference);
  const double expected[6] = {10, 20, 30, 400, 500, 600};
  for (Index j = 0; j < 6; ++j) CHECK(y[j] == expected[j]);
}

TEST_CASE("DepthwiseConv2D: output sizes follow Keras") {
  Random rng(0);
  CHECK(DepthwiseConv2D<float>(3, 2, Padding::same).build({7, 8, 3}, rng) == Shape{4, 4, 3});
  CHECK(DepthwiseConv2D<float>(3, 2, Padding::valid, 2).build({7, 8, 3}, rng) == Shape{3, 3, 6});
  CHECK(DepthwiseConv2D<float>(Size2{1, 3}).build({5, 5, 2}, rng) == Shape{5, 3, 2});
}

// ---- The fast kernels against the reference loops -------------------------------------------

namespace {

struct DepthwiseKernelCase {
  Index batch = 1, h = 1, w = 1, c = 1, multiplier = 1;
  Size2 kernel = 1, stride = 1;
  Padding padding = Padding::valid;
};

template <typename T>
void depthwise_compare_with_reference(const DepthwiseKernelCase& dc, std::uint64_t seed,
                                      double tol) {
  const WindowGeometry g = make_window_geometry(dc.batch, dc.h, dc.w, dc.c, dc.kernel, dc.stride,
                                                dc.padding, dc.c * dc.multiplier);
  REQUIRE(g.out_h >= 1);
  REQUIRE(g.out_w >= 1);
  Random rng(seed);
  auto random = [&](Index n) {
    std::vector<T> v(static_cast<std::size_t>(n));
    for (auto& e : v) e = static_cast<T>(rng.uniform(-1, 1));
    return v;
  };
  const Index in = g.batch * g.in_h * g.in_w * g.in_c, out = g.batch * g.out_pixels() * g.out_c;
  const auto x = random(in), w = random(g.kernel_h * g.kernel_w * g.out_c), b = random(g.out_c),
             dz = random(out);
  std::vector<T> z_ref(static_cast<std::size_t>(out)), dx_ref(static_cast<std::size_t>(in));
  std::vector<T> dw_ref(w.size()), db_ref(b.size());
  kernels::depthwise_conv2d_forward_reference(g, x.data(), w.data(), b.data(), z_ref.data());
  kernels::depthwise_conv2d_backward_data_reference(g, dz.data(), w.data(), dx_ref.data());
  kernels::depthwise_conv2d_backward_weights_reference(g, x.data(), dz.data(), dw_ref.data(),
                                                       db_ref.data());
  // The outputs start as NaN, so that an element a kernel fails to write cannot pass.
  const T nan = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> z(z_ref.size(), nan), dx(dx_ref.size(), nan), dw(dw_ref.size(), nan),
      db(db_ref.size(), nan);
  kernels::DepthwiseConv2DWorkspace<T> workspace;
  kernels::depthwise_conv2d_forward(g, x.data(), w.data(), b.data(), z.data(), workspace);
  kernels::depthwise_conv2d_backward_data(g, dz.data(), w.data(), dx.data(), workspace);
  kernels::depthwise_conv2d_backward_weights(g, x.data(), dz.data(), dw.data(), db.data(),
                                             workspace);
  auto close = [&](const std::vector<T>& a, const std::vector<T>& r, const char* what) {
    const double worst = testing::worst_scaled_difference(a.data(), r.data(), r.size());
    INFO(what << " N=" << dc.batch << " H=" << dc.h << " W=" << dc.w << " C=" << dc.c
              << " M=" << dc.multiplier << " kernel " << dc.kernel.h << "x" << dc.kernel.w
              << " stride " << dc.stride.h << "x" << dc.stride.w << " "
              << std::string(to_string(dc.padding)) << ": worst error " << worst);
    CHECK(worst <= tol);
  };
  close(z, z_ref, "forward");
  close(dx, dx_ref, "backward data");
  close(dw, dw_ref, "backward weights");
  close(db, db_ref, "backward bias");
  // Without a bias: zeros where the bias was, and no bias gradient written.
  std::fill(z.begin(), z.end(), nan);
  kernels::depthwise_conv2d_forward(g, x.data(), w.data(), static_cast<const T*>(nullptr), z.data(),
                                    workspace);
  kernels::depthwise_conv2d_forward_reference(g, x.data(), w.data(), static_cast<const T*>(nullptr),
                                              z_ref.data());
  close(z, z_ref, "forward without bias");
  std::fill(dw.begin(), dw.end(), nan);
  kernels::depthwise_conv2d_backward_weights(g, x.data(), dz.data(), dw.data(),
                                             static_cast<T*>(nullptr), workspace);
  close(dw, dw_ref, "backward weights without bias");
}

}  // namespace

TEST_CASE("depthwise_conv2d kernels match the reference on random shapes") {
  // Tolerances relative to the largest value: double agrees to rounding; float sums in another
  // order (and with fused multiply-adds), so 1e-5.
  testing::for_each_simd_path([] {
    Random shapes(1414);
    for (int trial = 0; trial < 30; ++trial) {
      DepthwiseKernelCase dc{};
      dc.batch = trial % 5 == 0 ? 1 : 1 + static_cast<Index>(shapes.below(3));
      dc.kernel =
          Size2{1 + static_cast<Index>(shapes.below(5)), 1 + static_cast<Index>(shapes.below(5))};
      dc.h = dc.kernel.h + static_cast<Index>(shapes.below(12));
      dc.w = dc.kernel.w + static_cast<Index>(shapes.below(12));
      dc.c = 1 + static_cast<Index>(shapes.below(40));
      dc.multiplier = 1 + static_cast<Index>(shapes.below(3));
      dc.stride =
          Size2{1 + static_cast<Index>(shapes.below(3)), 1 + static_cast<Index>(shapes.below(3))};
      dc.padding = shapes.below(2) ? Padding::same : Padding::valid;
      depthwise_compare_with_reference<double>(dc, 300 + static_cast<std::uint64_t>(trial), 1e-12);
      depthwise_compare_with_reference<float>(dc, 400 + static_cast<std::uint64_t>(trial), 1e-5);
    }
    // Named cases: batch 1, odd sizes, stride 2 with "same" padding (even and odd sizes, where
    // TensorFlow pads only below and to the right, or on both sides), a detector-like shape.
    depthwise_compare_with_reference<float>({1, 9, 7, 5, 1, 3, 2, Padding::same}, 1, 1e-5);
    depthwise_compare_with_reference<float>({1, 8, 10, 16, 1, 3, 2, Padding::same}, 2, 1e-5);
    depthwise_compare_with_reference<double>({2, 11, 13, 3, 2, 5, 2, Padding::same}, 3, 1e-12);
    depthwise_compare_with_reference<double>({3, 6, 6, 7, 1, 3, 1, Padding::same}, 4, 1e-12);
    depthwise_compare_with_reference<float>({2, 32, 32, 32, 1, 3, 1, Padding::same}, 5, 1e-5);
    depthwise_compare_with_reference<float>({1, 17, 17, 24, 4, 3, 2, Padding::valid}, 6, 1e-5);
  });
}

TEST_CASE("depthwise_conv2d kernels: one and two threads agree") {
  const WindowGeometry g = make_window_geometry(5, 13, 11, 6, 3, 2, Padding::same, 12);
  Random rng(5);
  std::vector<float> x(static_cast<std::size_t>(5 * 13 * 11 * 6)), w(3 * 3 * 12), b(12),
      dz(static_cast<std::size_t>(5 * g.out_pixels() * 12));
  for (auto* v : {&x, &w, &b, &dz})
    for (auto& e : *v) e = static_cast<float>(rng.uniform(-1, 1));
  auto run = [&](int threads) {
    set_num_threads(threads);
    kernels::DepthwiseConv2DWorkspace<float> ws;
    std::vector<float> z(dz.size()), dx(x.size()), dw(w.size()), db(b.size());
    kernels::depthwise_conv2d_forward(g, x.data(), w.data(), b.data(), z.data(), ws);
    kernels::depthwise_conv2d_backward_data(g, dz.data(), w.data(), dx.data(), ws);
    kernels::depthwise_conv2d_backward_weights(g, x.data(), dz.data(), dw.data(), db.data(), ws);
    return std::vector<std::vector<float>>{z, dx, dw, db};
  };
  const int saved = num_threads();
  const auto one = run(1), two = run(2), two_again = run(2);
  set_num_threads(saved);
  // Forward and backward data give each thread whole rows: bitwise equal.
  CHECK(one[0] == two[0]);
  CHECK(one[1] == two[1]);
  // Backward weights adds per-slot partial sums: equal within rounding across thread counts,
  // and bitwise equal for the same thread count.
  for (std::size_t i = 0; i < one[2].size(); ++i)
    CHECK(one[2][i] == doctest::Approx(two[2][i]).epsilon(1e-5));
  CHECK(two[2] == two_again[2]);
  CHECK(two[3] == two_again[3]);
}

// ---- The layer --------------------------------------------------------------------------------

TEST_CASE("DepthwiseConv2D: gradient checks over shapes, strides, paddings and activations") {
  using testing::check_layer;
  SUBCASE("batch 1, valid") {
    check_layer(DepthwiseConv2D<double>(3), {5, 5, 2}, 1);
  }
  SUBCASE("odd sizes, relu") {
    check_layer(DepthwiseConv2D<double>(3, 1, Padding::valid, 1, Activation::relu), {7, 6, 3}, 2);
  }
  SUBCASE("stride 2, same") {
    check_layer(DepthwiseConv2D<double>(3, 2, Padding::same), {7, 9, 4}, 3);
  }
  SUBCASE("depth multiplier 2, even kernel, sigmoid") {
    check_layer(DepthwiseConv2D<double>(2, 1, Padding::same, 2, Activation::sigmoid), {4, 5, 3}, 2);
  }
  SUBCASE("rectangular kernel and stride, multiplier 3, no bias") {
    check_layer(DepthwiseConv2D<double>(Size2{3, 1}, Size2{1, 2}, Padding::same, 3,
                                        Activation::linear, false),
                {5, 6, 2}, 2);
  }
  SUBCASE("softmax over the output channels") {
    check_layer(DepthwiseConv2D<double>(3, 1, Padding::same, 2, Activation::softmax), {4, 4, 2}, 1);
  }
}

TEST_CASE("DepthwiseConv2D: without an input gradient the weight gradients are the same") {
  Random rng(3);
  DepthwiseConv2D<double> conv(3, 2, Padding::same, 2, Activation::relu);
  conv.build({9, 7, 3}, rng);
  const Tensor<double> x = testing::random_tensor({2, 9, 7, 3}, rng);
  Tensor<double> y, dx;
  conv.forward(x, y, Mode::training);
  const Tensor<double> dy = testing::random_tensor(y.shape(), rng);
  conv.backward(x, y, dy, &dx);
  const Tensor<double> dw = conv.kernel().grad, db = conv.bias().grad;
  conv.backward(x, y, dy, nullptr);
  CHECK(testing::same_bits(conv.kernel().grad, dw));
  CHECK(testing::same_bits(conv.bias().grad, db));
}

TEST_CASE("DepthwiseConv2D: configuration and model files rebuild the layer") {
  auto model = std::make_unique<Sequential<float>>(Shape{9, 8, 3}, 7);
  model->add<DepthwiseConv2D>(Size2{3, 2}, Size2{2, 1}, Padding::same, 2, Activation::relu);
  model->add<UpSampling2D>(Size2{2, 3});
  model->add<DepthwiseConv2D>(1, 1, Padding::valid, 1, Activation::sigmoid, false);
  REQUIRE(model->output_shape() == Shape{10, 24, 6});
  CHECK(model->layer(0).name() == "depthwise_conv2d");
  CHECK(model->layer(1).name() == "up_sampling2d");
  const LoadedModel<float> loaded =
      deserialize_model<float>(serialize_model(*model), "depthwise test model");
  Sequential<float>& copy = *loaded.model;
  REQUIRE(copy.size() == model->size());
  for (std::size_t i = 0; i < model->size(); ++i) {
    CHECK(copy.layer(i).config().values == model->layer(i).config().values);
    auto a = model->layer(i).parameters(), b = copy.layer(i).parameters();
    REQUIRE(a.size() == b.size());
    for (std::size_t p = 0; p < a.size(); ++p) {
      CHECK(a[p]->name == b[p]->name);
      CHECK(testing::same_bits(a[p]->value, b[p]->value));
    }
  }
  Tensor<float> x({2, 9, 8, 3});
  Random rng(1);
  for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
  const Tensor<float> expected = model->forward(x, Mode::inference);
  CHECK(testing::same_bits(copy.forward(x, Mode::inference), expected));
}

TEST_CASE("DepthwiseConv2D: bad arguments and shapes are refused by name") {
  CHECK_THROWS_WITH_AS(DepthwiseConv2D<float>(3, 1, Padding::valid, 0),
                       "DepthwiseConv2D: kernel size, strides and depth multiplier must be "
                       "positive",
                       Error);
  Random rng(0);
  DepthwiseConv2D<float> conv(5);
  conv.set_name("depthwise_conv2d_2");
  CHECK_THROWS_WITH_AS(conv.build({3, 4, 8}, rng),
                       "DepthwiseConv2D 'depthwise_conv2d_2': a 5x5 kernel with valid padding "
                       "does not fit input of shape (None, 3, 4, 8)",
                       ShapeError);
  CHECK_THROWS_WITH_AS(conv.build({16, 16}, rng),
                       "DepthwiseConv2D 'depthwise_conv2d_2' expects input of shape (None, "
                       "height, width, channels), received (None, 16, 16)",
                       ShapeError);
  DepthwiseConv2D<float> no_bias(3, 1, Padding::valid, 1, Activation::linear, false);
  no_bias.build({5, 5, 2}, rng);
  CHECK_THROWS_WITH_AS(no_bias.bias(), "DepthwiseConv2D has no bias (use_bias is false)", Error);
}
