#include "gradient_check.hpp"
#include "simd_paths.hpp"

#include <limits>

using namespace stratum;
using stratum::testing::check_layer;
using stratum::testing::worst_scaled_difference;

TEST_CASE("Conv2D: a hand-computed 3x3 convolution") {
  // One 4x4 single-channel image, one 3x3 filter of ones, bias 0.5: each output is the sum of
  // its 3x3 window plus 0.5.
  Conv2D<double> conv(1, 3);
  Random rng(0);
  conv.build({4, 4, 1}, rng);
  conv.kernel().value.fill(1.0);
  conv.bias().value.fill(0.5);
  Tensor<double> x({1, 4, 4, 1}, {1, 2, 3, 4,     //
                                  5, 6, 7, 8,     //
                                  9, 10, 11, 12,  //
                                  13, 14, 15, 16});
  Tensor<double> y;
  conv.forward(x, y, Mode::inference);
  REQUIRE(y.shape() == Shape{1, 2, 2, 1});
  CHECK(y[0] == 1 + 2 + 3 + 5 + 6 + 7 + 9 + 10 + 11 + 0.5);     // 54.5
  CHECK(y[1] == 2 + 3 + 4 + 6 + 7 + 8 + 10 + 11 + 12 + 0.5);    // 63.5
  CHECK(y[2] == 5 + 6 + 7 + 9 + 10 + 11 + 13 + 14 + 15 + 0.5);  // 90.5
  CHECK(y[3] == 99.5);
}

TEST_CASE("Conv2D: HWIO kernel layout and channel mixing") {
  // 1x1 convolution: y[f] = sum_c x[c] * w[0,0,c,f]; w stored as (1,1,C,F) row-major.
  Conv2D<double> conv(2, 1);
  Random rng(0);
  conv.build({1, 1, 3}, rng);
  conv.kernel().value = Tensor<double>({1, 1, 3, 2}, {1, 10, 2, 20, 3, 30});
  conv.bias().value.set_zero();
  Tensor<double> x({1, 1, 1, 3}, {1, 1, 1}), y;
  conv.forward(x, y, Mode::inference);
  CHECK(y[0] == 6);
  CHECK(y[1] == 60);
}

TEST_CASE("Conv2D: same padding and stride follow Keras' output sizes") {
  Random rng(0);
  Conv2D<float> same(4, 3, Activation::linear, 2, Padding::same);
  CHECK(same.build({7, 8, 3}, rng) == Shape{4, 4, 4});  // ceil(7/2), ceil(8/2)
  Conv2D<float> valid(4, 3, Activation::linear, 2, Padding::valid);
  CHECK(valid.build({7, 8, 3}, rng) == Shape{3, 3, 4});  // floor((7-3)/2)+1, floor((8-3)/2)+1
  Conv2D<float> rect(4, Size2{1, 3});
  CHECK(rect.build({5, 5, 2}, rng) == Shape{5, 3, 4});
}

TEST_CASE("Conv2D: gradient checks over shapes, strides, paddings and activations") {
  SUBCASE("batch 1, valid") {
    check_layer(Conv2D<double>(3, 3), {5, 5, 2}, 1);
  }
  SUBCASE("odd sizes, relu") {
    check_layer(Conv2D<double>(5, 3, Activation::relu), {7, 6, 3}, 2);
  }
  SUBCASE("stride 2, same") {
    check_layer(Conv2D<double>(4, 3, Activation::linear, 2, Padding::same), {7, 9, 2}, 3);
  }
  SUBCASE("stride 2, valid, even kernel") {
    check_layer(Conv2D<double>(2, 2, Activation::linear, 2, Padding::valid), {6, 7, 3}, 2);
  }
  SUBCASE("same, stride 1, sigmoid") {
    check_layer(Conv2D<double>(3, 3, Activation::sigmoid, 1, Padding::same), {4, 5, 1}, 2);
  }
  SUBCASE("8 channels, 8 filters, relu: both backward passes run image by image") {
    check_layer(Conv2D<double>(8, 3, Activation::relu), {6, 5, 8}, 3);
  }
  SUBCASE("rectangular kernel and stride, softmax over filters") {
    check_layer(Conv2D<double>(3, Size2{3, 1}, Activation::softmax, Size2{1, 2}, Padding::same),
                {5, 5, 2}, 2);
  }
}

