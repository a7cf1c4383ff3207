// EarlyStopping, as Keras': stop training when the monitored figure has not improved for
// `patience` epochs. With restore_best_weights, the model ends training with the weights of
// its best epoch (every weight, BatchNormalization's statistics included), whether or not
// training stopped early, as Keras 3 does.
#pragma once

#include <iostream>
#include <vector>

#include "../model/sequential.hpp"
#include "monitor.hpp"

namespace stratum {

struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  double min_delta = 0;
  int patience = 0;
  bool restore_best_weights = false;
  std::ostream* log = nullptr;  // where to say so when it stops or restores (nullptr: silent)
};

template <typename T>
class EarlyStopping final : public Callback<T> {
 public:
  explicit EarlyStopping(EarlyStoppingOptions options = {})
      : options_(std::move(options)), monitor_(options_.monitor, options_.min_delta) {
    best_ = monitor_.worst();
  }

  /// The 0-based epoch with the best figure so far (-1 before the first epoch).
  [[nodiscard]] int best_epoch() const { return best_epoch_; }
  [[nodiscard]] double best() const { return best_; }

  void on_epoch_end(Model<T>& model, const EpochLogs& logs) override {
    const double current = monitor_.value(logs);
    if (best_epoch_ < 0 || monitor_.improves(current, best_)) {
      best_ = current;
      best_epoch_ = logs.epoch;
      wait_ = 0;
      if (options_.restore_best_weights) {
        best_weights_.clear();
        for (auto* p : model.parameters()) best_weights_.push_back(p->value);
      }
      return;
    }
    if (++wait_ >= options_.patience) {
      model.stop_training() = true;
      if (options_.log)
        *options_.log << "Epoch " << logs.epoch + 1 << ": early stopping, " << monitor_.name()
                      << " has not improved for " << wait_ << " epochs\n";
    }
  }

  void on_train_end(Model<T>& model) override {
    if (!options_.restore_best_weights || best_weights_.empty()) return;
    auto params = model.parameters();
    bool fits = params.size() == best_weights_.size();
    for (std::size_t i = 0; fits && i < params.size(); ++i)
      fits = params[i]->value.size() == best_weights_[i].size();
    if (!fits) throw Error("EarlyStopping: the saved best weights do not fit this model");
    for (std::size_t i = 0; i < params.size(); ++i)
      std::copy(best_weights_[i].begin(), best_weights_[i].end(), params[i]->value.begin());
    if (options_.log)
      *options_.log << "Restored the weights of epoch " << best_epoch_ + 1 << " ("
                    << monitor_.name() << " " << best_ << ")\n";
  }

  void save_state(BinaryWriter& out) const override {
    out.put(best_);
    out.put(static_cast<std::int32_t>(best_epoch_));
    out.put(static_cast<std::int32_t>(wait_));
    out.put(static_cast<std::uint32_t>(best_weights_.size()));
    for (const auto& w : best_weights_) {
      out.put(static_cast<std::uint64_t>(w.size()));
      out.put_array(std::span<const T>(w.data(), static_cast<std::size_t>(w.size())));
    }
  }

  void load_state(BinaryReader& in) override {
    best_ = in.get<double>();
    best_epoch_ = in.get<std::int32_t>();
    wait_ = in.get<std::int32_t>();
    const auto count = in.get<std::uint32_t>();
    if (count > in.remaining()) in.fail("holds an early-stopping state larger than the file");
    best_weights_.assign(count, {});
    for (auto& w : best_weights_) {
      const auto size = in.get<std::uint64_t>();
      if (size > in.remaining() / sizeof(T))
        in.fail("holds an early-stopping state larger than the file");
      w.resize(Shape{static_cast<Index>(size)});
      in.get_array(std::span<T>(w.data(), static_cast<std::size_t>(size)));
    }
  }

 private:
  EarlyStoppingOptions options_;
  Monitor monitor_;
  double best_;
  int best_epoch_ = -1;
  int wait_ = 0;
  std::vector<Tensor<T>> best_weights_;
};

}  // namespace stratum
