// Boxes, the vocabulary every part of detection shares: the annotations the data readers
// produce, the targets the detector trains on, the detections it outputs and the metrics that
// score them.
//
// Coordinates are continuous pixel coordinates: the image spans [0, width] x [0, height], and a
// pixel (i, j) covers [j, j+1] x [i, i+1]. A Pascal VOC box (xmin, ymin, xmax, ymax), whose
// integer corners are 1-based and inclusive, covers the pixels xmin..xmax, so it is the box
// [xmin - 1, xmax] x [ymin - 1, ymax] here, of width xmax - xmin + 1.
#pragma once

#include <algorithm>
#include <string>

namespace stratum {

/// An axis-aligned box [x_min, x_max] x [y_min, y_max] in pixels (see the file comment).
struct Box {
  float x_min = 0, y_min = 0, x_max = 0, y_max = 0;

  [[nodiscard]] float width() const { return x_max - x_min; }
  [[nodiscard]] float height() const { return y_max - y_min; }
  /// Zero for an empty or inverted box.
  [[nodiscard]] float area() const { return std::max(0.0f, width()) * std::max(0.0f, height()); }
  [[nodiscard]] float center_x() const { return 0.5f * (x_min + x_max); }
  [[nodiscard]] float center_y() const { return 0.5f * (y_min + y_max); }

  bool operator==(const Box&) const = default;
};

/// Area of the intersection over area of the union; 0 when the boxes do not overlap (or both
/// are empty).
[[nodiscard]] inline float intersection_over_union(const Box& a, const Box& b) {
  const float overlap_w = std::min(a.x_max, b.x_max) - std::max(a.x_min, b.x_min);
  const float overlap_h = std::min(a.y_max, b.y_max) - std::max(a.y_min, b.y_min);
  if (overlap_w <= 0 || overlap_h <= 0) return 0;
  const float intersection = overlap_w * overlap_h;
  return intersection / (a.area() + b.area() - intersection);
}

/// A ground-truth object: a box and its class (an index into the dataset's class names).
struct LabelledBox {
  Box box;
  int class_id = 0;
};

/// What a detector outputs: a box, the class it predicts and its confidence in [0, 1].
struct Detection {
  Box box;
  int class_id = 0;
  float score = 0;
  bool operator==(const Detection&) const = default;
};

}  // namespace stratum
