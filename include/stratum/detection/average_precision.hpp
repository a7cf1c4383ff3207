// Average precision of detections against ground truth, per class: Pascal VOC's and COCO's.
//
// For one class, over every image: rank the class's detections by descending score (equal
// scores in the order they were added: image by image, then within an image) and match each to
// at most one ground-truth box of that class in its image (below). Walking down the ranking,
//   recall_k    = TP_k / G          G = ground-truth boxes of the class
//   precision_k = TP_k / (TP_k + FP_k)
// after the k-th detection. AP summarises the precision/recall curve:
//
// VOC, all-point (VOC 2010 on; the devkit's VOCap): envelope p~(r) = max_{k: recall_k >= r}
// precision_k; AP = sum over the points where recall rises of (recall_k - recall_{k-1}) p~_k,
// the exact area under the envelope.
//   Matching at IoU 0.5 (VOCevaldet): a detection goes to the ground truth it overlaps most; if
//   that IoU >= 0.5 and the box is not yet taken it is a true positive and takes it; otherwise
//   (a box already taken: a duplicate; or too little overlap) a false positive. The devkit's IoU
//   counts pixels inclusively, (xmax - xmin + 1); box.hpp's continuous boxes give the same value.
//   The data has no "difficult" objects (every one is 0), so none is ignored.
//
// COCO (cocoeval.py): at each IoU threshold t in 0.50, 0.55, ..., 0.95,
//   matching per image, detections by descending score: each goes to the best-overlapping ground
//   truth NOT yet taken with IoU >= t (on equal IoU the later box, as cocoeval's loop does);
//   none: a false positive;
//   101-point interpolation: precision_k made non-increasing from the right (the envelope),
//   then sampled at recall r = 0, 0.01, ..., 1 at the first detection with recall_k >= r (0 for
//   an r above the largest recall); AP_t = the mean of the 101 samples, and precision_k is
//   TP_k / (TP_k + FP_k + 2^-52) as cocoeval computes it.
//   COCO AP = the mean of AP_t over the ten thresholds; AP_t at 0.5 is COCO's "AP50", which
//   differs from VOC's AP50 by the 101-point sampling and the matching rule.
//   Not modelled: COCO's cap of 100 detections per image and class (decode.hpp's top_k bounds
//   them instead), crowd regions and area ranges (the data has neither).
//
// A class with no ground truth in any image has no AP (both VOC and COCO leave it undefined:
// recall is 0/0; cocoeval marks it -1 and leaves it out of the mean): its AP is empty here and
// the means skip it. A class with ground truth and no detections has AP 0.
//
// The counts (true and false positives, misses, precision, recall) are taken at IoU 0.5 with
// VOC's matching among the detections whose score is at least an operating threshold given to
// evaluate(): the detections kept at a score threshold are a prefix of the ranking, and greedy
// matching of a prefix is the prefix of the matching, so one ranking serves every threshold.
#pragma once

#include <array>
#include <cmath>
#include <iomanip>
#include <numeric>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "box.hpp"

