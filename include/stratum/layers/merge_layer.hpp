// The interface of a layer that takes several inputs (Add, Concatenate): the graph model's
// counterpart of Layer<T> for the nodes where branches meet.
//
// Like Layer<T> it is built once for the per-sample shapes of its inputs (which checks them and
// fixes the output shape), then maps a batch (x_1, ..., x_k) to y and, given dL/dy, computes
// every dL/dx_i. Merge layers have no weights and behave the same in training and inference.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "layer.hpp"

namespace stratum {

template <typename T>
class MergeLayer {
 public:
  virtual ~MergeLayer() = default;

  /// The Keras class name: "Add", "Concatenate".
  [[nodiscard]] virtual std::string type_name() const = 0;
  /// The Keras-style instance name, "add_1"; assigned by the model.
  [[nodiscard]] const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  /// "Add 'add_1'": how error messages name the layer.
  [[nodiscard]] std::string describe() const {
    return type_name() + (name_.empty() ? "" : " '" + name_ + "'");
  }

  /// Validates the per-sample `input_shapes` (at least two) and returns the output shape per
  /// sample. Throws ShapeError naming this layer and every shape it was given.
  Shape build(const std::vector<Shape>& input_shapes) {
    if (input_shapes.size() < 2)
      throw ShapeError(describe() + " needs at least two inputs, received " +
                       std::to_string(input_shapes.size()));
    input_shapes_ = input_shapes;
    output_shape_ = do_build(input_shapes);
    return output_shape_;
  }

  [[nodiscard]] const std::vector<Shape>& input_shapes() const { return input_shapes_; }
  [[nodiscard]] const Shape& output_shape() const { return output_shape_; }

  /// y = layer(x_1, ..., x_k) for batches of the built shapes. Resizes y.
  void forward(std::span<const Tensor<T>* const> xs, Tensor<T>& y) {
    check_inputs(xs);
    y.resize(output_shape_.with_batch(xs[0]->dim(0)));
    do_forward(xs, y);
  }

  /// Given the inputs and dy = dL/dy, sets dxs[i] = dL/dx_i for every non-null dxs[i] (an input
  /// straight from the data needs no gradient).
  void backward(std::span<const Tensor<T>* const> xs, const Tensor<T>& dy,
                std::span<Tensor<T>* const> dxs) {
    check_inputs(xs);
    if (dxs.size() != xs.size())
      throw Error(describe() + ": backward received " + std::to_string(dxs.size()) +
                  " gradient buffers for " + std::to_string(xs.size()) + " inputs");
    if (dy.shape() != output_shape_.with_batch(xs[0]->dim(0)))
      throw ShapeError(describe() + ": backward received a gradient of shape " +
                       dy.shape().to_string() + " for an output of shape " +
                       output_shape_.with_batch(xs[0]->dim(0)).to_string());
    for (std::size_t i = 0; i < xs.size(); ++i)
      if (dxs[i]) dxs[i]->resize(xs[i]->shape());
    do_backward(xs, dy, dxs);
  }

  /// The hyper-parameters that rebuild this layer (see LayerConfig).
  [[nodiscard]] virtual LayerConfig config() const { return {type_name(), {}}; }

 protected:
  virtual Shape do_build(const std::vector<Shape>& input_shapes) = 0;
  virtual void do_forward(std::span<const Tensor<T>* const> xs, Tensor<T>& y) = 0;
  virtual void do_backward(std::span<const Tensor<T>* const> xs, const Tensor<T>& dy,
                           std::span<Tensor<T>* const> dxs) = 0;

  /// "(None, 8, 8, 16), (None, 8, 8, 8)": the shapes a merge layer was given, for its errors.
  static std::string list_shapes(const std::vector<Shape>& shapes) {
    std::string text;
    for (const auto& s : shapes) text += (text.empty() ? "" : ", ") + s.to_batch_string();
    return text;
  }

 private:
  void check_inputs(std::span<const Tensor<T>* const> xs) const {
    if (xs.size() != input_shapes_.size())
      throw ShapeError(describe() + " expects " + std::to_string(input_shapes_.size()) +
                       " inputs, received " + std::to_string(xs.size()));
    for (std::size_t i = 0; i < xs.size(); ++i)
      if (xs[i]->rank() != input_shapes_[i].rank() + 1 ||
          xs[i]->shape().without_batch() != input_shapes_[i] || xs[i]->dim(0) != xs[0]->dim(0) ||
          xs[i]->dim(0) < 1)
        throw ShapeError(describe() + " expects input " + std::to_string(i + 1) + " of shape " +
                         input_shapes_[i].to_batch_string() + " with a batch of " +
                         std::to_string(xs[0]->dim(0)) + ", received " +
                         xs[i]->shape().to_string());
  }

  std::string name_;
  std::vector<Shape> input_shapes_;
  Shape output_shape_;
};

}  // namespace stratum
