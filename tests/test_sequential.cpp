#include <mask_detection/architectures.hpp>

#include "gradient_check.hpp"

#include <limits>
#include <sstream>

using namespace stratum;

namespace {

/// A small CNN for the generated stripes task.
std::unique_ptr<Sequential<float>> small_cnn(std::uint64_t seed) {
  auto model = std::make_unique<Sequential<float>>(Shape{12, 12, 3}, seed);
  model->add<Conv2D>(8, 3, Activation::relu);
  model->add<MaxPool2D>(2);
  model->add<Flatten>();
  model->add<Dense>(16, Activation::relu);
  model->add<Dropout>(0.2);
  model->add<Dense>(2);
  model->compile(std::make_unique<SparseCategoricalCrossentropy<float>>(true),
                 std::make_unique<Adam<float>>(3e-3));
  return model;
}

FitOptions<float> quiet(int epochs) {
  FitOptions<float> options;
  options.epochs = epochs;
  options.verbose = 0;
  options.batch_size = 16;
  return options;
}

}  // namespace

TEST_CASE("summary() of the notebook's network reports Keras' parameter counts") {
  Sequential<float> model({128, 128, 3});
  mask_detection::add_notebook_layers(model);
  std::ostringstream out;
  model.summary(out);
  const std::string s = out.str();
  CHECK(s.find(" conv2d (Conv2D)             (None, 126, 126, 32)      896") != std::string::npos);
  CHECK(s.find(" max_pooling2d (MaxPooling2D) (None, 63, 63, 32)       0") != std::string::npos);
  CHECK(s.find(" conv2d_1 (Conv2D)           (None, 61, 61, 64)        18496") != std::string::npos);
  CHECK(s.find(" flatten (Flatten)           (None, 57600)             0") != std::string::npos);
  CHECK(s.find(" dense (Dense)               (None, 128)               7372928") != std::string::npos);
  CHECK(s.find(" dense_1 (Dense)             (None, 64)                8256") != std::string::npos);
  CHECK(s.find(" dense_2 (Dense)             (None, 2)                 130") != std::string::npos);
  CHECK(s.find("Total params: 7,400,706") != std::string::npos);
  CHECK(model.parameter_count() == 7400706);
  CHECK(model.output_shape() == Shape{2});
}

TEST_CASE("the whole network's gradients match finite differences") {
  // The notebook's layer kinds at a small size, plus same padding and stride 2, under the
  // notebook's loss (sigmoid outputs, Keras' renormalised cross-entropy).
  Sequential<double> model({9, 8, 2}, 5);
  model.add<Conv2D>(4, 3, Activation::relu, 2, Padding::same);
  model.add<Conv2D>(6, 2, Activation::relu);
  model.add<MaxPool2D>(2);
  model.add<Flatten>();
  model.add<Dense>(5, Activation::relu);
  model.add<Dropout>(0.5);
  model.add<Dense>(2, Activation::sigmoid);
  SparseCategoricalCrossentropy<double> loss;

  Random rng(8);
  const Tensor<double> x = testing::random_tensor({3, 9, 8, 2}, rng);
  const std::vector<int> labels{1, 0, 1};
  auto compute = [&] { return loss.compute(model.forward(x, Mode::inference), labels, nullptr); };
  Tensor<double> d_output;
  loss.compute(model.forward(x, Mode::inference), labels, &d_output);
  model.backward(d_output);
  for (auto* p : model.parameters()) {
    const Tensor<double> analytic = p->grad;
    testing::check_against_numeric(p->name, p->value, analytic, compute);
  }
}

