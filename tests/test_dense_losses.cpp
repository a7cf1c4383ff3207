// The losses on dense targets: HeatmapFocalLoss, L1Loss and GIoULoss (losses/*.hpp). Values
// worked out by hand, finite-difference gradient checks in double on random shapes (batch 1
// included) with and without masks, and the errors for inputs that do not fit.
#include "gradient_check.hpp"

#include <stratum/detection/box.hpp>

#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

using namespace stratum;

namespace dense_losses_test {

/// Compares the loss' gradient with central differences of the loss, masked or not.
inline void check_gradient(const DenseLoss<double>& loss, Tensor<double> prediction,
                           const Tensor<double>& target, const Tensor<double>* mask) {
  Tensor<double> analytic;
  loss.compute(prediction, target, mask, &analytic);
  INFO("loss " << loss.name() << ", prediction " << prediction.shape().to_string()
               << (mask ? ", mask " + mask->shape().to_string() : ", no mask"));
  testing::check_against_numeric("dL/dprediction", prediction, analytic,
                                 [&] { return loss.compute(prediction, target, mask, nullptr); });
}

/// A mask of `shape` with about `fraction` of its entries 1, the rest 0.
inline Tensor<double> random_mask(const Shape& shape, Random& rng, double fraction) {
  Tensor<double> mask(shape);
  for (auto& m : mask) m = rng.uniform() < fraction ? 1.0 : 0.0;
  return mask;
}

/// Heatmap targets: values in [0, 0.95), about one element in eight an object centre (1).
inline Tensor<double> random_heatmap(const Shape& shape, Random& rng) {
  Tensor<double> heatmap(shape);
  for (auto& y : heatmap) y = rng.uniform() < 0.125 ? 1.0 : rng.uniform(0, 0.95);
  return heatmap;
}

/// Every element of the gradient where the mask (an (..., 1) mask) is 0 is exactly 0.
inline bool zero_where_masked_out(const Tensor<double>& gradient, const Tensor<double>& mask) {
  const Index span = gradient.size() / mask.size();
  for (Index i = 0; i < gradient.size(); ++i)
    if (mask[i / span] == 0 && gradient[i] != 0) return false;
  return true;
}

}  // namespace dense_losses_test

// ---------------------------------------------------------------------------------------------
// HeatmapFocalLoss

TEST_CASE("HeatmapFocalLoss: values by hand") {
  // z = 0 is p = 1/2 at a centre: L = (1/2)^2 log 2. z = log 3 is p = 3/4 on a Gaussian's
  // flank y = 1/2: L = -(1/2)^4 (3/4)^2 log(1/4). One centre: divided by 1.
  HeatmapFocalLoss<double> loss;
  const Tensor<double> z({1, 1, 2, 1}, {0.0, std::log(3.0)});
  const Tensor<double> y({1, 1, 2, 1}, {1.0, 0.5});
  const double centre = 0.25 * std::log(2.0), flank = (1.0 / 16) * (9.0 / 16) * std::log(4.0);
  Tensor<double> gradient;
  CHECK(loss.compute(z, y, nullptr, &gradient) == doctest::Approx(centre + flank).epsilon(1e-14));
  // dL/dz = (1 - p)^2 (2 p log p - (1 - p)) at the centre,
  //         (1 - y)^4 p^2 (p - 2 (1 - p) log(1 - p)) on the flank.
  CHECK(gradient[0] == doctest::Approx(0.25 * (-std::log(2.0) - 0.5)).epsilon(1e-14));
  CHECK(gradient[1] ==
        doctest::Approx((1.0 / 16) * (9.0 / 16) * (0.75 + 0.5 * std::log(4.0))).epsilon(1e-14));

  // Two images with one centre each: twice the sum, two objects, the same loss.
  const Tensor<double> z2({2, 1, 2, 1}, {0.0, std::log(3.0), 0.0, std::log(3.0)});
  const Tensor<double> y2({2, 1, 2, 1}, {1.0, 0.5, 1.0, 0.5});
  CHECK(loss.compute(z2, y2, nullptr, nullptr) == doctest::Approx(centre + flank).epsilon(1e-14));
  // No centre at all: the sum is divided by 1, not by 0.
  const Tensor<double> flat({1, 1, 2, 1}, {0.5, 0.5});
  const Tensor<double> p_half({1, 1, 2, 1}, {0.0, 0.0});
  CHECK(loss.compute(p_half, flat, nullptr, nullptr) ==
        doctest::Approx(2 * (1.0 / 16) * 0.25 * std::log(2.0)).epsilon(1e-14));

  // alpha and beta are the exponents: alpha 0, beta 0 is plain binary cross-entropy per object.
  HeatmapFocalLoss<double> cross_entropy(0, 0);
  CHECK(cross_entropy.compute(z, y, nullptr, nullptr) ==
        doctest::Approx(std::log(2.0) + std::log(4.0)).epsilon(1e-14));
}

