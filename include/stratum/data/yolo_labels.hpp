// YOLO labels: one text file per image, one object a line,
//
//   class_id centre_x centre_y width height
//
// the class an index into the caller's class list (the order of the dataset's classes.txt or
// data.yaml), the four numbers in [0, 1] as fractions of the image's width and height. So the
// box in pixels (detection/box.hpp) is
//
//   [(cx - w/2) W, (cx + w/2) W] x [(cy - h/2) H, (cy + h/2) H].
//
// Blank lines are skipped. A line with another number of fields (segmentation polygons, a
// confidence column) or a field that is not a number is a bad object; so is a class index that
// is not a whole number in range. Bad objects, clamping and strict mode: see annotation.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "annotation.hpp"
#include "binary_io.hpp"

namespace stratum {

/// Reads the YOLO labels in `text` (`name` is used in messages) of a width x height image.
inline SceneAnnotation parse_yolo_labels(std::string_view text, const std::string& name, int width,
                                         int height, std::span<const std::string> class_names,
                                         const AnnotationOptions& options = {}) {
  if (width < 1 || height < 1)
    throw AnnotationError("'" + name + "': the image size " + std::to_string(width) + "x" +
                          std::to_string(height) + " is not positive");
  SceneAnnotation scene;
  scene.width = width;
  scene.height = height;
  int index = 0;
  while (!text.empty()) {
    const auto end = text.find('\n');
    const std::string_view line = detail::trimmed(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty()) continue;

    std::vector<std::string_view> fields;
    for (std::size_t at = 0; at < line.size();) {
      const auto first = line.find_first_not_of(" \t", at);
      if (first == std::string_view::npos) break;
      const auto last = std::min(line.find_first_of(" \t", first), line.size());
      fields.push_back(line.substr(first, last - first));
      at = last;
    }
    AnnotationIssue where{name, index++, std::string(fields[0]), ""};
    auto bad = [&](std::string problem) {
      where.problem = std::move(problem);
      detail::report_bad_object(scene, std::move(where), options);
    };
    const auto id = detail::parse_number(fields[0]);
    if (!id || *id != std::floor(*id) || *id < 0 ||
        *id >= static_cast<double>(class_names.size())) {
      bad("the class '" + std::string(fields[0]) + "' is not an index in [0, " +
          std::to_string(class_names.size()) + ") (the classes are " +
          joined_class_names(class_names) + ")");
      continue;
    }
    const int class_id = static_cast<int>(*id);
    where.class_name = class_names[static_cast<std::size_t>(class_id)];
    if (fields.size() != 5) {
      bad("the line has " + std::to_string(fields.size()) +
          " fields, not 5 (class centre_x centre_y width height)");
      continue;
    }
    double value[4] = {};
    const char* const names[4] = {"centre_x", "centre_y", "width", "height"};
    std::string garbled;
    for (int k = 0; k < 4 && garbled.empty(); ++k) {
      const auto v = detail::parse_number(fields[static_cast<std::size_t>(k) + 1]);
      if (v)
        value[k] = *v;
      else
        garbled = std::string(names[k]) + " '" +
                  std::string(fields[static_cast<std::size_t>(k) + 1]) + "' is not a number";
    }
    if (!garbled.empty()) {
      bad(garbled);
      continue;
    }
    const double cx = value[0] * width, cy = value[1] * height;
    const double w = value[2] * width, h = value[3] * height;
    const Box box{static_cast<float>(cx - w / 2), static_cast<float>(cy - h / 2),
                  static_cast<float>(cx + w / 2), static_cast<float>(cy + h / 2)};
    detail::accept_box(scene, box, class_id, std::move(where), options);
  }
  return scene;
}

/// Reads the YOLO label file at `path`; messages name it as `name` (default: the path).
inline SceneAnnotation read_yolo_labels(const std::filesystem::path& path, int width, int height,
                                        std::span<const std::string> class_names,
                                        const AnnotationOptions& options = {},
                                        std::string name = {}) {
  if (name.empty()) name = path.string();
  const std::vector<std::uint8_t> bytes = read_file(path);
  return parse_yolo_labels(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), name, width,
      height, class_names, options);
}

}  // namespace stratum
