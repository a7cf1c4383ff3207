// What Sequential and GraphModel share around their training loops: the options of `fit`, the
// validation split, Keras' layer names and number formats, the summary table and the
// one-line-per-epoch log. Each model keeps its own step (forward, loss, backward, update).
#pragma once

#include <iomanip>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "../callbacks.hpp"
#include "../data/dataset.hpp"
#include "../progress.hpp"

namespace stratum {

/// The options of `fit`. D is the kind of dataset the model reads: Dataset<T> for a
/// Sequential, DenseDataset<T> for a GraphModel.
template <typename T, typename D = Dataset<T>>
struct FitOptions {
  int epochs = 1;
  /// The epoch to start at (0-based), as Keras' initial_epoch: a resumed run trains epochs
  /// [initial_epoch, epochs).
  int initial_epoch = 0;
  Index batch_size = 32;
  bool shuffle = true;
  /// Fraction of the data, taken from its *end* before any shuffling (as Keras does), held out
  /// to validate after each epoch. Ignored when `validation_data` is given.
  double validation_split = 0.0;
  const D* validation_data = nullptr;
  /// 0: silent, 1: progress bar, 2: one line per epoch.
  int verbose = 1;
  std::ostream* out = &std::cout;
  std::vector<Callback<T>*> callbacks;
};

struct Evaluation {
  double loss = 0;
  double accuracy = 0;
  Index samples = 0;
};

/// "MaxPooling2D" -> "max_pooling2d", "ReLU" -> "re_lu": Keras' default layer names.
inline std::string snake_case(const std::string& name) {
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool upper = c >= 'A' && c <= 'Z';
    const bool after_lower = i > 0 && name[i - 1] >= 'a' && name[i - 1] <= 'z';
    const bool starts_word =
        i > 0 && i + 1 < name.size() && name[i + 1] >= 'a' && name[i + 1] <= 'z';
    if (upper && (after_lower || starts_word)) out += '_';
    out += upper ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

/// "7400706" -> "7,400,706"
inline std::string with_thousands(Index value) {
  const std::string digits = std::to_string(value);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    const std::size_t remaining = digits.size() - i;
    if (i > 0 && digits[i - 1] != '-' && remaining % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

namespace detail {

/// One row of Keras' summary table: cell k starts at column `starts[k - 1]` (a cell too long
/// for its column still gets one space before the next).
inline void summary_row(std::ostream& out, const std::vector<std::string>& cells,
                        const std::vector<std::size_t>& starts) {
  std::string line = ' ' + cells[0];
  for (std::size_t k = 1; k < cells.size(); ++k) {
    const std::size_t start = starts[k - 1];
    line.append(line.size() < start ? start - line.size() : 1, ' ');
    line += cells[k];
  }
  line.erase(line.find_last_not_of(' ') + 1);  // an empty last cell leaves no trailing spaces
  out << line << '\n';
}

/// The closing lines of the summary: the parameter counts.
inline void summary_totals(std::ostream& out, Index total, Index trainable, std::size_t width) {
  out << std::string(width, '=') << '\n'
      << "Total params: " << with_thousands(total) << '\n'
      << "Trainable params: " << with_thousands(trainable) << '\n'
      << "Non-trainable params: " << with_thousands(total - trainable) << '\n'
      << std::string(width, '_') << '\n';
}

/// Which samples train and which validate, as Keras takes them: `validation_data` if given,
/// else the last `validation_split` of `data` (before any shuffling).
template <typename D>
struct TrainingSplit {
  Index train_count = 0;
  std::vector<Index> validation_indices;
  const D* validation_data = nullptr;  // null: no validation
};

template <typename T, typename D>
TrainingSplit<D> split_for_fit(const D& data, const FitOptions<T, D>& options,
                               const std::string& who) {
  if (options.epochs < 0 || options.batch_size < 1 || options.initial_epoch < 0)
    throw Error(who + "::fit: epochs and initial_epoch must be >= 0 and batch_size >= 1");
  if (options.validation_split < 0.0 || options.validation_split >= 1.0)
    throw Error(who + "::fit: validation_split must be in [0, 1)");
  const Index n = data.size();
  const bool split = options.validation_data == nullptr && options.validation_split > 0.0;
  TrainingSplit<D> result;
  result.train_count =
      split ? static_cast<Index>(static_cast<double>(n) * (1.0 - options.validation_split)) : n;
  if (result.train_count < 1) throw Error(who + "::fit: no training samples");
  for (Index i = result.train_count; split && i < n; ++i) result.validation_indices.push_back(i);
  result.validation_data = split ? &data : options.validation_data;
  if (options.validation_data) {
    result.validation_indices.resize(static_cast<std::size_t>(options.validation_data->size()));
    std::iota(result.validation_indices.begin(), result.validation_indices.end(), Index{0});
  }
  if (result.validation_indices.empty()) result.validation_data = nullptr;
  return result;
}

/// "Epoch 3/25 - 12s - loss: 0.2114 - ..." (verbose = 2).
inline void print_epoch_line(std::ostream& out, const EpochLogs& logs,
                             const ProgressBar::Values& values) {
  out << "Epoch " << logs.epoch + 1 << '/' << logs.epochs << " - " << format_duration(logs.seconds)
      << std::fixed << std::setprecision(4);
  for (const auto& [name, value] : values) out << " - " << name << ": " << value;
  out << std::defaultfloat << '\n';
  out.flush();
}

}  // namespace detail
}  // namespace stratum
