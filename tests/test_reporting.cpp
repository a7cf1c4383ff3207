// Metrics, the history CSV and the training-curve plot.
#include <doctest/doctest.h>
#include <stratum/metrics.hpp>
#include <stratum/plot.hpp>

#include <fstream>
#include <sstream>

#include "temp_dir.hpp"

using namespace stratum;

TEST_CASE("confusion matrix, precision, recall and F1 by hand") {
  ConfusionMatrix m({"without_mask", "with_mask"});
  // 8 negatives: 6 right, 2 called positive; 4 positives: 3 right, 1 missed.
  for (int i = 0; i < 6; ++i) m.add(0, 0);
  for (int i = 0; i < 2; ++i) m.add(0, 1);
  for (int i = 0; i < 3; ++i) m.add(1, 1);
  m.add(1, 0);
  CHECK(m.total() == 12);
  CHECK(m.accuracy() == doctest::Approx(9.0 / 12));
  CHECK(m.precision(1) == doctest::Approx(3.0 / 5));
  CHECK(m.recall(1) == doctest::Approx(3.0 / 4));
  CHECK(m.f1(1) == doctest::Approx(2 * 0.6 * 0.75 / 1.35));
  CHECK(m.precision(0) == doctest::Approx(6.0 / 7));
  CHECK(m.recall(0) == doctest::Approx(6.0 / 8));
  CHECK(m.support(0) == 8);
  const std::string json = m.to_json();
  CHECK(json.find("\"confusion\": [[6, 2], [1, 3]]") != std::string::npos);
  CHECK(m.to_text().find("with_mask") != std::string::npos);
  ConfusionMatrix empty({"a", "b"});
  CHECK(empty.precision(0) == 0.0);
  CHECK_THROWS_AS(m.add(2, 0), Error);
}

TEST_CASE("history CSV and plot") {
  testing::TempDir dir;
  History h;
  h.loss = {0.9, 0.5, 0.3};
  h.accuracy = {0.6, 0.8, 0.9};
  h.val_loss = {0.7, 0.45, 0.4};
  h.val_accuracy = {0.7, 0.85, 0.88};
  h.learning_rate = {0.001, 0.001, 0.0005};
  h.seconds = {1, 1, 1};
  h.write_csv(dir.path() / "h.csv");
  std::ifstream csv(dir.path() / "h.csv");
  std::string header, row;
  std::getline(csv, header);
  CHECK(header == "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds");
  std::getline(csv, row);
  CHECK(row == "1,0.9,0.6,0.7,0.7,0.001,1");

  write_history_plot(h, dir.path() / "h.png", "test");
  const Image plot = load_image(dir.path() / "h.png");
  CHECK(plot.width == 1200);
  CHECK(plot.height == 500);
  // Both curve colours are drawn.
  auto has = [&](Rgb c) {
    for (std::size_t p = 0; p + 2 < plot.pixels.size(); p += 3)
      if (plot.pixels[p] == c[0] && plot.pixels[p + 1] == c[1] && plot.pixels[p + 2] == c[2]) return true;
    return false;
  };
  CHECK(has(Rgb{31, 119, 180}));
  CHECK(has(Rgb{255, 127, 14}));
  CHECK_THROWS_AS(write_history_plot(h, dir.path() / "missing/h.png"), IoError);

  // A named metric on the right: a detector's validation AP50, with no validation loss, draws
  // its one (orange) curve in the right half only.
  History detector;
  detector.loss = {3.0, 2.0, 1.5};
  detector.seconds = {1, 1, 1};
  detector.column("val_ap50") = {0.1, 0.4, 0.6};
  write_history_plot(detector, dir.path() / "ap.png", "test", "ap50");
  const Image ap_plot = load_image(dir.path() / "ap.png");
  int orange_left = 0, orange_right = 0;
  for (int y = 0; y < ap_plot.height; ++y)
    for (int x = 0; x < ap_plot.width; ++x) {
      const std::uint8_t* p = ap_plot.pixels.data() + (std::size_t(y) * ap_plot.width + x) * 3;
      if (p[0] == 255 && p[1] == 127 && p[2] == 14) ++(x < 600 ? orange_left : orange_right);
    }
  CHECK(orange_left == 0);
  CHECK(orange_right > 100);
}