namespace stratum {

/// VOC's all-point AP of a precision/recall curve (one point per ranked detection, recall
/// non-decreasing): the area under the precision envelope.
[[nodiscard]] inline double voc_all_point_average_precision(std::span<const double> recall,
                                                            std::span<const double> precision) {
  // With sentinels (0 at recall 0, 0 at recall 1) as VOCap adds them.
  std::vector<double> r{0.0}, p{0.0};
  r.insert(r.end(), recall.begin(), recall.end());
  p.insert(p.end(), precision.begin(), precision.end());
  r.push_back(1.0);
  p.push_back(0.0);
  for (std::size_t k = p.size() - 1; k > 0; --k) p[k - 1] = std::max(p[k - 1], p[k]);
  double area = 0;
  for (std::size_t k = 1; k < r.size(); ++k)
    if (r[k] != r[k - 1]) area += (r[k] - r[k - 1]) * p[k];
  return area;
}

/// COCO's 101-point AP of a precision/recall curve (recall non-decreasing).
[[nodiscard]] inline double coco_101_point_average_precision(std::span<const double> recall,
                                                             std::span<const double> precision) {
  std::vector<double> envelope(precision.begin(), precision.end());
  for (std::size_t k = envelope.size(); k > 1; --k)
    envelope[k - 2] = std::max(envelope[k - 2], envelope[k - 1]);
  double sum = 0;
  for (int s = 0; s <= 100; ++s) {
    // np.linspace(0, 1, 101): s * 0.01, and exactly 1 at the end.
    const double r = s == 100 ? 1.0 : s * 0.01;
    const auto first = std::lower_bound(recall.begin(), recall.end(), r);
    if (first != recall.end()) sum += envelope[static_cast<std::size_t>(first - recall.begin())];
  }
  return sum / 101;
}

/// The figures of one class (file comment).
struct ClassDetectionMetrics {
  std::string name;
  Index ground_truths = 0;  ///< G, boxes of the class over all images
  Index detections = 0;     ///< detections of the class over all images, at any score
  /// At IoU 0.5 (VOC matching) among detections scoring at least the operating threshold.
  Index true_positives = 0, false_positives = 0;
  std::optional<double> voc_ap50;  ///< VOC all-point AP at IoU 0.5; empty without ground truth
  std::optional<double> coco_ap;   ///< COCO AP over IoU 0.50:0.05:0.95; empty likewise
  /// COCO's 101-point AP at each threshold 0.50, 0.55, ..., 0.95 (zeros without ground truth).
  std::array<double, 10> coco_ap_at{};

  [[nodiscard]] Index false_negatives() const { return ground_truths - true_positives; }
  /// TP / (TP + FP), 0 when nothing was detected.
  [[nodiscard]] double precision() const {
    const Index d = true_positives + false_positives;
    return d > 0 ? static_cast<double>(true_positives) / static_cast<double>(d) : 0.0;
  }
  /// TP / G, 0 without ground truth.
  [[nodiscard]] double recall() const {
    return ground_truths > 0
               ? static_cast<double>(true_positives) / static_cast<double>(ground_truths)
               : 0.0;
  }
};

/// Every class's figures, and their means over all classes or a chosen few.
struct DetectionReport {
  std::vector<ClassDetectionMetrics> classes;
  float operating_threshold = 0;  ///< of the counts

  /// Mean of the VOC AP50 of the named classes that have ground truth (empty if none has).
  /// Throws Error on a name that is not a class.
  [[nodiscard]] std::optional<double> mean_voc_ap50(const std::vector<std::string>& names) const {
    return mean(names, &ClassDetectionMetrics::voc_ap50);
  }
  [[nodiscard]] std::optional<double> mean_voc_ap50() const {
    return mean(all_names(), &ClassDetectionMetrics::voc_ap50);
  }
  /// The same for COCO's AP over IoU 0.50:0.95.
  [[nodiscard]] std::optional<double> mean_coco_ap(const std::vector<std::string>& names) const {
    return mean(names, &ClassDetectionMetrics::coco_ap);
  }
  [[nodiscard]] std::optional<double> mean_coco_ap() const {
    return mean(all_names(), &ClassDetectionMetrics::coco_ap);
  }

  [[nodiscard]] const ClassDetectionMetrics& at(const std::string& name) const {
    for (const auto& c : classes)
      if (c.name == name) return c;
    throw Error("DetectionReport: no class named '" + name + "'");
  }

  /// A table: one row per class, then the means over all classes ("-": no ground truth).
  [[nodiscard]] std::string to_text() const {
    std::ostringstream out;
    out << std::fixed << std::setprecision(4);
    const auto ap = [](const std::optional<double>& v) {
      std::ostringstream s;
      s << std::fixed << std::setprecision(4);
      if (v)
        s << *v;
      else
        s << "-";
      return s.str();
    };
    out << std::left << std::setw(24) << "class" << std::right << std::setw(8) << "boxes"
        << std::setw(8) << "dets" << std::setw(7) << "TP" << std::setw(7) << "FP" << std::setw(7)
        << "FN" << std::setw(11) << "precision" << std::setw(9) << "recall" << std::setw(9)
        << "AP50" << std::setw(13) << "AP.50:.95\n";
    for (const auto& c : classes)
      out << std::left << std::setw(24) << c.name << std::right << std::setw(8) << c.ground_truths
          << std::setw(8) << c.detections << std::setw(7) << c.true_positives << std::setw(7)
          << c.false_positives << std::setw(7) << c.false_negatives() << std::setw(11)
          << c.precision() << std::setw(9) << c.recall() << std::setw(9) << ap(c.voc_ap50)
          << std::setw(12) << ap(c.coco_ap) << '\n';
    out << std::left << std::setw(24) << "mean (all classes)" << std::right << std::setw(66)
        << ap(mean_voc_ap50()) << std::setw(12) << ap(mean_coco_ap()) << '\n';
    out << "(AP50: VOC all-point at IoU 0.5; AP.50:.95: COCO 101-point; counts at IoU 0.5 and "
           "score >= "
        << operating_threshold << ")\n";
    return out.str();
  }