TEST_CASE("Conv2D: a shape that does not fit names the layer and both shapes") {
  Random rng(0);
  Conv2D<float> conv(8, 5);
  conv.set_name("conv2d_7");
  CHECK_THROWS_WITH_AS(conv.build({3, 3, 1}, rng),
                       "Conv2D 'conv2d_7': a 5x5 kernel with valid padding does not fit input of "
                       "shape (None, 3, 3, 1)",
                       ShapeError);
  CHECK_THROWS_WITH_AS(conv.build({16, 16}, rng),
                       "Conv2D 'conv2d_7' expects input of shape (None, height, width, channels), "
                       "received (None, 16, 16)",
                       ShapeError);
  conv.build({8, 8, 3}, rng);
  Tensor<float> wrong({2, 8, 8, 4}), y;
  CHECK_THROWS_WITH_AS(conv.forward(wrong, y, Mode::inference),
                       "Conv2D 'conv2d_7' expects input of shape (None, 8, 8, 3), received "
                       "(2, 8, 8, 4)",
                       ShapeError);
}

// ---- The fast kernels against the reference loops -------------------------------------------

namespace {

/// Fills kernel outputs with NaN before a kernel runs, so that an element it fails to write
/// cannot pass for the previous kernel's correct result.
template <typename T>
void poison(std::vector<T>& values) {
  std::fill(values.begin(), values.end(), std::numeric_limits<T>::quiet_NaN());
}

struct ConvCase {
  Index batch, h, w, c, f, k;
  Index stride;
  Padding padding;
};

template <typename T>
void compare_with_reference(const ConvCase& cc, std::uint64_t seed, double tol) {
  const WindowGeometry g =
      make_window_geometry(cc.batch, cc.h, cc.w, cc.c, cc.k, cc.stride, cc.padding, cc.f);
  Random rng(seed);
  auto random = [&](Index n) {
    std::vector<T> v(static_cast<std::size_t>(n));
    for (auto& e : v) e = static_cast<T>(rng.uniform(-1, 1));
    return v;
  };
  const Index in = g.batch * g.in_h * g.in_w * g.in_c, out = g.batch * g.out_pixels() * g.out_c;
  const auto x = random(in), w = random(g.patch_size() * g.out_c), b = random(g.out_c),
             dz = random(out);
  std::vector<T> z_ref(static_cast<std::size_t>(out)), z(z_ref.size());
  std::vector<T> dx_ref(static_cast<std::size_t>(in)), dx(dx_ref.size());
  std::vector<T> dw_ref(w.size()), dw(w.size()), db_ref(b.size()), db(b.size());
  kernels::conv2d_forward_reference(g, x.data(), w.data(), b.data(), z_ref.data());
  kernels::conv2d_backward_data_reference(g, dz.data(), w.data(), dx_ref.data());
  kernels::conv2d_backward_weights_reference(g, x.data(), dz.data(), dw_ref.data(), db_ref.data());
  // The reference once, the fast kernels on every SIMD path: the reference loops are most of
  // this test's time in the sanitizer build (at -O0) and under qemu.
  testing::for_each_simd_path([&] {
    kernels::Conv2DWorkspace<T> workspace;
    for (auto* out : {&z, &dx, &dw, &db}) poison(*out);
    kernels::conv2d_forward_im2col(g, x.data(), w.data(), b.data(), z.data(), workspace);
    kernels::conv2d_backward_data_im2col(g, dz.data(), w.data(), dx.data(), workspace);
    kernels::conv2d_backward_weights_im2col(g, x.data(), dz.data(), dw.data(), db.data(),
                                            workspace);
    auto close = [&](const std::vector<T>& a, const std::vector<T>& r, const char* what) {
      REQUIRE(a.size() == r.size());
      const double worst = worst_scaled_difference(a.data(), r.data(), r.size());
      INFO(what << " N=" << cc.batch << " H=" << cc.h << " W=" << cc.w << " C=" << cc.c
                << " F=" << cc.f << " K=" << cc.k << " stride=" << cc.stride
                << " padding=" << std::string(to_string(cc.padding)) << ": worst error " << worst);
      CHECK(worst <= tol);
    };
    close(z, z_ref, "im2col forward");
    close(dx, dx_ref, "im2col backward data");
    close(dw, dw_ref, "im2col backward weights");
    close(db, db_ref, "im2col backward bias");
    if (kernels::direct_filter_count(cc.f)) {
      for (auto* out : {&z, &dw, &db}) poison(*out);
      kernels::conv2d_forward_direct(g, x.data(), w.data(), b.data(), z.data());
      kernels::conv2d_backward_weights_direct(g, x.data(), dz.data(), dw.data(), db.data(),
                                              workspace);
      close(z, z_ref, "direct forward");
      close(dw, dw_ref, "direct backward weights");
      close(db, db_ref, "direct backward bias");
    }
    if (kernels::direct_backward_data(g)) {
      AlignedVector<T> turned_kernel;
      poison(dx);
      kernels::conv2d_backward_data_direct(g, dz.data(), w.data(), dx.data(), turned_kernel);
      close(dx, dx_ref, "direct backward data");
    }
    if (kernels::direct_backward_by_image(g)) {
      // Both passes together, image by image, with dz made by a function as a layer makes it
      // (here copied from dz; d_output is not read, so it is given as null).
      auto made_dz = [&](Index offset, Index count, T* block) {
        std::copy_n(dz.data() + offset, count, block);
      };
      for (auto* out : {&dx, &dw, &db}) poison(*out);
      // dz is made into per-thread buffers padded with zeros: garbage left in them by an
      // earlier pass must not reach the padding.
      const Index padded_dz = (g.in_h + g.kernel_h - 1) * (g.in_w + g.kernel_w - 1) * g.out_c;
      workspace.gradient_rows.prepare(padded_dz);
      for (int buffer = 0; buffer < workspace.gradient_rows.count(); ++buffer)
        std::fill_n(workspace.gradient_rows.get(buffer), padded_dz,
                    std::numeric_limits<T>::quiet_NaN());
      kernels::conv2d_backward_direct_by_image(g, x.data(), w.data(), dx.data(), dw.data(),
                                               db.data(), workspace, made_dz);
      close(dx, dx_ref, "direct backward by image: data");
      close(dw, dw_ref, "direct backward by image: weights");
      close(db, db_ref, "direct backward by image: bias");
    }
  });
}

}  // namespace

