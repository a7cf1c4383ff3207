// Add and Concatenate (the multi-input layers of the graph model) and the masked mean squared
// error: values worked out by hand, finite-difference gradient checks in double, and the
// errors for shapes that do not fit.
#include <doctest/doctest.h>
#include <stratum/stratum.hpp>

#include "gradient_check.hpp"

using namespace stratum;
using stratum::testing::check_against_numeric;
using stratum::testing::random_tensor;

namespace {

/// Checks every dL/dx_i of a built merge layer through L = sum(y * R) for a fixed random R.
void check_merge_layer_gradients(MergeLayer<double>& layer, Index batch, std::uint64_t seed) {
  Random rng(seed);
  std::vector<Tensor<double>> xs;
  for (const auto& s : layer.input_shapes()) xs.push_back(random_tensor(s.with_batch(batch), rng));
  const Tensor<double> weights = random_tensor(layer.output_shape().with_batch(batch), rng);
  std::vector<const Tensor<double>*> inputs;
  for (const auto& x : xs) inputs.push_back(&x);
  Tensor<double> y;
  auto loss = [&] {
    layer.forward(inputs, y);
    return (y.array() * weights.array()).sum();
  };
  loss();
  std::vector<Tensor<double>> dxs(xs.size());
  std::vector<Tensor<double>*> sinks;
  for (auto& dx : dxs) sinks.push_back(&dx);
  layer.backward(inputs, weights, sinks);
  for (std::size_t i = 0; i < xs.size(); ++i)
    check_against_numeric(layer.describe() + " dL/dx" + std::to_string(i + 1), xs[i], dxs[i], loss);
}

}  // namespace

TEST_CASE("Add: sums its inputs; each input's gradient is dy") {
  Add<float> add;
  add.build({Shape{2, 2, 1}, Shape{2, 2, 1}});
  const Tensor<float> a(Shape{1, 2, 2, 1}, {1, 2, 3, 4}), b(Shape{1, 2, 2, 1}, {10, 20, 30, 40});
  const std::vector<const Tensor<float>*> xs{&a, &b};
  Tensor<float> y;
  add.forward(xs, y);
  CHECK(std::vector<float>(y.begin(), y.end()) == std::vector<float>{11, 22, 33, 44});

  for (const Shape& s : {Shape{4, 5, 3}, Shape{7}}) {
    Add<double> layer;
    layer.set_name("add_check");
    layer.build({s, s, s});
    check_merge_layer_gradients(layer, 3, 11);
  }
}

TEST_CASE("Concatenate: joins channels in order; each input's gradient is its slice of dy") {
  Concatenate<float> concat;
  concat.build({Shape{1, 2, 1}, Shape{1, 2, 2}});
  CHECK(concat.output_shape() == Shape{1, 2, 3});
  const Tensor<float> a(Shape{1, 1, 2, 1}, {1, 2}), b(Shape{1, 1, 2, 2}, {10, 11, 20, 21});
  const std::vector<const Tensor<float>*> xs{&a, &b};
  Tensor<float> y;
  concat.forward(xs, y);
  CHECK(std::vector<float>(y.begin(), y.end()) == std::vector<float>{1, 10, 11, 2, 20, 21});

  Concatenate<double> images;
  images.build({Shape{3, 5, 2}, Shape{3, 5, 1}, Shape{3, 5, 4}});
  CHECK(images.output_shape() == Shape{3, 5, 7});
  check_merge_layer_gradients(images, 2, 12);
  Concatenate<double> vectors;
  vectors.build({Shape{3}, Shape{5}});
  check_merge_layer_gradients(vectors, 1, 13);
}