 private:
  [[nodiscard]] std::vector<std::string> all_names() const {
    std::vector<std::string> names;
    for (const auto& c : classes) names.push_back(c.name);
    return names;
  }
  [[nodiscard]] std::optional<double> mean(const std::vector<std::string>& names,
                                           std::optional<double> ClassDetectionMetrics::*ap) const {
    double sum = 0;
    int counted = 0;
    for (const auto& name : names)
      if (const auto& value = at(name).*ap) {
        sum += *value;
        ++counted;
      }
    if (counted == 0) return std::nullopt;
    return sum / counted;
  }
};

/// Collects ground truth and detections image by image, then scores them (file comment).
class DetectionEvaluator {
 public:
  explicit DetectionEvaluator(std::vector<std::string> class_names)
      : names_(std::move(class_names)) {
    if (names_.empty()) throw Error("DetectionEvaluator: needs at least one class");
  }

  /// Adds one image: its ground-truth boxes and the detector's detections (any order, any
  /// score). Throws Error naming the image and the box on a class out of range, a coordinate
  /// that is not finite or a score that is not a number.
  void add_image(std::span<const LabelledBox> ground_truth, std::span<const Detection> detections) {
    const std::string image = "DetectionEvaluator: image " + std::to_string(images_.size());
    for (std::size_t k = 0; k < ground_truth.size(); ++k)
      check(ground_truth[k].box, ground_truth[k].class_id,
            image + ", ground truth " + std::to_string(k));
    for (std::size_t k = 0; k < detections.size(); ++k) {
      check(detections[k].box, detections[k].class_id, image + ", detection " + std::to_string(k));
      if (std::isnan(detections[k].score))
        throw Error(image + ", detection " + std::to_string(k) + ": the score is not a number");
    }
    images_.push_back(
        {{ground_truth.begin(), ground_truth.end()}, {detections.begin(), detections.end()}});
  }

  [[nodiscard]] Index images() const { return static_cast<Index>(images_.size()); }
  [[nodiscard]] const std::vector<std::string>& class_names() const { return names_; }

  /// Every class's AP and counts; the counts use the detections scoring >= operating_threshold.
  [[nodiscard]] DetectionReport evaluate(float operating_threshold = 0) const {
    DetectionReport report;
    report.operating_threshold = operating_threshold;
    for (int c = 0; c < static_cast<int>(names_.size()); ++c)
      report.classes.push_back(evaluate_class(c, operating_threshold));
    return report;
  }

 private:
  struct Image {
    std::vector<LabelledBox> ground_truth;
    std::vector<Detection> detections;
  };
  /// A detection of the class being scored: its score and whether it matched.
  struct Ranked {
    float score;
    bool matched;
  };

  void check(const Box& b, int class_id, const std::string& what) const {
    if (!std::isfinite(b.x_min) || !std::isfinite(b.y_min) || !std::isfinite(b.x_max) ||
        !std::isfinite(b.y_max))
      throw Error(what + ": a coordinate is not finite");
    if (class_id < 0 || class_id >= static_cast<int>(names_.size()))
      throw Error(what + ": class " + std::to_string(class_id) + " outside [0, " +
                  std::to_string(names_.size()) + ")");
  }

  /// The class's ground-truth boxes and its detections (by descending score, stable) in one
  /// image.
  static void select(const Image& image, int class_id, std::vector<Box>& truth,
                     std::vector<Detection>& detections) {
    truth.clear();
    detections.clear();
    for (const auto& g : image.ground_truth)
      if (g.class_id == class_id) truth.push_back(g.box);
    for (const auto& d : image.detections)
      if (d.class_id == class_id) detections.push_back(d);
    std::stable_sort(detections.begin(), detections.end(),
                     [](const Detection& a, const Detection& b) { return a.score > b.score; });
  }

