// Sequential: a stack of layers, trained with a loss and an optimizer, like keras.Sequential.
//
//   Sequential<float> model({128, 128, 3}, /*seed=*/42);
//   model.add<Conv2D>(32, 3, Activation::relu);
//   model.add<MaxPool2D>(2);
//   ...
//   model.compile(std::make_unique<SparseCategoricalCrossentropy<float>>(),
//                 std::make_unique<Adam<float>>());
//   History h = model.fit(train, {.epochs = 25, .validation_split = 0.1});
//
// The input shape is given up front (as keras.Input), so every layer is built, checked and
// initialised the moment it is added, and `summary()` works at any time.
//
// One training step (docs/architecture.md):
//   forward   outputs[i] = layer_i(outputs[i-1])               outputs[-1] = the batch
//   loss      L = loss(outputs[last], labels),  d_outputs[last] = dL/doutputs[last]
//   backward  for i = last..0: layer_i.backward(outputs[i-1], outputs[i], d_outputs[i],
//                                               i > 0 ? &d_outputs[i-1] : nullptr)
//   update    optimizer.step(parameters)
// Every buffer is kept between steps, so steady-state training allocates nothing. A Conv2D
// followed by a MaxPool2D it can run fused with (Conv2D::fuses_with) runs as one step both ways,
// and the convolution's output and its gradient are never stored: outputs[i] and d_outputs[i]
// of such a Conv2D stay empty.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "../callbacks.hpp"
#include "../data/dataset.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/layer.hpp"
#include "../layers/max_pool2d.hpp"
#include "../losses/loss.hpp"
#include "../optimizers/optimizer.hpp"
#include "../progress.hpp"
#include "data_parallel.hpp"
#include "history.hpp"
#include "model.hpp"
#include "training.hpp"

namespace stratum {

template <typename T = float>
class Sequential final : public Model<T> {
 public:
  using Scalar = T;

  explicit Sequential(Shape input_shape, std::uint64_t seed = 0)
      : input_shape_(std::move(input_shape)), rng_(seed) {}

  Sequential(const Sequential&) = delete;
  Sequential& operator=(const Sequential&) = delete;

  /// Builds `layer` on the current output shape and appends it.
  Layer<T>& add(std::unique_ptr<Layer<T>> layer) {
    const std::string base = snake_case(layer->type_name());
    const int count = name_counts_[base]++;
    layer->set_name(count == 0 ? base : base + "_" + std::to_string(count));
    layer->build(output_shape(), rng_);
    layers_.push_back(std::move(layer));
    outputs_.resize(layers_.size());
    d_outputs_.resize(layers_.size());
    pooled_convolutions_.resize(layers_.size());
    if (layers_.size() >= 2) {
      auto* conv = dynamic_cast<Conv2D<T>*>(layers_[layers_.size() - 2].get());
      auto* pool = dynamic_cast<MaxPool2D<T>*>(layers_.back().get());
      if (conv && pool && conv->fuses_with(*pool))
        pooled_convolutions_[layers_.size() - 2] = {conv, pool};
    }
    return *layers_.back();
  }

  /// model.add<Conv2D>(32, 3, Activation::relu): constructs the layer for this scalar type.
  template <template <typename> class LayerType, typename... Args>
  LayerType<T>& add(Args&&... args) {
    auto layer = std::make_unique<LayerType<T>>(std::forward<Args>(args)...);
    auto& ref = *layer;
    add(std::move(layer));
    return ref;
  }

  void compile(std::unique_ptr<Loss<T>> loss, std::unique_ptr<Optimizer<T>> optimizer) {
    loss_ = std::move(loss);
    optimizer_ = std::move(optimizer);
  }

  [[nodiscard]] const Shape& input_shape() const { return input_shape_; }
  [[nodiscard]] const Shape& output_shape() const {
    return layers_.empty() ? input_shape_ : layers_.back()->output_shape();
  }
  [[nodiscard]] std::size_t size() const { return layers_.size(); }
  [[nodiscard]] Layer<T>& layer(std::size_t i) { return *layers_.at(i); }
  [[nodiscard]] const Layer<T>& layer(std::size_t i) const { return *layers_.at(i); }
  /// Whether layer i, a Conv2D, runs fused with the MaxPool2D after it (see the top of the file).
  [[nodiscard]] bool runs_fused(std::size_t i) const {
    return i < pooled_convolutions_.size() && pooled_convolutions_[i].conv != nullptr;
  }
  [[nodiscard]] bool has_loss() const { return loss_ != nullptr; }
  [[nodiscard]] Loss<T>& loss() { return checked(loss_.get(), "a loss"); }
  [[nodiscard]] Optimizer<T>& optimizer() override {
    return checked(optimizer_.get(), "an optimizer");
  }
  /// The model's random engine: it initialised the weights and shuffles the training data.
  [[nodiscard]] Random& rng() override { return rng_; }
  /// Set to true (from a callback) to end `fit` after the current epoch.
  bool& stop_training() override { return stop_training_; }

