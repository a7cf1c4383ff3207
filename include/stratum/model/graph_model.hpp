// GraphModel: layers called on tensors, several inputs and outputs, like Keras' functional API
// (keras.Model(inputs, outputs)). Enough for a residual backbone (Conv2D -> Conv2D -> Add with a
// skip) and a multi-scale head (upsampled and lateral features joined by Concatenate or Add):
//
//   GraphModel<float> model(/*seed=*/42);
//   Node image = model.input({64, 64, 3}, "image");
//   Node a = model.add<Conv2D>(image, 16, 3, Activation::relu, 1, Padding::same);
//   Node b = model.add<Conv2D>(a, 16, 3, Activation::linear, 1, Padding::same);
//   Node s = model.add<ReLU>(model.add<Add>({a, b}));
//   Node heat = model.add<Conv2D>(s, 3, 1, Activation::sigmoid);
//   Node size = model.add<Conv2D>(s, 2, 1);
//   model.set_name(heat, "heat");
//   model.set_name(size, "size");
//   model.build({heat, size});
//   model.compile({{std::make_unique<MeanSquaredError<float>>(), 1.0},
//                  {std::make_unique<MeanSquaredError<float>>(), 0.1}},
//                 std::make_unique<Adam<float>>());
//   History h = model.fit(data, {.epochs = 10});     // data: a DenseDataset<float>
//
// A node is a graph input or one call of a layer: a Layer<T> on one node, or a MergeLayer<T>
// (Add, Concatenate) on several. Every layer is built when it is called (its input shapes are
// known then), so a shape mismatch is reported at the call, naming the layer. A layer is
// called once: this model does not share weights between nodes.
//
// Nodes are stored in the order they are called, which is a topological order (a node's
// inputs exist before it), fixed by build(). One training step:
//   forward   value[v] = layer_v(value[u] for u in inputs(v)),  v in topological order
//   loss      L = sum_o w_o L_o(value[output_o], target_o, mask_o)
//             grad[output_o] = w_o dL_o/dvalue[output_o]
//   backward  v in reverse order: layer_v.backward gives dL/dvalue[u] for each input u;
//             a value used by several consumers (a skip connection, an output that also
//             feeds a layer) receives the sum of their gradients: the first contribution is
//             written straight into grad[u], each further one into a buffer of its edge and
//             added (the multivariate chain rule, docs/backprop.md)
//   update    optimizer.step(trainable parameters)
// Every value, gradient and edge buffer is allocated by the first step and reused after it.
// Unlike Sequential, a Conv2D and the MaxPool2D after it are not fused here.
#pragma once

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../callbacks.hpp"
#include "../data/dense_dataset.hpp"
#include "../layers/layer.hpp"
#include "../layers/merge_layer.hpp"
#include "../losses/dense_loss.hpp"
#include "../optimizers/optimizer.hpp"
#include "../progress.hpp"
#include "history.hpp"
#include "model.hpp"
#include "training.hpp"

namespace stratum {

/// A symbolic tensor: the output of one node of a GraphModel, what layers are called on.
struct Node {
  int id = -1;
  friend bool operator==(const Node&, const Node&) = default;
};

/// An output's loss and its weight in the total: L = sum_o weight_o L_o.
template <typename T>
struct OutputLoss {
  std::unique_ptr<DenseLoss<T>> loss;  // null: the output is predicted, not trained
  double weight = 1.0;
};

/// The figures of GraphModel::evaluate: the weighted total and each output's own loss.
struct GraphEvaluation {
  double loss = 0;
  std::vector<double> output_losses;  // unweighted, in output order
  Index samples = 0;
};

template <typename T = float>
class GraphModel final : public Model<T> {
 public:
  using Scalar = T;

  explicit GraphModel(std::uint64_t seed = 0) : rng_(seed) {}
  GraphModel(const GraphModel&) = delete;
  GraphModel& operator=(const GraphModel&) = delete;

  // ---- Building ----------------------------------------------------------------------------

  /// A graph input of per-sample shape `shape` (Keras' Input); named "input", "input_1", ...
  /// unless `name` is given.
  Node input(Shape shape, std::string name = "") {
    check_not_built("input");
    for (Index d : shape.dims())
      if (d < 1) throw ShapeError("GraphModel: input of shape " + shape.to_batch_string());
    GraphNode node;
    node.name = unique_name(name, "input");
    node.shape = std::move(shape);
    node.input_index = static_cast<int>(inputs_.size());
    inputs_.push_back(static_cast<int>(nodes_.size()));
    return push(std::move(node));
  }

