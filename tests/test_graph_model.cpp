// The graph model: a whole graph (residual block, two outputs, one output feeding another
// layer) against finite differences, the same network as a Sequential giving the same bits,
// fit / evaluate / predict / summary, model files, resuming bit-identically, and the errors.
#include <doctest/doctest.h>
#include <stratum/callbacks/early_stopping.hpp>
#include <stratum/callbacks/learning_rate_scheduler.hpp>
#include <stratum/model/checkpoint.hpp>
#include <stratum/stratum.hpp>

#include <fstream>
#include <optional>
#include <sstream>

#include "gradient_check.hpp"
#include "temp_dir.hpp"

using namespace stratum;
namespace fs = std::filesystem;

namespace {

/// input (6, 6, 2) -> conv a -> conv b -> Add(a, b) -> sigmoid -> "heat" (Conv2D 1x1, 2)
///                                                  \-> Concatenate(., heat) -> "size" (Conv2D 1x1,
///                                                  3)
/// A residual block and two outputs, the first of which also feeds a layer.
template <typename T>
std::unique_ptr<GraphModel<T>> graph_test_network(std::uint64_t seed) {
  auto model = std::make_unique<GraphModel<T>>(seed);
  const Node image = model->input({6, 6, 2}, "image");
  const Node a = model->template add<Conv2D>(image, 3, 3, Activation::sigmoid, 1, Padding::same);
  const Node b = model->template add<Conv2D>(a, 3, 3, Activation::linear, 1, Padding::same);
  const Node skip = model->template add<Add>({a, b});
  const Node features = model->template add<Sigmoid>(skip);
  const Node heat = model->template add<Conv2D>(features, 2, 1, Activation::sigmoid);
  const Node joined = model->template add<Concatenate>({features, heat});
  const Node size = model->template add<Conv2D>(joined, 3, 1);
  model->set_name(heat, "heat");
  model->set_name(size, "size");
  model->build({heat, size});
  return model;
}

template <typename T>
std::vector<OutputLoss<T>> graph_test_losses() {
  std::vector<OutputLoss<T>> losses;
  losses.push_back({std::make_unique<MeanSquaredError<T>>(), 1.0});
  losses.push_back({std::make_unique<MeanSquaredError<T>>(), 0.5});
  return losses;
}

/// Inputs, targets and a per-position mask for the size output, as in a detector.
template <typename T>
TensorDenseDataset<T> graph_test_data(Index n, std::uint64_t seed) {
  Random rng(seed);
  auto fill = [&](const Shape& shape, bool binary) {
    Tensor<T> t(shape);
    for (auto& v : t)
      v = static_cast<T>(binary ? (rng.uniform() < 0.3 ? 1.0 : 0.0) : rng.uniform(-1, 1));
    return t;
  };
  std::vector<Tensor<T>> inputs, targets, masks;
  inputs.push_back(fill({n, 6, 6, 2}, false));
  targets.push_back(fill({n, 6, 6, 2}, true));
  targets.push_back(fill({n, 6, 6, 3}, false));
  masks.emplace_back();  // heat: every position
  masks.push_back(fill({n, 6, 6, 1}, true));
  return TensorDenseDataset<T>(std::move(inputs), std::move(targets), std::move(masks));
}

std::vector<float> graph_test_weights(GraphModel<float>& model) {
  std::vector<float> all;
  for (auto* p : model.parameters()) all.insert(all.end(), p->value.begin(), p->value.end());
  return all;
}

FitOptions<float, DenseDataset<float>> graph_test_options(int epochs) {
  FitOptions<float, DenseDataset<float>> options;
  options.epochs = epochs;
  options.batch_size = 4;
  options.verbose = 0;
  return options;
}

}  // namespace