  /// Trains as one replica of many (model/data_parallel.hpp): `fit` takes this rank's part of
  /// every global batch and averages the gradients over the ranks, `evaluate` its part of the
  /// samples, and both report the figures of all ranks together. Call it once the model is
  /// complete (every layer added); it makes the weights equal rank 0's. `group` must outlive
  /// the model's training; null trains alone again.
  void distribute(DataParallel<T>* group) {
    data_parallel_ = group;
    if (!group) return;
    std::vector<std::vector<Parameter<T>*>> trainable_by_layer;
    for (auto& l : layers_) {
      trainable_by_layer.emplace_back();
      for (auto* p : l->parameters())
        if (p->trainable) trainable_by_layer.back().push_back(p);
    }
    group->attach(trainable_by_layer, parameters());
  }

  /// Every weight of every layer, trainable or not (what a model file stores).
  [[nodiscard]] std::vector<Parameter<T>*> parameters() override {
    std::vector<Parameter<T>*> all;
    for (auto& l : layers_)
      for (auto* p : l->parameters()) all.push_back(p);
    return all;
  }

  /// The weights the optimizer updates.
  [[nodiscard]] std::vector<Parameter<T>*> trainable_parameters() override {
    std::vector<Parameter<T>*> trainable;
    for (auto* p : parameters())
      if (p->trainable) trainable.push_back(p);
    return trainable;
  }

  [[nodiscard]] Index parameter_count(bool trainable_only = false) {
    Index count = 0;
    for (auto& l : layers_) count += l->parameter_count(trainable_only);
    return count;
  }

  /// Prints Keras' model summary: each layer's name, type, output shape and parameter count.
  void summary(std::ostream& out = std::cout) {
    const std::string rule(65, '_'), double_rule(65, '=');
    // Columns start at fixed positions, as in Keras; a cell too long still gets a space.
    auto row = [&](const std::string& a, const std::string& b, const std::string& c) {
      detail::summary_row(out, {a, b, c}, {29, 55});
    };
    out << "Model: \"sequential\"\n" << rule << '\n';
    row("Layer (type)", "Output Shape", "Param #");
    out << double_rule << '\n';
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      auto& l = *layers_[i];
      row(l.name() + " (" + l.type_name() + ")", l.output_shape().to_batch_string(),
          std::to_string(l.parameter_count()));
      if (i + 1 < layers_.size()) out << '\n';
    }
    detail::summary_totals(out, parameter_count(), parameter_count(true), rule.size());
  }

