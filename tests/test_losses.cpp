#include "gradient_check.hpp"

using namespace stratum;
using stratum::testing::check_loss_gradient;

TEST_CASE("SparseCategoricalCrossentropy from logits: value by hand") {
  SparseCategoricalCrossentropy<double> loss(true);
  Tensor<double> z({1, 3}, {1, 2, 3});
  const std::vector<int> y{2};
  CHECK(loss.compute(z, y, nullptr) ==
        doctest::Approx(std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3));
  // Huge logits do not overflow.
  Tensor<double> big({1, 2}, {1000, 0});
  CHECK(loss.compute(big, std::vector<int>{1}, nullptr) == doctest::Approx(1000));
}

TEST_CASE("SparseCategoricalCrossentropy from probabilities renormalises as Keras does") {
  // The notebook's head: two independent sigmoid outputs. Keras clips, takes the log and runs
  // softmax cross-entropy on it, so the loss is -log(p_y / (p_0 + p_1)).
  SparseCategoricalCrossentropy<double> loss;
  Tensor<double> p({2, 2}, {0.8, 0.6,  //
                            0.3, 0.9});
  const std::vector<int> y{0, 1};
  const double expected = (-std::log(0.8 / 1.4) - std::log(0.9 / 1.2)) / 2;
  CHECK(loss.compute(p, y, nullptr) == doctest::Approx(expected).epsilon(1e-12));

  // Probabilities of exactly 0 and 1 are clipped to [1e-7, 1 - 1e-7]: a finite loss, and no
  // gradient flows through the clipped entries.
  Tensor<double> edge({1, 2}, {0.0, 1.0}), grad;
  CHECK(loss.compute(edge, std::vector<int>{0}, &grad) == doctest::Approx(-std::log(1e-7)));
  CHECK(grad[0] == 0.0);
  CHECK(grad[1] == 0.0);
}

TEST_CASE("BinaryCrossentropy: values by hand") {
  BinaryCrossentropy<double> probabilities;
  Tensor<double> p({2, 1}, {0.8, 0.8});
  CHECK(probabilities.compute(p, std::vector<int>{1, 0}, nullptr) ==
        doctest::Approx((-std::log(0.8 + 1e-7) - std::log(0.2 + 1e-7)) / 2));
  BinaryCrossentropy<double> logits(true);
  Tensor<double> z({2, 1}, {2.0, -800.0});
  CHECK(logits.compute(z, std::vector<int>{1, 1}, nullptr) ==
        doctest::Approx((std::log1p(std::exp(-2.0)) + 800.0) / 2));
}

TEST_CASE("Losses: gradient checks") {
  Random rng(21);
  const std::vector<int> labels{0, 2, 1, 2, 0};
  check_loss_gradient(SparseCategoricalCrossentropy<double>(true),
                      testing::random_tensor({5, 3}, rng, -3, 3), labels);
  check_loss_gradient(SparseCategoricalCrossentropy<double>(false),
                      testing::random_tensor({5, 3}, rng, 0.05, 0.95), labels);
  const std::vector<int> binary{0, 1, 1, 0};
  check_loss_gradient(BinaryCrossentropy<double>(true), testing::random_tensor({4, 1}, rng, -4, 4),
                      binary);
  check_loss_gradient(BinaryCrossentropy<double>(false),
                      testing::random_tensor({4, 1}, rng, 0.05, 0.95), binary);
}

TEST_CASE("Losses: accuracy counting") {
  SparseCategoricalCrossentropy<float> scce;
  Tensor<float> p({3, 2}, {0.9f, 0.1f, 0.2f, 0.7f, 0.4f, 0.6f});
  CHECK(scce.count_correct(p, std::vector<int>{0, 1, 0}) == 2);
  BinaryCrossentropy<float> bce;
  Tensor<float> q({3, 1}, {0.9f, 0.4f, 0.6f});
  CHECK(bce.count_correct(q, std::vector<int>{1, 0, 0}) == 2);
}

TEST_CASE("Losses: labels and shapes that do not fit are clear errors") {
  SparseCategoricalCrossentropy<float> loss;
  Tensor<float> p({2, 2});
  p.fill(0.5f);
  CHECK_THROWS_WITH_AS(loss.compute(p, std::vector<int>{0, 2}, nullptr),
                       "SparseCategoricalCrossentropy: label 2 of sample 1 is outside [0, 2)", Error);
  CHECK_THROWS_WITH_AS(loss.compute(p, std::vector<int>{0, 1, 1}, nullptr),
                       "SparseCategoricalCrossentropy: expects an output of shape (3, classes) for "
                       "3 labels, received (2, 2)",
                       ShapeError);
  BinaryCrossentropy<float> bce;
  CHECK_THROWS_AS(bce.compute(p, std::vector<int>{0, 1}, nullptr), ShapeError);
}