TEST_CASE("GraphModel: the gradient of a residual two-output graph matches finite differences") {
  auto model = graph_test_network<double>(3);
  auto data = graph_test_data<double>(3, 4);
  DenseBatch<double> batch;
  const std::vector<Index> all{0, 1, 2};
  data.gather(all, batch);
  const auto losses = graph_test_losses<double>();

  // L = sum_o w_o L_o, and dL/doutput_o = w_o dL_o/doutput_o.
  auto loss = [&] {
    const auto& outputs = model->forward(batch.inputs, Mode::training);
    double total = 0;
    for (std::size_t o = 0; o < outputs.size(); ++o)
      total += losses[o].weight *
               losses[o].loss->compute(*outputs[o], batch.targets[o], batch.mask(o), nullptr);
    return total;
  };
  const auto& outputs = model->forward(batch.inputs, Mode::training);
  std::vector<Tensor<double>> d_outputs(outputs.size());
  std::vector<const Tensor<double>*> gradients;
  for (std::size_t o = 0; o < outputs.size(); ++o) {
    losses[o].loss->compute(*outputs[o], batch.targets[o], batch.mask(o), &d_outputs[o]);
    d_outputs[o].array() *= losses[o].weight;
    gradients.push_back(&d_outputs[o]);
  }
  model->backward(gradients);
  std::vector<Tensor<double>> analytic;
  for (auto* p : model->parameters()) analytic.push_back(p->grad);
  const auto params = model->parameters();
  REQUIRE(params.size() == 8);  // four Conv2Ds: kernel and bias each
  for (std::size_t i = 0; i < params.size(); ++i)
    stratum::testing::check_against_numeric(
        "dL/d" + params[i]->name + " of parameter " + std::to_string(i), params[i]->value,
        analytic[i], loss);
}

TEST_CASE("GraphModel: a chain gives the bits of a Sequential of the same layers and seed") {
  const Shape input{8, 8, 3};
  Sequential<float> sequential(input, 7);
  sequential.add<Conv2D>(4, 3, Activation::relu, 1, Padding::same);
  sequential.add<BatchNormalization>();
  sequential.add<ReLU>();
  sequential.add<MaxPool2D>(2);
  sequential.add<Dropout>(0.25);
  sequential.add<Flatten>();
  sequential.add<Dense>(3);
  sequential.compile(nullptr, std::make_unique<Adam<float>>(1e-2));

  GraphModel<float> graph(7);
  Node x = graph.input(input);
  x = graph.add<Conv2D>(x, 4, 3, Activation::relu, 1, Padding::same);
  x = graph.add<BatchNormalization>(x);
  x = graph.add<ReLU>(x);
  x = graph.add<MaxPool2D>(x, 2);
  x = graph.add<Dropout>(x, 0.25);
  x = graph.add<Flatten>(x);
  x = graph.add<Dense>(x, 3);
  graph.build({x});
  std::vector<OutputLoss<float>> losses;
  losses.push_back({std::make_unique<MeanSquaredError<float>>(), 1.0});
  graph.compile(std::move(losses), std::make_unique<Adam<float>>(1e-2));

  std::vector<float> before;
  for (auto* p : sequential.parameters())
    before.insert(before.end(), p->value.begin(), p->value.end());
  REQUIRE(before == graph_test_weights(graph));

  // 10 samples in batches of 4 (the last one short), two epochs, in order.
  Random rng(8);
  std::vector<Tensor<float>> inputs, targets;
  inputs.emplace_back(input.with_batch(10));
  targets.emplace_back(Shape{10, 3});
  for (auto& v : inputs[0]) v = static_cast<float>(rng.uniform(-1, 1));
  for (auto& v : targets[0]) v = static_cast<float>(rng.uniform(-1, 1));
  const Tensor<float> x_all = inputs[0], y_all = targets[0];
  TensorDenseDataset<float> data(std::move(inputs), std::move(targets));

  const MeanSquaredError<float> mse;
  std::vector<double> sequential_losses;
  for (int epoch = 0; epoch < 2; ++epoch) {
    double sum = 0;
    for (Index first = 0; first < 10; first += 4) {
      const Index count = std::min<Index>(4, 10 - first);
      Tensor<float> bx(input.with_batch(count)), by(Shape{count, 3}), dy;
      std::copy_n(x_all.data() + first * 192, count * 192, bx.data());
      std::copy_n(y_all.data() + first * 3, count * 3, by.data());
      sum += mse.compute(sequential.forward(bx, Mode::training), by, nullptr, &dy) *
             static_cast<double>(count);
      sequential.backward(dy);
      sequential.optimizer().step(sequential.trainable_parameters());
    }
    sequential_losses.push_back(sum / 10);
  }
  auto options = graph_test_options(2);
  options.shuffle = false;
  const History history = graph.fit(data, options);

  std::vector<float> after;
  for (auto* p : sequential.parameters())
    after.insert(after.end(), p->value.begin(), p->value.end());
  CHECK(after != before);
  CHECK(after == graph_test_weights(graph));
  CHECK(history.loss == sequential_losses);
}