TEST_CASE("conv2d im2col and direct kernels match the reference on random shapes") {
  // Tolerances, relative to the largest value: double agrees to rounding; float sums up to
  // K*N*OH*OW products in another order than the loops, so 2e-5.
  Random shapes(2024);
  for (int trial = 0; trial < 25; ++trial) {
    ConvCase cc{};
    cc.batch = trial == 0 ? 1 : 1 + static_cast<Index>(shapes.below(4));
    cc.k = 1 + static_cast<Index>(shapes.below(4));
    cc.h = cc.k + static_cast<Index>(shapes.below(12));
    cc.w = cc.k + static_cast<Index>(shapes.below(12));
    cc.c = 1 + static_cast<Index>(shapes.below(19));
    // Half the cases use a filter count the direct kernels take (8, 16, 32, 64).
    cc.f = shapes.below(2) ? Index{8} << shapes.below(4) : 1 + static_cast<Index>(shapes.below(21));
    cc.stride = 1 + static_cast<Index>(shapes.below(2));
    cc.padding = shapes.below(2) ? Padding::same : Padding::valid;
    compare_with_reference<double>(cc, 100 + static_cast<std::uint64_t>(trial), 1e-12);
    compare_with_reference<float>(cc, 200 + static_cast<std::uint64_t>(trial), 2e-5);
  }
  // The notebook's two layers (their row widths, channels and filters) on a few rows of one
  // image: each output row is cut into the same blocks, panels and remainders as in the whole
  // 128x128 and 63x63 images, whose reference loops took half of this test's time under ASan
  // and under qemu.
  compare_with_reference<float>({1, 7, 128, 3, 32, 3, 1, Padding::valid}, 7, 2e-5);
  compare_with_reference<float>({1, 6, 63, 32, 64, 3, 1, Padding::valid}, 8, 2e-5);
  // Backward data on the direct kernels (stride 1, 8 to 64 channels), both paddings, odd sizes.
  compare_with_reference<float>({2, 9, 12, 16, 7, 3, 1, Padding::same}, 9, 2e-5);
  compare_with_reference<double>({3, 7, 5, 8, 5, 4, 1, Padding::same}, 10, 1e-12);
  compare_with_reference<double>({1, 6, 11, 32, 3, 2, 1, Padding::valid}, 11, 1e-12);
  // Both backward passes image by image (channels and filters the direct kernels take).
  compare_with_reference<float>({3, 9, 8, 8, 16, 3, 1, Padding::valid}, 12, 2e-5);
  compare_with_reference<float>({1, 7, 10, 16, 8, 3, 1, Padding::same}, 13, 2e-5);
  compare_with_reference<double>({2, 6, 5, 8, 32, 2, 1, Padding::same}, 14, 1e-12);
  // Two images of conv2's channels and filters, padded: blocks of rows and panels with
  // remainders, edge pixels on both sides (not the notebook's 63x63: its reference loops took
  // most of this file's time under ASan and qemu).
  compare_with_reference<float>({2, 33, 31, 32, 64, 3, 1, Padding::same}, 15, 2e-5);
}