  /// Ranks the detections of all images (each image's already ranked, concatenated in image
  /// order) by descending score, stable, and returns the precision/recall curve; `epsilon` is
  /// added to precision's denominator (cocoeval adds np.spacing(1), VOC nothing).
  static void curve(std::vector<Ranked>& ranked, Index ground_truths, double epsilon,
                    std::vector<double>& recall, std::vector<double>& precision) {
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const Ranked& a, const Ranked& b) { return a.score > b.score; });
    recall.clear();
    precision.clear();
    double tp = 0, fp = 0;
    for (const auto& r : ranked) {
      (r.matched ? tp : fp) += 1;
      recall.push_back(tp / static_cast<double>(ground_truths));
      precision.push_back(tp / (tp + fp + epsilon));
    }
  }

  [[nodiscard]] ClassDetectionMetrics evaluate_class(int class_id, float threshold) const {
    ClassDetectionMetrics m;
    m.name = names_[static_cast<std::size_t>(class_id)];
    std::vector<Box> truth;
    std::vector<Detection> detections;
    std::vector<Ranked> voc;
    std::array<std::vector<Ranked>, 10> coco;
    for (const auto& image : images_) {
      select(image, class_id, truth, detections);
      m.ground_truths += static_cast<Index>(truth.size());
      m.detections += static_cast<Index>(detections.size());
      match_voc(truth, detections, voc);
      for (std::size_t t = 0; t < 10; ++t)
        match_coco(truth, detections, 0.5 + 0.05 * static_cast<double>(t), coco[t]);
    }

    std::vector<double> recall, precision;
    curve(voc, m.ground_truths, 0.0, recall, precision);
    // `voc` is ranked now: the detections above the threshold are its head.
    for (const auto& r : voc) {
      if (!(r.score >= threshold)) break;
      ++(r.matched ? m.true_positives : m.false_positives);
    }
    if (m.ground_truths == 0) return m;
    m.voc_ap50 = voc_all_point_average_precision(recall, precision);
    double sum = 0;
    for (std::size_t t = 0; t < 10; ++t) {
      curve(coco[t], m.ground_truths, 0x1.0p-52, recall, precision);
      m.coco_ap_at[t] = coco_101_point_average_precision(recall, precision);
      sum += m.coco_ap_at[t];
    }
    m.coco_ap = sum / 10;
    return m;
  }

  /// VOC: each detection to the ground truth it overlaps most; a true positive if IoU >= 0.5
  /// and that box is free.
  static void match_voc(const std::vector<Box>& truth, const std::vector<Detection>& detections,
                        std::vector<Ranked>& out) {
    std::vector<bool> taken(truth.size(), false);
    for (const auto& d : detections) {
      float best = -1;
      std::size_t best_index = 0;
      for (std::size_t g = 0; g < truth.size(); ++g) {
        const float iou = intersection_over_union(d.box, truth[g]);
        if (iou > best) {
          best = iou;
          best_index = g;
        }
      }
      const bool matched = best >= 0.5f && !taken[best_index];
      if (matched) taken[best_index] = true;
      out.push_back({d.score, matched});
    }
  }

  /// COCO: each detection to the free ground truth it overlaps most with IoU >= t.
  static void match_coco(const std::vector<Box>& truth, const std::vector<Detection>& detections,
                         double t, std::vector<Ranked>& out) {
    std::vector<bool> taken(truth.size(), false);
    for (const auto& d : detections) {
      double best = std::min(t, 1 - 1e-10);
      std::ptrdiff_t match = -1;
      for (std::size_t g = 0; g < truth.size(); ++g) {
        if (taken[g]) continue;
        const double iou = intersection_over_union(d.box, truth[g]);
        if (iou < best) continue;
        best = iou;
        match = static_cast<std::ptrdiff_t>(g);
      }
      if (match >= 0) taken[static_cast<std::size_t>(match)] = true;
      out.push_back({d.score, match >= 0});
    }
  }

  std::vector<std::string> names_;
  std::vector<Image> images_;
};

}  // namespace stratum