TEST_CASE("HeatmapFocalLoss: the mask drops positions, and their centres from the count") {
  HeatmapFocalLoss<double> loss;
  // Three positions with two classes each; the mask (1, 1, 3, 1) drops the last position, which
  // holds a centre of class 1 and a target no heatmap may hold: neither is read.
  const Tensor<double> z({1, 1, 3, 2}, {0.0, -1.0, 0.5, std::log(3.0), 2.0, 3.0});
  const Tensor<double> y({1, 1, 3, 2}, {1.0, 0.0, 0.0, 0.5, 7.0, 1.0});
  const Tensor<double> mask({1, 1, 3, 1}, {1.0, 1.0, 0.0});
  // Reference: the first two positions alone, unmasked.
  const Tensor<double> z_kept({1, 1, 2, 2}, {0.0, -1.0, 0.5, std::log(3.0)});
  const Tensor<double> y_kept({1, 1, 2, 2}, {1.0, 0.0, 0.0, 0.5});
  Tensor<double> gradient, gradient_kept;
  CHECK(loss.compute(z, y, &mask, &gradient) ==
        doctest::Approx(loss.compute(z_kept, y_kept, nullptr, &gradient_kept)).epsilon(1e-14));
  for (Index i = 0; i < 4; ++i) CHECK(gradient[i] == doctest::Approx(gradient_kept[i]));
  CHECK(gradient[4] == 0.0);
  CHECK(gradient[5] == 0.0);
}

TEST_CASE("HeatmapFocalLoss: extreme logits give finite losses and gradients") {
  // A centre at z = -800 (p = e^-800) and background at z = +800: L = 800 each, dL/dz = -1
  // and +1, in double and in float, where a plain log(p) would be log(0).
  const Tensor<double> z({1, 1, 2, 1}, {-800.0, 800.0});
  const Tensor<double> y({1, 1, 2, 1}, {1.0, 0.0});
  Tensor<double> gradient;
  CHECK(HeatmapFocalLoss<double>().compute(z, y, nullptr, &gradient) == doctest::Approx(1600));
  CHECK(gradient[0] == doctest::Approx(-1.0));
  CHECK(gradient[1] == doctest::Approx(1.0));

  const Tensor<float> zf({1, 1, 4, 1}, {-800.0f, 800.0f, 800.0f, -800.0f});
  const Tensor<float> yf({1, 1, 4, 1}, {1.0f, 0.0f, 1.0f, 0.3f});
  Tensor<float> gradient_f;
  // The confident right answers (a centre at +800, background at -800) cost nothing.
  CHECK(HeatmapFocalLoss<float>().compute(zf, yf, nullptr, &gradient_f) ==
        doctest::Approx(1600.0 / 2));
  for (float g : gradient_f) CHECK(std::isfinite(g));
  CHECK(gradient_f[0] == doctest::Approx(-0.5));
  CHECK(gradient_f[1] == doctest::Approx(0.5));
  CHECK(gradient_f[2] == 0.0f);
  CHECK(gradient_f[3] == 0.0f);
}

