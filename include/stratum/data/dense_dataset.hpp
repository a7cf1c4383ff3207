// Datasets for models with several inputs and outputs trained against dense targets (a
// detector's heatmaps and box maps): what GraphModel's fit / evaluate / predict read.
//
// A sample is one tensor per model input, one target tensor per model output and, for each
// output that has one, a mask (DenseLoss: the target's shape with trailing dimensions
// possibly 1; 1 where the loss applies, 0 where it does not). As Dataset, it hands out batches
// by index, so a large collection stays compact and is converted one batch at a time.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "../tensor.hpp"

namespace stratum {

/// One batch: tensors (N, ...) for every input and output, kept by the model between steps
/// (`resize` keeps their memory), so gathering allocates nothing in steady state.
template <typename T>
struct DenseBatch {
  std::vector<Tensor<T>> inputs;   // one per model input
  std::vector<Tensor<T>> targets;  // one per model output
  std::vector<Tensor<T>> masks;    // one per model output; meaningful where has_mask is true
  std::vector<bool> has_mask;      // one per model output

  /// The mask of output `o`, or null when that output has none (every position counts).
  [[nodiscard]] const Tensor<T>* mask(std::size_t o) const {
    return o < has_mask.size() && has_mask[o] ? &masks[o] : nullptr;
  }
};

template <typename T>
class DenseDataset {
 public:
  virtual ~DenseDataset() = default;
  [[nodiscard]] virtual Index size() const = 0;
  /// The shape of one sample of each input, without the batch dimension.
  [[nodiscard]] virtual std::vector<Shape> input_shapes() const = 0;
  /// The shape of one sample's target for each output (empty when there are no targets).
  [[nodiscard]] virtual std::vector<Shape> target_shapes() const = 0;
  [[nodiscard]] bool has_targets() const { return !target_shapes().empty(); }
  /// Resizes and fills batch.inputs, and (when the dataset has targets) batch.targets,
  /// batch.masks and batch.has_mask, with the samples at `indices`, in that order.
  virtual void gather(std::span<const Index> indices, DenseBatch<T>& batch) const = 0;

 protected:
  void check_index(Index i) const {
    if (i < 0 || i >= size())
      throw Error("DenseDataset: sample index " + std::to_string(i) + " is outside [0, " +
                  std::to_string(size()) + ")");
  }
};

/// A dense dataset held in memory: tensors (N, ...) for each input, and optionally for each
/// target and mask (an empty Tensor for an output without a mask). It owns its tensors.
template <typename T>
class TensorDenseDataset final : public DenseDataset<T> {
 public:
  explicit TensorDenseDataset(std::vector<Tensor<T>> inputs, std::vector<Tensor<T>> targets = {},
                              std::vector<Tensor<T>> masks = {})
      : inputs_(std::move(inputs)), targets_(std::move(targets)), masks_(std::move(masks)) {
    if (inputs_.empty()) throw Error("TensorDenseDataset: no input tensors");
    if (!masks_.empty() && masks_.size() != targets_.size())
      throw Error("TensorDenseDataset: " + std::to_string(masks_.size()) + " masks for " +
                  std::to_string(targets_.size()) + " targets");
    masks_.resize(targets_.size());
    const Index n = inputs_[0].rank() >= 1 ? inputs_[0].dim(0) : 0;
    auto check = [&](const Tensor<T>& t, const std::string& what) {
      if (t.rank() < 2 || t.dim(0) != n)
        throw ShapeError("TensorDenseDataset: " + what + " of shape " + t.shape().to_string() +
                         " for " + std::to_string(n) + " samples");
    };
    for (std::size_t i = 0; i < inputs_.size(); ++i)
      check(inputs_[i], "input " + std::to_string(i + 1));
    for (std::size_t o = 0; o < targets_.size(); ++o) {
      check(targets_[o], "target " + std::to_string(o + 1));
      if (masks_[o].size() > 0) check(masks_[o], "mask " + std::to_string(o + 1));
    }
  }

  [[nodiscard]] Index size() const override { return inputs_[0].dim(0); }
  [[nodiscard]] std::vector<Shape> input_shapes() const override { return shapes(inputs_); }
  [[nodiscard]] std::vector<Shape> target_shapes() const override { return shapes(targets_); }

  void gather(std::span<const Index> indices, DenseBatch<T>& batch) const override {
    for (Index i : indices) this->check_index(i);
    batch.inputs.resize(inputs_.size());
    for (std::size_t k = 0; k < inputs_.size(); ++k)
      copy_rows(inputs_[k], indices, batch.inputs[k]);
    batch.targets.resize(targets_.size());
    batch.masks.resize(targets_.size());
    batch.has_mask.assign(targets_.size(), false);
    for (std::size_t o = 0; o < targets_.size(); ++o) {
      copy_rows(targets_[o], indices, batch.targets[o]);
      batch.has_mask[o] = masks_[o].size() > 0;
      if (batch.has_mask[o]) copy_rows(masks_[o], indices, batch.masks[o]);
    }
  }

 private:
  static std::vector<Shape> shapes(const std::vector<Tensor<T>>& tensors) {
    std::vector<Shape> result;
    for (const auto& t : tensors) result.push_back(t.shape().without_batch());
    return result;
  }

  static void copy_rows(const Tensor<T>& from, std::span<const Index> indices, Tensor<T>& to) {
    const Index row = from.size() / from.dim(0);
    to.resize(from.shape().without_batch().with_batch(static_cast<Index>(indices.size())));
    for (std::size_t k = 0; k < indices.size(); ++k)
      std::copy_n(from.data() + indices[k] * row, row, to.data() + static_cast<Index>(k) * row);
  }

  std::vector<Tensor<T>> inputs_, targets_, masks_;
};

}  // namespace stratum