TEST_CASE("GraphModel: fit, evaluate, predict and summary report every output") {
  auto model = graph_test_network<float>(5);
  model->compile(graph_test_losses<float>(), std::make_unique<Adam<float>>(1e-2));
  const auto data = graph_test_data<float>(20, 6);
  const auto validation = graph_test_data<float>(6, 7);

  std::ostringstream log;
  auto options = graph_test_options(3);
  options.verbose = 2;
  options.out = &log;
  options.validation_data = &validation;
  const History history = model->fit(data, options);
  REQUIRE(history.epochs() == 3);
  REQUIRE(history.named.size() == 4);
  CHECK(history.named[0].first == "heat_loss");
  CHECK(history.named[1].first == "size_loss");
  CHECK(history.named[2].first == "val_heat_loss");
  CHECK(history.named[3].first == "val_size_loss");
  CHECK(history.loss.back() < history.loss.front());
  // The total is the weighted sum of the outputs' losses.
  for (std::size_t e = 0; e < 3; ++e) {
    CHECK(history.loss[e] ==
          doctest::Approx(history.named[0].second[e] + 0.5 * history.named[1].second[e]));
    CHECK(history.val_loss[e] ==
          doctest::Approx(history.named[2].second[e] + 0.5 * history.named[3].second[e]));
  }
  const std::string text = log.str();
  CHECK(text.find("Epoch 3/3 - ") != std::string::npos);
  CHECK(text.find(" - heat_loss: ") != std::string::npos);
  CHECK(text.find(" - val_size_loss: ") != std::string::npos);

  const GraphEvaluation evaluation = model->evaluate(validation, 4);
  CHECK(evaluation.samples == 6);
  CHECK(evaluation.loss == doctest::Approx(history.val_loss.back()));
  CHECK(evaluation.output_losses[1] == doctest::Approx(history.named[3].second.back()));

  const auto predictions = model->predict(validation, 4);
  REQUIRE(predictions.size() == 2);
  CHECK(predictions[0].shape() == Shape{6, 6, 6, 2});
  CHECK(predictions[1].shape() == Shape{6, 6, 6, 3});
  // Batch by batch or all at once: the same outputs.
  const auto& all = model->forward(std::vector<Tensor<float>>{[&] {
                                     DenseBatch<float> b;
                                     const std::vector<Index> i{0, 1, 2, 3, 4, 5};
                                     validation.gather(i, b);
                                     return b.inputs[0];
                                   }()},
                                   Mode::inference);
  CHECK(std::equal(predictions[1].begin(), predictions[1].end(), all[1]->begin()));

  testing::TempDir dir;
  history.write_csv((dir.path() / "history.csv").string());
  std::ifstream csv(dir.path() / "history.csv");
  std::string header;
  std::getline(csv, header);
  CHECK(header ==
        "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds,heat_loss,size_loss,"
        "val_heat_loss,val_size_loss");

  std::ostringstream summary;
  model->summary(summary);
  const std::string s = summary.str();
  CHECK(s.find("Connected to") != std::string::npos);
  CHECK(s.find("Model: \"graph_model\", outputs: heat, size\n") == 0);
  CHECK(s.find("\n image (InputLayer)             (None, 6, 6, 2)           0\n") !=
        std::string::npos);
  CHECK(s.find("\n add (Add)                      (None, 6, 6, 3)           0           conv2d, "
               "conv2d_1\n") != std::string::npos);
  CHECK(s.find("\n size (Conv2D)                  (None, 6, 6, 3)           18          "
               "concatenate\n") != std::string::npos);
  CHECK(s.find("Total params: 167\n") != std::string::npos);
}

