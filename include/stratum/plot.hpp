// Training curves as a PNG, drawn by stratum itself (no plotting library): two panels, loss
// and accuracy per epoch, training in blue and validation in orange, like the notebook's
// matplotlib figures. Text uses stb_easy_font's bitmap glyphs.
#pragma once

#include <stb_easy_font.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "data/image.hpp"
#include "model/history.hpp"

namespace stratum {

namespace detail {

class Canvas {
 public:
  Canvas(int width, int height) {
    image_.width = width;
    image_.height = height;
    image_.pixels.assign(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3, 255);
  }

  void fill_rect(double x0, double y0, double x1, double y1, Rgb colour) {
    const int left = std::max(0, static_cast<int>(std::floor(x0)));
    const int right = std::min(image_.width, static_cast<int>(std::ceil(x1)));
    const int top = std::max(0, static_cast<int>(std::floor(y0)));
    const int bottom = std::min(image_.height, static_cast<int>(std::ceil(y1)));
    for (int y = top; y < bottom; ++y)
      for (int x = left; x < right; ++x)
        for (int c = 0; c < 3; ++c)
          image_.pixels[(static_cast<std::size_t>(y) * static_cast<std::size_t>(image_.width) +
                         static_cast<std::size_t>(x)) * 3 + static_cast<std::size_t>(c)] =
              colour[static_cast<std::size_t>(c)];
  }

  /// A line `width` pixels thick, stamped as small squares every half pixel.
  void line(double x0, double y0, double x1, double y1, Rgb colour, double width = 2) {
    const int steps = std::max(1, static_cast<int>(2 * std::hypot(x1 - x0, y1 - y0)));
    for (int s = 0; s <= steps; ++s) {
      const double t = static_cast<double>(s) / steps;
      const double x = x0 + t * (x1 - x0), y = y0 + t * (y1 - y0);
      fill_rect(x - width / 2, y - width / 2, x + width / 2, y + width / 2, colour);
    }
  }

  /// Text with its top-left corner at (x, y), glyphs scaled by `scale`.
  void text(double x, double y, const std::string& s, Rgb colour, double scale = 2) {
    std::vector<char> buffer(s.size() * 300 + 300);
    std::vector<char> copy(s.begin(), s.end());
    copy.push_back('\0');
    const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buffer.data(),
                                          static_cast<int>(buffer.size()));
    // Each quad is 4 vertices of 16 bytes (x, y, z as floats, then an RGBA colour).
    for (int q = 0; q < quads; ++q) {
      float v0[2], v2[2];
      std::memcpy(v0, buffer.data() + q * 64, 8);
      std::memcpy(v2, buffer.data() + q * 64 + 32, 8);
      fill_rect(x + v0[0] * scale, y + v0[1] * scale, x + v2[0] * scale, y + v2[1] * scale, colour);
    }
  }

  static double text_width(const std::string& s, double scale = 2) {
    std::vector<char> copy(s.begin(), s.end());
    copy.push_back('\0');
    return stb_easy_font_width(copy.data()) * scale;
  }

  [[nodiscard]] const Image& image() const { return image_; }