TEST_CASE("conv2d kernels: one and two threads agree") {
  // im2col (F = 7) and direct (thin: K = 3*3*3, F = 16) paths.
  for (const auto& [c, f] : {std::pair<Index, Index>{6, 7}, std::pair<Index, Index>{3, 16}}) {
    const WindowGeometry g = make_window_geometry(5, 13, 11, c, 3, 1, Padding::same, f);
    Random rng(5);
    std::vector<float> x(static_cast<std::size_t>(5 * 13 * 11 * c)),
        w(static_cast<std::size_t>(3 * 3 * c * f)), b(static_cast<std::size_t>(f)),
        dz(static_cast<std::size_t>(5 * 13 * 11 * f));
    for (auto* v : {&x, &w, &b, &dz})
      for (auto& e : *v) e = static_cast<float>(rng.uniform(-1, 1));
    auto run = [&](int threads) {
      set_num_threads(threads);
      kernels::Conv2DWorkspace<float> ws;
      std::vector<float> z(dz.size()), dx(x.size()), dw(w.size()), db(b.size());
      kernels::conv2d_forward(g, x.data(), w.data(), b.data(), z.data(), ws);
      kernels::conv2d_backward_data(g, dz.data(), w.data(), dx.data(), ws);
      kernels::conv2d_backward_weights(g, x.data(), dz.data(), dw.data(), db.data(), ws);
      return std::vector<std::vector<float>>{z, dx, dw, db};
    };
    const int saved = num_threads();
    const auto one = run(1), two = run(2), two_again = run(2);
    set_num_threads(saved);
    // Forward and backward data split work by whole tiles or images: bitwise equal.
    CHECK(one[0] == two[0]);
    CHECK(one[1] == two[1]);
    // Backward weights sums per-thread partial sums: equal within rounding, and bitwise equal
    // for the same thread count.
    for (std::size_t i = 0; i < one[2].size(); ++i)
      CHECK(one[2][i] == doctest::Approx(two[2][i]).epsilon(1e-5));
    CHECK(two[2] == two_again[2]);
    CHECK(two[3] == two_again[3]);
  }
}