TEST_CASE("GraphModel: a model file gives back the same graph, weights and predictions") {
  testing::TempDir dir;
  auto model = graph_test_network<float>(9);
  model->compile(graph_test_losses<float>(), std::make_unique<Adam<float>>(1e-2));
  const auto data = graph_test_data<float>(8, 10);
  model->fit(data, graph_test_options(1));
  const fs::path path = dir.path() / "graph.stmodel";
  save_graph_model(*model, path, {{"classes", "with_mask,without_mask"}});

  LoadedGraphModel<float> loaded = load_graph_model(path);
  CHECK(loaded.metadata.at("classes") == "with_mask,without_mask");
  CHECK(graph_config(*loaded.model) == graph_config(*model));
  CHECK(graph_test_weights(*loaded.model) == graph_test_weights(*model));
  const auto a = model->predict(data), b = loaded.model->predict(data);
  for (std::size_t o = 0; o < 2; ++o) CHECK(std::equal(a[o].begin(), a[o].end(), b[o].begin()));
  std::ostringstream s1, s2;
  model->summary(s1);
  loaded.model->summary(s2);
  CHECK(s1.str() == s2.str());

  // The wrong kind of file either way, named for what it is.
  Sequential<float> sequential({4}, 1);
  sequential.add<Dense>(2);
  const fs::path sequential_path = dir.path() / "sequential.stmodel";
  save_model(sequential, sequential_path);
  CHECK_THROWS_WITH_AS(load_graph_model(sequential_path),
                       ("'" + sequential_path.string() +
                        "' is not a stratum graph model file: it is a stratum model file (read it "
                        "with load_model)")
                           .c_str(),
                       IoError);
  CHECK_THROWS_WITH_AS(load_model(path),
                       ("'" + path.string() +
                        "' is not a stratum model file: it is a stratum graph model file (read it "
                        "with load_graph_model)")
                           .c_str(),
                       IoError);
  // A flipped byte is caught by the checksum.
  auto bytes = read_file(path);
  bytes[bytes.size() / 2] ^= 0x20;
  CHECK_THROWS_WITH_AS(deserialize_graph_model<float>(bytes, "flipped"),
                       doctest::Contains("corrupt"), IoError);
}

namespace {

struct GraphCrashForTest {};

/// Trains the test network for 4 epochs (Dropout, Adam, a learning-rate schedule, early
/// stopping with its state in the checkpoint), from scratch or resumed from `checkpoint`;
/// throws GraphCrashForTest at (epoch, batch) if given. Returns the final weights and history.
std::pair<std::vector<float>, History> graph_train_for_resume(
    const fs::path& checkpoint, bool resume, std::optional<std::pair<int, Index>> crash) {
  auto model = std::make_unique<GraphModel<float>>(21);
  const Node image = model->input({6, 6, 2}, "image");
  const Node a = model->add<Conv2D>(image, 4, 3, Activation::relu, 1, Padding::same);
  const Node b =
      model->add<Conv2D>(model->add<Dropout>(a, 0.3), 4, 3, Activation::linear, 1, Padding::same);
  const Node features = model->add<ReLU>(model->add<Add>({a, b}));
  const Node heat = model->add<Conv2D>(features, 2, 1, Activation::sigmoid);
  const Node size = model->add<Conv2D>(model->add<Concatenate>({features, heat}), 3, 1);
  model->build({heat, size});
  model->compile(graph_test_losses<float>(), std::make_unique<Adam<float>>(1e-2));
  const auto data = graph_test_data<float>(18, 22);

  EarlyStopping<float> stopping(
      {.monitor = "val_loss", .patience = 10, .restore_best_weights = true});
  LearningRateScheduler<float> schedule(cosine_decay(1e-2, 20));
  std::vector<Stateful*> state{&stopping};
  TrainingProgress progress;
  if (resume) progress = load_checkpoint(checkpoint, *model, state);
  TrainingCheckpoint<float, GraphModel<float>> saver(checkpoint, progress, {&stopping});
  LambdaCallback<float, GraphModel<float>> crasher;
  crasher.batch_end = [&](GraphModel<float>&, const BatchLogs& logs) {
    if (crash && logs.epoch == crash->first && logs.batch == crash->second)
      throw GraphCrashForTest{};
  };
  auto options = graph_test_options(4);
  options.validation_split = 0.25;
  options.initial_epoch = progress.completed_epochs;
  options.callbacks = {&schedule, &stopping, &crasher, &saver};
  History history = progress.history;
  history.extend(model->fit(data, options));
  return {graph_test_weights(*model), history};
}

}  // namespace

