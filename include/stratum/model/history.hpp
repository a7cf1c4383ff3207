// The record of a training run, one entry per epoch, like Keras' History.history.
#pragma once

#include <fstream>
#include <iomanip>
#include <string>
#include <vector>

#include "../errors.hpp"

namespace stratum {

struct History {
  std::vector<double> loss;
  std::vector<double> accuracy;
  std::vector<double> val_loss;      // empty when training had no validation data
  std::vector<double> val_accuracy;  // likewise
  std::vector<double> seconds;       // wall time of each epoch, validation included

  [[nodiscard]] std::size_t epochs() const { return loss.size(); }
  [[nodiscard]] bool has_validation() const { return !val_loss.empty(); }

  /// Writes "epoch,loss,accuracy,val_loss,val_accuracy,seconds" with one row per epoch.
  void write_csv(const std::string& path) const {
    std::ofstream out(path);
    if (!out) throw IoError("cannot write the training history to '" + path + "'");
    out << "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n" << std::setprecision(8);
    for (std::size_t e = 0; e < epochs(); ++e) {
      out << e + 1 << ',' << loss[e] << ',' << accuracy[e] << ',';
      if (has_validation()) out << val_loss[e] << ',' << val_accuracy[e];
      else out << ',';
      out << ',' << seconds[e] << '\n';
    }
    if (!out) throw IoError("error while writing the training history to '" + path + "'");
  }
};

}  // namespace stratum
