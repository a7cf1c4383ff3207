// The interface every layer implements.
//
// A layer is built once for the shape of one sample (without the batch dimension), which
// validates the shape, allocates and initialises its parameters and fixes its output shape.
// After that it maps a batch x to a batch y (forward), and, given dL/dy, computes dL/dx and the
// gradients of its parameters (backward). Backward *overwrites* the parameter gradients with
// those of the current batch.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../random.hpp"
#include "../tensor.hpp"

namespace stratum {

/// Dropout and friends behave differently while training.
enum class Mode { training, inference };

/// A layer's weight tensor and the gradient of the loss with respect to it. Most weights are
/// trained; a few (BatchNormalization's running statistics) are state the layer updates itself:
/// saved with the model, counted as "non-trainable", never touched by an optimizer.
template <typename T>
struct Parameter {
  std::string name;  // "kernel", "bias", "gamma", "moving_mean", ...
  Tensor<T> value;
  Tensor<T> grad;
  bool trainable = true;
  /// Whether weight decay (AdamW's) shrinks it: kernels yes; biases and normalisation no.
  bool decayed = false;

  void allocate(const Shape& shape) {
    value.resize(shape);
    value.set_zero();
    grad.resize(shape);
    grad.set_zero();
  }
};

/// A layer's type and hyper-parameters: everything needed to build it again (model files
/// store it). Values are numbers; enums are stored as their integer value.
struct LayerConfig {
  std::string type;
  std::vector<std::pair<std::string, double>> values;

  [[nodiscard]] double get(const std::string& key) const {
    for (const auto& [k, v] : values)
      if (k == key) return v;
    throw Error("layer " + type + ": configuration has no '" + key + "'");
  }
};

template <typename T>
class Layer {
 public:
  virtual ~Layer() = default;

  /// The Keras class name: "Conv2D", "Dense", ...
  [[nodiscard]] virtual std::string type_name() const = 0;
  /// The Keras-style instance name, "conv2d_1"; assigned by the model.
  [[nodiscard]] const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

  /// Validates `input_shape` (per sample), allocates and initialises parameters from `rng`,
  /// and returns the output shape per sample. Throws ShapeError naming this layer.
  Shape build(const Shape& input_shape, Random& rng) {
    input_shape_ = input_shape;
    output_shape_ = do_build(input_shape, rng);
    return output_shape_;
  }

  [[nodiscard]] const Shape& input_shape() const { return input_shape_; }
  [[nodiscard]] const Shape& output_shape() const { return output_shape_; }

  /// y = layer(x) for a batch x of shape (N, input_shape...). Resizes y.
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) {
    check_input(x);
    y.resize(output_shape_.with_batch(x.dim(0)));
    do_forward(x, y, mode);
  }

  /// Given x, y = forward(x) and dy = dL/dy, sets every parameter gradient to dL/dparameter and,
  /// unless `dx` is null (the first layer needs no input gradient), dx = dL/dx.
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy, Tensor<T>* dx) {
    check_input(x);
    if (dy.shape() != y.shape())
      throw ShapeError(describe() + ": backward received a gradient of shape " +
                       dy.shape().to_string() + " for an output of shape " +
                       y.shape().to_string());
    if (dx) dx->resize(x.shape());
    do_backward(x, y, dy, dx);
  }

  /// The hyper-parameters that rebuild this layer (see LayerConfig).
  [[nodiscard]] virtual LayerConfig config() const { return {type_name(), {}}; }

  /// Every weight tensor, trainable or not, in Keras' order (empty for layers without any).
  virtual std::vector<Parameter<T>*> parameters() { return {}; }

  /// The number of weights; with `trainable_only`, only those an optimizer updates.
  [[nodiscard]] Index parameter_count(bool trainable_only = false) {
    Index count = 0;
    for (auto* p : parameters())
      if (p->trainable || !trainable_only) count += p->value.size();
    return count;
  }

  /// The layer's own random engine, if it draws numbers while training (Dropout); its state
  /// belongs in a checkpoint.
  virtual Random* random_engine() { return nullptr; }

  /// "Conv2D 'conv2d_1'": how error messages name the layer.
  [[nodiscard]] std::string describe() const {
    return type_name() + (name_.empty() ? "" : " '" + name_ + "'");
  }

 protected:
  virtual Shape do_build(const Shape& input_shape, Random& rng) = 0;
  virtual void do_forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) = 0;
  virtual void do_backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                           Tensor<T>* dx) = 0;

  [[noreturn]] void fail_shape(const std::string& expected, const Shape& received) const {
    throw ShapeError(describe() + " expects input of shape " + expected + ", received " +
                     received.to_batch_string());
  }

  void check_input(const Tensor<T>& x) const {
    if (x.rank() != input_shape_.rank() + 1 || x.shape().without_batch() != input_shape_ ||
        x.dim(0) < 1)
      throw ShapeError(describe() + " expects input of shape " + input_shape_.to_batch_string() +
                       ", received " + x.shape().to_string());
  }

 private:
  std::string name_;
  Shape input_shape_;
  Shape output_shape_;
};

}  // namespace stratum
