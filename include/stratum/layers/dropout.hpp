// Dropout (inverted): while training, each element is kept with probability 1 - rate and
// scaled by 1 / (1 - rate), so the expected activation is unchanged and inference is the
// identity.
//
//   training   m[i] = [u_i >= rate] / (1 - rate),  u_i ~ U[0, 1)
//              y = x * m,  dx = dy * m
//   inference  y = x,      dx = dy
//
// The mask is drawn from the layer's own random engine, seeded when the model is built, so a
// seed reproduces every mask. The backward pass uses the mask of the latest forward pass.
#pragma once

#include "layer.hpp"

namespace stratum {

template <typename T>
class Dropout final : public Layer<T> {
 public:
  explicit Dropout(double rate) : rate_(rate) {
    if (!(rate >= 0.0 && rate < 1.0))
      throw Error("Dropout: rate must be in [0, 1), got " + std::to_string(rate));
  }

  [[nodiscard]] std::string type_name() const override { return "Dropout"; }
  [[nodiscard]] double rate() const { return rate_; }
  [[nodiscard]] LayerConfig config() const override { return {type_name(), {{"rate", rate_}}}; }
  /// The engine that draws the masks (its state belongs in a checkpoint).
  Random& rng() { return rng_; }
  Random* random_engine() override { return &rng_; }

 protected:
  Shape do_build(const Shape& in, Random& rng) override {
    rng_ = rng.split();
    return in;
  }

  void do_forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override {
    masked_ = mode == Mode::training && rate_ > 0.0;
    if (!masked_) {
      std::copy(x.begin(), x.end(), y.begin());
      return;
    }
    mask_.resize(x.shape());
    const T scale = static_cast<T>(1.0 / (1.0 - rate_));
    for (Index i = 0; i < x.size(); ++i) mask_[i] = rng_.uniform() >= rate_ ? scale : T(0);
    y.array() = x.array() * mask_.array();
  }

  void do_backward(const Tensor<T>& /*x*/, const Tensor<T>& /*y*/, const Tensor<T>& dy,
                   Tensor<T>* dx) override {
    if (!dx) return;
    if (masked_)
      dx->array() = dy.array() * mask_.array();
    else
      std::copy(dy.begin(), dy.end(), dx->begin());
  }

 private:
  double rate_;
  Random rng_;
  Tensor<T> mask_;
  bool masked_ = false;
};

}  // namespace stratum