  /// Calls `layer` on `x`: builds it for x's shape and returns its output. A layer without a
  /// name gets Keras' default ("conv2d", "conv2d_1", ...).
  Node add(std::shared_ptr<Layer<T>> layer, Node x) {
    check_not_built("add");
    const GraphNode& in = node(x, "add");
    check_uncalled(layer.get(), layer ? layer->describe() : "");
    layer->set_name(unique_name(layer->name(), snake_case(layer->type_name())));
    GraphNode n;
    n.name = layer->name();
    n.inputs = {x.id};
    n.shape = layer->build(in.shape, rng_);
    called_.emplace(layer.get(), static_cast<int>(nodes_.size()));
    n.layer = std::move(layer);
    return push(std::move(n));
  }

  /// Calls the multi-input `layer` on `xs` (in order).
  Node add(std::shared_ptr<MergeLayer<T>> layer, const std::vector<Node>& xs) {
    check_not_built("add");
    std::vector<Shape> shapes;
    for (Node x : xs) shapes.push_back(node(x, "add").shape);
    check_uncalled(layer.get(), layer ? layer->describe() : "");
    if (xs.empty()) throw Error("GraphModel::add: " + layer->describe() + " is called on no node");
    layer->set_name(unique_name(layer->name(), snake_case(layer->type_name())));
    GraphNode n;
    n.name = layer->name();
    for (Node x : xs) n.inputs.push_back(x.id);
    n.shape = layer->build(shapes);
    called_.emplace(layer.get(), static_cast<int>(nodes_.size()));
    n.merge = std::move(layer);
    return push(std::move(n));
  }

  /// model.add<Conv2D>(x, 32, 3, Activation::relu): makes the layer for this scalar type and
  /// calls it on x.
  template <template <typename> class L, typename... Args>
  Node add(Node x, Args&&... args) {
    return add(std::shared_ptr<Layer<T>>(std::make_shared<L<T>>(std::forward<Args>(args)...)), x);
  }

  /// model.add<Add>({a, b}): makes the multi-input layer and calls it on xs.
  template <template <typename> class L, typename... Args>
  Node add(const std::vector<Node>& xs, Args&&... args) {
    return add(std::shared_ptr<MergeLayer<T>>(std::make_shared<L<T>>(std::forward<Args>(args)...)),
               xs);
  }

  /// Renames a node (and its layer): outputs' names name their losses in the history
  /// ("heat" -> "heat_loss").
  void set_name(Node x, const std::string& name) {
    GraphNode& n = node(x, "set_name");
    if (name.empty()) throw Error("GraphModel::set_name: a name cannot be empty");
    if (name == n.name) return;
    if (names_.contains(name))
      throw Error("GraphModel::set_name: the name '" + name + "' is taken by another node");
    names_.erase(n.name);
    names_.insert(name);
    n.name = name;
    if (n.layer) n.layer->set_name(name);
    if (n.merge) n.merge->set_name(name);
  }

  /// Fixes the outputs and the order of execution. Every input must lead to an output, and
  /// every node too (a layer whose result nothing uses would never be trained).
  void build(const std::vector<Node>& outputs) {
    check_not_built("build");
    if (outputs.empty()) throw Error("GraphModel::build: the model needs at least one output");
    if (inputs_.empty()) throw Error("GraphModel::build: the model has no input");
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      if (node(outputs[i], "build").input_index >= 0)
        throw Error("GraphModel::build: input '" + nodes_[id(outputs[i])].name +
                    "' cannot be an output");
      for (std::size_t j = 0; j < i; ++j)
        if (outputs[j] == outputs[i])
          throw Error("GraphModel::build: node '" + nodes_[id(outputs[i])].name +
                      "' is given twice as an output");
    }
    // Which nodes some output depends on: walk back from the outputs (nodes are in
    // topological order, so one reverse sweep suffices).
    std::vector<bool> used(nodes_.size(), false);
    for (Node o : outputs) used[id(o)] = true;
    for (std::size_t v = nodes_.size(); v-- > 0;)
      if (used[v])
        for (int u : nodes_[v].inputs) used[static_cast<std::size_t>(u)] = true;
    for (std::size_t v = 0; v < nodes_.size(); ++v)
      if (!used[v])
        throw Error(nodes_[v].layer || nodes_[v].merge
                        ? "GraphModel::build: the output of " + describe(nodes_[v]) +
                              " leads to no output of the model"
                        : "GraphModel::build: input '" + nodes_[v].name +
                              "' is not used by any output");
    outputs_.clear();
    for (Node o : outputs) outputs_.push_back(o.id);
    plan_gradients();
    values_.resize(nodes_.size());
    grads_.resize(nodes_.size());
    input_values_.assign(inputs_.size(), nullptr);
    output_values_.assign(outputs_.size(), nullptr);
    built_ = true;
  }

