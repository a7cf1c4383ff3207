// BatchNormalization (Ioffe & Szegedy, 2015) over the last axis, with Keras' behaviour and
// defaults (momentum 0.99, epsilon 1e-3).
//
// x is seen as M rows of C channels (M = N*H*W for an NHWC image batch). Per channel c:
//
//   training   mu = (1/M) sum_m x[m,c]          var = (1/M) sum_m (x[m,c] - mu)^2   (biased)
//              xhat = (x - mu) / sqrt(var + eps)        y = gamma * xhat + beta
//              moving_mean     = momentum * moving_mean     + (1 - momentum) * mu
//              moving_variance = momentum * moving_variance + (1 - momentum) * var
//   inference  the same y with mu, var replaced by moving_mean, moving_variance
//
//   backward (training; mu and var depend on every x of the channel, hence the two sums):
//              dbeta  = sum_m dy        dgamma = sum_m dy * xhat
//              dx     = gamma / sqrt(var + eps) * (dy - dbeta / M - xhat * dgamma / M)
//   backward (inference; mu and var are constants):  dx = gamma / sqrt(var + eps) * dy
// (the derivation is in docs/backprop.md). The moving statistics are non-trainable weights:
// saved with the model, never updated by the optimizer.
#pragma once

#include <cmath>
#include <vector>

#include "../kernels/simd_path.hpp"
#include "../parallel.hpp"
#include "layer.hpp"

namespace stratum {

namespace detail {

/// sums[0 .. width) = sum over rows of what add_row(row, partial) adds into `partial`, in
/// parallel over the slots of a reduction (parallel.hpp). Partial sums are in double and
/// combined in slot order, so a thread count always gives the same result.
template <typename AddRow>
void sum_over_rows(Index rows, Index width, std::vector<double>& sums, AddRow&& add_row) {
  const Index slots = reduction_slots(rows, width);
  std::vector<double> partials(static_cast<std::size_t>(slots * width), 0.0);
  parallel_for_slots(rows, slots, [&](Index slot, Index begin, Index end) {
    double* partial = partials.data() + slot * width;
    kernels::vectorized([&] {  // the channel loops use the CPU's widest vectors
      for (Index row = begin; row < end; ++row) add_row(row, partial);
    });
  });
  sums.assign(static_cast<std::size_t>(width), 0.0);
  for (Index t = 0; t < slots; ++t)
    for (Index i = 0; i < width; ++i)
      sums[static_cast<std::size_t>(i)] += partials[static_cast<std::size_t>(t * width + i)];
}

}  // namespace detail

template <typename T>
class BatchNormalization final : public Layer<T> {
 public:
  explicit BatchNormalization(double momentum = 0.99, double epsilon = 1e-3)
      : momentum_(momentum), epsilon_(epsilon) {
    if (!(momentum >= 0.0 && momentum <= 1.0))
      throw Error("BatchNormalization: momentum must be in [0, 1], got " +
                  std::to_string(momentum));
    if (!(epsilon > 0.0)) throw Error("BatchNormalization: epsilon must be positive");
  }

  [[nodiscard]] std::string type_name() const override { return "BatchNormalization"; }
  [[nodiscard]] LayerConfig config() const override {
    return {type_name(), {{"momentum", momentum_}, {"epsilon", epsilon_}}};
  }
  std::vector<Parameter<T>*> parameters() override {
    return {&gamma_, &beta_, &moving_mean_, &moving_variance_};
  }
  Parameter<T>& gamma() { return gamma_; }
  Parameter<T>& beta() { return beta_; }
  Parameter<T>& moving_mean() { return moving_mean_; }
  Parameter<T>& moving_variance() { return moving_variance_; }

 protected:
  Shape do_build(const Shape& in, Random& /*rng*/) override {
    if (in.rank() < 1) this->fail_shape("(None, ..., channels)", in);
    channels_ = in[in.rank() - 1];
    gamma_.name = "gamma";
    beta_.name = "beta";
    moving_mean_.name = "moving_mean";
    moving_variance_.name = "moving_variance";
    for (auto* p : parameters()) p->allocate({channels_});
    gamma_.value.fill(T(1));
    moving_variance_.value.fill(T(1));
    moving_mean_.trainable = moving_variance_.trainable = false;
    return in;
  }