  /// Runs the batch x through every layer; returns the model's output (valid until the next
  /// call).
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode) {
    if (layers_.empty()) throw Error("Sequential: the model has no layers");
    input_ = &x;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      if (const auto [conv, pool] = pooled_convolutions_[i]; conv) {
        conv->forward_pooled(input_of(i), *pool, outputs_[i + 1]);
        ++i;
      } else {
        layers_[i]->forward(input_of(i), outputs_[i], mode);
      }
    }
    return outputs_.back();
  }

  /// After `forward`, propagates dL/doutput back through the stack, setting every parameter's
  /// gradient. The input gradient is not computed (nothing below the model needs it).
  void backward(const Tensor<T>& d_output) {
    if (!input_) throw Error("Sequential::backward: call forward first");
    d_outputs_.back() = d_output;
    backward_from_last();
  }

  /// One step of training on a batch: forward, loss, backward, update. Returns the batch's
  /// mean loss; adds the number of correct predictions to `*correct` if given. Distributed
  /// (`distribute`), x is this rank's part of a global batch of `global_count` samples.
  double train_on_batch(const Tensor<T>& x, std::span<const int> labels, Index* correct = nullptr,
                        Index global_count = 0) {
    if (!data_parallel_) {
      const Tensor<T>& output = forward(x, Mode::training);
      const double batch_loss = loss().compute(output, labels, &d_outputs_.back());
      if (correct) *correct += loss().count_correct(output, labels);
      backward_from_last();
      trainable_ = trainable_parameters();
      optimizer().step(trainable_);
      return batch_loss;
    }
    return train_on_part(x, labels, correct, global_count);
  }

  History fit(const Dataset<T>& data, const FitOptions<T>& options = {}) {
    check_dataset(data, "fit");
    const auto [train_count, val_indices, val_data] =
        detail::split_for_fit(data, options, "Sequential");
    if (options.validation_data) check_dataset(*options.validation_data, "fit (validation data)");
    std::vector<Index> train_indices(static_cast<std::size_t>(train_count));

    History history;
    stop_training_ = false;
    std::ostream& out = *options.out;
    for (auto* c : options.callbacks) c->on_train_begin(*this);
    const Index batches = (train_count + options.batch_size - 1) / options.batch_size;
    for (int epoch = options.initial_epoch; epoch < options.epochs && !stop_training_; ++epoch) {
      const auto start = std::chrono::steady_clock::now();
      for (auto* c : options.callbacks) c->on_epoch_begin(*this, epoch);
      // Each epoch's order depends on the random engine alone (not on the previous order), so
      // a checkpoint that stores the engine reproduces it.
      std::iota(train_indices.begin(), train_indices.end(), Index{0});
      if (options.shuffle) rng_.shuffle(train_indices.begin(), train_indices.end());
      if (options.verbose == 1) out << "Epoch " << epoch + 1 << '/' << options.epochs << '\n';
      ProgressBar bar(out, batches);

      double loss_sum = 0;
      Index correct = 0, seen = 0;
      for (Index b = 0; b < batches; ++b) {
        const Index first = b * options.batch_size;
        const Index count = std::min(options.batch_size, train_count - first);
        for (auto* c : options.callbacks) c->on_batch_begin(*this, epoch, b);
        const auto batch =
            std::span<const Index>(train_indices)
                .subspan(static_cast<std::size_t>(first), static_cast<std::size_t>(count));
        if (!data_parallel_) {
          data.gather(batch, batch_x_, batch_labels_);
          loss_sum +=
              train_on_batch(batch_x_, batch_labels_, &correct) * static_cast<double>(count);
        } else {
          // Every rank shuffled the same way (same seed): each takes its part of the batch.
          const Shard part = data_parallel_->shard(count);
          data.gather_part(batch, static_cast<std::size_t>(part.first),
                           static_cast<std::size_t>(part.count), batch_x_, batch_labels_);
          Index part_correct = 0;
          double sums[] = {train_on_part(batch_x_, batch_labels_, &part_correct, count) *
                               static_cast<double>(part.count),
                           static_cast<double>(part_correct)};
          data_parallel_->sum(sums);
          loss_sum += sums[0];
          correct += static_cast<Index>(std::llround(sums[1]));
        }
        seen += count;
        const BatchLogs logs{epoch, b, batches, loss_sum / static_cast<double>(seen),
                             static_cast<double>(correct) / static_cast<double>(seen)};
        for (auto* c : options.callbacks) c->on_batch_end(*this, logs);
        if (options.verbose == 1)
          bar.update(b + 1, {{"loss", logs.loss}, {"accuracy", logs.accuracy}});
      }

      EpochLogs logs;
      logs.epoch = epoch;
      logs.epochs = options.epochs;
      logs.loss = loss_sum / static_cast<double>(seen);
      logs.accuracy = static_cast<double>(correct) / static_cast<double>(seen);
      if (val_data) {
        const Evaluation v = evaluate_indices(*val_data, val_indices, options.batch_size);
        logs.val_loss = v.loss;
        logs.val_accuracy = v.accuracy;
      }
      logs.learning_rate = optimizer().learning_rate();
      logs.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      history.append(logs);
      if (options.verbose == 1) bar.finish(epoch_values(logs));
      if (options.verbose == 2) detail::print_epoch_line(out, logs, epoch_values(logs));
      for (auto* c : options.callbacks) c->on_epoch_end(*this, logs);
    }
    for (auto* c : options.callbacks) c->on_train_end(*this);
    return history;
  }

  /// Convenience overload over an in-memory tensor (N, ...) and N labels.
  History fit(const Tensor<T>& x, std::span<const int> labels, const FitOptions<T>& options = {}) {
    return fit(TensorDataset<T>(x, labels), options);
  }

  /// Mean loss and accuracy over every sample of `data`, in inference mode.
  Evaluation evaluate(const Dataset<T>& data, Index batch_size = 32) {
    check_dataset(data, "evaluate");
    if (!data.has_labels()) throw Error("Sequential::evaluate: the dataset has no labels");
    return evaluate_indices(data, all_indices(data), batch_size);
  }
  Evaluation evaluate(const Tensor<T>& x, std::span<const int> labels, Index batch_size = 32) {
    return evaluate(TensorDataset<T>(x, labels), batch_size);
  }

  /// The model's outputs (N, outputs...) for every sample of `data`, in inference mode.
  Tensor<T> predict(const Dataset<T>& data, Index batch_size = 32) {
    check_dataset(data, "predict");
    if (batch_size < 1) throw Error("Sequential::predict: batch_size must be >= 1");
    Tensor<T> result(output_shape().with_batch(data.size()));
    const Index per_sample = output_shape().num_elements();
    for_each_batch(data, all_indices(data), batch_size, [&](Index first, const Tensor<T>& output) {
      std::copy(output.begin(), output.end(), result.data() + first * per_sample);
    });
    return result;
  }
  Tensor<T> predict(const Tensor<T>& x, Index batch_size = 32) {
    return predict(TensorDataset<T>(x), batch_size);
  }

 private:
  template <typename P>
  static P& checked(P* p, const char* what) {
    if (!p) throw Error(std::string("Sequential: the model needs ") + what + "; call compile()");
    return *p;
  }

  void check_dataset(const Dataset<T>& data, const char* where) const {
    if (data.sample_shape() != input_shape_)
      throw ShapeError(std::string("Sequential::") + where +
                       ": the model expects samples of shape " + input_shape_.to_batch_string() +
                       ", the data has " + data.sample_shape().to_batch_string());
    if (data.size() < 1)
      throw Error(std::string("Sequential::") + where + ": the dataset is empty");
  }

  static std::vector<Index> all_indices(const Dataset<T>& data) {
    std::vector<Index> all(static_cast<std::size_t>(data.size()));
    std::iota(all.begin(), all.end(), Index{0});
    return all;
  }

  /// Runs inference over `indices` in batches; calls visit(position of the batch's first
  /// sample in `indices`, output of the batch).
  template <typename Visit>
  void for_each_batch(const Dataset<T>& data, const std::vector<Index>& indices, Index batch_size,
                      Visit&& visit) {
    const auto total = static_cast<Index>(indices.size());
    for (Index first = 0; first < total; first += batch_size) {
      const Index count = std::min(batch_size, total - first);
      data.gather(std::span<const Index>(indices).subspan(static_cast<std::size_t>(first),
                                                          static_cast<std::size_t>(count)),
                  batch_x_, batch_labels_);
      visit(first, forward(batch_x_, Mode::inference));
    }
  }

  Evaluation evaluate_indices(const Dataset<T>& data, const std::vector<Index>& indices,
                              Index batch_size) {
    if (batch_size < 1) throw Error("Sequential::evaluate: batch_size must be >= 1");
    // Distributed, each rank evaluates its part of the samples and the sums are added up.
    const Shard part = data_parallel_ ? data_parallel_->shard(static_cast<Index>(indices.size()))
                                      : Shard{0, static_cast<Index>(indices.size())};
    const std::vector<Index> mine(indices.begin() + part.first,
                                  indices.begin() + part.first + part.count);
    double sums[] = {0, 0};  // loss summed over the samples, correct predictions
    for_each_batch(data, mine, batch_size, [&](Index, const Tensor<T>& output) {
      sums[0] +=
          loss().compute(output, batch_labels_, nullptr) * static_cast<double>(output.dim(0));
      sums[1] += static_cast<double>(loss().count_correct(output, batch_labels_));
    });
    if (data_parallel_) data_parallel_->sum(sums);
    const auto n = static_cast<double>(indices.size());
    return {sums[0] / n, sums[1] / n, static_cast<Index>(indices.size())};
  }

  void backward_from_last() {
    for (std::size_t i = layers_.size(); i-- > 0;) {
      if (i > 0 && pooled_convolutions_[i - 1].conv) {  // layer i pools layer i - 1's output
        const auto [conv, pool] = pooled_convolutions_[--i];
        conv->backward_pooled(input_of(i), *pool, outputs_[i + 1], d_outputs_[i + 1],
                              i == 0 ? nullptr : &d_outputs_[i - 1]);
      } else {
        layers_[i]->backward(input_of(i), outputs_[i], d_outputs_[i],
                             i == 0 ? nullptr : &d_outputs_[i - 1]);
      }
      // Layers i.. are done: their gradients can be averaged while backward goes on.
      if (data_parallel_) data_parallel_->gradients_ready(i);
    }
  }

  /// A training step on this rank's part (x, labels) of a global batch of `global_count`
  /// samples: the gradients are averaged over the ranks (model/data_parallel.hpp) before the
  /// optimizer's step, which is then the same on every rank. A rank whose part is empty (a last
  /// batch smaller than the number of ranks) adds nothing to the sums, but takes the step too.
  double train_on_part(const Tensor<T>& x, std::span<const int> labels, Index* correct,
                       Index global_count) {
    const auto count = static_cast<Index>(labels.size());
    if (global_count < count)
      throw Error("Sequential::train_on_batch: the global batch of " +
                  std::to_string(global_count) + " samples is smaller than this rank's part (" +
                  std::to_string(count) + ")");
    data_parallel_->begin_gradients(static_cast<double>(count) / static_cast<double>(global_count));
    take_rank_engines();
    double batch_loss = 0;
    if (count > 0) {
      const Tensor<T>& output = forward(x, Mode::training);
      batch_loss = loss().compute(output, labels, &d_outputs_.back());
      if (correct) *correct += loss().count_correct(output, labels);
      backward_from_last();
    } else {
      data_parallel_->gradients_ready(0);
    }
    data_parallel_->finish_gradients();
    trainable_ = trainable_parameters();
    optimizer().step(trainable_);
    data_parallel_->after_update();
    return_shared_engines();
    return batch_loss;
  }

  /// The layers' own engines (Dropout's masks) in data-parallel training: the ranks must draw
  /// different masks for their different samples, yet agree on every engine between steps (a
  /// checkpoint stores rank 0's, and a resumed run gives it to every rank). So for each step,
  /// every rank splits `ranks` children off the engine they share and draws with child number
  /// `rank`; after the step, all go on from the shared engine so split.
  void take_rank_engines() {
    shared_engines_.clear();
    for (auto& l : layers_)
      if (Random* engine = l->random_engine()) {
        Random shared = *engine;
        for (int r = 0; r < data_parallel_->ranks(); ++r) {
          Random child = shared.split();
          if (r == data_parallel_->rank()) *engine = child;
        }
        shared_engines_.push_back(shared);
      }
  }
  void return_shared_engines() {
    std::size_t k = 0;
    for (auto& l : layers_)
      if (Random* engine = l->random_engine()) *engine = shared_engines_[k++];
  }

  /// Layer i's input in the latest forward pass.
  const Tensor<T>& input_of(std::size_t i) const { return i == 0 ? *input_ : outputs_[i - 1]; }

  static ProgressBar::Values epoch_values(const EpochLogs& logs) {
    ProgressBar::Values values{{"loss", logs.loss}, {"accuracy", logs.accuracy}};
    if (logs.val_loss) {
      values.emplace_back("val_loss", *logs.val_loss);
      values.emplace_back("val_accuracy", *logs.val_accuracy);
    }
    return values;
  }

  Shape input_shape_;
  Random rng_;
  std::vector<std::unique_ptr<Layer<T>>> layers_;
  std::map<std::string, int> name_counts_;
  std::unique_ptr<Loss<T>> loss_;
  std::unique_ptr<Optimizer<T>> optimizer_;
  bool stop_training_ = false;

  // Buffers reused from step to step.
  const Tensor<T>* input_ = nullptr;
  std::vector<Tensor<T>> outputs_;    // outputs_[i]: output of layer i
  std::vector<Tensor<T>> d_outputs_;  // d_outputs_[i]: dL/d outputs_[i]
  /// A Conv2D and the MaxPool2D after it that run fused, at the Conv2D's index.
  struct PooledConvolution {
    Conv2D<T>* conv = nullptr;
    MaxPool2D<T>* pool = nullptr;
  };
  std::vector<PooledConvolution> pooled_convolutions_;
  Tensor<T> batch_x_;
  std::vector<int> batch_labels_;
  std::vector<Parameter<T>*> trainable_;
  DataParallel<T>* data_parallel_ = nullptr;
  std::vector<Random> shared_engines_;  // see take_rank_engines
};

}  // namespace stratum