  /// The loss of each output (in output order) and the optimizer.
  void compile(std::vector<OutputLoss<T>> losses, std::unique_ptr<Optimizer<T>> optimizer) {
    check_built("compile");
    if (losses.size() != outputs_.size())
      throw Error("GraphModel::compile: " + std::to_string(losses.size()) + " losses for " +
                  std::to_string(outputs_.size()) + " outputs");
    for (std::size_t o = 0; o < losses.size(); ++o)
      if (!(losses[o].weight >= 0))
        throw Error("GraphModel::compile: the loss of output '" + output_name(o) +
                    "' has a negative weight");
    losses_ = std::move(losses);
    optimizer_ = std::move(optimizer);
  }

  // ---- Inspecting --------------------------------------------------------------------------

  [[nodiscard]] bool built() const { return built_; }
  [[nodiscard]] std::size_t node_count() const { return nodes_.size(); }
  [[nodiscard]] std::size_t input_count() const { return inputs_.size(); }
  [[nodiscard]] std::size_t output_count() const { return outputs_.size(); }
  /// The nodes in order of execution (topological order).
  [[nodiscard]] Node node_at(std::size_t i) const { return {checked_index(i)}; }
  [[nodiscard]] Node input_node(std::size_t k) const { return {inputs_.at(k)}; }
  [[nodiscard]] Node output_node(std::size_t o) const { return {outputs_.at(o)}; }
  [[nodiscard]] const std::string& name(Node x) const { return node(x, "name").name; }
  /// Per-sample shape of a node's value.
  [[nodiscard]] const Shape& shape(Node x) const { return node(x, "shape").shape; }
  [[nodiscard]] std::vector<Node> inputs_of(Node x) const {
    std::vector<Node> result;
    for (int u : node(x, "inputs_of").inputs) result.push_back({u});
    return result;
  }
  [[nodiscard]] bool is_input(Node x) const { return node(x, "is_input").input_index >= 0; }
  /// The layer of a node called with a single-input layer, else null.
  [[nodiscard]] Layer<T>* layer(Node x) { return node(x, "layer").layer.get(); }
  /// The layer of a node called with a multi-input layer, else null.
  [[nodiscard]] MergeLayer<T>* merge_layer(Node x) { return node(x, "merge_layer").merge.get(); }
  /// "InputLayer", "Conv2D", "Add", ...
  [[nodiscard]] std::string type_name(Node x) const { return type_of(node(x, "type_name")); }
  /// The hyper-parameters of a node's layer (type "InputLayer" with no values for an input).
  [[nodiscard]] LayerConfig layer_config(Node x) const {
    const GraphNode& n = node(x, "layer_config");
    if (n.layer) return n.layer->config();
    if (n.merge) return n.merge->config();
    return {"InputLayer", {}};
  }
  [[nodiscard]] std::string output_name(std::size_t o) const {
    return nodes_[static_cast<std::size_t>(outputs_.at(o))].name;
  }

  [[nodiscard]] bool compiled() const { return !losses_.empty(); }
  [[nodiscard]] const OutputLoss<T>& output_loss(std::size_t o) const { return losses_.at(o); }
  [[nodiscard]] bool has_optimizer() const { return optimizer_ != nullptr; }
  [[nodiscard]] Optimizer<T>& optimizer() override {
    if (!optimizer_) throw Error("GraphModel: the model needs an optimizer; call compile()");
    return *optimizer_;
  }
  [[nodiscard]] Random& rng() override { return rng_; }
  bool& stop_training() override { return stop_training_; }

  [[nodiscard]] std::vector<Parameter<T>*> parameters() override {
    std::vector<Parameter<T>*> all;
    for (auto& n : nodes_)
      if (n.layer)
        for (auto* p : n.layer->parameters()) all.push_back(p);
    return all;
  }

  [[nodiscard]] std::vector<Parameter<T>*> trainable_parameters() override {
    std::vector<Parameter<T>*> trainable;
    for (auto* p : parameters())
      if (p->trainable) trainable.push_back(p);
    return trainable;
  }

