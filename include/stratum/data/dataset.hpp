// Datasets: what `fit`, `evaluate` and `predict` read samples from.
//
// A dataset hands out batches by index, so that a large image collection can stay compact in
// memory (bytes, say) and be converted to the model's scalar type one batch at a time.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "../tensor.hpp"

namespace stratum {

template <typename T>
class Dataset {
 public:
  virtual ~Dataset() = default;
  [[nodiscard]] virtual Index size() const = 0;
  /// The shape of one sample, without the batch dimension.
  [[nodiscard]] virtual Shape sample_shape() const = 0;
  [[nodiscard]] virtual bool has_labels() const { return true; }
  /// Resizes x to (indices.size(), sample_shape...) and copies those samples and their labels.
  virtual void gather(std::span<const Index> indices, Tensor<T>& x,
                      std::vector<int>& labels) const = 0;
  /// Gathers samples [first, first + count) of `batch` as one part of gathering the whole
  /// batch (data-parallel training: each rank takes its part). A dataset that draws random
  /// numbers per sample (augmentation) advances as if the whole batch had been gathered and
  /// gives the part's samples the draws they have in the whole batch, so the transforms do not
  /// depend on how many ranks share the batch.
  virtual void gather_part(std::span<const Index> batch, std::size_t first, std::size_t count,
                           Tensor<T>& x, std::vector<int>& labels) const {
    gather(batch.subspan(first, count), x, labels);
  }

 protected:
  void check_index(Index i) const {
    if (i < 0 || i >= size())
      throw Error("Dataset: sample index " + std::to_string(i) + " is outside [0, " +
                  std::to_string(size()) + ")");
  }
};

/// A dataset over a tensor x of shape (N, ...) and N labels (or none, for prediction).
/// It does not copy: x and the labels must outlive it.
template <typename T>
class TensorDataset final : public Dataset<T> {
 public:
  TensorDataset(const Tensor<T>& x, std::span<const int> labels) : x_(x), labels_(labels) {
    if (x.rank() < 2)
      throw ShapeError("TensorDataset: samples need a batch dimension, received shape " +
                       x.shape().to_string());
    if (!labels.empty() && static_cast<Index>(labels.size()) != x.dim(0))
      throw ShapeError("TensorDataset: " + std::to_string(labels.size()) + " labels for " +
                       std::to_string(x.dim(0)) + " samples of shape " + x.shape().to_string());
  }
  explicit TensorDataset(const Tensor<T>& x) : TensorDataset(x, {}) {}

  [[nodiscard]] Index size() const override { return x_.dim(0); }
  [[nodiscard]] Shape sample_shape() const override { return x_.shape().without_batch(); }
  [[nodiscard]] bool has_labels() const override { return !labels_.empty(); }

  void gather(std::span<const Index> indices, Tensor<T>& x,
              std::vector<int>& labels) const override {
    const Index sample = x_.size() / x_.dim(0);
    x.resize(sample_shape().with_batch(static_cast<Index>(indices.size())));
    labels.resize(indices.size());
    for (std::size_t k = 0; k < indices.size(); ++k) {
      const Index i = indices[k];
      this->check_index(i);
      std::copy_n(x_.data() + i * sample, sample, x.data() + static_cast<Index>(k) * sample);
      labels[k] = labels_.empty() ? 0 : labels_[static_cast<std::size_t>(i)];
    }
  }

 private:
  const Tensor<T>& x_;
  std::span<const int> labels_;
};

}  // namespace stratum
