// GlobalAveragePooling2D: the mean of each channel over the whole image.
//
//   x (N, H, W, C)  ->  y (N, C)
//   forward   y[n,c] = (1 / (H*W)) sum_{i,j} x[n,i,j,c]
//   backward  dx[n,i,j,c] = dy[n,c] / (H*W)       (every pixel contributed equally)
//
// It replaces Flatten + a large Dense layer at the top of a convolutional network: the
// classifier then needs C weights per output instead of H*W*C.
#pragma once

#include "../parallel.hpp"
#include "layer.hpp"

namespace stratum {

template <typename T>
class GlobalAveragePooling2D final : public Layer<T> {
 public:
  [[nodiscard]] std::string type_name() const override { return "GlobalAveragePooling2D"; }

 protected:
  Shape do_build(const Shape& in, Random& /*rng*/) override {
    if (in.rank() != 3) this->fail_shape("(None, height, width, channels)", in);
    return {in[2]};
  }

  void do_forward(const Tensor<T>& x, Tensor<T>& y, Mode /*mode*/) override {
    const Index pixels = x.dim(1) * x.dim(2), channels = x.dim(3);
    const T inv = T(1) / T(pixels);
    parallel_for(x.dim(0), [&](Index n) {
      using Row = Eigen::Array<T, 1, Eigen::Dynamic>;
      using Image = Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
      Eigen::Map<const Image> image(x.data() + n * pixels * channels, pixels, channels);
      Eigen::Map<Row>(y.data() + n * channels, channels) = image.colwise().sum() * inv;
    });
  }

  void do_backward(const Tensor<T>& x, const Tensor<T>& /*y*/, const Tensor<T>& dy,
                   Tensor<T>* dx) override {
    if (!dx) return;
    const Index pixels = x.dim(1) * x.dim(2), channels = x.dim(3);
    const T inv = T(1) / T(pixels);
    parallel_for(x.dim(0), [&](Index n) {
      const T* d = dy.data() + n * channels;
      T* out = dx->data() + n * pixels * channels;
      for (Index p = 0; p < pixels; ++p)
        for (Index c = 0; c < channels; ++c) out[p * channels + c] = d[c] * inv;
    });
  }
};

}  // namespace stratum