TEST_CASE("HeatmapFocalLoss: gradient checks on random shapes") {
  Random rng(1401);
  for (const Shape& shape : {Shape{1, 5, 7, 3}, Shape{3, 4, 6, 2}, Shape{2, 3, 3, 1}}) {
    const Tensor<double> target = dense_losses_test::random_heatmap(shape, rng);
    const Tensor<double> logits = testing::random_tensor(shape, rng, -4, 4);
    dense_losses_test::check_gradient(HeatmapFocalLoss<double>(), logits, target, nullptr);
    std::vector<Index> positions = shape.dims();
    positions.back() = 1;
    const Tensor<double> mask = dense_losses_test::random_mask(Shape(positions), rng, 0.7);
    dense_losses_test::check_gradient(HeatmapFocalLoss<double>(), logits, target, &mask);
    dense_losses_test::check_gradient(HeatmapFocalLoss<double>(1.5, 3), logits, target, &mask);
    Tensor<double> gradient;
    HeatmapFocalLoss<double>().compute(logits, target, &mask, &gradient);
    CHECK(dense_losses_test::zero_where_masked_out(gradient, mask));
  }
}

TEST_CASE("HeatmapFocalLoss: float agrees with double") {
  Random rng(1402);
  const Shape shape{2, 6, 5, 3};
  const Tensor<double> target = dense_losses_test::random_heatmap(shape, rng);
  const Tensor<double> logits = testing::random_tensor(shape, rng, -6, 6);
  Tensor<float> target_f(shape), logits_f(shape), gradient_f;
  for (Index i = 0; i < logits.size(); ++i) {
    target_f[i] = static_cast<float>(target[i]);
    logits_f[i] = static_cast<float>(logits[i]);
  }
  // Round the double inputs to the float values, so that both see the same problem.
  Tensor<double> target_d(shape), logits_d(shape), gradient_d;
  for (Index i = 0; i < logits.size(); ++i) {
    target_d[i] = target_f[i];
    logits_d[i] = logits_f[i];
  }
  const double in_double =
      HeatmapFocalLoss<double>().compute(logits_d, target_d, nullptr, &gradient_d);
  const double in_float =
      HeatmapFocalLoss<float>().compute(logits_f, target_f, nullptr, &gradient_f);
  CHECK(in_float == doctest::Approx(in_double).epsilon(1e-12));
  for (Index i = 0; i < logits.size(); ++i)
    CHECK(gradient_f[i] == doctest::Approx(gradient_d[i]).epsilon(1e-6));
}

TEST_CASE("Dense losses: the same bits for one thread and two") {
  // Big enough for several summation blocks.
  Random rng(1403);
  const Shape shape{3, 64, 64, 3};
  const Tensor<float> logits = [&] {
    Tensor<float> t(shape);
    for (auto& v : t) v = static_cast<float>(rng.uniform(-5, 5));
    return t;
  }();
  const Tensor<float> target = [&] {
    Tensor<float> t(shape);
    for (auto& v : t) v = rng.uniform() < 0.01 ? 1.0f : static_cast<float>(rng.uniform(0, 0.9));
    return t;
  }();
  auto random_distances = [&] {
    Tensor<float> t(Shape{3, 64, 64, 4});
    for (auto& v : t) v = static_cast<float>(rng.uniform(0.5, 20));
    return t;
  };
  const Tensor<float> distances = random_distances(), wanted_distances = random_distances();
  auto run = [&](int threads) {
    set_num_threads(threads);
    Tensor<float> focal_gradient, l1_gradient, giou_gradient;
    const std::vector<double> losses{
        HeatmapFocalLoss<float>().compute(logits, target, nullptr, &focal_gradient),
        L1Loss<float>().compute(logits, target, nullptr, &l1_gradient),
        GIoULoss<float>().compute(distances, wanted_distances, nullptr, &giou_gradient)};
    return std::make_tuple(losses, focal_gradient, l1_gradient, giou_gradient);
  };
  const int saved = num_threads();
  const auto [losses_1, focal_1, l1_1, giou_1] = run(1);
  const auto [losses_2, focal_2, l1_2, giou_2] = run(2);
  set_num_threads(saved);
  CHECK(testing::same_bits(losses_1, losses_2));
  CHECK(testing::same_bits(focal_1, focal_2));
  CHECK(testing::same_bits(l1_1, l1_2));
  CHECK(testing::same_bits(giou_1, giou_2));
}