TEST_CASE("a Conv2D and the MaxPool2D after it run fused, with the layer-by-layer results") {
  // The first pair runs the direct kernels (K = 18, 8 filters), the second im2col + GEMM.
  Sequential<double> model({10, 9, 2}, 3);
  model.add<Conv2D>(8, 3, Activation::relu, 1, Padding::same);
  model.add<MaxPool2D>(2);
  model.add<Conv2D>(5, 2, Activation::relu);
  model.add<MaxPool2D>(2);
  model.add<Flatten>();
  model.add<Dense>(2, Activation::sigmoid);
  CHECK(model.runs_fused(0));
  CHECK(model.runs_fused(2));
  CHECK_FALSE(model.runs_fused(1));
  SparseCategoricalCrossentropy<double> loss;
  Random rng(4);
  const Tensor<double> x = testing::random_tensor({3, 10, 9, 2}, rng);
  const std::vector<int> labels{0, 1, 1};

  // Layer by layer, through each layer's own forward and backward.
  std::vector<Tensor<double>> outputs(model.size()), grads(model.size());
  for (std::size_t i = 0; i < model.size(); ++i)
    model.layer(i).forward(i == 0 ? x : outputs[i - 1], outputs[i], Mode::training);
  loss.compute(outputs.back(), labels, &grads.back());
  for (std::size_t i = model.size(); i-- > 0;)
    model.layer(i).backward(i == 0 ? x : outputs[i - 1], outputs[i], grads[i],
                            i == 0 ? nullptr : &grads[i - 1]);
  std::vector<Tensor<double>> layer_by_layer;
  for (auto* p : model.parameters()) layer_by_layer.push_back(p->grad);

  // Fused. (Equal within rounding, not bit for bit: in double, Eigen's GEMM does the products,
  // and it blocks them by the sizes, which differ between a tile and a band.)
  auto check_close = [](const Tensor<double>& fused, const Tensor<double>& expected) {
    REQUIRE(fused.shape() == expected.shape());
    for (Index i = 0; i < fused.size(); ++i)
      CHECK(fused[i] == doctest::Approx(expected[i]).epsilon(1e-12).scale(1.0));
  };
  const Tensor<double> output = model.forward(x, Mode::training);
  check_close(output, outputs.back());
  Tensor<double> d_output;
  loss.compute(output, labels, &d_output);
  // The gradients still hold the layer-by-layer results; the fused pass must write them all.
  for (auto* p : model.parameters())
    std::fill(p->grad.begin(), p->grad.end(), std::numeric_limits<double>::quiet_NaN());
  model.backward(d_output);
  const auto parameters = model.parameters();
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    INFO("parameter " << i << " (" << parameters[i]->name << ")");
    check_close(parameters[i]->grad, layer_by_layer[i]);
  }

  // And the fused model's gradients match finite differences.
  auto compute = [&] { return loss.compute(model.forward(x, Mode::inference), labels, nullptr); };
  for (auto* p : parameters) {
    const Tensor<double> analytic = p->grad;
    testing::check_against_numeric(p->name, p->value, analytic, compute);
  }
}

TEST_CASE("training learns a generated two-class image task") {
  const auto train = make_stripes<float>(600, 12, 3, 1);
  const auto test = make_stripes<float>(200, 12, 3, 2);
  auto model = small_cnn(3);
  const Evaluation before = model->evaluate(test.images, test.labels);
  const History history = model->fit(train.images, train.labels, quiet(4));
  const Evaluation after = model->evaluate(test.images, test.labels);
  CHECK(history.loss.back() < history.loss.front());
  CHECK(after.loss < before.loss);
  CHECK(after.accuracy > 0.95);
  CHECK(after.samples == 200);
}

TEST_CASE("the same seed gives the same run; another seed does not") {
  const auto data = make_stripes<float>(200, 12, 3, 4);
  auto run = [&](std::uint64_t seed) {
    auto model = small_cnn(seed);
    auto options = quiet(2);
    options.validation_split = 0.2;
    const History h = model->fit(data.images, data.labels, options);
    std::vector<float> weights;
    for (auto* p : model->parameters()) weights.insert(weights.end(), p->value.begin(), p->value.end());
    return std::make_pair(h, weights);
  };
  const auto [h1, w1] = run(9);
  const auto [h2, w2] = run(9);
  const auto [h3, w3] = run(10);
  CHECK(w1 == w2);
  CHECK(h1.loss == h2.loss);
  CHECK(h1.val_accuracy == h2.val_accuracy);
  CHECK(w1 != w3);
}

