// ReduceLROnPlateau, as Keras': when the monitored figure has not improved for `patience`
// epochs, multiply the learning rate by `factor` (not below `min_lr`), then wait `cooldown`
// epochs before counting again.
#pragma once

#include <algorithm>
#include <iostream>

#include "../model/sequential.hpp"
#include "monitor.hpp"

namespace stratum {

struct ReduceLROnPlateauOptions {
  std::string monitor = "val_loss";
  double factor = 0.1;
  int patience = 10;
  double min_delta = 1e-4;
  int cooldown = 0;
  double min_lr = 0;
  std::ostream* log = nullptr;  // where to say so when the rate changes (nullptr: silent)
};

template <typename T>
class ReduceLROnPlateau final : public Callback<T> {
 public:
  explicit ReduceLROnPlateau(ReduceLROnPlateauOptions options = {})
      : options_(std::move(options)), monitor_(options_.monitor, options_.min_delta) {
    if (!(options_.factor > 0 && options_.factor < 1))
      throw Error("ReduceLROnPlateau: factor must be in (0, 1)");
    best_ = monitor_.worst();
  }

  void on_epoch_end(Model<T>& model, const EpochLogs& logs) override {
    const double current = monitor_.value(logs);
    if (cooldown_left_ > 0) --cooldown_left_;
    if (monitor_.improves(current, best_)) {
      best_ = current;
      wait_ = 0;
      return;
    }
    if (cooldown_left_ > 0 || ++wait_ < options_.patience) return;
    auto& optimizer = model.optimizer();
    const double reduced = std::max(optimizer.learning_rate() * options_.factor, options_.min_lr);
    if (reduced < optimizer.learning_rate()) {
      optimizer.set_learning_rate(reduced);
      if (options_.log)
        *options_.log << "Epoch " << logs.epoch + 1 << ": " << monitor_.name()
                      << " has not improved for " << wait_ << " epochs; learning rate reduced to "
                      << reduced << '\n';
    }
    cooldown_left_ = options_.cooldown;
    wait_ = 0;
  }

  void save_state(BinaryWriter& out) const override {
    out.put(best_);
    out.put(static_cast<std::int32_t>(wait_));
    out.put(static_cast<std::int32_t>(cooldown_left_));
  }
  void load_state(BinaryReader& in) override {
    best_ = in.get<double>();
    wait_ = in.get<std::int32_t>();
    cooldown_left_ = in.get<std::int32_t>();
  }

 private:
  ReduceLROnPlateauOptions options_;
  Monitor monitor_;
  double best_;
  int wait_ = 0;
  int cooldown_left_ = 0;
};

}  // namespace stratum