TEST_CASE("HeatmapFocalLoss: inputs that do not fit are errors naming the loss") {
  HeatmapFocalLoss<float> loss;
  Tensor<float> z({1, 2, 2, 2}), y({1, 2, 2, 2}), gradient;
  z.fill(0.0f);
  y.fill(0.0f);
  const Tensor<float> y_short({1, 2, 2, 1});
  CHECK_THROWS_WITH_AS(loss.compute(z, y_short, nullptr, nullptr),
                       "HeatmapFocalLoss: the target's shape (1, 2, 2, 1) differs from the "
                       "prediction's (1, 2, 2, 2)",
                       ShapeError);
  const Tensor<float> mask_wrong({1, 2, 1, 2});
  CHECK_THROWS_WITH_AS(loss.compute(z, y, &mask_wrong, nullptr),
                       "HeatmapFocalLoss: a mask of shape (1, 2, 1, 2) does not fit the "
                       "prediction (1, 2, 2, 2): it must be the prediction's shape with trailing "
                       "dimensions set to 1, as (1, 2, 2, 1)",
                       ShapeError);
  const Tensor<float> mask_rank({1, 2, 2});
  CHECK_THROWS_AS(loss.compute(z, y, &mask_rank, nullptr), ShapeError);
  Tensor<float> mask_half({1, 2, 2, 1}, {1.0f, 0.5f, 1.0f, 0.0f});
  CHECK_THROWS_WITH_AS(loss.compute(z, y, &mask_half, nullptr),
                       "HeatmapFocalLoss: the mask holds 0.5 at (0, 0, 1, 0); a mask entry is 0 "
                       "(ignored) or 1 (counts)",
                       Error);
  y[5] = 1.5f;
  CHECK_THROWS_WITH_AS(loss.compute(z, y, nullptr, &gradient),
                       "HeatmapFocalLoss: the target holds 1.5 at (0, 1, 0, 1); a heatmap target "
                       "lies in [0, 1], with 1 at object centres",
                       Error);
  y[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(loss.compute(z, y, nullptr, nullptr), Error);
  CHECK_THROWS_WITH_AS(HeatmapFocalLoss<float>(-1, 4),
                       "HeatmapFocalLoss: alpha and beta must be non-negative, received alpha -1 "
                       "and beta 4",
                       Error);
}

// ---------------------------------------------------------------------------------------------
// L1Loss

TEST_CASE("L1Loss: values by hand, normalised by the counted elements") {
  L1Loss<double> loss;
  // A (1, 2, 2, 2) size map with one object, at position (0, 1): |3 - 5| + |4 - 3.5| over the
  // 2 values of that position. The other positions' targets are not read.
  const Tensor<double> size({1, 2, 2, 2}, {9, 9, 3, 4, 9, 9, 9, 9});
  const Tensor<double> wanted({1, 2, 2, 2}, {0, 0, 5, 3.5, 0, 0, 0, 0});
  const Tensor<double> mask({1, 2, 2, 1}, {0, 1, 0, 0});
  Tensor<double> gradient;
  CHECK(loss.compute(size, wanted, &mask, &gradient) == doctest::Approx(2.5 / 2));
  CHECK(std::vector<double>(gradient.begin(), gradient.end()) ==
        std::vector<double>{0, 0, -0.5, 0.5, 0, 0, 0, 0});
  // Without a mask every element counts: the mean absolute error.
  CHECK(loss.compute(size, wanted, nullptr, nullptr) == doctest::Approx((6 * 9 + 2.5) / 8));
  // A mask with no 1 (an image without objects): 0, and no gradient.
  const Tensor<double> none({1, 2, 2, 1}, {0, 0, 0, 0});
  CHECK(loss.compute(size, wanted, &none, &gradient) == 0.0);
  for (double g : gradient) CHECK(g == 0.0);
}

TEST_CASE("L1Loss: an exact prediction has loss 0 and sub-gradient 0") {
  L1Loss<float> loss;
  const Tensor<float> offsets({2, 1, 1, 2}, {0.25f, 0.75f, 0.5f, 0.0f});
  Tensor<float> gradient;
  CHECK(loss.compute(offsets, Tensor<float>(offsets), nullptr, &gradient) == 0.0);
  for (float g : gradient) CHECK(g == 0.0f);
}

TEST_CASE("L1Loss: gradient checks on random shapes") {
  Random rng(1404);
  for (const Shape& shape : {Shape{1, 3, 5, 2}, Shape{4, 2, 3, 2}, Shape{1, 1, 1, 1}}) {
    const Tensor<double> prediction = testing::random_tensor(shape, rng, -3, 3);
    const Tensor<double> target = testing::random_tensor(shape, rng, -3, 3);
    dense_losses_test::check_gradient(L1Loss<double>(), prediction, target, nullptr);
    std::vector<Index> positions = shape.dims();
    positions.back() = 1;
    const Tensor<double> mask = dense_losses_test::random_mask(Shape(positions), rng, 0.5);
    dense_losses_test::check_gradient(L1Loss<double>(), prediction, target, &mask);
    // A mask per image, (N, 1, 1, 1), is a mask too.
    std::vector<Index> images(positions.size(), 1);
    images.front() = shape[0];
    const Tensor<double> per_image = dense_losses_test::random_mask(Shape(images), rng, 0.6);
    dense_losses_test::check_gradient(L1Loss<double>(), prediction, target, &per_image);
  }
}

TEST_CASE("L1Loss: inputs that do not fit are errors naming the loss") {
  L1Loss<double> loss;
  const Tensor<double> p({2, 3}), t({3, 2});
  CHECK_THROWS_WITH_AS(loss.compute(p, t, nullptr, nullptr),
                       "L1Loss: the target's shape (3, 2) differs from the prediction's (2, 3)",
                       ShapeError);
  const Tensor<double> mask({1, 3});
  CHECK_THROWS_WITH_AS(loss.compute(p, Tensor<double>(p.shape()), &mask, nullptr),
                       "L1Loss: a mask of shape (1, 3) does not fit the prediction (2, 3): it "
                       "must be the prediction's shape with trailing dimensions set to 1, as "
                       "(2, 1)",
                       ShapeError);
}

// ---------------------------------------------------------------------------------------------
// GIoULoss

namespace dense_losses_test {

/// One box of distances (left, top, right, bottom), as a (1, 1, 1, 4) tensor.
inline Tensor<double> one_box(double left, double top, double right, double bottom) {
  return Tensor<double>({1, 1, 1, 4}, {left, top, right, bottom});
}

/// 1 - GIoU of the boxes of distances `d` and `g` around the point (x, y), through Box and
/// box.hpp's intersection_over_union: an independent path to the same number.
inline double giou_loss_through_boxes(const double* d, const double* g, double x, double y) {
  const Box a{float(x - d[0]), float(y - d[1]), float(x + d[2]), float(y + d[3])};
  const Box b{float(x - g[0]), float(y - g[1]), float(x + g[2]), float(y + g[3])};
  const double iou = intersection_over_union(a, b);
  const double union_area = (double(a.area()) + double(b.area())) / (1 + iou);
  const double enclosing = (double(std::max(a.x_max, b.x_max)) - std::min(a.x_min, b.x_min)) *
                           (double(std::max(a.y_max, b.y_max)) - std::min(a.y_min, b.y_min));
  return 1 - iou + (enclosing - union_area) / enclosing;
}

}  // namespace dense_losses_test

TEST_CASE("GIoULoss: a perfect prediction costs 0, with gradient 0") {
  Random rng(1405);
  const Tensor<double> boxes = testing::random_tensor({2, 3, 3, 4}, rng, 0.5, 6);
  Tensor<double> gradient;
  CHECK(GIoULoss<double>().compute(boxes, Tensor<double>(boxes), nullptr, &gradient) == 0.0);
  for (double g : gradient) CHECK(std::abs(g) < 1e-12);
  // It is a minimum: moving any one side either way costs something.
  for (Index i = 0; i < boxes.size(); i += 5)
    for (double h : {-1e-3, 1e-3}) {
      Tensor<double> moved = boxes;
      moved[i] += h;
      CHECK(GIoULoss<double>().compute(moved, boxes, nullptr, nullptr) > 0);
    }
}

TEST_CASE("GIoULoss: values and gradients by hand") {
  using dense_losses_test::one_box;
  GIoULoss<double> loss;
  Tensor<double> gradient;
  auto gradient_is = [&](std::vector<double> expected) {
    for (std::size_t k = 0; k < 4; ++k)
      CHECK(gradient[Index(k)] == doctest::Approx(expected[k]).epsilon(1e-14));
  };
  SUBCASE("nested boxes: GIoU = IoU") {
    // Prediction [-1, 1] x [-1, 1] inside target [-1, 3] x [-1, 1]: I = 4, U = C = 8, L = 1/2.
    // Only the right side is off: L(r) = 1 - (1 + r)/4 for r in [1, 3], so dL/dr = -1/4. The
    // other sides equal their targets' and get the mean of their one-sided derivatives: moving
    // the left side in costs -1/4 per unit (L = 1 - (1 + l)/4), out +1/8 (L = 1 - 4/(2l + 6)):
    // -1/16; the top or bottom, in -1/4, out 3/8: 1/16.
    CHECK(loss.compute(one_box(1, 1, 1, 1), one_box(1, 1, 3, 1), nullptr, &gradient) ==
          doctest::Approx(0.5).epsilon(1e-14));
    gradient_is({-1.0 / 16, 1.0 / 16, -0.25, 1.0 / 16});
  }
  SUBCASE("disjoint boxes") {
    // A negative left distance: prediction [3, 5] x [-1, 1], target [-1, 1] x [-1, 1]. IoU 0,
    // U = 8, enclosing box [-1, 5] x [-1, 1], C = 12: GIoU = -(12 - 8)/12, L = 4/3.
    // g_A = I/U^2 - 1/C = -1/12, g_C = U/C^2 = 1/18: dL/dl = g_A h_p = -1/6 (moving the left
    // side out towards the target helps), dL/dr = g_A h_p + g_C h_c = -1/6 + 1/9 = -1/18.
    CHECK(loss.compute(one_box(-3, 1, 5, 1), one_box(1, 1, 1, 1), nullptr, &gradient) ==
          doctest::Approx(4.0 / 3).epsilon(1e-14));
    gradient_is({-1.0 / 6, 0, -1.0 / 18, 0});
  }
  SUBCASE("boxes touching at a corner") {
    // Prediction [0, 2] x [0, 2], target [-2, 0] x [-2, 0]: I = 0, U = 8, C = 16, L = 3/2.
    CHECK(loss.compute(one_box(0, 0, 2, 2), one_box(2, 2, 0, 0), nullptr, nullptr) ==
          doctest::Approx(1.5).epsilon(1e-14));
  }
  SUBCASE("an inverted prediction is an empty box") {
    // Width -2 + 1 < 0: A = I = 0, U = G = 4, enclosing [-1, 1] x [-1, 1]: L = 2 - 4/4 = 1.
    CHECK(loss.compute(one_box(-2, 1, 1, 1), one_box(1, 1, 1, 1), nullptr, &gradient) ==
          doctest::Approx(1.0).epsilon(1e-14));
    for (double g : gradient) CHECK(std::isfinite(g));
  }
}

TEST_CASE("GIoULoss: agrees with Box and intersection_over_union at random positions") {
  Random rng(1406);
  const Index boxes = 50;
  const Tensor<double> predicted = testing::random_tensor({1, 5, 10, 4}, rng, 0, 30);
  const Tensor<double> wanted = testing::random_tensor({1, 5, 10, 4}, rng, 0.5, 30);
  double expected = 0;
  for (Index b = 0; b < boxes; ++b)
    expected += dense_losses_test::giou_loss_through_boxes(
        predicted.data() + 4 * b, wanted.data() + 4 * b, rng.uniform(0, 500), rng.uniform(0, 500));
  CHECK(GIoULoss<double>().compute(predicted, wanted, nullptr, nullptr) ==
        doctest::Approx(expected / boxes).epsilon(1e-5));  // Box holds floats
}

TEST_CASE("GIoULoss: gradient checks on random shapes") {
  Random rng(1407);
  for (const Shape& shape : {Shape{1, 3, 5, 4}, Shape{3, 2, 4, 4}, Shape{1, 1, 1, 4}}) {
    std::vector<Index> positions = shape.dims();
    positions.back() = 1;
    const Tensor<double> mask = dense_losses_test::random_mask(Shape(positions), rng, 0.6);
    const Tensor<double> target = testing::random_tensor(shape, rng, 0.2, 5);
    // Distances inside the boxes (the usual case), and some negative: predicted boxes that miss
    // the position, are disjoint from the target, or are inverted.
    for (const double lowest : {0.1, -2.0}) {
      const Tensor<double> prediction = testing::random_tensor(shape, rng, lowest, 5);
      dense_losses_test::check_gradient(GIoULoss<double>(), prediction, target, nullptr);
      dense_losses_test::check_gradient(GIoULoss<double>(), prediction, target, &mask);
      Tensor<double> gradient;
      GIoULoss<double>().compute(prediction, target, &mask, &gradient);
      CHECK(dense_losses_test::zero_where_masked_out(gradient, mask));
    }
  }
}

TEST_CASE("GIoULoss: normalised by the number of masked positions") {
  using dense_losses_test::one_box;
  GIoULoss<double> loss;
  // Two positions with the disjoint case (L = 4/3) and one that is perfect (L = 0); a third
  // position, masked out, holds an empty target box that is never read.
  const Tensor<double> p({1, 1, 3, 4}, {-3, 1, 5, 1, 2, 2, 2, 2, 1, 1, 1, 1});
  const Tensor<double> t({1, 1, 3, 4}, {1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0});
  const Tensor<double> mask({1, 1, 3, 1}, {1, 1, 0});
  CHECK(loss.compute(p, t, &mask, nullptr) == doctest::Approx(4.0 / 3 / 2).epsilon(1e-14));
  const Tensor<double> none({1, 1, 3, 1}, {0, 0, 0});
  CHECK(loss.compute(p, t, &none, nullptr) == 0.0);
}

TEST_CASE("GIoULoss: inputs that do not fit are errors naming the loss") {
  GIoULoss<float> loss;
  const Tensor<float> three({1, 2, 2, 3});
  CHECK_THROWS_WITH_AS(loss.compute(three, three, nullptr, nullptr),
                       "GIoULoss: expects boxes as (..., 4) distances (left, top, right, bottom), "
                       "received a prediction of shape (1, 2, 2, 3)",
                       ShapeError);
  Tensor<float> boxes({1, 2, 2, 4});
  boxes.fill(1.0f);
  const Tensor<float> per_distance({1, 2, 2, 4});
  CHECK_THROWS_WITH_AS(loss.compute(boxes, boxes, &per_distance, nullptr),
                       "GIoULoss: a mask of shape (1, 2, 2, 4) masks single distances; it must "
                       "cover whole boxes, as (..., 1)",
                       ShapeError);
  Tensor<float> target = boxes;
  target[8] = -1.0f;  // position (0, 1, 0): left -1 + right 1, width 0
  CHECK_THROWS_WITH_AS(loss.compute(boxes, target, nullptr, nullptr),
                       "GIoULoss: the target box at (0, 1, 0, 0) has width 0 and height 2; a "
                       "target box needs a positive width and height",
                       Error);
  // Where the mask does not count it, the same target is not read.
  const Tensor<float> mask({1, 2, 2, 1}, {1.0f, 1.0f, 0.0f, 1.0f});
  CHECK(loss.compute(boxes, target, &mask, nullptr) == 0.0);
}
