// Non-maximum suppression and average precision (detection/nms.hpp,
// detection/average_precision.hpp): cases worked out by hand, and VOC / COCO AP against an
// independent numpy implementation (tests/golden/detection_ap.py).
#include <doctest/doctest.h>

#include <stratum/detection/average_precision.hpp>
#include <stratum/detection/nms.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

using namespace stratum;

namespace detection_metrics_test {

Detection detection(float x_min, float y_min, float x_max, float y_max, float score,
                    int class_id = 0) {
  return {{x_min, y_min, x_max, y_max}, class_id, score};
}

}  // namespace detection_metrics_test

TEST_CASE("non_maximum_suppression keeps the best box of each overlapping group, per class") {
  using detection_metrics_test::detection;
  // a and b: intersection 9 x 10 = 90, union 100 + 100 - 90 = 110, IoU 0.818 > 0.5: b goes.
  // c overlaps neither. d is b's box in another class: untouched by a.
  const std::vector<Detection> input{detection(1, 0, 11, 10, 0.8f), detection(20, 0, 30, 10, 0.7f),
                                     detection(0, 0, 10, 10, 0.9f),
                                     detection(1, 0, 11, 10, 0.6f, 1)};
  const auto kept = non_maximum_suppression(input, 0.5f);
  REQUIRE(kept.size() == 3);
  CHECK(kept[0].box == input[2].box);  // by descending score
  CHECK(kept[1].box == input[1].box);
  CHECK(kept[2].class_id == 1);
  CHECK(non_maximum_suppression({}, 0.5f).empty());
  // Across classes, a suppresses d as it did b: a and c are left.
  const auto merged = non_maximum_suppression(input, 0.5f, /*across_classes=*/true);
  REQUIRE(merged.size() == 2);
  CHECK(merged[0].box == input[2].box);
  CHECK(merged[1].box == input[1].box);
}

TEST_CASE("non_maximum_suppression: a dropped box suppresses nothing; IoU at the threshold stays") {
  using detection_metrics_test::detection;
  // a = [0, 10], b = [4, 14], c = [8, 18] (all 10 high): IoU(a, b) = IoU(b, c) = 60 / 140 =
  // 0.43, IoU(a, c) = 20 / 180 = 0.11. At 0.4, a drops b, and c survives: b, dropped, does not
  // drop it.
  const std::vector<Detection> chain{detection(0, 0, 10, 10, 0.9f), detection(4, 0, 14, 10, 0.8f),
                                     detection(8, 0, 18, 10, 0.7f)};
  const auto kept = non_maximum_suppression(chain, 0.4f);
  REQUIRE(kept.size() == 2);
  CHECK(kept[0].score == 0.9f);
  CHECK(kept[1].score == 0.7f);
  CHECK(non_maximum_suppression(chain, 0.45f).size() == 3);

  // [0, 10] x [0, 10] inside [0, 10] x [0, 20]: IoU 100 / 200 = 0.5 exactly, which is not
  // greater than 0.5.
  const std::vector<Detection> half{detection(0, 0, 10, 10, 0.9f), detection(0, 0, 10, 20, 0.8f)};
  CHECK(non_maximum_suppression(half, 0.5f).size() == 2);
  CHECK(non_maximum_suppression(half, 0.49f).size() == 1);
}

TEST_CASE("non_maximum_suppression breaks equal scores by input order") {
  using detection_metrics_test::detection;
  // IoU 100 / 110: one of the two goes, and it is always the one given second.
  const Detection a = detection(0, 0, 10, 10, 0.5f), b = detection(0, 0, 10, 11, 0.5f);
  const std::vector<Detection> ab{a, b}, ba{b, a};
  const auto kept_ab = non_maximum_suppression(ab, 0.5f);
  const auto kept_ba = non_maximum_suppression(ba, 0.5f);
  REQUIRE(kept_ab.size() == 1);
  REQUIRE(kept_ba.size() == 1);
  CHECK(kept_ab[0].box == a.box);
  CHECK(kept_ba[0].box == b.box);
}

TEST_CASE("non_maximum_suppression rejects a bad threshold or score") {
  using detection_metrics_test::detection;
  const std::vector<Detection> one{detection(0, 0, 1, 1, std::nanf(""))};
  CHECK_THROWS_WITH_AS((void)non_maximum_suppression(one, 0.5f),
                       "non_maximum_suppression: the score of detection 0 is not a number", Error);
  CHECK_THROWS_AS((void)non_maximum_suppression({}, 1.5f), Error);
  CHECK_THROWS_AS((void)non_maximum_suppression({}, std::nanf("")), Error);
}

