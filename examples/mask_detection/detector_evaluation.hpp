// Scoring the detector on a part of the scenes: its detections mapped back to each scene's own
// pixels, then VOC AP50, COCO AP[.5:.95], precision and recall per class, over all boxes and by
// box size.
#pragma once

#include <stratum/detection/average_precision.hpp>
#include <stratum/detection/decode.hpp>

#include <cmath>
#include <iomanip>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "detector_data.hpp"

namespace mask_detection {

/// Detections kept per scene: CenterNet's 100 (more than the 115 faces of the fullest scene
/// would need only there; COCO scores the top 100 as well).
inline constexpr int detections_per_scene = 100;

/// The detections of every sample of `samples`, in its scene's pixels: decoded from the
/// heatmap logits (decode.hpp), mapped back through the letterbox and clipped to the scene; a
/// detection that lies wholly on the padding is dropped.
inline std::vector<std::vector<stratum::Detection>> detect_scenes(stratum::GraphModel<float>& model,
                                                                  const DetectorSamples& samples,
                                                                  stratum::Index batch_size = 8) {
  using namespace stratum;
  std::vector<std::vector<Detection>> result;
  CenterNetDecodeOptions options;
  options.top_k = detections_per_scene;
  options.from_logits = true;
  // A chunk at a time, so that the output maps of a large part never all sit in memory.
  const Index chunk = 64;
  for (Index first = 0; first < samples.size(); first += chunk) {
    const Index count = std::min(chunk, samples.size() - first);
    std::vector<Index> part;
    for (Index k = first; k < first + count; ++k) part.push_back(samples.scene_index(k));
    const DetectorSamples some(samples.scenes(), part, samples.input_size(), samples.target());
    const std::vector<Tensor<float>> maps = model.predict(some, batch_size);
    const auto decoded = decode_centernet(maps[0], maps[1], maps[2], some.encoding(), options);
    for (Index k = 0; k < count; ++k) {
      const Letterbox geometry = some.geometry(k);
      std::vector<Detection> in_scene;
      for (Detection d : decoded[static_cast<std::size_t>(k)]) {
        d.box = geometry.to_image(d.box);
        if (d.box.width() > 0 && d.box.height() > 0) in_scene.push_back(d);
      }
      result.push_back(std::move(in_scene));
    }
  }
  return result;
}

/// A range of box sizes, by the shorter side in the scene's pixels, [low, high).
struct SizeRange {
  std::string name;
  float low, high;
  [[nodiscard]] bool contains(const stratum::Box& b) const {
    const float side = std::min(b.width(), b.height());
    return side >= low && side < high;
  }
};

inline const std::vector<SizeRange> size_ranges{
    {"< 16 px", 0, 16},
    {"16-31 px", 16, 32},
    {"32-63 px", 32, 64},
    {">= 64 px", 64, std::numeric_limits<float>::infinity()}};

struct DetectorScores {
  stratum::DetectionReport all;        // every box, counts at the operating threshold
  stratum::DetectionReport any_score;  // the same at threshold 0: the highest recall reachable
  std::vector<stratum::DetectionReport> by_size;  // one per size_ranges entry
};

namespace detail {

/// The ground truth and detections of one scene as scored for the boxes of `range`, after
/// COCO's area ranges: boxes outside the range are not counted, and neither are the detections
/// that find them (IoU >= 0.5 with one, none with a box inside the range) nor those outside the
/// range that find nothing. COCO decides "find" by its own matching at each IoU threshold; here
/// it is decided once, at IoU 0.5, for every threshold.
inline void restrict_to_size(const SizeRange& range,
                             const std::vector<stratum::LabelledBox>& ground_truth,
                             const std::vector<stratum::Detection>& detections,
                             std::vector<stratum::LabelledBox>& kept_truth,
                             std::vector<stratum::Detection>& kept_detections) {
  using namespace stratum;
  kept_truth.clear();
  kept_detections.clear();
  for (const LabelledBox& b : ground_truth)
    if (range.contains(b.box)) kept_truth.push_back(b);
  for (const Detection& d : detections) {
    bool finds_inside = false, finds_outside = false;
    for (const LabelledBox& b : ground_truth) {
      if (b.class_id != d.class_id || intersection_over_union(b.box, d.box) < 0.5f) continue;
      (range.contains(b.box) ? finds_inside : finds_outside) = true;
    }
    if (finds_inside || (!finds_outside && range.contains(d.box))) kept_detections.push_back(d);
  }
}

}  // namespace detail

/// Scores `detections` (one list per scene of `part`, in scene pixels) against the scenes'
/// boxes, per class or, for `HeatmapTarget::faces`, as one class "face"; counts at
/// `operating_threshold`.
inline DetectorScores score_detections(
    const stratum::SceneCollection& scenes, const std::vector<stratum::Index>& part,
    const std::vector<std::vector<stratum::Detection>>& detections, float operating_threshold,
    HeatmapTarget target = HeatmapTarget::per_class) {
  using namespace stratum;
  const auto& names = target == HeatmapTarget::faces ? face_class : scenes.class_names;
  DetectionEvaluator all(names);
  std::vector<DetectionEvaluator> by_size(size_ranges.size(), DetectionEvaluator(names));
  std::vector<LabelledBox> truth;
  std::vector<Detection> found;
  for (std::size_t k = 0; k < part.size(); ++k) {
    const std::vector<LabelledBox> boxes = heatmap_boxes(scenes.scene(part[k]).boxes, target);
    all.add_image(boxes, detections[k]);
    for (std::size_t r = 0; r < size_ranges.size(); ++r) {
      detail::restrict_to_size(size_ranges[r], boxes, detections[k], truth, found);
      by_size[r].add_image(truth, found);
    }
  }
  DetectorScores scores{all.evaluate(operating_threshold), all.evaluate(0), {}};
  for (const auto& e : by_size) scores.by_size.push_back(e.evaluate(operating_threshold));
  return scores;
}

namespace detail {

inline std::string figure(const std::optional<double>& v, int precision = 4) {
  if (!v) return "-";
  std::ostringstream out;
  out << std::fixed << std::setprecision(precision) << *v;
  return out.str();
}

inline std::string json_figure(const std::optional<double>& v) {
  if (!v) return "null";
  std::ostringstream out;
  out << std::setprecision(6) << *v;
  return out.str();
}

inline double recall_of(const stratum::DetectionReport& r, const std::vector<std::string>& names) {
  stratum::Index found = 0, boxes = 0;
  for (const auto& name : names) {
    found += r.at(name).true_positives;
    boxes += r.at(name).ground_truths;
  }
  return boxes > 0 ? double(found) / double(boxes) : 0.0;
}

inline std::vector<std::string> names_of(const stratum::DetectionReport& r) {
  std::vector<std::string> names;
  for (const auto& c : r.classes) names.push_back(c.name);
  return names;
}

}  // namespace detail

/// The headline, the per-class table and the table by box size, as text.
inline std::string scores_to_text(const DetectorScores& s) {
  using detail::figure;
  std::ostringstream out;
  const auto all_names = detail::names_of(s.all);
  out << "mean AP50 (with_mask, without_mask): " << figure(s.all.mean_voc_ap50(headline_classes))
      << "   three-class mAP50: " << figure(s.all.mean_voc_ap50())
      << "   COCO AP[.5:.95] (three classes): " << figure(s.all.mean_coco_ap()) << '\n'
      << "recall at any score (top " << detections_per_scene << " per scene): ";
  for (const auto& name : all_names)
    out << name << ' ' << figure(s.any_score.at(name).recall(), 3) << "  ";
  out << "\n\n" << s.all.to_text() << "\nBy box size (shorter side in the scene's pixels):\n";
  out << std::left << std::setw(10) << "size" << std::right << std::setw(7) << "boxes";
  for (const auto& name : all_names) out << std::setw(12) << name.substr(0, 11);
  out << std::setw(10) << "mean(2)" << std::setw(9) << "mAP(3)" << std::setw(9) << "COCO AP"
      << std::setw(9) << "recall"
      << "\n";
  for (std::size_t r = 0; r < size_ranges.size(); ++r) {
    const stratum::DetectionReport& report = s.by_size[r];
    stratum::Index boxes = 0;
    for (const auto& c : report.classes) boxes += c.ground_truths;
    out << std::left << std::setw(10) << size_ranges[r].name << std::right << std::setw(7) << boxes;
    for (const auto& name : all_names) out << std::setw(12) << figure(report.at(name).voc_ap50);
    out << std::setw(10) << figure(report.mean_voc_ap50(headline_classes)) << std::setw(9)
        << figure(report.mean_voc_ap50()) << std::setw(9) << figure(report.mean_coco_ap())
        << std::setw(9) << figure(detail::recall_of(report, all_names), 3) << '\n';
  }
  out << "(per-class columns: AP50; recall over all classes at score >= "
      << s.all.operating_threshold << ")\n";
  return out.str();
}

/// The same figures as one JSON object.
inline std::string scores_to_json(const DetectorScores& s) {
  using detail::json_figure;
  std::ostringstream out;
  out << std::setprecision(6);
  auto report_json = [&](const stratum::DetectionReport& r) {
    std::ostringstream o;
    o << std::setprecision(6)
      << "{\"mean_ap50\": " << json_figure(r.mean_voc_ap50(headline_classes))
      << ", \"map50\": " << json_figure(r.mean_voc_ap50())
      << ", \"coco_ap\": " << json_figure(r.mean_coco_ap()) << ", \"classes\": {";
    for (std::size_t c = 0; c < r.classes.size(); ++c) {
      const auto& m = r.classes[c];
      o << (c ? ", " : "") << '"' << m.name << "\": {\"boxes\": " << m.ground_truths
        << ", \"detections\": " << m.detections << ", \"true_positives\": " << m.true_positives
        << ", \"false_positives\": " << m.false_positives << ", \"precision\": " << m.precision()
        << ", \"recall\": " << m.recall() << ", \"ap50\": " << json_figure(m.voc_ap50)
        << ", \"coco_ap\": " << json_figure(m.coco_ap) << "}";
    }
    o << "}}";
    return o.str();
  };
  out << "{\"operating_threshold\": " << s.all.operating_threshold
      << ", \"headline_classes\": [\"with_mask\", \"without_mask\"], \"all\": "
      << report_json(s.all) << ", \"recall_at_any_score\": {";
  for (std::size_t c = 0; c < s.any_score.classes.size(); ++c)
    out << (c ? ", " : "") << '"' << s.any_score.classes[c].name
        << "\": " << s.any_score.classes[c].recall();
  out << "}, \"by_size\": [";
  for (std::size_t r = 0; r < size_ranges.size(); ++r)
    out << (r ? ", " : "") << "{\"size\": \"" << size_ranges[r].name
        << "\", \"scores\": " << report_json(s.by_size[r]) << "}";
  out << "]}";
  return out.str();
}

}  // namespace mask_detection
