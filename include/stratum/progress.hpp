// A Keras-style progress display for long loops:
//
//   Epoch 3/25
//   112/170 [===================>..........] - ETA: 9s - loss: 0.2114 - accuracy: 0.9166
//
// On a terminal the line redraws in place (at most ten times a second). When the output is a
// file or a pipe, a plain line is written every `log_interval` seconds instead, so logs stay
// readable and still show that work is moving.
#pragma once

#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#if __has_include(<unistd.h>)
#include <unistd.h>
#endif

#include "tensor.hpp"

namespace stratum {

/// True when `out` is the process' standard output or standard error and that is a terminal.
inline bool is_terminal(const std::ostream& out) {
#if __has_include(<unistd.h>)
  if (&out == &std::cout) return ::isatty(STDOUT_FILENO) == 1;
  return &out == &std::cerr && ::isatty(STDERR_FILENO) == 1;
#else
  (void)out;
  return false;
#endif
}

/// "7s", "1:02", "1:02:03"
inline std::string format_duration(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  std::ostringstream out;
  if (s < 60) {
    out << s << 's';
  } else if (s < 3600) {
    out << s / 60 << ':' << std::setw(2) << std::setfill('0') << s % 60;
  } else {
    out << s / 3600 << ':' << std::setw(2) << std::setfill('0') << (s / 60) % 60 << ':'
        << std::setw(2) << s % 60;
  }
  return out.str();
}

class ProgressBar {
 public:
  using Values = std::vector<std::pair<std::string, double>>;

  ProgressBar(std::ostream& out, Index total, double log_interval = 20.0)
      : out_(out), total_(total), interactive_(is_terminal(out)), log_interval_(log_interval),
        start_(Clock::now()), last_draw_(start_) {}

  /// `done` of `total` steps are finished.
  void update(Index done, const Values& values) {
    const auto now = Clock::now();
    const double since_draw = seconds(last_draw_, now);
    if (interactive_ ? since_draw < 0.1 : since_draw < log_interval_) return;
    last_draw_ = now;
    const double elapsed = seconds(start_, now);
    const double eta = done > 0 ? elapsed / static_cast<double>(done) * static_cast<double>(total_ - done) : 0;
    std::ostringstream line;
    line << counter(done) << (interactive_ ? " " + bar(done) : std::string())
         << " - ETA: " << format_duration(eta) << format_values(values);
    write(line.str(), !interactive_);
  }

  /// Writes the final line: total time, time per step and the given figures.
  void finish(const Values& values) {
    const double elapsed = seconds(start_, Clock::now());
    std::ostringstream line;
    line << counter(total_) << ' ' << bar(total_) << " - " << format_duration(elapsed) << ' '
         << static_cast<long>(1000.0 * elapsed / static_cast<double>(std::max<Index>(total_, 1)))
         << "ms/step" << format_values(values);
    write(line.str(), true);
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double seconds(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }

  [[nodiscard]] std::string counter(Index done) const {
    const std::string total = std::to_string(total_);
    std::string d = std::to_string(done);
    return std::string(total.size() - std::min(total.size(), d.size()), ' ') + d + '/' + total;
  }

  [[nodiscard]] std::string bar(Index done) const {
    constexpr Index width = 30;
    const Index filled = total_ > 0 ? done * width / total_ : width;
    std::string b = "[";
    b.append(static_cast<std::size_t>(filled), '=');
    if (filled < width) {
      b.push_back('>');
      b.append(static_cast<std::size_t>(width - filled - 1), '.');
    }
    b.push_back(']');
    return b;
  }

  static std::string format_values(const Values& values) {
    std::ostringstream out;
    out << std::fixed << std::setprecision(4);
    for (const auto& [name, value] : values) out << " - " << name << ": " << value;
    return out.str();
  }

  void write(const std::string& line, bool newline) {
    if (interactive_) {
      // Pad over the previous, possibly longer, line before returning the carriage.
      out_ << '\r' << line << std::string(last_length_ > line.size() ? last_length_ - line.size() : 0, ' ');
      last_length_ = line.size();
      if (newline) out_ << '\n';
    } else {
      out_ << line << '\n';
    }
    out_.flush();
  }

  std::ostream& out_;
  Index total_;
  bool interactive_;
  double log_interval_;
  Clock::time_point start_;
  Clock::time_point last_draw_;
  std::size_t last_length_ = 0;
};

}  // namespace stratum