TEST_CASE("GraphModel: a run interrupted and resumed from its checkpoint ends with the same bits") {
  testing::TempDir dir;
  const auto [weights, history] =
      graph_train_for_resume(dir.path() / "straight.ckpt", false, std::nullopt);
  const fs::path path = dir.path() / "run.ckpt";
  CHECK_THROWS_AS(graph_train_for_resume(path, false, std::pair<int, Index>{2, 1}),
                  GraphCrashForTest);
  const auto [resumed_weights, resumed_history] = graph_train_for_resume(path, true, std::nullopt);
  CHECK(resumed_weights == weights);
  CHECK(resumed_history.loss == history.loss);
  CHECK(resumed_history.val_loss == history.val_loss);
  CHECK(resumed_history.named == history.named);
  CHECK(resumed_history.learning_rate == history.learning_rate);

  // A Sequential checkpoint is not a graph's, and the other way round.
  Sequential<float> sequential({6, 6, 2}, 1);
  sequential.add<Flatten>();
  sequential.add<Dense>(2);
  sequential.compile(nullptr, std::make_unique<Adam<float>>());
  CHECK_THROWS_WITH_AS(load_checkpoint(path, sequential),
                       doctest::Contains("is a stratum graph model file"), IoError);
}

TEST_CASE("GraphModel: graphs that cannot work are refused, naming the node") {
  GraphModel<float> model(1);
  const Node image = model.input({8, 8, 3}, "image");
  const Node extra = model.input({4}, "extra");
  const Node a = model.add<Conv2D>(image, 16, 3, Activation::relu, 1, Padding::same);
  const Node b = model.add<Conv2D>(image, 8, 3, Activation::relu, 1, Padding::same);

  // Mismatched shapes into Add / Concatenate.
  CHECK_THROWS_WITH_AS(
      model.add<Add>({a, b}),
      "Add 'add' needs inputs of one shape, received (None, 8, 8, 16), (None, 8, 8, 8)",
      ShapeError);
  const Node pooled = model.add<MaxPool2D>(b, 2);
  CHECK_THROWS_WITH_AS(
      model.add<Concatenate>({a, pooled}),
      doctest::Contains("Concatenate 'concatenate' needs inputs that differ only in "
                        "their last (channel) axis, received (None, 8, 8, 16), "
                        "(None, 4, 4, 8)"),
      ShapeError);
  // A layer called twice.
  auto shared = std::make_shared<Conv2D<float>>(8, 3, Activation::relu, 1, Padding::same);
  const Node c = model.add(shared, a);
  CHECK_THROWS_WITH_AS(model.add(shared, b),
                       "GraphModel::add: Conv2D 'conv2d_2' is already called (node 'conv2d_2'); a "
                       "layer is called once, weights are not shared: make another layer",
                       Error);
  const Node joined = model.add<Concatenate>({b, c});
  // An unused input; then a node that leads to no output.
  CHECK_THROWS_WITH_AS(model.build({joined}),
                       "GraphModel::build: input 'extra' is not used by any output", Error);
  (void)extra;
  GraphModel<float> dangling(1);
  const Node in = dangling.input({4});
  const Node used = dangling.add<Dense>(in, 2);
  dangling.add<Dense>(in, 3);
  CHECK_THROWS_WITH_AS(
      dangling.build({used}),
      "GraphModel::build: the output of Dense 'dense_1' leads to no output of the model", Error);
  CHECK_THROWS_WITH_AS(dangling.build({in}), "GraphModel::build: input 'input' cannot be an output",
                       Error);

  // From a configuration (a model file's): a cycle, an unknown name, a name defined twice.
  GraphConfig config;
  config.inputs = {{"image", Shape{4}}};
  config.nodes = {{"a", {"Dense", {{"units", 4}, {"activation", 0}}}, {"image", "c"}},
                  {"b", {"Dense", {{"units", 4}, {"activation", 0}}}, {"a"}},
                  {"c", {"Dense", {{"units", 4}, {"activation", 0}}}, {"b"}}};
  config.nodes[0].layer.type = "Add";
  config.nodes[0].layer.values.clear();
  config.outputs = {"c"};
  CHECK_THROWS_WITH_AS(graph_from_config<float>(config),
                       "the graph has a cycle: 'a' -> 'b' -> 'c' -> 'a'", Error);
  config.nodes[0].inputs = {"image", "nowhere"};
  CHECK_THROWS_WITH_AS(graph_from_config<float>(config),
                       "node 'a' is called on 'nowhere', which is not a node of the graph", Error);
  config.nodes[0].inputs = {"image", "image"};
  config.nodes[2].name = "b";
  CHECK_THROWS_WITH_AS(graph_from_config<float>(config),
                       "the graph defines 'b' twice (a layer is called once)", Error);
  config.nodes[2].name = "c";
  CHECK(graph_from_config<float>(config)->node_count() == 4);
}