TEST_CASE("Add and Concatenate: shapes that do not fit are refused, naming the layer") {
  Add<float> add;
  add.set_name("skip");
  CHECK_THROWS_WITH_AS(add.build({Shape{8, 8, 16}, Shape{8, 8, 8}}),
                       "Add 'skip' needs inputs of one shape, received (None, 8, 8, 16), "
                       "(None, 8, 8, 8)",
                       ShapeError);
  CHECK_THROWS_WITH_AS(add.build({Shape{8, 8, 16}}),
                       "Add 'skip' needs at least two inputs, received 1", ShapeError);
  Concatenate<float> concat;
  concat.set_name("join");
  CHECK_THROWS_WITH_AS(concat.build({Shape{8, 8, 16}, Shape{4, 4, 16}}),
                       doctest::Contains("Concatenate 'join' needs inputs that differ only in "
                                         "their last (channel) axis"),
                       ShapeError);
  CHECK_THROWS_AS(concat.build({Shape{8, 8, 16}, Shape{8, 16}}), ShapeError);

  // Batches that do not match the built shapes.
  add.build({Shape{2}, Shape{2}});
  const Tensor<float> a(Shape{1, 2}, {1, 2}), b(Shape{1, 3}, {1, 2, 3});
  Tensor<float> y;
  const std::vector<const Tensor<float>*> xs{&a, &b};
  CHECK_THROWS_WITH_AS(add.forward(xs, y), doctest::Contains("Add 'skip' expects input 2"),
                       ShapeError);
}

TEST_CASE("MeanSquaredError: the masked mean by hand, and its gradient") {
  const MeanSquaredError<double> mse;
  const Tensor<double> p(Shape{1, 2, 1, 2}, {1, 2, 3, 4}), t(Shape{1, 2, 1, 2}, {0, 0, 1, 1});
  // No mask: (1 + 4 + 4 + 9) / 4.
  CHECK(mse.compute(p, t, nullptr, nullptr) == doctest::Approx(18.0 / 4));
  // A mask per position (trailing 1) keeps the second position's two channels: (4 + 9) / 2.
  const Tensor<double> per_position(Shape{1, 2, 1, 1}, {0, 1});
  Tensor<double> d;
  CHECK(mse.compute(p, t, &per_position, &d) == doctest::Approx(13.0 / 2));
  CHECK(std::vector<double>(d.begin(), d.end()) ==
        std::vector<double>{0, 0, 2.0 * 2 / 2, 2.0 * 3 / 2});
  // Nothing kept: no loss, no gradient.
  const Tensor<double> nothing(Shape{1, 2, 1, 1}, {0, 0});
  CHECK(mse.compute(p, t, &nothing, &d) == 0.0);
  CHECK(d.array().abs().maxCoeff() == 0.0);

  Random rng(5);
  const Shape shape{3, 4, 5, 2};
  Tensor<double> prediction = random_tensor(shape, rng);
  const Tensor<double> target = random_tensor(shape, rng);
  Tensor<double> position_mask(Shape{3, 4, 5, 1}), element_mask(shape);
  for (auto& m : position_mask) m = rng.uniform() < 0.3 ? 1.0 : 0.0;
  for (auto& m : element_mask) m = rng.uniform() < 0.5 ? 1.0 : 0.0;
  const std::vector<const Tensor<double>*> masks{nullptr, &position_mask, &element_mask};
  for (const Tensor<double>* mask : masks) {
    Tensor<double> analytic;
    mse.compute(prediction, target, mask, &analytic);
    check_against_numeric("MeanSquaredError dL/dp", prediction, analytic,
                          [&] { return mse.compute(prediction, target, mask, nullptr); });
  }
}

TEST_CASE("MeanSquaredError: targets and masks that do not fit are refused") {
  const MeanSquaredError<float> mse;
  const Tensor<float> p(Shape{2, 4, 4, 3}), t(Shape{2, 4, 4, 2});
  CHECK_THROWS_WITH_AS(mse.compute(p, t, nullptr, nullptr),
                       "MeanSquaredError: the target's shape (2, 4, 4, 2) differs from the "
                       "prediction's (2, 4, 4, 3)",
                       ShapeError);
  const Tensor<float> mask(Shape{2, 4, 1, 3});  // a 1 that is not trailing
  CHECK_THROWS_WITH_AS(
      mse.compute(p, p, &mask, nullptr),
      doctest::Contains("MeanSquaredError: a mask of shape (2, 4, 1, 3) does not fit"), ShapeError);
  const Tensor<float> per_sample(Shape{2, 1, 1, 1});
  CHECK_NOTHROW(mse.compute(p, p, &per_sample, nullptr));
}
