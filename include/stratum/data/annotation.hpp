// What the box-annotation readers (voc.hpp, yolo_labels.hpp) share: the boxes of one scene, the
// problems found in its annotation, and the rules that decide whether a box is kept.
//
// A bad object (unknown class, missing or garbled coordinates, a zero-size or inverted box, a box
// outside the image) is left out with an AnnotationIssue that names the file, the object's index
// (0-based, in file order) and its class, and the rest of the file is read. A file that cannot be
// read at all (broken XML, no image size) throws AnnotationError. With `strict`, every problem
// throws AnnotationError: the caller decides whether a run goes on.
//
// The one-pixel rule: annotation tools often put the far edge of a box that touches the image's
// border one pixel past it (the face-mask set has 12 boxes with xmax = 401 in 400-px scenes).
// A box that reaches at most `edge_tolerance` pixels past the image is clamped to it and counted
// (`clamped_boxes`), so a summary can say so; a box further out is a bad annotation.
#pragma once

#include <charconv>
#include <cmath>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../detection/box.hpp"
#include "../errors.hpp"

namespace stratum {

/// A file with boxes that cannot be read, or, in strict mode, any bad object in one.
class AnnotationError : public IoError {
 public:
  using IoError::IoError;
};

/// One bad object that was left out.
struct AnnotationIssue {
  std::string file;
  int object = -1;         // 0-based index among the file's objects
  std::string class_name;  // as written in the file ("" when missing)
  std::string problem;     // "xmax 'abc' is not a number"

  /// "'a.xml' object 2 (with_mask): xmax 'abc' is not a number"
  [[nodiscard]] std::string message() const {
    return "'" + file + "' object " + std::to_string(object) + " (" +
           (class_name.empty() ? std::string("no class") : class_name) + "): " + problem;
  }
};

struct AnnotationOptions {
  /// Throw AnnotationError on the first bad object instead of leaving it out.
  bool strict = false;
  /// How far past the image's edge (in pixels) a box may reach and still be clamped to it.
  float edge_tolerance = 1.0f;
};

/// The usable boxes of one scene, in the image's pixel coordinates (detection/box.hpp).
struct SceneAnnotation {
  int width = 0;  // the image's size the boxes were checked against
  int height = 0;
  std::vector<LabelledBox> boxes;
  int clamped_boxes = 0;                // boxes that reached past the edge and were clamped
  std::vector<AnnotationIssue> issues;  // objects left out
};

/// The index of `name` in `class_names`, or -1.
inline int class_index(std::span<const std::string> class_names, const std::string& name) {
  for (std::size_t i = 0; i < class_names.size(); ++i)
    if (class_names[i] == name) return static_cast<int>(i);
  return -1;
}

/// "with_mask, without_mask" for messages.
inline std::string joined_class_names(std::span<const std::string> class_names) {
  std::string joined;
  for (const auto& name : class_names) joined += (joined.empty() ? "" : ", ") + name;
  return joined;
}

namespace detail {

/// `text` without surrounding white space.
inline std::string_view trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

/// The number in `text` (white space around it allowed), or nothing if it is not exactly one.
inline std::optional<double> parse_number(std::string_view text) {
  text = trimmed(text);
  if (text.empty()) return std::nullopt;
  if (text.front() == '+') text.remove_prefix(1);  // from_chars does not take a '+'
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value))
    return std::nullopt;
  return value;
}

/// Records a bad object: thrown in strict mode, otherwise added to the scene's issues.
inline void report_bad_object(SceneAnnotation& scene, AnnotationIssue issue,
                              const AnnotationOptions& options) {
  if (options.strict) throw AnnotationError(issue.message());
  scene.issues.push_back(std::move(issue));
}

/// Why `box` cannot be used in a width x height image, or nothing; clamps a box that reaches at
/// most `tolerance` past an edge (setting `clamped`). Not-a-number coordinates count as garbled.
inline std::optional<std::string> check_and_clamp(Box& box, int width, int height, float tolerance,
                                                  bool& clamped) {
  clamped = false;
  for (float v : {box.x_min, box.y_min, box.x_max, box.y_max})
    if (!std::isfinite(v)) return "a coordinate is not a finite number";
  if (box.width() < 0 || box.height() < 0)
    return "the box is inverted (its maximum is below its minimum)";
  if (box.width() == 0 || box.height() == 0) return "the box has zero size";
  const auto w = static_cast<float>(width), h = static_cast<float>(height);
  if (box.x_min < -tolerance || box.y_min < -tolerance || box.x_max > w + tolerance ||
      box.y_max > h + tolerance || box.x_min >= w || box.y_min >= h || box.x_max <= 0 ||
      box.y_max <= 0)
    return "the box [" + std::to_string(box.x_min) + ", " + std::to_string(box.x_max) + "] x [" +
           std::to_string(box.y_min) + ", " + std::to_string(box.y_max) + "] reaches outside the " +
           std::to_string(width) + "x" + std::to_string(height) + " image";
  const Box inside{std::max(box.x_min, 0.0f), std::max(box.y_min, 0.0f), std::min(box.x_max, w),
                   std::min(box.y_max, h)};
  clamped = !(inside == box);
  box = inside;
  return std::nullopt;
}

/// Checks, clamps and keeps `box` of class `class_id`, or reports it.
inline void accept_box(SceneAnnotation& scene, Box box, int class_id, AnnotationIssue where,
                       const AnnotationOptions& options) {
  bool clamped = false;
  if (auto problem =
          check_and_clamp(box, scene.width, scene.height, options.edge_tolerance, clamped)) {
    where.problem = std::move(*problem);
    report_bad_object(scene, std::move(where), options);
    return;
  }
  scene.clamped_boxes += clamped ? 1 : 0;
  scene.boxes.push_back({box, class_id});
}

}  // namespace detail

}  // namespace stratum
