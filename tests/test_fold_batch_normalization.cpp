// Folding BatchNormalization (and a ReLU after it) into the Conv2D before it: the folded graph
// computes what the original computes in inference mode, keeps every output name, and folds
// exactly the chains it may.
#include <doctest/doctest.h>
#include <stratum/model/fold_batch_normalization.hpp>
#include <stratum/stratum.hpp>

#include <algorithm>
#include <map>

using namespace stratum;

namespace {

/// Gives a BatchNormalization layer moving statistics, scales and shifts far from their
/// defaults (1, 0, 0, 1), as after training, some scales negative; leaves other layers alone.
template <typename T>
void train_like(Layer<T>& layer, Random& rng) {
  if (layer.type_name() != "BatchNormalization") return;
  const auto p = layer.parameters();  // gamma, beta, moving_mean, moving_variance
  for (auto& v : p[0]->value) v = T(rng.uniform(0.5, 2.0) * (rng.uniform() < 0.2 ? -1 : 1));
  for (auto& v : p[1]->value) v = T(rng.uniform(-1, 1));
  for (auto& v : p[2]->value) v = T(rng.uniform(-0.5, 0.5));
  for (auto& v : p[3]->value) v = T(rng.uniform(0.05, 3.0));
}

/// input (9, 7, 3)
///   -> conv "a" (3x3 same) -> BN -> ReLU "a_out"           folds, ReLU included
///   -> conv "b" (1x1)      -> BN "b_out"                   folds, no ReLU after it
///   Add(a_out, b_out) -> conv "c" (3x3, relu) -> BN "c_bn"  stays: the conv's activation is ReLU
///   -> conv "d" (1x1, stride 2) -> BN "d_bn" -> ReLU     stays: "d" is also a model output
///   -> conv "e" (1x1) -> BN "e_bn" -> ReLU "e_relu"      BN folds; the ReLU stays, since "e_bn"
///                                                        is read by "e_relu" and by the Add below
///   Add(e_relu, e_bn) "sum"
/// Outputs: d, sum, and the ReLU after d_bn.
template <typename T>
std::unique_ptr<GraphModel<T>> fold_test_network() {
  auto model = std::make_unique<GraphModel<T>>(4);
  const Node image = model->input({9, 7, 3}, "image");
  auto conv = [&](Node x, Index filters, Index kernel, Activation activation, Index stride,
                  const char* name) {
    const Node n =
        model->template add<Conv2D>(x, filters, kernel, activation, stride, Padding::same);
    model->set_name(n, name);
    return n;
  };
  auto normalize = [&](Node x, const char* name) {
    const Node n = model->template add<BatchNormalization>(x);
    if (*name) model->set_name(n, name);
    return n;
  };
  auto relu = [&](Node x, const char* name) {
    const Node n = model->template add<ReLU>(x);
    if (*name) model->set_name(n, name);
    return n;
  };
  const Node a = relu(normalize(conv(image, 4, 3, Activation::linear, 1, "a"), ""), "a_out");
  const Node b = normalize(conv(image, 4, 1, Activation::linear, 1, "b"), "b_out");
  const Node joined = model->template add<Add>({a, b});
  const Node c = normalize(conv(joined, 5, 3, Activation::relu, 1, "c"), "c_bn");
  const Node d = conv(c, 6, 1, Activation::linear, 2, "d");
  const Node d_relu = relu(normalize(d, "d_bn"), "d_relu");
  const Node e_bn = normalize(conv(c, 5, 1, Activation::linear, 1, "e"), "e_bn");
  const Node sum = model->template add<Add>({relu(e_bn, "e_relu"), e_bn});
  model->set_name(sum, "sum");
  model->build({d, sum, d_relu});
  Random rng(9);
  for (std::size_t i = 0; i < model->node_count(); ++i)
    if (Layer<T>* layer = model->layer(model->node_at(i))) train_like(*layer, rng);
  return model;
}

/// n random images of the given per-sample shape, values in [-1, 1].
template <typename T>
Tensor<T> fold_test_images(Index n, const Shape& sample) {
  std::vector<Index> dims{n};
  dims.insert(dims.end(), sample.dims().begin(), sample.dims().end());
  Tensor<T> x{Shape(dims)};
  Random rng(2);
  for (auto& v : x) v = T(rng.uniform(-1, 1));
  return x;
}

/// The largest difference between the folded model's output and the original's, relative to
/// 1 + |original| (absolute near 0, relative for large values).
template <typename T>
double fold_error(const Tensor<T>& got, const Tensor<T>& want) {
  REQUIRE(got.shape() == want.shape());
  double worst = 0;
  for (Index i = 0; i < want.size(); ++i)
    worst = std::max(worst,
                     std::abs(double(got[i]) - double(want[i])) / (1 + std::abs(double(want[i]))));
  return worst;
}

/// A model's outputs on `x` in inference mode, copied: one for a Sequential, one per output
/// for a GraphModel.
template <typename T>
std::vector<Tensor<T>> inference_outputs(Sequential<T>& model, const Tensor<T>& x) {
  return {model.forward(x, Mode::inference)};
}
template <typename T>
std::vector<Tensor<T>> inference_outputs(GraphModel<T>& model, const Tensor<T>& x) {
  std::vector<Tensor<T>> outputs;
  for (const auto* t : model.forward(std::vector<Tensor<T>>{x}, Mode::inference))
    outputs.push_back(*t);
  return outputs;
}

/// The folded copy of `model` gives its outputs on images of per-sample shape `sample`, at
/// batch 1 and 3, within `tolerance` (fold_error).
template <typename Model>
void check_fold_matches(Model& model, const Shape& sample, double tolerance) {
  using T = typename Model::Scalar;
  auto folded = fold_batch_normalization(model);
  for (Index batch : {1, 3}) {
    const Tensor<T> x = fold_test_images<T>(batch, sample);
    const auto want = inference_outputs(model, x);
    const auto got = inference_outputs(*folded, x);
    REQUIRE(got.size() == want.size());
    for (std::size_t o = 0; o < got.size(); ++o) {
      CAPTURE(o);
      CHECK(fold_error(got[o], want[o]) < tolerance);
    }
  }
}

template <typename T>
std::vector<std::string> layer_types(GraphModel<T>& model) {
  std::vector<std::string> types;
  for (std::size_t i = 0; i < model.node_count(); ++i)
    types.push_back(model.type_name(model.node_at(i)));
  return types;
}

}  // namespace

