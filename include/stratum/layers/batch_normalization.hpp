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

/// How many rows the loops below take at a time, as one strip of consecutive values: a loop
/// over a strip is one long vectorised loop, where a loop over each row's C channels (16 in
/// the compact network's first layers) was a short loop per row that loaded and stored the
/// row's C double sums every time. A per-channel quantity is read from a pattern as long as a
/// strip (strip_pattern).
inline Index strip_rows(Index channels) {
  return std::max<Index>(1, 512 / std::max<Index>(channels, 1));
}

/// `values` (one per channel) repeated over `rows` rows: pattern[r * C + c] = values[c].
template <typename S, typename V>
std::vector<S> strip_pattern(const std::vector<V>& values, Index rows) {
  std::vector<S> pattern;
  pattern.reserve(values.size() * static_cast<std::size_t>(rows));
  for (Index r = 0; r < rows; ++r)
    for (const V& v : values) pattern.push_back(static_cast<S>(v));
  return pattern;
}

/// sums[t * C + c] = the sum over all rows of term t of channel c, for t < terms: in double,
/// in parallel over the slots of a reduction (parallel.hpp). Each slot adds its rows strip by
/// strip: add_strip(first, count, acc, strip) adds term t of value first + s (s < count,
/// whole rows) to acc[t * strip + s]; the strip's rows are then summed per channel into the
/// slot's partial sums, which follow its accumulators in its buffer of `scratch`. Partial sums
/// are combined in slot order (sum_slots), so a thread count always gives the same result.
template <typename AddStrip>
void sum_over_strips(Index rows, Index channels, Index terms, ThreadScratch<double>& scratch,
                     std::vector<double>& sums, AddStrip&& add_strip) {
  const Index k = strip_rows(channels), strip = k * channels, width = terms * channels;
  const Index slots = reduction_slots(rows, terms * strip + width);
  scratch.prepare(terms * strip + width, slots);
  parallel_for_slots(rows, slots, [&](Index slot, Index begin, Index end) {
    double* acc = scratch.get(slot);
    std::fill_n(acc, terms * strip, 0.0);
    kernels::vectorized([&] {  // the strip loops use the CPU's widest vectors
      for (Index row = begin; row < end; row += k)
        add_strip(row * channels, std::min(k, end - row) * channels, acc, strip);
    });
    double* partial = acc + terms * strip;
    for (Index t = 0; t < terms; ++t)
      for (Index c = 0; c < channels; ++c) {
        double sum = 0;
        for (Index r = 0; r < k; ++r) sum += acc[t * strip + r * channels + c];
        partial[t * channels + c] = sum;
      }
  });
  sums.resize(static_cast<std::size_t>(width));
  sum_slots(scratch, terms * strip, width, sums.data());
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
    const Index rows = x.size() / channels_, strip_rows = detail::strip_rows(channels_);
    const auto C = static_cast<std::size_t>(channels_);
    batch_statistics_ = mode == Mode::training;
    mean_.resize(C);
    inv_std_.resize(C);
    if (batch_statistics_) {
      std::vector<double> sums;
      detail::sum_over_strips(rows, channels_, 1, scratch_, sums,
                              [&](Index first, Index count, double* acc, Index /*strip*/) {
                                const T* xs = x.data() + first;
                                for (Index s = 0; s < count; ++s) acc[s] += double(xs[s]);
                              });
      for (std::size_t c = 0; c < C; ++c) mean_[c] = sums[c] / double(rows);
      // Two passes (mean, then squared deviations) rather than E[x^2] - E[x]^2, which cancels.
      const auto mean = detail::strip_pattern<double>(mean_, strip_rows);
      detail::sum_over_strips(rows, channels_, 1, scratch_, sums,
                              [&](Index first, Index count, double* acc, Index /*strip*/) {
                                const T* xs = x.data() + first;
                                for (Index s = 0; s < count; ++s) {
                                  const double d =
                                      double(xs[s]) - mean[static_cast<std::size_t>(s)];
                                  acc[s] += d * d;
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
    const auto scale = detail::strip_pattern<T>(scale_, strip_rows);
    const auto shift = detail::strip_pattern<T>(shift_, strip_rows);
    for_strips(rows, [&](Index first, Index count) {
      const T* xs = x.data() + first;
      T* ys = y.data() + first;
      for (Index s = 0; s < count; ++s) {
        const auto k = static_cast<std::size_t>(s);
        ys[s] = xs[s] * scale[k] + shift[k];
      }
    });
  }

  void do_backward(const Tensor<T>& x, const Tensor<T>& /*y*/, const Tensor<T>& dy,
                   Tensor<T>* dx) override {
    const Index rows = x.size() / channels_, strip_rows = detail::strip_rows(channels_);
    const auto C = static_cast<std::size_t>(channels_);
    const auto mean = detail::strip_pattern<double>(mean_, strip_rows);
    const auto inv_std = detail::strip_pattern<double>(inv_std_, strip_rows);
    std::vector<double> sums;  // [0, C): sum dy; [C, 2C): sum dy * xhat
    detail::sum_over_strips(rows, channels_, 2, scratch_, sums,
                            [&](Index first, Index count, double* acc, Index strip) {
                              const T* xs = x.data() + first;
                              const T* dys = dy.data() + first;
                              for (Index s = 0; s < count; ++s) {
                                const auto k = static_cast<std::size_t>(s);
                                acc[s] += double(dys[s]);
                                acc[strip + s] +=
                                    double(dys[s]) * (double(xs[s]) - mean[k]) * inv_std[k];
                              }
                            });
    for (std::size_t c = 0; c < C; ++c) {
      beta_.grad[static_cast<Index>(c)] = T(sums[c]);
      gamma_.grad[static_cast<Index>(c)] = T(sums[C + c]);
    }
    if (!dx) return;
    // dx = scale * (dy - a - xhat * b): a = dbeta / M and b = dgamma / M in training, where the
    // batch statistics carry the gradient back to every input; 0 in inference.
    std::vector<T> a_c(C, T(0)), b_c(C, T(0));
    if (batch_statistics_)
      for (std::size_t c = 0; c < C; ++c) {
        a_c[c] = T(sums[c] / double(rows));
        b_c[c] = T(sums[C + c] / double(rows));
      }
    const auto a = detail::strip_pattern<T>(a_c, strip_rows);
    const auto b = detail::strip_pattern<T>(b_c, strip_rows);
    const auto center = detail::strip_pattern<T>(mean_, strip_rows);
    const auto inv_std_in_t = detail::strip_pattern<T>(inv_std_, strip_rows);
    const auto scale = detail::strip_pattern<T>(scale_, strip_rows);
    for_strips(rows, [&](Index first, Index count) {
      const T* xs = x.data() + first;
      const T* dys = dy.data() + first;
      T* dxs = dx->data() + first;
      for (Index s = 0; s < count; ++s) {
        const auto k = static_cast<std::size_t>(s);
        const T xhat = (xs[s] - center[k]) * inv_std_in_t[k];
        dxs[s] = scale[k] * (dys[s] - a[k] - xhat * b[k]);
      }
    });
  }

 private:
  /// Runs body(first, count) over every row, a strip of strip_rows rows (count values from
  /// value `first`) at a time, in blocks of rows spread over the threads.
  template <typename Body>
  void for_strips(Index rows, Body&& body) const {
    const Index strip_rows = detail::strip_rows(channels_);
    const Index block =
        std::max<Index>(1, (Index{1} << 14) / (channels_ * strip_rows)) * strip_rows;
    parallel_for_blocks(rows, block, [&](Index begin, Index end) {
      kernels::vectorized([&] {  // the strip loops use the CPU's widest vectors
        for (Index row = begin; row < end; row += strip_rows)
          body(row * channels_, std::min(strip_rows, end - row) * channels_);
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
  ThreadScratch<double> scratch_;  // the reductions' accumulators (sum_over_strips)
};

}  // namespace stratum