  [[nodiscard]] Index parameter_count(bool trainable_only = false) {
    Index count = 0;
    for (auto& n : nodes_)
      if (n.layer) count += n.layer->parameter_count(trainable_only);
    return count;
  }

  /// The random engines of the layers that draw numbers while training (Dropout), in node
  /// order: a checkpoint stores them.
  [[nodiscard]] std::vector<Random*> layer_engines() {
    std::vector<Random*> engines;
    for (auto& n : nodes_)
      if (n.layer)
        if (Random* engine = n.layer->random_engine()) engines.push_back(engine);
    return engines;
  }

  /// Keras' summary of a functional model: the outputs, then every node's name, type, output
  /// shape, parameter count and the nodes it is called on, then the parameter counts.
  void summary(std::ostream& out = std::cout) {
    const std::size_t width = 98;
    const std::vector<std::size_t> starts{32, 58, 70};
    std::string outputs;
    for (std::size_t o = 0; o < outputs_.size(); ++o) outputs += (o ? ", " : "") + output_name(o);
    out << "Model: \"graph_model\"" << (built_ ? ", outputs: " + outputs : std::string()) << '\n'
        << std::string(width, '_') << '\n';
    detail::summary_row(out, {"Layer (type)", "Output Shape", "Param #", "Connected to"}, starts);
    out << std::string(width, '=') << '\n';
    for (std::size_t v = 0; v < nodes_.size(); ++v) {
      GraphNode& n = nodes_[v];
      std::string connected;
      for (int u : n.inputs)
        connected += (connected.empty() ? "" : ", ") + nodes_[static_cast<std::size_t>(u)].name;
      detail::summary_row(out,
                          {n.name + " (" + type_of(n) + ")", n.shape.to_batch_string(),
                           std::to_string(n.layer ? n.layer->parameter_count() : 0), connected},
                          starts);
      if (v + 1 < nodes_.size()) out << '\n';
    }
    detail::summary_totals(out, parameter_count(), parameter_count(true), width);
  }

  // ---- Running -----------------------------------------------------------------------------