TEST_CASE("folded BatchNormalization: the same outputs in inference mode") {
  check_fold_matches(*fold_test_network<double>(), {9, 7, 3}, 1e-12);
  check_fold_matches(*fold_test_network<float>(), {9, 7, 3}, 1e-5);
}

TEST_CASE("folded BatchNormalization: which chains fold, and the names they leave") {
  auto model = fold_test_network<float>();
  auto folded = fold_batch_normalization(*model);
  const auto types = layer_types(*folded);
  auto count = [&](const std::string& type) {
    return std::count(types.begin(), types.end(), type);
  };
  CHECK(count("BatchNormalization") == 2);  // c_bn and d_bn stay; the ones after a, b, e fold
  CHECK(count("ReLU") == 2);                // d_relu and e_relu stay
  CHECK(count("Conv2D") == 5);
  CHECK(folded->node_count() == model->node_count() - 4);

  std::map<std::string, LayerConfig> by_name;
  for (std::size_t i = 0; i < folded->node_count(); ++i)
    by_name[folded->name(folded->node_at(i))] = folded->layer_config(folded->node_at(i));
  // A chain's convolution takes the name of its last node, with the ReLU as its activation.
  REQUIRE(by_name.count("a_out"));
  CHECK(by_name["a_out"].type == "Conv2D");
  CHECK(by_name["a_out"].get("activation") == double(static_cast<int>(Activation::relu)));
  CHECK(!by_name.count("a"));
  REQUIRE(by_name.count("b_out"));
  CHECK(by_name["b_out"].get("activation") == double(static_cast<int>(Activation::linear)));
  REQUIRE(by_name.count("e_bn"));
  CHECK(by_name["e_bn"].type == "Conv2D");
  CHECK(by_name["c"].type == "Conv2D");
  CHECK(by_name["d"].type == "Conv2D");
  for (std::size_t o = 0; o < model->output_count(); ++o)
    CHECK(folded->output_name(o) == model->output_name(o));

  // A graph with nothing to fold comes back as it was.
  auto refolded = fold_batch_normalization(*folded);
  CHECK(layer_types(*refolded) == types);

  GraphModel<float> unbuilt;
  unbuilt.input({4, 4, 1});
  CHECK_THROWS_WITH_AS(fold_batch_normalization(unbuilt), doctest::Contains("not built"), Error);
}

namespace {

/// conv (linear) - BN - ReLU - max-pool - conv (linear) - BN - conv (relu) - BN - global average
/// pooling - dense, with trained-looking statistics: the first two chains fold, the third stays.
template <typename T>
std::unique_ptr<Sequential<T>> fold_test_sequential() {
  auto model = std::make_unique<Sequential<T>>(Shape{10, 8, 3}, 6);
  model->template add<Conv2D>(4, 3, Activation::linear, 1, Padding::same);
  model->template add<BatchNormalization>();
  model->template add<ReLU>();
  model->template add<MaxPool2D>(2);
  model->template add<Conv2D>(5, 3, Activation::linear, 2, Padding::same);
  model->template add<BatchNormalization>();
  model->template add<Conv2D>(6, 1, Activation::relu);
  model->template add<BatchNormalization>();
  model->template add<GlobalAveragePooling2D>();
  model->template add<Dense>(2);
  model->compile(std::make_unique<SparseCategoricalCrossentropy<T>>(true), nullptr);
  Random rng(11);
  for (std::size_t i = 0; i < model->size(); ++i) train_like(model->layer(i), rng);
  return model;
}

}  // namespace

TEST_CASE("folded BatchNormalization in a Sequential model: the same outputs, fused pooling") {
  check_fold_matches(*fold_test_sequential<double>(), {10, 8, 3}, 1e-12);
  check_fold_matches(*fold_test_sequential<float>(), {10, 8, 3}, 1e-5);

  auto model = fold_test_sequential<float>();
  CHECK(!model->runs_fused(0));  // the BatchNormalization stands between the conv and the pool
  auto folded = fold_batch_normalization(*model);
  std::vector<std::string> types;
  for (std::size_t i = 0; i < folded->size(); ++i) types.push_back(folded->layer(i).type_name());
  CHECK(types == std::vector<std::string>{"Conv2D", "MaxPooling2D", "Conv2D", "Conv2D",
                                          "BatchNormalization", "GlobalAveragePooling2D", "Dense"});
  CHECK(folded->layer(0).config().get("activation") == double(static_cast<int>(Activation::relu)));
  CHECK(folded->layer(2).config().get("activation") ==
        double(static_cast<int>(Activation::linear)));
  CHECK(folded->runs_fused(0));  // now the convolution and the pooling run as one step
  REQUIRE(folded->has_loss());
  CHECK(folded->loss().name() == model->loss().name());
  CHECK(folded->loss().from_logits());
}
