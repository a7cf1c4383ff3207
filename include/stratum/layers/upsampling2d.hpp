// UpSampling2D: nearest-neighbour upsampling by whole factors, as Keras' UpSampling2D with
// interpolation "nearest".
//
//   x (N, H, W, C)  ->  y (N, H*fh, W*fw, C)            factors (fh, fw) >= 1
//
//   forward   y[n, i, j, c] = x[n, floor(i / fh), floor(j / fw), c]
//   backward  each x[n,p,q,c] is copied to the fh x fw block of outputs
//             {(p*fh + a, q*fw + b) : 0 <= a < fh, 0 <= b < fw}, and nowhere else, so
//             dx[n, p, q, c] = sum_{a < fh, b < fw} dy[n, p*fh + a, q*fw + b, c]
//
// In NHWC a pixel's C channels are contiguous, so forward copies whole pixels (one output row
// is made once per input row and then copied fh - 1 times) and backward adds whole pixels.
// Threads take input rows (n, p): each writes its own fh output rows, or its own dx row.
#pragma once

#include <algorithm>

#include "../kernels/conv2d_geometry.hpp"
#include "../kernels/simd_path.hpp"
#include "../parallel.hpp"
#include "layer.hpp"

namespace stratum {

template <typename T>
class UpSampling2D final : public Layer<T> {
 public:
  /// `size`: the factors (fh, fw) along height and width; one number means both.
  explicit UpSampling2D(Size2 size = 2) : size_(size) {
    if (size.h < 1 || size.w < 1)
      throw Error("UpSampling2D: the factors must be positive, got " + std::to_string(size.h) +
                  "x" + std::to_string(size.w));
  }

  [[nodiscard]] std::string type_name() const override { return "UpSampling2D"; }
  [[nodiscard]] LayerConfig config() const override {
    return {type_name(), {{"size_h", double(size_.h)}, {"size_w", double(size_.w)}}};
  }
  [[nodiscard]] Size2 size() const { return size_; }

 protected:
  Shape do_build(const Shape& in, Random& /*rng*/) override {
    if (in.rank() != 3) this->fail_shape("(None, height, width, channels)", in);
    return {in[0] * size_.h, in[1] * size_.w, in[2]};
  }

  void do_forward(const Tensor<T>& x, Tensor<T>& y, Mode /*mode*/) override {
    const Index H = x.dim(1), W = x.dim(2), C = x.dim(3), fh = size_.h, fw = size_.w;
    const Index out_row = W * fw * C;
    parallel_for(x.dim(0) * H, [&](Index row) {  // row = n * H + p
      const T* in = x.data() + row * W * C;
      T* out = y.data() + row * fh * out_row;  // output row n * H * fh + p * fh
      for (Index q = 0; q < W; ++q)
        for (Index b = 0; b < fw; ++b)
          std::copy(in + q * C, in + (q + 1) * C, out + (q * fw + b) * C);
      for (Index a = 1; a < fh; ++a) std::copy(out, out + out_row, out + a * out_row);
    });
  }

  void do_backward(const Tensor<T>& x, const Tensor<T>& /*y*/, const Tensor<T>& dy,
                   Tensor<T>* dx) override {
    if (!dx) return;
    const Index H = x.dim(1), W = x.dim(2), C = x.dim(3), fh = size_.h, fw = size_.w;
    const Index out_row = W * fw * C;
    parallel_for(x.dim(0) * H, [&](Index row) {
      const T* block_rows = dy.data() + row * fh * out_row;  // the fh rows of dy this row fed
      T* d_in = dx->data() + row * W * C;
      kernels::vectorized([&] {  // the channel loops use the path's vectors (simd_path.hpp)
        for (Index q = 0; q < W; ++q) {
          T* sum = d_in + q * C;
          const T* first = block_rows + q * fw * C;
          std::copy(first, first + C, sum);
          for (Index a = 0; a < fh; ++a)
            for (Index b = a == 0 ? 1 : 0; b < fw; ++b) {
              const T* d = block_rows + a * out_row + (q * fw + b) * C;
              for (Index c = 0; c < C; ++c) sum[c] += d[c];
            }
        }
      });
    });
  }

 private:
  Size2 size_;
};

}  // namespace stratum