TEST_CASE("average precision by hand: duplicates are false positives, VOC against COCO") {
  using detection_metrics_test::detection;
  // One image, ground truth A = [0, 10] x [0, 10] and B = [20, 30] x [0, 10], class 0.
  //   d1 0.9 = A exactly                  IoU(A) 1:     true positive, takes A
  //   d2 0.8 = [1, 11] x [0, 10]          IoU(A) 0.818: A is taken, a duplicate: false positive
  //   d3 0.7 = [100, 110] x [0, 10]       nothing:      false positive
  //   d4 0.6 = [20, 32] x [0, 10]         IoU(B) 100 / 120 = 0.833: true positive
  // Ranked TP FP FP TP, G = 2: recall 0.5 0.5 0.5 1, precision 1 0.5 0.333 0.5.
  // VOC: envelope 1 up to recall 0.5, then 0.5: AP = 0.5 * 1 + 0.5 * 0.5 = 0.75.
  // COCO at t <= 0.80 (seven thresholds) the same ranking; the envelope 1, 0.5, 0.5, 0.5
  // sampled at r = 0, ..., 0.50 (51 points) gives 1, at r = 0.51, ..., 1 (50 points) 0.5:
  // AP_t = (51 + 25) / 101 = 76 / 101.
  // At t = 0.85, 0.90, 0.95 d4 misses: recall stays 0.5: 51 samples of 1, 50 of 0: 51 / 101.
  // COCO AP = (7 * 76 + 3 * 51) / (10 * 101) = 685 / 1010.
  DetectionEvaluator evaluator({"face"});
  const std::vector<LabelledBox> truth{{{0, 0, 10, 10}, 0}, {{20, 0, 30, 10}, 0}};
  const std::vector<Detection> found{detection(100, 0, 110, 10, 0.7f),
                                     detection(0, 0, 10, 10, 0.9f), detection(20, 0, 32, 10, 0.6f),
                                     detection(1, 0, 11, 10, 0.8f)};
  evaluator.add_image(truth, found);
  const auto report = evaluator.evaluate();
  const auto& face = report.at("face");
  CHECK(face.ground_truths == 2);
  CHECK(face.detections == 4);
  CHECK(*face.voc_ap50 == doctest::Approx(0.75).epsilon(1e-12));
  CHECK(face.coco_ap_at[0] == doctest::Approx(76.0 / 101).epsilon(1e-12));
  CHECK(face.coco_ap_at[6] == doctest::Approx(76.0 / 101).epsilon(1e-12));
  CHECK(face.coco_ap_at[7] == doctest::Approx(51.0 / 101).epsilon(1e-12));
  CHECK(*face.coco_ap == doctest::Approx(685.0 / 1010).epsilon(1e-12));
  // Every detection counts at threshold 0: TP 2, FP 2, no miss.
  CHECK(face.true_positives == 2);
  CHECK(face.false_positives == 2);
  CHECK(face.false_negatives() == 0);
  CHECK(face.precision() == 0.5);
  CHECK(face.recall() == 1.0);
  // At 0.75 only d1 and d2 count: TP 1, FP 1, B missed.
  const auto strict_report = evaluator.evaluate(0.75f);
  const auto& strict = strict_report.at("face");
  CHECK(strict.true_positives == 1);
  CHECK(strict.false_positives == 1);
  CHECK(strict.false_negatives() == 1);
  CHECK(strict.recall() == 0.5);
  CHECK(*strict.voc_ap50 == *face.voc_ap50);  // the threshold changes the counts only
}