TEST_CASE("Conv2D: an image's output has the same bits in a batch of 1 as in a larger one") {
  // im2col cuts a pass into more tiles per image when the batch is small (so that one image
  // still keeps every thread busy): the tiles must not change the results, sigmoid included.
  const int saved = num_threads();
  set_num_threads(2);
  Random rng(11);
  Conv2D<float> conv(3, 3, Activation::sigmoid, 1, Padding::same);
  conv.build({15, 15, 5}, rng);
  const WindowGeometry one = make_window_geometry(1, 15, 15, 5, 3, 1, Padding::same, 3);
  const WindowGeometry six = make_window_geometry(6, 15, 15, 5, 3, 1, Padding::same, 3);
  CHECK(kernels::im2col_tile_rows(one) != kernels::im2col_tile_rows(six));
  Tensor<float> batch({6, 15, 15, 5}), all, alone;
  for (auto& v : batch) v = static_cast<float>(rng.uniform(-1, 1));
  conv.forward(batch, all, Mode::inference);
  const Index image = 15 * 15 * 5, out = 15 * 15 * 3;
  for (Index n = 0; n < 6; ++n) {
    Tensor<float> x({1, 15, 15, 5});
    std::copy_n(batch.data() + n * image, image, x.data());
    conv.forward(x, alone, Mode::inference);
    INFO("image " << n);
    CHECK(std::equal(alone.begin(), alone.end(), all.data() + n * out));
  }
  set_num_threads(saved);
}

TEST_CASE("Conv2D: without an input gradient (the first layer) the weight gradients are the same") {
  // Without dx the layer folds the activation's derivative into the weight-gradient kernel;
  // it must give what the two-pass route gives. Direct path (F = 16) and im2col path (F = 5).
  for (Index filters : {Index{16}, Index{5}}) {
    Random rng(3);
    Conv2D<double> conv(filters, 3, Activation::relu, 1, Padding::same);
    conv.build({9, 7, 3}, rng);
    const Tensor<double> x = testing::random_tensor({2, 9, 7, 3}, rng);
    Tensor<double> y, dx;
    conv.forward(x, y, Mode::training);
    const Tensor<double> dy = testing::random_tensor(y.shape(), rng);
    conv.backward(x, y, dy, &dx);
    const Tensor<double> kernel_grad = conv.kernel().grad, bias_grad = conv.bias().grad;
    conv.backward(x, y, dy, nullptr);
    for (Index i = 0; i < kernel_grad.size(); ++i)
      CHECK(conv.kernel().grad[i] == doctest::Approx(kernel_grad[i]).epsilon(1e-12));
    for (Index i = 0; i < bias_grad.size(); ++i)
      CHECK(conv.bias().grad[i] == doctest::Approx(bias_grad[i]).epsilon(1e-12));
  }
}

// ---- Conv2D fused with the MaxPool2D after it -----------------------------------------------

