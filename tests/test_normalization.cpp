#include "gradient_check.hpp"

using namespace stratum;
using stratum::testing::check_layer;
using stratum::testing::check_layer_gradients;
using stratum::testing::random_tensor;

TEST_CASE("BatchNormalization: gradient checks in training and inference, images and vectors") {
  // Odd channel counts, batch 1 (the statistics then run over the pixels alone), rank 1 input.
  check_layer(BatchNormalization<double>(), {3, 5, 7}, 2);
  check_layer(BatchNormalization<double>(), {4, 3, 5}, 1);
  check_layer(BatchNormalization<double>(0.9, 1e-2), {6}, 5);
  // The loops take strips of 512 / C rows: 180 rows of 7 channels are two whole strips and a
  // part; 520 channels are a strip of one row.
  check_layer(BatchNormalization<double>(), {10, 9, 7}, 2);
  check_layer(BatchNormalization<double>(), {1, 2, 520}, 2);

  Random rng(4);
  BatchNormalization<double> inference;
  inference.build({2, 3, 5}, rng);
  // Non-default statistics and affine weights, so every term of the inference path is exercised.
  for (Index c = 0; c < 5; ++c) {
    inference.moving_mean().value[c] = 0.1 * double(c) - 0.2;
    inference.moving_variance().value[c] = 0.5 + 0.3 * double(c);
    inference.gamma().value[c] = 1.5 - 0.2 * double(c);
    inference.beta().value[c] = 0.05 * double(c);
  }
  check_layer_gradients(inference, 3, 8, Mode::inference);
}

TEST_CASE(
    "BatchNormalization: training normalises with batch statistics and updates Keras' moving "
    "ones") {
  Random rng(0);
  BatchNormalization<double> bn;  // momentum 0.99, epsilon 1e-3
  bn.build({2}, rng);
  CHECK(bn.parameter_count() == 8);
  CHECK(bn.parameter_count(true) == 4);
  Tensor<double> x({4, 2}), y;
  const double column0[4] = {1, 2, 3, 6}, column1[4] = {-1, -1, -1, -1};
  for (Index n = 0; n < 4; ++n) {
    x[n * 2 + 0] = column0[n];
    x[n * 2 + 1] = column1[n];
  }
  bn.forward(x, y, Mode::training);
  // Channel 0: mean 3, biased variance (4 + 1 + 0 + 9) / 4 = 3.5.
  for (Index n = 0; n < 4; ++n)
    CHECK(y[n * 2 + 0] == doctest::Approx((column0[n] - 3) / std::sqrt(3.5 + 1e-3)));
  // Channel 1 is constant: zero variance, so xhat = 0 and y = beta = 0 (epsilon keeps it finite).
  for (Index n = 0; n < 4; ++n) CHECK(y[n * 2 + 1] == 0.0);
  CHECK(bn.moving_mean().value[0] == doctest::Approx(0.01 * 3));
  CHECK(bn.moving_variance().value[0] == doctest::Approx(0.99 + 0.01 * 3.5));
  CHECK(bn.moving_mean().value[1] == doctest::Approx(-0.01));
  CHECK(bn.moving_variance().value[1] == doctest::Approx(0.99));

  // Inference uses the moving statistics and leaves them alone.
  bn.forward(x, y, Mode::inference);
  CHECK(y[3 * 2 + 0] == doctest::Approx((6 - 0.03) / std::sqrt(0.99 + 0.035 + 1e-3)));
  CHECK(bn.moving_mean().value[0] == doctest::Approx(0.03));
}

TEST_CASE("BatchNormalization: the optimizer never touches the moving statistics") {
  Sequential<double> model({4, 4, 3}, 1);
  model.add<Conv2D>(5, 3);
  model.add<BatchNormalization>();
  model.add<GlobalAveragePooling2D>();
  model.add<Dense>(2);
  model.compile(std::make_unique<SparseCategoricalCrossentropy<double>>(true),
                std::make_unique<Adam<double>>());
  CHECK(model.parameter_count() == (27 * 5 + 5) + 20 + 12);
  CHECK(model.parameter_count(true) == (27 * 5 + 5) + 10 + 12);
  CHECK(model.trainable_parameters().size() == 6);
  std::ostringstream summary;
  model.summary(summary);
  CHECK(summary.str().find("Non-trainable params: 10") != std::string::npos);

  Random rng(2);
  const Tensor<double> x = random_tensor({6, 4, 4, 3}, rng);
  const std::vector<int> labels{0, 1, 1, 0, 1, 0};
  auto& bn = dynamic_cast<BatchNormalization<double>&>(model.layer(1));
  Tensor<double> conv_out;
  model.layer(0).forward(x, conv_out, Mode::training);
  model.train_on_batch(x, labels);
  // One step moves the moving statistics from (0, 1) by (1 - momentum) towards the batch's.
  const Index rows = conv_out.size() / 5;
  for (Index c = 0; c < 5; ++c) {
    double mean = 0, variance = 0;
    for (Index r = 0; r < rows; ++r) mean += conv_out[r * 5 + c] / double(rows);
    for (Index r = 0; r < rows; ++r)
      variance += std::pow(conv_out[r * 5 + c] - mean, 2) / double(rows);
    CHECK(bn.moving_mean().value[c] == doctest::Approx(0.01 * mean));
    CHECK(bn.moving_variance().value[c] == doctest::Approx(0.99 + 0.01 * variance));
  }
}

TEST_CASE("BatchNormalization: the same result for 1 and 2 threads on a large batch") {
  Random rng(6);
  BatchNormalization<float> bn;
  bn.build({17, 19, 7}, rng);
  Tensor<float> x({5, 17, 19, 7}), y1, y2, dy({5, 17, 19, 7}), dx1, dx2;
  for (auto& v : x) v = float(rng.uniform(-2, 3));
  for (auto& v : dy) v = float(rng.uniform(-1, 1));
  set_num_threads(1);
  bn.forward(x, y1, Mode::training);
  bn.backward(x, y1, dy, &dx1);
  const Tensor<float> dgamma1 = bn.gamma().grad;
  set_num_threads(2);
  bn.forward(x, y2, Mode::training);
  bn.backward(x, y2, dy, &dx2);
  // Sums run in double in per-thread blocks, so the split changes only the last float bits.
  CHECK(y1.array().isApprox(y2.array(), 1e-6f));
  CHECK(dx1.array().isApprox(dx2.array(), 1e-5f));
  CHECK(dgamma1.array().isApprox(bn.gamma().grad.array(), 1e-5f));
}

TEST_CASE("GlobalAveragePooling2D: channel means and a gradient check") {
  Random rng(0);
  GlobalAveragePooling2D<double> gap;
  CHECK(gap.build({2, 3, 4}, rng) == Shape{4});
  Tensor<double> x({2, 2, 3, 4}), y;
  for (Index i = 0; i < x.size(); ++i) x[i] = double(i);
  gap.forward(x, y, Mode::inference);
  // Image n, channel c holds n*24 + p*4 + c for pixels p = 0..5: mean n*24 + 10 + c.
  for (Index n = 0; n < 2; ++n)
    for (Index c = 0; c < 4; ++c) CHECK(y[n * 4 + c] == doctest::Approx(double(n * 24 + 10 + c)));
  check_layer(GlobalAveragePooling2D<double>(), {3, 5, 7}, 2);
  check_layer(GlobalAveragePooling2D<double>(), {1, 1, 3}, 1);
  GlobalAveragePooling2D<double> flat;
  CHECK_THROWS_AS(flat.build({12}, rng), ShapeError);
}