  void do_forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override {
    const Index rows = x.size() / channels_;
    const auto C = static_cast<std::size_t>(channels_);
    batch_statistics_ = mode == Mode::training;
    mean_.resize(C);
    inv_std_.resize(C);
    if (batch_statistics_) {
      std::vector<double> sums;
      detail::sum_over_rows(rows, channels_, sums, [&](Index row, double* acc) {
        const T* xr = x.data() + row * channels_;
        for (Index c = 0; c < channels_; ++c) acc[c] += double(xr[c]);
      });
      for (std::size_t c = 0; c < C; ++c) mean_[c] = sums[c] / double(rows);
      // Two passes (mean, then squared deviations) rather than E[x^2] - E[x]^2, which cancels.
      detail::sum_over_rows(rows, channels_, sums, [&](Index row, double* acc) {
        const T* xr = x.data() + row * channels_;
        for (Index c = 0; c < channels_; ++c) {
          const double d = double(xr[c]) - mean_[static_cast<std::size_t>(c)];
          acc[c] += d * d;
        }
      });
      for (std::size_t c = 0; c < C; ++c) {
        const double variance = sums[c] / double(rows);
        inv_std_[c] = 1.0 / std::sqrt(variance + epsilon_);
        const auto i = static_cast<Index>(c);
        moving_mean_.value[i] =
            T(momentum_ * double(moving_mean_.value[i]) + (1 - momentum_) * mean_[c]);
        moving_variance_.value[i] =
            T(momentum_ * double(moving_variance_.value[i]) + (1 - momentum_) * variance);
      }
    } else {
      for (std::size_t c = 0; c < C; ++c) {
        const auto i = static_cast<Index>(c);
        mean_[c] = double(moving_mean_.value[i]);
        inv_std_[c] = 1.0 / std::sqrt(double(moving_variance_.value[i]) + epsilon_);
      }
    }
    // y = x * scale + shift, with scale = gamma / sqrt(var + eps), shift = beta - mu * scale.
    scale_.resize(C);
    shift_.resize(C);
    for (std::size_t c = 0; c < C; ++c) {
      const auto i = static_cast<Index>(c);
      scale_[c] = T(double(gamma_.value[i]) * inv_std_[c]);
      shift_[c] = T(double(beta_.value[i]) - mean_[c] * double(gamma_.value[i]) * inv_std_[c]);
    }
    for_row_blocks(rows, [&](Index row) {
      const T* xr = x.data() + row * channels_;
      T* yr = y.data() + row * channels_;
      for (Index c = 0; c < channels_; ++c)
        yr[c] = xr[c] * scale_[static_cast<std::size_t>(c)] + shift_[static_cast<std::size_t>(c)];
    });
  }

  void do_backward(const Tensor<T>& x, const Tensor<T>& /*y*/, const Tensor<T>& dy,
                   Tensor<T>* dx) override {
    const Index rows = x.size() / channels_;
    const auto C = static_cast<std::size_t>(channels_);
    std::vector<double> sums;  // [0, C): sum dy; [C, 2C): sum dy * xhat
    detail::sum_over_rows(rows, 2 * channels_, sums, [&](Index row, double* acc) {
      const T* xr = x.data() + row * channels_;
      const T* dyr = dy.data() + row * channels_;
      for (Index c = 0; c < channels_; ++c) {
        const auto k = static_cast<std::size_t>(c);
        acc[c] += double(dyr[c]);
        acc[channels_ + c] += double(dyr[c]) * (double(xr[c]) - mean_[k]) * inv_std_[k];
      }
    });
    for (std::size_t c = 0; c < C; ++c) {
      beta_.grad[static_cast<Index>(c)] = T(sums[c]);
      gamma_.grad[static_cast<Index>(c)] = T(sums[C + c]);
    }
    if (!dx) return;
    // dx = scale * (dy - a - xhat * b): a = dbeta / M and b = dgamma / M in training, where the
    // batch statistics carry the gradient back to every input; 0 in inference.
    std::vector<T> a(C, T(0)), b(C, T(0)), center(C), inv_std(C);
    for (std::size_t c = 0; c < C; ++c) {
      if (batch_statistics_) {
        a[c] = T(sums[c] / double(rows));
        b[c] = T(sums[C + c] / double(rows));
      }
      center[c] = T(mean_[c]);
      inv_std[c] = T(inv_std_[c]);
    }
    for_row_blocks(rows, [&](Index row) {
      const T* xr = x.data() + row * channels_;
      const T* dyr = dy.data() + row * channels_;
      T* dxr = dx->data() + row * channels_;
      for (Index c = 0; c < channels_; ++c) {
        const auto k = static_cast<std::size_t>(c);
        const T xhat = (xr[c] - center[k]) * inv_std[k];
        dxr[c] = scale_[k] * (dyr[c] - a[k] - xhat * b[k]);
      }
    });
  }

 private:
  /// Runs body(row) for every row, in blocks spread over the threads.
  template <typename Body>
  void for_row_blocks(Index rows, Body&& body) const {
    const Index block = std::max<Index>(1, (Index{1} << 14) / channels_);
    parallel_for_blocks(rows, block, [&](Index begin, Index end) {
      kernels::vectorized([&] {  // the channel loops use the CPU's widest vectors
        for (Index row = begin; row < end; ++row) body(row);
      });
    });
  }

  double momentum_, epsilon_;
  Index channels_ = 0;
  Parameter<T> gamma_, beta_, moving_mean_, moving_variance_;
  // From the latest forward pass, for backward: the statistics it normalised with.
  bool batch_statistics_ = false;
  std::vector<double> mean_, inv_std_;
  std::vector<T> scale_, shift_;
};

}  // namespace stratum
