// Greedy non-maximum suppression, per class.
//
// Take the detections by descending score (equal scores in the order given, so the result is
// a function of the input alone); keep the first; drop every later detection of the same class
// whose IoU with it is greater than iou_threshold (torchvision's rule: IoU equal to the
// threshold survives); take the next one not dropped; repeat. Detections of different classes
// never suppress each other, unless `across_classes`: then a box suppresses every weaker box
// it overlaps whatever its class (torchvision's nms against batched_nms), for detectors whose
// objects have one class each, where two classes' peaks on one object are one object. O(n^2) box comparisons for n detections: a detector's top-100
// costs at most 5,000.
//
// A CenterNet decoder (decode.hpp) rarely needs this: its 3x3 peak extraction already keeps one
// peak per object. It serves detectors with several peaks per object and the merging of
// detections from several scales or flips.
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "box.hpp"

namespace stratum {

/// The detections that survive, by descending score (ties in input order). Throws Error if
/// iou_threshold is not within [0, 1] or a score is not a number.
[[nodiscard]] inline std::vector<Detection> non_maximum_suppression(
    std::span<const Detection> detections, float iou_threshold, bool across_classes = false) {
  if (!(iou_threshold >= 0 && iou_threshold <= 1))
    throw Error("non_maximum_suppression: iou_threshold " + std::to_string(iou_threshold) +
                " is not within [0, 1]");
  for (std::size_t k = 0; k < detections.size(); ++k)
    if (std::isnan(detections[k].score))
      throw Error("non_maximum_suppression: the score of detection " + std::to_string(k) +
                  " is not a number");

  std::vector<std::size_t> order(detections.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return detections[a].score > detections[b].score;
  });
  std::vector<bool> dropped(order.size(), false);
  std::vector<Detection> kept;
  for (std::size_t k = 0; k < order.size(); ++k) {
    if (dropped[k]) continue;
    const Detection& best = detections[order[k]];
    kept.push_back(best);
    for (std::size_t later = k + 1; later < order.size(); ++later) {
      const Detection& other = detections[order[later]];
      if (!dropped[later] && (across_classes || other.class_id == best.class_id) &&
          intersection_over_union(best.box, other.box) > iou_threshold)
        dropped[later] = true;
    }
  }
  return kept;
}

}  // namespace stratum