TEST_CASE("average precision by hand: VOC matches the best box, COCO the best free box") {
  using detection_metrics_test::detection;
  // A = [0, 10], B = [4, 14] (x; y in [0, 10] for all). d1 0.9 = A: takes A everywhere.
  // d2 0.8 = [1, 11]: IoU(A) = 90 / 110 = 0.818, IoU(B) = 70 / 130 = 0.538.
  //   VOC: d2's best box is A, taken: a false positive. Recall 0.5 0.5, precision 1 0.5:
  //   AP = 0.5.
  //   COCO at 0.5: A is taken, B is free with 0.538 >= 0.5: a true positive; recall 0.5 1,
  //   precision 1 1: every sample 1, AP_0.5 = 1. At 0.55 and above B is too far: 51 / 101.
  //   COCO AP = (1 + 9 * 51 / 101) / 10 = 560 / 1010.
  DetectionEvaluator evaluator({"face"});
  const std::vector<LabelledBox> truth{{{0, 0, 10, 10}, 0}, {{4, 0, 14, 10}, 0}};
  evaluator.add_image(
      truth, std::vector<Detection>{detection(0, 0, 10, 10, 0.9f), detection(1, 0, 11, 10, 0.8f)});
  const auto report = evaluator.evaluate();
  const auto& face = report.at("face");
  CHECK(*face.voc_ap50 == doctest::Approx(0.5).epsilon(1e-12));
  CHECK(face.coco_ap_at[0] == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(face.coco_ap_at[1] == doctest::Approx(51.0 / 101).epsilon(1e-12));
  CHECK(*face.coco_ap == doctest::Approx(560.0 / 1010).epsilon(1e-12));
}

TEST_CASE("average precision over images and classes: no ground truth, no detections, means") {
  using detection_metrics_test::detection;
  // Class 0 (with_mask): image 1 has one box, image 2 another; detections 0.9 on image 2's box,
  //   0.8 a miss on image 1, 0.7 on image 1's box. Ranked TP FP TP, G = 2: recall 0.5 0.5 1,
  //   precision 1 0.5 0.667. VOC: 0.5 * 1 + 0.5 * 0.667 = 0.8333.
  // Class 1 (without_mask): one box, no detection: AP 0.
  // Class 2 (mask_weared_incorrect): no ground truth, one detection: no AP, and left out of the
  //   means. Mean over all: (0.8333 + 0) / 2; over with_mask and without_mask: the same.
  DetectionEvaluator evaluator({"with_mask", "without_mask", "mask_weared_incorrect"});
  evaluator.add_image(
      std::vector<LabelledBox>{{{0, 0, 10, 10}, 0}, {{50, 50, 60, 60}, 1}},
      std::vector<Detection>{detection(200, 0, 210, 10, 0.8f), detection(0, 0, 10, 10, 0.7f),
                             detection(0, 0, 10, 10, 0.95f, 2)});
  evaluator.add_image(std::vector<LabelledBox>{{{5, 5, 25, 25}, 0}},
                      std::vector<Detection>{detection(5, 5, 25, 25, 0.9f)});
  CHECK(evaluator.images() == 2);
  const auto report = evaluator.evaluate();
  CHECK(*report.at("with_mask").voc_ap50 == doctest::Approx(0.5 + 0.5 * 2.0 / 3).epsilon(1e-12));
  CHECK(*report.at("without_mask").voc_ap50 == 0.0);
  CHECK(*report.at("without_mask").coco_ap == 0.0);
  CHECK(report.at("without_mask").false_negatives() == 1);
  const auto& incorrect = report.at("mask_weared_incorrect");
  CHECK_FALSE(incorrect.voc_ap50.has_value());
  CHECK_FALSE(incorrect.coco_ap.has_value());
  CHECK(incorrect.false_positives == 1);
  const double with_mask = 0.5 + 0.5 * 2.0 / 3;
  CHECK(*report.mean_voc_ap50() == doctest::Approx(with_mask / 2).epsilon(1e-12));
  CHECK(*report.mean_voc_ap50({"with_mask", "without_mask"}) ==
        doctest::Approx(with_mask / 2).epsilon(1e-12));
  CHECK(*report.mean_voc_ap50({"with_mask"}) == doctest::Approx(with_mask).epsilon(1e-12));
  CHECK_FALSE(report.mean_voc_ap50({"mask_weared_incorrect"}).has_value());
  CHECK_THROWS_WITH_AS((void)report.mean_coco_ap({"no_mask"}),
                       "DetectionReport: no class named 'no_mask'", Error);
  const std::string table = report.to_text();
  CHECK(table.find("mask_weared_incorrect") != std::string::npos);
  CHECK(table.find("0.8333") != std::string::npos);

  // No images at all: nothing has an AP.
  const auto empty = DetectionEvaluator({"face"}).evaluate();
  CHECK_FALSE(empty.mean_voc_ap50().has_value());
  CHECK_FALSE(empty.mean_coco_ap().has_value());
}

TEST_CASE("DetectionEvaluator rejects bad input, naming the image and the box") {
  using detection_metrics_test::detection;
  DetectionEvaluator evaluator({"with_mask", "without_mask"});
  evaluator.add_image({}, {});
  CHECK_THROWS_WITH_AS(
      evaluator.add_image(std::vector<LabelledBox>{{{0, 0, 1, 1}, 0}, {{0, 0, 1, 1}, 2}}, {}),
      "DetectionEvaluator: image 1, ground truth 1: class 2 outside [0, 2)", Error);
  CHECK_THROWS_WITH_AS(
      evaluator.add_image({}, std::vector<Detection>{detection(0, 0, 1, 1, std::nanf(""))}),
      "DetectionEvaluator: image 1, detection 0: the score is not a number", Error);
  CHECK_THROWS_AS(
      evaluator.add_image({}, std::vector<Detection>{detection(
                                  0, 0, std::numeric_limits<float>::infinity(), 1, 0.5f)}),
      Error);
  CHECK(evaluator.images() == 1);
  CHECK_THROWS_AS(DetectionEvaluator({}), Error);
}

TEST_CASE("VOC and COCO average precision agree with an independent numpy implementation") {
  // tests/golden/detection_ap.py drew 30 images of random boxes (some in crowds of overlapping
  // neighbours) and detections (jittered copies, duplicates, wrong classes, strays; class 3 has
  // no ground truth) and computed the APs from the VOC devkit's and cocoeval's definitions.
  std::ifstream in(STRATUM_TEST_DATA_DIR "/golden_detection_ap.txt");
  REQUIRE_MESSAGE(in, "cannot open golden_detection_ap.txt");
  std::optional<DetectionEvaluator> evaluator;
  std::vector<LabelledBox> truth;
  std::vector<Detection> found;
  struct Expected {
    int class_id;
    std::string voc;  // "none" or the AP
    Index true_positives, false_positives;
    std::vector<double> coco;  // empty for "none"
  };
  std::vector<Expected> expected;
  const auto flush = [&] {
    if (evaluator) evaluator->add_image(truth, found);
    truth.clear();
    found.clear();
  };
  bool in_image = false;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string kind;
    fields >> kind;
    if (kind == "classes") {
      int classes = 0;
      fields >> classes;
      std::vector<std::string> names;
      for (int c = 0; c < classes; ++c) names.push_back("class" + std::to_string(c));
      evaluator.emplace(names);
    } else if (kind == "image") {
      if (in_image) flush();
      in_image = true;
    } else if (kind == "gt") {
      LabelledBox g;
      fields >> g.class_id >> g.box.x_min >> g.box.y_min >> g.box.x_max >> g.box.y_max;
      REQUIRE_MESSAGE(fields, "cannot read the line: " << line);
      truth.push_back(g);
    } else if (kind == "det") {
      Detection d;
      fields >> d.class_id >> d.score >> d.box.x_min >> d.box.y_min >> d.box.x_max >> d.box.y_max;
      REQUIRE_MESSAGE(fields, "cannot read the line: " << line);
      found.push_back(d);
    } else if (kind == "voc") {
      if (in_image) flush();
      in_image = false;
      Expected e;
      fields >> e.class_id >> e.voc >> e.true_positives >> e.false_positives;
      REQUIRE_MESSAGE(fields, "cannot read the line: " << line);
      expected.push_back(e);
    } else if (kind == "coco") {
      int class_id = 0;
      fields >> class_id;
      REQUIRE(expected.back().class_id == class_id);
      for (std::string value; fields >> value;)
        if (value != "none") expected.back().coco.push_back(std::stod(value));
    }
  }
  REQUIRE(evaluator);
  REQUIRE(evaluator->images() == 30);
  const auto report = evaluator->evaluate(0.5f);
  REQUIRE(expected.size() == report.classes.size());
  for (const auto& e : expected) {
    CAPTURE(e.class_id);
    const auto& m = report.classes[static_cast<std::size_t>(e.class_id)];
    CHECK(m.true_positives == e.true_positives);
    CHECK(m.false_positives == e.false_positives);
    if (e.voc == "none") {
      CHECK_FALSE(m.voc_ap50.has_value());
      CHECK_FALSE(m.coco_ap.has_value());
      CHECK(e.coco.empty());
      continue;
    }
    REQUIRE(m.voc_ap50.has_value());
    CHECK(std::abs(*m.voc_ap50 - std::stod(e.voc)) < 1e-6);
    REQUIRE(e.coco.size() == 10);
    double mean = 0;
    for (std::size_t t = 0; t < 10; ++t) {
      CAPTURE(t);
      CHECK(std::abs(m.coco_ap_at[t] - e.coco[t]) < 1e-6);
      mean += e.coco[t] / 10;
    }
    CHECK(std::abs(*m.coco_ap - mean) < 1e-6);
  }
}
