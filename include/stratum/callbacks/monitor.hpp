// Which figure of an epoch a callback watches, and which direction is better: "loss" and
// "val_loss" should fall, "accuracy" and "val_accuracy" rise (Keras' mode "auto").
#pragma once

#include <cmath>
#include <limits>
#include <string>

#include "../callbacks.hpp"
#include "../errors.hpp"

namespace stratum {

class Monitor {
 public:
  explicit Monitor(std::string name, double min_delta = 0)
      : name_(std::move(name)), min_delta_(std::abs(min_delta)) {
    if (name_ != "loss" && name_ != "val_loss" && name_ != "accuracy" && name_ != "val_accuracy")
      throw Error("cannot monitor '" + name_ + "': use loss, val_loss, accuracy or val_accuracy");
    higher_is_better_ = name_.find("accuracy") != std::string::npos;
  }

  [[nodiscard]] const std::string& name() const { return name_; }

  /// The watched figure of this epoch. Throws if it was not computed (val_* without validation
  /// data), rather than silently watching nothing.
  [[nodiscard]] double value(const EpochLogs& logs) const {
    if (name_ == "loss") return logs.loss;
    if (name_ == "accuracy") return logs.accuracy;
    const auto& v = name_ == "val_loss" ? logs.val_loss : logs.val_accuracy;
    if (!v) throw Error("cannot monitor '" + name_ + "': training has no validation data");
    return *v;
  }

  /// The worst possible value: anything improves on it.
  [[nodiscard]] double worst() const {
    return higher_is_better_ ? -std::numeric_limits<double>::infinity()
                             : std::numeric_limits<double>::infinity();
  }

  /// Whether `current` beats `best` by more than min_delta.
  [[nodiscard]] bool improves(double current, double best) const {
    return higher_is_better_ ? current - min_delta_ > best : current + min_delta_ < best;
  }

 private:
  std::string name_;
  double min_delta_;
  bool higher_is_better_ = false;
};

}  // namespace stratum