namespace {

struct PooledConvCase {
  Shape input;  // per sample
  Index filters, kernel, stride;
  Padding padding;
  Activation activation;
  Size2 pool, pool_stride;
  Padding pool_padding;
  Index batch;
};

/// Runs the pair both ways, layer by layer and fused. Our AVX-512 and AVX2 GEMMs compute each
/// output the same way whatever the tile, so with ReLU (exact) the fused pair gives the same
/// bits. Eigen's GEMM (double, the portable path) blocks by the sizes, which differ between a
/// tile and a band, and Eigen's vectorised exp differs from its scalar one at the end of a
/// block: equal within rounding then.
template <typename T>
void check_fused_pair(const PooledConvCase& pc, std::uint64_t seed) {
  Random rng(seed);
  Conv2D<T> conv(pc.filters, pc.kernel, pc.activation, pc.stride, pc.padding);
  MaxPool2D<T> pool(pc.pool, pc.pool_stride, pc.pool_padding);
  pool.build(conv.build(pc.input, rng), rng);
  REQUIRE(conv.fuses_with(pool));
  auto random = [&](const Shape& shape) {
    Tensor<T> t(shape);
    for (auto& v : t) v = static_cast<T>(rng.uniform(-1, 1));
    return t;
  };
  const Tensor<T> x = random(pc.input.with_batch(pc.batch));
  for (auto& v : conv.bias().value) v = static_cast<T>(rng.uniform(-0.2, 0.2));

  Tensor<T> y, pooled, dy, dx;
  conv.forward(x, y, Mode::training);
  pool.forward(y, pooled, Mode::training);
  const Tensor<T> d_pooled = random(pooled.shape());
  pool.backward(y, pooled, d_pooled, &dy);
  conv.backward(x, y, dy, &dx);
  const Tensor<T> kernel_grad = conv.kernel().grad, bias_grad = conv.bias().grad;

  // The gradients still hold the layer-by-layer results: poison them, so that the fused pass
  // has to write every one.
  auto poison_gradients = [&] {
    for (auto* p : conv.parameters())
      std::fill(p->grad.begin(), p->grad.end(), std::numeric_limits<T>::quiet_NaN());
  };
  Tensor<T> fused_pooled, fused_dx;
  conv.forward_pooled(x, pool, fused_pooled);
  poison_gradients();
  conv.backward_pooled(x, pool, fused_pooled, d_pooled, &fused_dx);
  INFO(std::string(sizeof(T) == 4 ? "float" : "double")
       << ", input " << pc.input.to_string() << " batch " << pc.batch << ", " << pc.filters
       << " filters " << pc.kernel << "x" << pc.kernel << " stride " << pc.stride << " "
       << std::string(to_string(pc.padding)) << " " << std::string(to_string(pc.activation))
       << ", pool " << pc.pool.h << "x" << pc.pool.w << " stride " << pc.pool_stride.h << "x"
       << pc.pool_stride.w << " " << std::string(to_string(pc.pool_padding)));
  const bool exact = std::is_same_v<T, float> &&
                     kernels::simd_path() != kernels::SimdPath::portable &&
                     pc.activation != Activation::sigmoid;
  const double tolerance = exact ? 0.0 : std::is_same_v<T, float> ? 1e-5 : 1e-12;
  auto check_close = [&](const Tensor<T>& fused, const Tensor<T>& expected, const char* what) {
    REQUIRE(fused.shape() == expected.shape());
    const double worst = worst_scaled_difference(fused.data(), expected.data(),
                                                 static_cast<std::size_t>(expected.size()));
    INFO(what << ": worst difference " << worst << " relative to the largest value");
    CHECK(worst <= tolerance);
  };
  check_close(fused_pooled, pooled, "pooled output");
  check_close(fused_dx, dx, "input gradient");
  check_close(conv.kernel().grad, kernel_grad, "kernel gradient");
  check_close(conv.bias().grad, bias_grad, "bias gradient");

  // The first layer of a model needs no input gradient.
  poison_gradients();
  conv.backward_pooled(x, pool, fused_pooled, d_pooled, nullptr);
  check_close(conv.kernel().grad, kernel_grad, "kernel gradient without dx");
  check_close(conv.bias().grad, bias_grad, "bias gradient without dx");
}

}  // namespace

TEST_CASE("Conv2D fused with MaxPool2D gives the two layers' results") {
  const auto relu = Activation::relu;
  const auto valid = Padding::valid, same = Padding::same;
  const std::vector<PooledConvCase> cases{
      // The notebook's first pair at a small size (direct kernels: K = 27, 32 filters), batch 1.
      {{12, 12, 3}, 32, 3, 1, valid, relu, 2, 2, valid, 1},
      // Odd sizes: the last row and column of the convolution's output are in no window.
      {{11, 10, 3}, 16, 3, 1, valid, relu, 2, 2, valid, 3},
      // im2col + GEMM, channels and filters that are not multiples of the vector width.
      {{9, 13, 5}, 7, 3, 1, same, relu, 2, 2, valid, 2},
      {{10, 9, 6}, 37, 2, 2, same, Activation::sigmoid, 2, 2, same, 2},
      {{8, 8, 4}, 64, 3, 1, valid, Activation::linear, 3, 3, valid, 2},
      // Stride beyond the pool: rows and columns between windows get no gradient.
      {{13, 12, 2}, 9, 3, 1, valid, relu, Size2{2, 1}, Size2{3, 2}, valid, 2},
      // Rows of output that do not fit one tile of im2col (more than 16 rows' worth per band).
      {{40, 70, 8}, 12, 3, 1, same, relu, 2, 2, valid, 1},
  };
  testing::for_each_simd_path([&] {
    std::uint64_t seed = 1;
    for (const auto& pc : cases) {
      check_fused_pair<float>(pc, seed++);
      check_fused_pair<double>(pc, seed++);
    }
  });
}

