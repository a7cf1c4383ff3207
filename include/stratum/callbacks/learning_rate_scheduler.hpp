// Learning-rate schedules: the rate as a function of the optimizer's step count, set before
// every batch. The step count lives in the optimizer, so a resumed run picks up the schedule
// where it left off with nothing else to store.
//
//   cosine_decay   lr(t) = lr0 * (alpha + (1 - alpha) * (1 + cos(pi * min(t, T) / T)) / 2)
//                  (Loshchilov & Hutter's SGDR without restarts; Keras' CosineDecay)
//   step_decay     lr(t) = lr0 * factor^floor(t / step_size)
//   warmup         linear from lr0 / steps to lr0 over the first `steps`, then `after`
#pragma once

#include <cmath>
#include <functional>
#include <numbers>

#include "../errors.hpp"
#include "../model/sequential.hpp"

namespace stratum {

/// Maps the number of optimizer steps taken so far to a learning rate.
using LearningRateSchedule = std::function<double(long long step)>;

inline LearningRateSchedule cosine_decay(double initial, long long decay_steps,
                                         double alpha = 0.0) {
  if (decay_steps < 1) throw Error("cosine_decay: decay_steps must be >= 1");
  return [=](long long step) {
    const double progress = double(std::min(step, decay_steps)) / double(decay_steps);
    return initial * (alpha + (1 - alpha) * 0.5 * (1 + std::cos(std::numbers::pi * progress)));
  };
}

inline LearningRateSchedule step_decay(double initial, double factor, long long step_size) {
  if (step_size < 1) throw Error("step_decay: step_size must be >= 1");
  return [=](long long step) { return initial * std::pow(factor, double(step / step_size)); };
}

inline LearningRateSchedule warmup(long long steps, LearningRateSchedule after) {
  return [=](long long step) {
    const double rate = after(step);
    return step < steps ? rate * double(step + 1) / double(steps) : rate;
  };
}

template <typename T>
class LearningRateScheduler final : public Callback<T> {
 public:
  explicit LearningRateScheduler(LearningRateSchedule schedule) : schedule_(std::move(schedule)) {}

  void on_batch_begin(Model<T>& model, int /*epoch*/, Index /*batch*/) override {
    auto& optimizer = model.optimizer();
    optimizer.set_learning_rate(schedule_(optimizer.iterations()));
  }

 private:
  LearningRateSchedule schedule_;
};

}  // namespace stratum