  /// Runs a batch (one tensor per input, in input order) through the graph; returns the
  /// outputs, valid until the next call.
  const std::vector<const Tensor<T>*>& forward(std::span<const Tensor<T>* const> inputs,
                                               Mode mode) {
    check_built("forward");
    if (inputs.size() != inputs_.size())
      throw Error("GraphModel::forward: " + std::to_string(inputs.size()) + " input tensors for " +
                  std::to_string(inputs_.size()) + " inputs");
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      const GraphNode& n = nodes_[static_cast<std::size_t>(inputs_[k])];
      if (inputs[k]->rank() != n.shape.rank() + 1 ||
          inputs[k]->shape().without_batch() != n.shape || inputs[k]->dim(0) != inputs[0]->dim(0) ||
          inputs[k]->dim(0) < 1)
        throw ShapeError("GraphModel: input '" + n.name + "' expects a batch of shape " +
                         n.shape.to_batch_string() + ", received " +
                         inputs[k]->shape().to_string());
      input_values_[k] = inputs[k];
    }
    for (std::size_t v = 0; v < nodes_.size(); ++v) {
      GraphNode& n = nodes_[v];
      if (n.layer) {
        n.layer->forward(value(n.inputs[0]), values_[v], mode);
      } else if (n.merge) {
        gather_inputs(n);
        n.merge->forward(input_scratch_, values_[v]);
      }
    }
    for (std::size_t o = 0; o < outputs_.size(); ++o) output_values_[o] = &value(outputs_[o]);
    has_forward_ = true;
    return output_values_;
  }
  const std::vector<const Tensor<T>*>& forward(const std::vector<Tensor<T>>& inputs, Mode mode) {
    pointers_.clear();
    for (const auto& t : inputs) pointers_.push_back(&t);
    return forward(std::span<const Tensor<T>* const>(pointers_), mode);
  }

  /// After `forward`, propagates dL/doutput_o (one per output, in order) back through the
  /// graph, setting every parameter's gradient.
  void backward(std::span<const Tensor<T>* const> d_outputs) {
    if (!has_forward_) throw Error("GraphModel::backward: call forward first");
    if (d_outputs.size() != outputs_.size())
      throw Error("GraphModel::backward: " + std::to_string(d_outputs.size()) + " gradients for " +
                  std::to_string(outputs_.size()) + " outputs");
    for (std::size_t o = 0; o < outputs_.size(); ++o)
      grads_[static_cast<std::size_t>(outputs_[o])] = *d_outputs[o];
    backward_from_outputs();
  }

  /// One step of training on a gathered batch: forward, the losses, backward, update. Returns
  /// the weighted total loss; `output_losses` (if given) receives each output's own loss.
  double train_on_batch(const DenseBatch<T>& batch, std::vector<double>* output_losses = nullptr) {
    check_compiled("train_on_batch");
    forward(batch.inputs, Mode::training);
    const double total = compute_losses(batch, output_losses, true);
    backward_from_outputs();
    trainable_ = trainable_parameters();
    optimizer().step(trainable_);
    return total;
  }

  History fit(const DenseDataset<T>& data, const FitOptions<T, DenseDataset<T>>& options = {}) {
    check_compiled("fit");
    check_dataset(data, "fit", true);
    const auto [train_count, val_indices, val_data] =
        detail::split_for_fit(data, options, "GraphModel");
    if (options.validation_data)
      check_dataset(*options.validation_data, "fit (validation data)", true);
    std::vector<Index> train_indices(static_cast<std::size_t>(train_count));
    std::vector<double> batch_losses(outputs_.size()), loss_sums(outputs_.size());

    History history;
    stop_training_ = false;
    std::ostream& out = *options.out;
    for (auto* c : options.callbacks) c->on_train_begin(*this);
    const Index batches = (train_count + options.batch_size - 1) / options.batch_size;
    for (int epoch = options.initial_epoch; epoch < options.epochs && !stop_training_; ++epoch) {
      const auto start = std::chrono::steady_clock::now();
      for (auto* c : options.callbacks) c->on_epoch_begin(*this, epoch);
      // As Sequential: each epoch's order depends on the random engine alone.
      std::iota(train_indices.begin(), train_indices.end(), Index{0});
      if (options.shuffle) rng_.shuffle(train_indices.begin(), train_indices.end());
      if (options.verbose == 1) out << "Epoch " << epoch + 1 << '/' << options.epochs << '\n';
      ProgressBar bar(out, batches);

      double loss_sum = 0;
      std::fill(loss_sums.begin(), loss_sums.end(), 0.0);
      Index seen = 0;
      for (Index b = 0; b < batches; ++b) {
        const Index first = b * options.batch_size;
        const Index count = std::min(options.batch_size, train_count - first);
        for (auto* c : options.callbacks) c->on_batch_begin(*this, epoch, b);
        data.gather(std::span<const Index>(train_indices)
                        .subspan(static_cast<std::size_t>(first), static_cast<std::size_t>(count)),
                    batch_);
        loss_sum += train_on_batch(batch_, &batch_losses) * static_cast<double>(count);
        for (std::size_t o = 0; o < outputs_.size(); ++o)
          loss_sums[o] += batch_losses[o] * static_cast<double>(count);
        seen += count;
        const BatchLogs logs{epoch, b, batches, loss_sum / static_cast<double>(seen), 0.0};
        for (auto* c : options.callbacks) c->on_batch_end(*this, logs);
        if (options.verbose == 1) bar.update(b + 1, figures(logs.loss, loss_sums, seen, ""));
      }

      EpochLogs logs;
      logs.epoch = epoch;
      logs.epochs = options.epochs;
      logs.loss = loss_sum / static_cast<double>(seen);
      ProgressBar::Values values = figures(logs.loss, loss_sums, seen, "");
      if (val_data) {
        const GraphEvaluation v = evaluate_indices(*val_data, val_indices, options.batch_size);
        logs.val_loss = v.loss;
        const auto n = static_cast<Index>(v.samples);
        std::vector<double> sums(v.output_losses);
        for (double& s : sums) s *= static_cast<double>(n);
        const auto val = figures(v.loss, sums, n, "val_");
        values.insert(values.end(), val.begin(), val.end());
      }
      // The per-output figures are named; "loss" and "val_loss" have their own fields.
      for (const auto& [name, figure] : values)
        if (name != "loss" && name != "val_loss") logs.named.emplace_back(name, figure);
      logs.learning_rate = optimizer().learning_rate();
      logs.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      history.append(logs);
      if (options.verbose == 1) bar.finish(values);
      if (options.verbose == 2) detail::print_epoch_line(out, logs, values);
      for (auto* c : options.callbacks) c->on_epoch_end(*this, logs);
    }
    for (auto* c : options.callbacks) c->on_train_end(*this);
    return history;
  }

  /// The weighted total and each output's loss over every sample of `data`, in inference mode.
  GraphEvaluation evaluate(const DenseDataset<T>& data, Index batch_size = 32) {
    check_compiled("evaluate");
    check_dataset(data, "evaluate", true);
    return evaluate_indices(data, all_indices(data), batch_size);
  }

  /// Every output (N, output shape...) for every sample of `data`, in inference mode.
  std::vector<Tensor<T>> predict(const DenseDataset<T>& data, Index batch_size = 32) {
    check_dataset(data, "predict", false);
    if (batch_size < 1) throw Error("GraphModel::predict: batch_size must be >= 1");
    std::vector<Tensor<T>> result;
    for (int o : outputs_)
      result.emplace_back(nodes_[static_cast<std::size_t>(o)].shape.with_batch(data.size()));
    for_each_batch(data, all_indices(data), batch_size, [&](Index first) {
      for (std::size_t o = 0; o < outputs_.size(); ++o) {
        const Tensor<T>& output = *output_values_[o];
        std::copy(output.begin(), output.end(),
                  result[o].data() + first * (output.size() / output.dim(0)));
      }
    });
    return result;
  }

 private:
  struct GraphNode {
    std::string name;
    Shape shape;                           // per sample
    std::vector<int> inputs;               // the nodes it is called on
    int input_index = -1;                  // >= 0: the graph's input of that index
    std::shared_ptr<Layer<T>> layer;       // a single-input layer, or
    std::shared_ptr<MergeLayer<T>> merge;  // a multi-input layer (neither: an input)
    // Where backward puts the gradient for each input: straight into the input's gradient
    // (kind direct), into an edge buffer then added to it (kind accumulate), or nowhere
    // (the input is the data's).
    enum class Sink { none, direct, accumulate };
    std::vector<Sink> sinks;
    std::vector<Tensor<T>> edge_grads;  // one per input (used when accumulating)
  };

  static std::string type_of(const GraphNode& n) {
    return n.layer ? n.layer->type_name() : n.merge ? n.merge->type_name() : "InputLayer";
  }
  static std::string describe(const GraphNode& n) {
    return n.layer ? n.layer->describe() : n.merge ? n.merge->describe() : "input '" + n.name + "'";
  }

  static std::size_t id(Node x) { return static_cast<std::size_t>(x.id); }
  int checked_index(std::size_t i) const {
    if (i >= nodes_.size())
      throw Error("GraphModel: node index " + std::to_string(i) + " is outside [0, " +
                  std::to_string(nodes_.size()) + ")");
    return static_cast<int>(i);
  }
  GraphNode& node(Node x, const char* where) {
    return const_cast<GraphNode&>(std::as_const(*this).node(x, where));
  }
  const GraphNode& node(Node x, const char* where) const {
    if (x.id < 0 || id(x) >= nodes_.size())
      throw Error(std::string("GraphModel::") + where + ": node " + std::to_string(x.id) +
                  " is not a node of this model");
    return nodes_[id(x)];
  }

  Node push(GraphNode n) {
    names_.insert(n.name);
    nodes_.push_back(std::move(n));
    return {static_cast<int>(nodes_.size() - 1)};
  }

  /// `wanted` if given (it must be free), else base, base_1, base_2, ... (the first free one).
  std::string unique_name(const std::string& wanted, const std::string& base) {
    if (!wanted.empty()) {
      if (names_.contains(wanted))
        throw Error("GraphModel: the name '" + wanted + "' is taken by another node");
      return wanted;
    }
    for (int& count = name_counts_[base];; ++count) {
      std::string candidate = count == 0 ? base : base + "_" + std::to_string(count);
      if (!names_.contains(candidate)) {
        ++count;
        return candidate;
      }
    }
  }

  /// A layer is called once: weights are not shared between nodes.
  void check_uncalled(const void* layer, const std::string& description) const {
    if (!layer) throw Error("GraphModel::add: the layer is null");
    if (auto it = called_.find(layer); it != called_.end())
      throw Error("GraphModel::add: " + description + " is already called (node '" +
                  nodes_[static_cast<std::size_t>(it->second)].name +
                  "'); a layer is called once, weights are not shared: make another layer");
  }

  void check_not_built(const char* where) const {
    if (built_)
      throw Error(std::string("GraphModel::") + where +
                  ": the model is built; nodes cannot be added after build()");
  }
  void check_built(const char* where) const {
    if (!built_) throw Error(std::string("GraphModel::") + where + ": call build(outputs) first");
  }
  void check_compiled(const char* where) {
    check_built(where);
    if (!compiled())
      throw Error(std::string("GraphModel::") + where + ": the model needs losses; call compile()");
  }

  /// Decides, for every edge u -> v, where v's backward puts dL/dvalue[u] (see GraphNode::Sink):
  /// the first edge that backward reaches writes, the later ones accumulate; an output's
  /// gradient starts with its loss's, so every edge out of an output accumulates.
  void plan_gradients() {
    std::vector<bool> written(nodes_.size(), false);
    for (int o : outputs_) written[static_cast<std::size_t>(o)] = true;
    for (std::size_t v = nodes_.size(); v-- > 0;) {
      GraphNode& n = nodes_[v];
      n.sinks.assign(n.inputs.size(), GraphNode::Sink::none);
      n.edge_grads.resize(n.inputs.size());
      for (std::size_t k = 0; k < n.inputs.size(); ++k) {
        const auto u = static_cast<std::size_t>(n.inputs[k]);
        if (nodes_[u].input_index >= 0) continue;
        n.sinks[k] = written[u] ? GraphNode::Sink::accumulate : GraphNode::Sink::direct;
        written[u] = true;
      }
    }
  }

  const Tensor<T>& value(int v) const {
    const GraphNode& n = nodes_[static_cast<std::size_t>(v)];
    return n.input_index >= 0 ? *input_values_[static_cast<std::size_t>(n.input_index)]
                              : values_[static_cast<std::size_t>(v)];
  }

  void gather_inputs(const GraphNode& n) {
    input_scratch_.clear();
    for (int u : n.inputs) input_scratch_.push_back(&value(u));
  }

  /// grads_ of the outputs are set; runs every node's backward in reverse order.
  void backward_from_outputs() {
    for (std::size_t v = nodes_.size(); v-- > 0;) {
      GraphNode& n = nodes_[v];
      if (n.input_index >= 0) continue;
      grad_scratch_.clear();
      for (std::size_t k = 0; k < n.inputs.size(); ++k) {
        const auto u = static_cast<std::size_t>(n.inputs[k]);
        switch (n.sinks[k]) {
          case GraphNode::Sink::none:
            grad_scratch_.push_back(nullptr);
            break;
          case GraphNode::Sink::direct:
            grad_scratch_.push_back(&grads_[u]);
            break;
          case GraphNode::Sink::accumulate:
            grad_scratch_.push_back(&n.edge_grads[k]);
            break;
        }
      }
      if (n.layer) {
        n.layer->backward(value(n.inputs[0]), values_[v], grads_[v], grad_scratch_[0]);
      } else {
        gather_inputs(n);
        n.merge->backward(input_scratch_, grads_[v], grad_scratch_);
      }
      for (std::size_t k = 0; k < n.inputs.size(); ++k)
        if (n.sinks[k] == GraphNode::Sink::accumulate)
          grads_[static_cast<std::size_t>(n.inputs[k])].array() += n.edge_grads[k].array();
    }
  }

  /// After forward: each output's loss against the batch's targets; with `gradients`, sets
  /// grads_ of the outputs to w_o dL_o/doutput. Returns sum_o w_o L_o.
  double compute_losses(const DenseBatch<T>& batch, std::vector<double>* output_losses,
                        bool gradients) {
    double total = 0;
    if (output_losses) output_losses->assign(outputs_.size(), 0.0);
    for (std::size_t o = 0; o < outputs_.size(); ++o) {
      const auto v = static_cast<std::size_t>(outputs_[o]);
      const auto& [loss, weight] = losses_[o];
      Tensor<T>& grad = grads_[v];
      if (!loss) {
        if (gradients) {
          grad.resize(value(outputs_[o]).shape());
          grad.set_zero();
        }
        continue;
      }
      const double l = loss->compute(value(outputs_[o]), batch.targets[o], batch.mask(o),
                                     gradients ? &grad : nullptr);
      if (gradients && weight != 1.0) grad.array() *= static_cast<T>(weight);
      if (output_losses) (*output_losses)[o] = l;
      total += weight * l;
    }
    return total;
  }

  /// "loss", then "<output>_loss" of each output with a loss (prefix "val_" for validation).
  ProgressBar::Values figures(double loss, const std::vector<double>& sums, Index samples,
                              const std::string& prefix) const {
    ProgressBar::Values values{{prefix + "loss", loss}};
    for (std::size_t o = 0; o < outputs_.size(); ++o)
      if (losses_[o].loss && outputs_.size() > 1)
        values.emplace_back(prefix + output_name(o) + "_loss",
                            sums[o] / static_cast<double>(samples));
    return values;
  }

  void check_dataset(const DenseDataset<T>& data, const char* where, bool targets) const {
    check_built(where);
    const std::string who = std::string("GraphModel::") + where;
    const auto input_shapes = data.input_shapes();
    if (input_shapes.size() != inputs_.size())
      throw ShapeError(who + ": the model has " + std::to_string(inputs_.size()) +
                       " inputs, the data " + std::to_string(input_shapes.size()));
    for (std::size_t k = 0; k < inputs_.size(); ++k) {
      const GraphNode& n = nodes_[static_cast<std::size_t>(inputs_[k])];
      if (input_shapes[k] != n.shape)
        throw ShapeError(who + ": input '" + n.name + "' takes samples of shape " +
                         n.shape.to_batch_string() + ", the data has " +
                         input_shapes[k].to_batch_string());
    }
    if (targets) {
      const auto target_shapes = data.target_shapes();
      if (target_shapes.size() != outputs_.size())
        throw ShapeError(who + ": the model has " + std::to_string(outputs_.size()) +
                         " outputs, the data " + std::to_string(target_shapes.size()) + " targets");
      for (std::size_t o = 0; o < outputs_.size(); ++o)
        if (target_shapes[o] != shape({outputs_[o]}))
          throw ShapeError(who + ": output '" + output_name(o) + "' has shape " +
                           shape({outputs_[o]}).to_batch_string() + ", its target " +
                           target_shapes[o].to_batch_string());
    }
    if (data.size() < 1) throw Error(who + ": the dataset is empty");
  }

  static std::vector<Index> all_indices(const DenseDataset<T>& data) {
    std::vector<Index> all(static_cast<std::size_t>(data.size()));
    std::iota(all.begin(), all.end(), Index{0});
    return all;
  }

  /// Runs inference over `indices` in batches; calls visit(position of the batch's first
  /// sample in `indices`) with the batch in batch_ and its outputs in output_values_.
  template <typename Visit>
  void for_each_batch(const DenseDataset<T>& data, const std::vector<Index>& indices,
                      Index batch_size, Visit&& visit) {
    const auto total = static_cast<Index>(indices.size());
    for (Index first = 0; first < total; first += batch_size) {
      const Index count = std::min(batch_size, total - first);
      data.gather(std::span<const Index>(indices).subspan(static_cast<std::size_t>(first),
                                                          static_cast<std::size_t>(count)),
                  batch_);
      forward(batch_.inputs, Mode::inference);
      visit(first);
    }
  }

  GraphEvaluation evaluate_indices(const DenseDataset<T>& data, const std::vector<Index>& indices,
                                   Index batch_size) {
    if (batch_size < 1) throw Error("GraphModel::evaluate: batch_size must be >= 1");
    GraphEvaluation result;
    result.output_losses.assign(outputs_.size(), 0.0);
    std::vector<double> batch_losses;
    for_each_batch(data, indices, batch_size, [&](Index) {
      const auto count = static_cast<double>(batch_.inputs[0].dim(0));
      result.loss += compute_losses(batch_, &batch_losses, false) * count;
      for (std::size_t o = 0; o < outputs_.size(); ++o)
        result.output_losses[o] += batch_losses[o] * count;
    });
    const auto n = static_cast<double>(indices.size());
    result.loss /= n;
    for (double& l : result.output_losses) l /= n;
    result.samples = static_cast<Index>(indices.size());
    return result;
  }

  Random rng_;
  std::vector<GraphNode> nodes_;  // in topological order
  std::vector<int> inputs_;       // node ids of the graph's inputs, in input order
  std::vector<int> outputs_;      // node ids of its outputs, in output order
  std::set<std::string> names_;
  std::map<std::string, int> name_counts_;
  std::map<const void*, int> called_;  // each layer called so far, and its node
  bool built_ = false;
  std::vector<OutputLoss<T>> losses_;
  std::unique_ptr<Optimizer<T>> optimizer_;
  bool stop_training_ = false;

  // Buffers reused from step to step.
  bool has_forward_ = false;
  std::vector<Tensor<T>> values_;  // values_[v]: output of node v (empty for inputs)
  std::vector<Tensor<T>> grads_;   // grads_[v]: dL/d values_[v]
  std::vector<const Tensor<T>*> input_values_, output_values_, input_scratch_, pointers_;
  std::vector<Tensor<T>*> grad_scratch_;
  DenseBatch<T> batch_;
  std::vector<Parameter<T>*> trainable_;
};

}  // namespace stratum
