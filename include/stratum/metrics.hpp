// Classification metrics: the confusion matrix and, per class, precision, recall and F1.
//
//   confusion[t][p]  number of samples of true class t predicted as p
//   precision(c) = confusion[c][c] / sum_t confusion[t][c]   (of those predicted c, how many are)
//   recall(c)    = confusion[c][c] / sum_p confusion[c][p]   (of those that are c, how many found)
//   F1(c)        = 2 precision recall / (precision + recall)
// A ratio whose denominator is 0 is reported as 0, as scikit-learn does.
#pragma once

#include <iomanip>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "errors.hpp"
#include "tensor.hpp"

namespace stratum {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(std::vector<std::string> class_names)
      : names_(std::move(class_names)),
        counts_(names_.size(), std::vector<Index>(names_.size(), 0)) {}

  void add(int truth, int predicted) {
    const auto n = static_cast<int>(names_.size());
    if (truth < 0 || truth >= n || predicted < 0 || predicted >= n)
      throw Error("ConfusionMatrix: class index out of range");
    ++counts_[static_cast<std::size_t>(truth)][static_cast<std::size_t>(predicted)];
  }

  [[nodiscard]] Index count(int truth, int predicted) const {
    return counts_[static_cast<std::size_t>(truth)][static_cast<std::size_t>(predicted)];
  }
  [[nodiscard]] int classes() const { return static_cast<int>(names_.size()); }
  [[nodiscard]] const std::vector<std::string>& class_names() const { return names_; }

  [[nodiscard]] Index total() const {
    Index t = 0;
    for (const auto& row : counts_)
      for (Index v : row) t += v;
    return t;
  }
  [[nodiscard]] double accuracy() const {
    Index correct = 0;
    for (int c = 0; c < classes(); ++c) correct += count(c, c);
    return ratio(correct, total());
  }
  [[nodiscard]] Index support(int c) const {
    Index s = 0;
    for (int p = 0; p < classes(); ++p) s += count(c, p);
    return s;
  }
  [[nodiscard]] double precision(int c) const {
    Index predicted = 0;
    for (int t = 0; t < classes(); ++t) predicted += count(t, c);
    return ratio(count(c, c), predicted);
  }
  [[nodiscard]] double recall(int c) const { return ratio(count(c, c), support(c)); }
  [[nodiscard]] double f1(int c) const {
    const double p = precision(c), r = recall(c);
    return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
  }

  /// A table like scikit-learn's classification report, followed by the matrix.
  [[nodiscard]] std::string to_text() const {
    std::ostringstream out;
    out << std::fixed << std::setprecision(4);
    out << std::left << std::setw(16) << "class" << std::right << std::setw(11) << "precision"
        << std::setw(10) << "recall" << std::setw(10) << "f1" << std::setw(10) << "support\n";
    for (int c = 0; c < classes(); ++c)
      out << std::left << std::setw(16) << names_[static_cast<std::size_t>(c)] << std::right
          << std::setw(11) << precision(c) << std::setw(10) << recall(c) << std::setw(10) << f1(c)
          << std::setw(9) << support(c) << '\n';
    out << "\nconfusion matrix (rows: true class, columns: predicted)\n" << std::setw(16) << "";
    for (const auto& n : names_) out << std::setw(16) << n;
    out << '\n';
    for (int t = 0; t < classes(); ++t) {
      out << std::left << std::setw(16) << names_[static_cast<std::size_t>(t)] << std::right;
      for (int p = 0; p < classes(); ++p) out << std::setw(16) << count(t, p);
      out << '\n';
    }
    return out.str();
  }

  /// {"accuracy":..., "classes":[{"name":..., "precision":..., ...}], "confusion":[[...]]}
  [[nodiscard]] std::string to_json() const {
    std::ostringstream out;
    out << std::setprecision(6) << "{\"samples\": " << total() << ", \"accuracy\": " << accuracy()
        << ", \"classes\": [";
    for (int c = 0; c < classes(); ++c)
      out << (c ? ", " : "") << "{\"name\": \"" << names_[static_cast<std::size_t>(c)]
          << "\", \"precision\": " << precision(c) << ", \"recall\": " << recall(c)
          << ", \"f1\": " << f1(c) << ", \"support\": " << support(c) << '}';
    out << "], \"confusion\": [";
    for (int t = 0; t < classes(); ++t) {
      out << (t ? ", " : "") << '[';
      for (int p = 0; p < classes(); ++p) out << (p ? ", " : "") << count(t, p);
      out << ']';
    }
    out << "]}";
    return out.str();
  }

 private:
  static double ratio(Index a, Index b) { return b > 0 ? double(a) / double(b) : 0.0; }
  std::vector<std::string> names_;
  std::vector<std::vector<Index>> counts_;
};

}  // namespace stratum
