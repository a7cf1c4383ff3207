// Tensors: a shape and one contiguous, aligned buffer, viewed through Eigen.
//
// Activations are NHWC (batch, height, width, channels) with channels varying fastest, and
// convolution kernels are HWIO (kernel height, kernel width, input channels, output channels),
// the layouts Keras uses, so weights and intermediate values line up with it element by element.
// A Tensor owns its memory; Eigen sees it through maps (`view<R>()`, `matrix()`, `array()`)
// that never copy. `resize` keeps the allocation when the size does not grow, which is how the
// model reuses its activation and gradient buffers from one training step to the next.
#pragma once

#include <Eigen/Core>
#include <unsupported/Eigen/CXX11/Tensor>

#include <algorithm>
#include <array>
#include <cstddef>
#include <initializer_list>
#include <new>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "errors.hpp"

namespace stratum {

using Index = std::ptrdiff_t;

/// A tensor's dimensions, outermost first. Shapes of a single sample (without the batch
/// dimension) are printed with a leading `None`, as Keras prints them.
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<Index> dims) : dims_(dims) {}
  explicit Shape(std::vector<Index> dims) : dims_(std::move(dims)) {}

  [[nodiscard]] int rank() const { return static_cast<int>(dims_.size()); }
  [[nodiscard]] Index operator[](int axis) const { return dims_[static_cast<std::size_t>(axis)]; }
  [[nodiscard]] const std::vector<Index>& dims() const { return dims_; }

  /// Product of the dimensions: the number of elements (1 for a rank-0 shape).
  [[nodiscard]] Index num_elements() const {
    return std::accumulate(dims_.begin(), dims_.end(), Index{1}, std::multiplies<>());
  }

  /// This shape with `batch` prepended: the shape of a batch of samples of this shape.
  [[nodiscard]] Shape with_batch(Index batch) const {
    std::vector<Index> dims{batch};
    dims.insert(dims.end(), dims_.begin(), dims_.end());
    return Shape(std::move(dims));
  }

  /// This shape without its first dimension.
  [[nodiscard]] Shape without_batch() const {
    return Shape(std::vector<Index>(dims_.begin() + (dims_.empty() ? 0 : 1), dims_.end()));
  }

  friend bool operator==(const Shape&, const Shape&) = default;

  /// "(32, 128, 128, 3)"
  [[nodiscard]] std::string to_string() const { return format(""); }
  /// "(None, 128, 128, 3)": for shapes that exclude the batch dimension.
  [[nodiscard]] std::string to_batch_string() const { return format("None"); }

 private:
  [[nodiscard]] std::string format(const char* leading) const {
    std::ostringstream out;
    out << '(' << leading;
    bool first = *leading == '\0';
    for (Index d : dims_) {
      out << (first ? "" : ", ") << d;
      first = false;
    }
    if (dims_.size() == 1 && *leading == '\0') out << ',';
    out << ')';
    return out.str();
  }

  std::vector<Index> dims_;
};

/// Allocates on 64-byte boundaries (a cache line, one AVX-512 vector) whatever the build's
/// flags. Eigen's aligned_allocator aligns to what the build's own vectors need, 16 bytes
/// without -march, and glibc puts a large block 16 bytes past a page boundary: then, in a
/// portable build that runs the AVX-512 kernels (chosen at run time), every 64-byte load and
/// store straddles two cache lines.
template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t alignment{64};

  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), alignment)); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, alignment); }
  template <typename U>
  bool operator==(const CacheLineAllocator<U>&) const noexcept {
    return true;
  }
};

template <typename T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <typename T>
class Tensor {
 public:
  using Scalar = T;

  Tensor() = default;
  explicit Tensor(const Shape& shape) { resize(shape); }
  Tensor(const Shape& shape, std::initializer_list<T> values) : Tensor(shape) {
    if (static_cast<Index>(values.size()) != size())
      throw ShapeError("Tensor: " + std::to_string(values.size()) + " values given for shape " +
                       shape.to_string());
    std::copy(values.begin(), values.end(), data_.begin());
  }

  /// Gives the tensor a new shape. The buffer is reallocated only if it must grow; the
  /// contents are unspecified afterwards unless the size is unchanged.
  void resize(const Shape& shape) {
    shape_ = shape;
    data_.resize(static_cast<std::size_t>(shape.num_elements()));
  }

  /// Same data, new shape with the same number of elements.
  void reshape(const Shape& shape) {
    if (shape.num_elements() != size())
      throw ShapeError("Tensor::reshape: cannot view " + shape_.to_string() + " as " +
                       shape.to_string());
    shape_ = shape;
  }

  void set_zero() { std::fill(data_.begin(), data_.end(), T(0)); }
  void fill(T value) { std::fill(data_.begin(), data_.end(), value); }

  [[nodiscard]] const Shape& shape() const { return shape_; }
  [[nodiscard]] int rank() const { return shape_.rank(); }
  [[nodiscard]] Index dim(int axis) const { return shape_[axis]; }
  [[nodiscard]] Index size() const { return static_cast<Index>(data_.size()); }
  [[nodiscard]] T* data() { return data_.data(); }
  [[nodiscard]] const T* data() const { return data_.data(); }
  T& operator[](Index i) { return data_[static_cast<std::size_t>(i)]; }
  const T& operator[](Index i) const { return data_[static_cast<std::size_t>(i)]; }
  [[nodiscard]] auto begin() { return data_.begin(); }
  [[nodiscard]] auto end() { return data_.end(); }
  [[nodiscard]] auto begin() const { return data_.begin(); }
  [[nodiscard]] auto end() const { return data_.end(); }

  /// An Eigen::TensorMap of rank R over the buffer (row-major, so the last index is fastest).
  template <int R>
  [[nodiscard]] Eigen::TensorMap<Eigen::Tensor<T, R, Eigen::RowMajor, Index>> view() {
    check_rank(R);
    return {data(), dims_array<R>()};
  }
  template <int R>
  [[nodiscard]] Eigen::TensorMap<const Eigen::Tensor<T, R, Eigen::RowMajor, Index>> view() const {
    check_rank(R);
    return {data(), dims_array<R>()};
  }

  /// The tensor as a row-major matrix: one row per sample (the first dimension).
  [[nodiscard]] Eigen::Map<RowMatrix<T>> matrix() { return {data(), rows(), cols()}; }
  [[nodiscard]] Eigen::Map<const RowMatrix<T>> matrix() const { return {data(), rows(), cols()}; }

  /// The whole buffer as a flat Eigen array, for element-wise work.
  [[nodiscard]] Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> array() { return {data(), size()}; }
  [[nodiscard]] Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> array() const {
    return {data(), size()};
  }

 private:
  [[nodiscard]] Index rows() const { return rank() == 0 ? 1 : dim(0); }
  [[nodiscard]] Index cols() const { return rows() == 0 ? 0 : size() / rows(); }

  void check_rank(int r) const {
    if (rank() != r)
      throw ShapeError("Tensor of shape " + shape_.to_string() + " viewed with rank " +
                       std::to_string(r));
  }
  template <int R>
  [[nodiscard]] std::array<Index, R> dims_array() const {
    std::array<Index, R> dims{};
    for (int i = 0; i < R; ++i) dims[static_cast<std::size_t>(i)] = dim(i);
    return dims;
  }

  Shape shape_;
  AlignedVector<T> data_;
};

}  // namespace stratum