TEST_CASE("GraphModel: with_input_shapes runs the same layers and weights on another image size") {
  // Pointwise layers only (1x1 convolutions, BatchNormalization, Add), so each output pixel
  // depends on its own input pixel alone: the copy at 3x5 must give, at every pixel, what the
  // original gives on a 2x2 image holding that pixel.
  GraphModel<float> model(3);
  const Node image = model.input({2, 2, 3}, "image");
  const Node a = model.add<Conv2D>(image, 4, 1, Activation::relu);
  const Node normalised = model.add<BatchNormalization>(a);
  const Node b = model.add<Conv2D>(image, 4, 1);
  const Node joined = model.add<Add>({normalised, b});
  model.build({joined});
  Random rng(11);
  for (auto* p : model.parameters())  // moving statistics too: they must be copied as well
    for (auto& v : p->value) v = static_cast<float>(rng.uniform(0.2, 1.5));

  const auto copy = with_input_shapes(model, {{3, 5, 3}});
  CHECK(copy->shape(copy->input_node(0)) == Shape{3, 5, 3});
  CHECK(copy->shape(copy->output_node(0)) == Shape{3, 5, 4});
  Tensor<float> wide({1, 3, 5, 3});
  for (auto& v : wide) v = static_cast<float>(rng.uniform());
  const Tensor<float> out = *copy->forward(std::vector<Tensor<float>>{wide}, Mode::inference)[0];
  for (Index y = 0; y < 3; ++y)
    for (Index x = 0; x < 5; ++x) {
      Tensor<float> small({1, 2, 2, 3});
      small.fill(0);
      for (Index c = 0; c < 3; ++c) small[c] = wide[(y * 5 + x) * 3 + c];
      const Tensor<float>& expected =
          *model.forward(std::vector<Tensor<float>>{small}, Mode::inference)[0];
      for (Index f = 0; f < 4; ++f) {
        INFO("pixel (" << y << ", " << x << "), channel " << f);
        CHECK(out[(y * 5 + x) * 4 + f] == doctest::Approx(expected[f]).epsilon(1e-5));
      }
    }

  // A graph whose weights depend on the image size cannot take another one.
  GraphModel<float> flat(1);
  const Node in = flat.input({2, 2, 1}, "image");
  flat.add<Dense>(flat.add<Flatten>(in), 2);
  flat.build({flat.node_at(flat.node_count() - 1)});
  CHECK_THROWS_WITH_AS(with_input_shapes(flat, {{3, 3, 1}}),
                       doctest::Contains("node 'dense' would need its kernel of shape (9, 2)"),
                       Error);
  CHECK_THROWS_WITH_AS(with_input_shapes(flat, {{3, 3, 1}, {2}}),
                       "with_input_shapes: 2 shapes for a model of 1 inputs", Error);
}
