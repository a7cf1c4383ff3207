// The record of a training run, one entry per epoch, like Keras' History.history.
#pragma once

#include <fstream>
#include <iomanip>
#include <string>
#include <utility>
#include <vector>

#include "../callbacks.hpp"
#include "../errors.hpp"

namespace stratum {

struct History {
  std::vector<double> loss;
  std::vector<double> accuracy;
  std::vector<double> val_loss;       // empty when training had no validation data
  std::vector<double> val_accuracy;   // likewise
  std::vector<double> learning_rate;  // the optimizer's at the end of each epoch (fit records it)
  std::vector<double> seconds;        // wall time of each epoch, validation included
  /// EpochLogs::named, a column per name in the order first seen (a GraphModel's per-output
  /// losses: "heat_loss", "val_heat_loss"); empty for a Sequential.
  std::vector<std::pair<std::string, std::vector<double>>> named;

  [[nodiscard]] std::size_t epochs() const { return loss.size(); }
  [[nodiscard]] bool has_validation() const { return !val_loss.empty(); }

  void append(const EpochLogs& logs) {
    loss.push_back(logs.loss);
    accuracy.push_back(logs.accuracy);
    if (logs.val_loss) {
      val_loss.push_back(*logs.val_loss);
      val_accuracy.push_back(logs.val_accuracy.value_or(0.0));
    }
    learning_rate.push_back(logs.learning_rate);
    seconds.push_back(logs.seconds);
    for (const auto& [name, value] : logs.named) column(name).push_back(value);
  }

  /// The named column `name`, or nullptr if there is none.
  [[nodiscard]] const std::vector<double>* find_column(const std::string& name) const {
    for (const auto& [n, values] : named)
      if (n == name) return &values;
    return nullptr;
  }

  /// The named column `name`, created empty if there is none yet.
  std::vector<double>& column(const std::string& name) {
    for (auto& [n, values] : named)
      if (n == name) return values;
    return named.emplace_back(name, std::vector<double>{}).second;
  }

  /// The epochs of `later` after these (a resumed run's history after the checkpoint's).
  void extend(const History& later) {
    for (auto [mine, theirs] : {std::pair{&loss, &later.loss},
                                {&accuracy, &later.accuracy},
                                {&val_loss, &later.val_loss},
                                {&val_accuracy, &later.val_accuracy},
                                {&learning_rate, &later.learning_rate},
                                {&seconds, &later.seconds}})
      mine->insert(mine->end(), theirs->begin(), theirs->end());
    for (const auto& [name, values] : later.named) {
      auto& mine = column(name);
      mine.insert(mine.end(), values.begin(), values.end());
    }
  }

  /// Writes "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds", then the named
  /// columns, a row per epoch.
  void write_csv(const std::string& path) const {
    std::ofstream out(path);
    if (!out) throw IoError("cannot write the training history to '" + path + "'");
    out << "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds";
    for (const auto& entry : named) out << ',' << entry.first;
    out << '\n' << std::setprecision(8);
    for (std::size_t e = 0; e < epochs(); ++e) {
      out << e + 1 << ',' << loss[e] << ',' << accuracy[e] << ',';
      if (has_validation())
        out << val_loss[e] << ',' << val_accuracy[e];
      else
        out << ',';
      out << ',';
      if (e < learning_rate.size()) out << learning_rate[e];  // empty when not recorded
      out << ',' << seconds[e];
      for (const auto& entry : named) {
        out << ',';
        if (e < entry.second.size()) out << entry.second[e];
      }
      out << '\n';
    }
    if (!out) throw IoError("error while writing the training history to '" + path + "'");
  }

  void save(BinaryWriter& out) const {
    for (const auto* column :
         {&loss, &accuracy, &val_loss, &val_accuracy, &learning_rate, &seconds}) {
      out.put(static_cast<std::uint32_t>(column->size()));
      out.put_array(std::span<const double>(*column));
    }
  }

  /// The named columns (a separate part, so that `save`'s layout stays what Sequential's
  /// checkpoints have always held).
  void save_named(BinaryWriter& out) const {
    out.put(static_cast<std::uint32_t>(named.size()));
    for (const auto& [name, values] : named) {
      out.put_string(name);
      out.put(static_cast<std::uint32_t>(values.size()));
      out.put_array(std::span<const double>(values));
    }
  }

  void load_named(BinaryReader& in) {
    const auto count = in.get<std::uint32_t>();
    if (count > 1024) in.fail("holds " + std::to_string(count) + " named history columns");
    named.clear();
    for (std::uint32_t i = 0; i < count; ++i) {
      std::string name = in.get_string();
      const auto n = in.get<std::uint32_t>();
      if (n > loss.size()) in.fail("holds a history column '" + name + "' longer than the history");
      std::vector<double> values(n);
      in.get_array(std::span<double>(values));
      named.emplace_back(std::move(name), std::move(values));
    }
  }

  void load(BinaryReader& in) {
    for (auto* column : {&loss, &accuracy, &val_loss, &val_accuracy, &learning_rate, &seconds}) {
      const auto n = in.get<std::uint32_t>();
      if (n > (1u << 24)) in.fail("holds a history of " + std::to_string(n) + " epochs");
      column->resize(n);
      in.get_array(std::span<double>(*column));
    }
    const std::size_t n = loss.size();
    if (accuracy.size() != n || learning_rate.size() != n || seconds.size() != n ||
        val_accuracy.size() != val_loss.size() || (!val_loss.empty() && val_loss.size() != n))
      in.fail("holds a history whose columns have different lengths");
  }
};

}  // namespace stratum