 private:
  Image image_;
};

inline std::string format_tick(double v) {
  char text[32];
  std::snprintf(text, sizeof text, std::abs(v) >= 10 ? "%.0f" : "%.2f", v);
  return text;
}

/// One panel: a frame, y ticks, epoch ticks, the curves, a title and a legend.
inline void draw_panel(Canvas& canvas, double left, double top, double width, double height,
                       const std::string& title,
                       const std::vector<std::pair<std::vector<double>, Rgb>>& series,
                       const std::vector<std::string>& labels) {
  const Rgb black{0, 0, 0}, grey{225, 225, 225};
  double low = 1e300, high = -1e300;
  std::size_t epochs = 0;
  for (const auto& [values, colour] : series)
    for (double v : values)
      if (std::isfinite(v)) {
        low = std::min(low, v);
        high = std::max(high, v);
        epochs = std::max(epochs, values.size());
      }
  if (epochs == 0) return;
  if (high - low < 1e-9) {
    low -= 0.5;
    high += 0.5;
  }
  const double margin = 0.05 * (high - low);
  low -= margin;
  high += margin;
  auto x_of = [&](std::size_t e) {
    return left + (epochs == 1 ? width / 2 : width * static_cast<double>(e) / static_cast<double>(epochs - 1));
  };
  auto y_of = [&](double v) { return top + height * (high - v) / (high - low); };

  for (int t = 0; t <= 4; ++t) {
    const double v = low + (high - low) * t / 4.0, y = y_of(v);
    canvas.line(left, y, left + width, y, grey, 1);
    const std::string label = format_tick(v);
    canvas.text(left - Canvas::text_width(label) - 8, y - 6, label, black);
  }
  const std::size_t step = std::max<std::size_t>(1, (epochs + 9) / 10);
  for (std::size_t e = 0; e < epochs; e += step) {
    const std::string label = std::to_string(e + 1);
    canvas.text(x_of(e) - Canvas::text_width(label) / 2, top + height + 8, label, black);
  }
  canvas.text(left + width / 2 - Canvas::text_width("epoch") / 2, top + height + 30, "epoch", black);
  canvas.text(left + width / 2 - Canvas::text_width(title, 2.5) / 2, top - 50, title, black, 2.5);
  canvas.line(left, top, left, top + height, black, 1);
  canvas.line(left, top + height, left + width, top + height, black, 1);

  for (std::size_t s = 0; s < series.size(); ++s) {
    const auto& [values, colour] = series[s];
    for (std::size_t e = 0; e + 1 < values.size(); ++e)
      canvas.line(x_of(e), y_of(values[e]), x_of(e + 1), y_of(values[e + 1]), colour, 2.5);
    if (values.size() == 1) canvas.fill_rect(x_of(0) - 3, y_of(values[0]) - 3, x_of(0) + 3, y_of(values[0]) + 3, colour);
    // The legend sits in one line above the frame, where no curve can cover it.
    const double legend_x = left + 170 * static_cast<double>(s);
    canvas.line(legend_x, top - 14, legend_x + 25, top - 14, colour, 3);
    canvas.text(legend_x + 32, top - 20, labels[s], black);
  }
}

}  // namespace detail

/// Writes `history`'s curves to a PNG file: the loss on the left, `metric` on the right, each
/// for training and validation where the history has them. `metric` is "accuracy" or a named
/// column (History::named), whose validation curve is the column "val_" + metric: a detector's
/// "ap50" plots "val_ap50" alone. Throws IoError on failure.
inline void write_history_plot(const History& history, const std::filesystem::path& path,
                               const std::string& title = "",
                               const std::string& metric = "accuracy") {
  detail::Canvas canvas(1200, 500);
  const Rgb blue{31, 119, 180}, orange{255, 127, 14};
  auto panel = [&](double left, const std::string& name, const std::vector<double>* train,
                   const std::vector<double>* validation) {
    std::vector<std::pair<std::vector<double>, Rgb>> series;
    std::vector<std::string> labels;
    if (train && !train->empty()) {
      series.emplace_back(*train, blue);
      labels.emplace_back("training");
    }
    if (validation && !validation->empty()) {
      series.emplace_back(*validation, orange);
      labels.emplace_back("validation");
    }
    detail::draw_panel(canvas, left, 90, 470, 330, name, series, labels);
  };
  panel(90, "loss", &history.loss, &history.val_loss);
  if (metric == "accuracy")
    panel(690, metric, &history.accuracy, &history.val_accuracy);
  else
    panel(690, metric, history.find_column(metric), history.find_column("val_" + metric));
  if (!title.empty())
    canvas.text(600 - detail::Canvas::text_width(title) / 2, 8, title, Rgb{80, 80, 80});
  write_png(path, canvas.image());
}

}  // namespace stratum