TEST_CASE("fit: validation split, history, callbacks and progress output") {
  const auto data = make_stripes<float>(100, 12, 3, 5);
  auto model = small_cnn(1);
  std::ostringstream log;
  Index batches_seen = 0;
  LambdaCallback<float> callback;
  callback.batch_end = [&](Sequential<float>&, const BatchLogs&) { ++batches_seen; };
  callback.epoch_end = [](Sequential<float>& m, const EpochLogs& logs) {
    if (logs.epoch == 1) m.stop_training() = true;
  };
  FitOptions<float> options;
  options.epochs = 5;
  options.batch_size = 30;
  options.validation_split = 0.1;  // the last 10 samples
  options.out = &log;
  options.callbacks = {&callback};
  const History h = model->fit(data.images, data.labels, options);
  CHECK(h.epochs() == 2);  // stopped by the callback after the second epoch
  CHECK(h.val_loss.size() == 2);
  CHECK(batches_seen == 2 * 3);  // 90 training samples in batches of 30
  const std::string text = log.str();
  CHECK(text.find("Epoch 1/5") != std::string::npos);
  CHECK(text.find("3/3 [==============================]") != std::string::npos);
  CHECK(text.find("val_accuracy: ") != std::string::npos);
  CHECK(text.find("Epoch 3/5") == std::string::npos);

  // verbose = 0 prints nothing.
  std::ostringstream silent;
  auto quiet_options = quiet(1);
  quiet_options.out = &silent;
  model->fit(data.images, data.labels, quiet_options);
  CHECK(silent.str().empty());
}

TEST_CASE("predict and evaluate agree") {
  const auto data = make_stripes<float>(50, 12, 3, 6);
  auto model = small_cnn(2);
  model->fit(data.images, data.labels, quiet(1));
  const Tensor<float> out = model->predict(data.images, 7);
  REQUIRE(out.shape() == Shape{50, 2});
  const Evaluation e = model->evaluate(data.images, data.labels, 13);
  Index correct = 0;
  for (Index n = 0; n < 50; ++n)
    correct += (out[2 * n + 1] > out[2 * n] ? 1 : 0) == data.labels[static_cast<std::size_t>(n)];
  CHECK(double(correct) / 50 == doctest::Approx(e.accuracy));
}

TEST_CASE("mismatched shapes and misuse give errors that name what is wrong") {
  auto model = small_cnn(1);
  const auto wrong = make_stripes<float>(10, 10, 3, 1);
  CHECK_THROWS_WITH_AS(model->fit(wrong.images, wrong.labels, quiet(1)),
                       "Sequential::fit: the model expects samples of shape (None, 12, 12, 3), the "
                       "data has (None, 10, 10, 3)",
                       ShapeError);
  const auto right = make_stripes<float>(10, 12, 3, 1);
  std::vector<int> too_few(right.labels.begin(), right.labels.end() - 1);
  CHECK_THROWS_AS(model->fit(right.images, too_few, quiet(1)), ShapeError);

  Sequential<float> uncompiled({12, 12, 3});
  uncompiled.add<Flatten>();
  uncompiled.add<Dense>(2);
  CHECK_THROWS_WITH_AS(uncompiled.fit(right.images, right.labels, quiet(1)),
                       "Sequential: the model needs a loss; call compile()", Error);

  // A layer that cannot follow the previous one fails when it is added.
  Sequential<float> model2({12, 12, 3});
  model2.add<Conv2D>(4, 3);
  model2.add<Flatten>();
  CHECK_THROWS_WITH_AS(model2.add<Conv2D>(4, 3),
                       "Conv2D 'conv2d_1' expects input of shape (None, height, width, channels), "
                       "received (None, 400)",
                       ShapeError);
}