TEST_CASE("Conv2D fused with MaxPool2D: what cannot be fused is refused by name") {
  Random rng(0);
  Conv2D<float> conv(4, 3, Activation::relu);
  conv.set_name("conv2d");
  MaxPool2D<float> overlapping(3, 2), disjoint(2);
  overlapping.set_name("max_pooling2d");
  overlapping.build(conv.build({9, 9, 2}, rng), rng);
  disjoint.build({7, 7, 4}, rng);
  CHECK_FALSE(conv.fuses_with(overlapping));
  CHECK(conv.fuses_with(disjoint));
  Conv2D<float> softmax(4, 3, Activation::softmax);
  softmax.build({9, 9, 2}, rng);
  CHECK_FALSE(softmax.fuses_with(disjoint));
  Tensor<float> x({1, 9, 9, 2}), pooled;
  CHECK_THROWS_WITH_AS(conv.forward_pooled(x, overlapping, pooled),
                       "Conv2D 'conv2d' cannot run fused with MaxPooling2D 'max_pooling2d' "
                       "(overlapping windows, softmax, or a pool not built on this layer's "
                       "output)",
                       Error);
  Tensor<float> wrong({1, 9, 8, 2});
  CHECK_THROWS_AS(conv.forward_pooled(wrong, disjoint, pooled), ShapeError);
}

TEST_CASE("conv2d stride 2: the fast kernels match the reference") {
  // Stride 2 runs forward and backward weights on the direct kernels (filter counts 8 to 64)
  // or im2col + GEMM (others), and backward data on im2col + GEMM. "same" padding with stride
  // 2 pads nothing on top for even sizes (TensorFlow puts the odd row below) and one row on
  // each side for odd ones: both are here, with batch 1 and odd sizes.
  compare_with_reference<float>({1, 9, 7, 3, 16, 3, 2, Padding::same}, 21, 2e-5);
  compare_with_reference<float>({1, 10, 12, 16, 32, 3, 2, Padding::same}, 22, 2e-5);
  compare_with_reference<float>({2, 11, 11, 8, 7, 3, 2, Padding::same}, 23, 2e-5);
  compare_with_reference<double>({1, 13, 9, 5, 8, 3, 2, Padding::valid}, 24, 1e-12);
  compare_with_reference<double>({3, 8, 8, 4, 5, 2, 2, Padding::valid}, 25, 1e-12);
  compare_with_reference<double>({1, 7, 6, 2, 64, 5, 2, Padding::same}, 26, 1e-12);
  compare_with_reference<float>({1, 33, 31, 16, 32, 3, 2, Padding::same}, 27, 2e-5);
}

TEST_CASE("Conv2D stride 2 layer: the kernels the layer picks agree with the reference") {
  // The layer's own dispatch (kernels::conv2d_forward / conv2d_backward), fused activation and
  // all, against the reference loops and a ReLU applied by hand.
  for (Index filters : {Index{16}, Index{6}}) {
    Random rng(9);
    Conv2D<float> conv(filters, 3, Activation::relu, 2, Padding::same);
    conv.build({11, 10, 4}, rng);
    Tensor<float> x({1, 11, 10, 4}), y, dx;
    for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
    conv.forward(x, y, Mode::training);
    const WindowGeometry g = make_window_geometry(1, 11, 10, 4, 3, 2, Padding::same, filters);
    std::vector<float> z(static_cast<std::size_t>(y.size()));
    kernels::conv2d_forward_reference(g, x.data(), conv.kernel().value.data(),
                                      conv.bias().value.data(), z.data());
    for (auto& v : z) v = std::max(v, 0.0f);
    INFO("filters " << filters);
    CHECK(worst_scaled_difference(y.data(), z.data(), z.size()) <= 2e-5);
    Tensor<float> dy(y.shape());
    for (auto& v : dy) v = static_cast<float>(rng.uniform(-1, 1));
    conv.backward(x, y, dy, &dx);
    std::vector<float> dz(static_cast<std::size_t>(y.size())),
        dx_ref(static_cast<std::size_t>(x.size()));
    for (Index i = 0; i < y.size(); ++i) dz[static_cast<std::size_t>(i)] = y[i] > 0 ? dy[i] : 0.0f;
    kernels::conv2d_backward_data_reference(g, dz.data(), conv.kernel().value.data(),
                                            dx_ref.data());
    CHECK(worst_scaled_difference(dx.data(), dx_ref.data(), dx_ref.size()) <= 2e-5);
  }
}
