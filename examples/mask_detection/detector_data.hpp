// The detector's data: the scene folder loaded and split, and the samples the network trains and
// is scored on (a DenseDataset: letterboxed images in, CenterNet target maps out).
#pragma once

#include <stratum/data/box_augmentation.hpp>
#include <stratum/data/dense_dataset.hpp>
#include <stratum/data/detection_folder.hpp>
#include <stratum/data/letterbox.hpp>
#include <stratum/data/scene_split.hpp>
#include <stratum/detection/centernet_targets.hpp>
#include <stratum/parallel.hpp>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "detector_model.hpp"

namespace mask_detection {

/// The classes of the face-mask scenes, in heatmap channel order (the dataset's own names).
inline const std::vector<std::string> detector_classes{"with_mask", "without_mask",
                                                       "mask_weared_incorrect"};
/// The classes the headline figure averages: what a user acts on.
inline const std::vector<std::string> headline_classes{"with_mask", "without_mask"};
/// The heatmap's one class in the face-then-classifier design.
inline const std::vector<std::string> face_class{"face"};

/// What the heatmap's channels stand for: one class each (the one-stage design), or one
/// channel for every face whatever it wears (face-then-classifier: a classifier labels the
/// faces afterwards).
enum class HeatmapTarget { per_class, faces };

/// `boxes` as the heatmap's targets: as they are per class, all on channel 0 for faces.
inline std::vector<stratum::LabelledBox> heatmap_boxes(std::vector<stratum::LabelledBox> boxes,
                                                       HeatmapTarget target) {
  if (target == HeatmapTarget::faces)
    for (auto& b : boxes) b.class_id = 0;
  return boxes;
}

/// The scenes of a detection folder and their split into train, validation and test parts.
struct DetectorData {
  stratum::SceneCollection scenes;
  stratum::SceneSplit split;
};

/// Loads DIR (warnings for bad files and objects on `log`, fatal with `strict`), then splits it:
/// the scenes of `test_list` (a file, one scene name a line) are the test part, or without one
/// a seeded 80/20 split; 10 % of the rest is held out for validation. Prints the split's counts.
inline DetectorData load_detector_data(const std::filesystem::path& dir,
                                       const std::filesystem::path& test_list, bool strict,
                                       const std::filesystem::path& cache_dir, std::uint64_t seed,
                                       std::ostream& out) {
  stratum::DetectionFolderOptions options;
  options.strict = strict;
  options.cache_dir = cache_dir;
  options.background = stratum::letterbox_padding;  // transparent pixels look like the padding
  DetectorData data;
  data.scenes = stratum::load_detection_folder(dir, detector_classes, options);
  data.split = test_list.empty() ? stratum::split_scenes(data.scenes, seed)
                                 : stratum::split_scenes_with_test_list(
                                       data.scenes, stratum::read_scene_list(test_list), seed);
  out << "Split: "
      << (test_list.empty() ? "seeded (seed " + std::to_string(seed) + ")"
                            : "test scenes from " + test_list.string())
      << ", validation seed " << seed << '\n';
  stratum::print_scene_summary(out, data.scenes, data.split);
  return data;
}

/// The CenterNet encoding of the detector's targets: a heatmap channel per class of `scenes`,
/// or one for faces.
inline stratum::CenterNetEncoding detector_encoding(const stratum::SceneCollection& scenes,
                                                    HeatmapTarget target) {
  stratum::CenterNetEncoding encoding;
  encoding.classes =
      target == HeatmapTarget::faces ? 1 : static_cast<int>(scenes.class_names.size());
  encoding.stride = detector_stride;
  encoding.size_encoding = stratum::SizeEncoding::log;
  return encoding;
}

/// Scenes of a SceneCollection as the network's samples, for fit, evaluate and predict:
///   input    (S, S, 3)        the scene letterboxed to S, pixels / 255
///   targets  heatmap (S/4, S/4, C), no mask: every cell counts, the letterbox padding too
///            (C the classes, or 1 when the target is faces: every box on channel 0)
///            (the padding is there when detecting, and the network must learn that it holds
///            no face), size and offset (S/4, S/4, 2), masked to the cells of object centres
/// With an augmenter (training), every gathered sample is a fresh random view of its scene
/// (box_augmentation.hpp), seeded by the sample's number in the run, so each epoch sees other
/// views and a run is reproducible. Without one, the scene is letterboxed exactly as `detect`
/// does (data/letterbox.hpp), and so are its boxes.
class DetectorSamples final : public stratum::DenseDataset<float> {
 public:
  DetectorSamples(const stratum::SceneCollection& scenes, std::vector<stratum::Index> part,
                  int input_size, HeatmapTarget target, stratum::BoxAugmenter* augmenter = nullptr)
      : scenes_(scenes),
        part_(std::move(part)),
        size_(input_size),
        target_(target),
        encoding_(detector_encoding(scenes, target)),
        augmenter_(augmenter) {
    if (input_size % encoding_.stride != 0)
      throw stratum::Error("DetectorSamples: the input size " + std::to_string(input_size) +
                           " is not a multiple of the stride " + std::to_string(encoding_.stride));
    if (augmenter && augmenter->size() != input_size)
      throw stratum::Error("DetectorSamples: the augmenter makes samples of " +
                           std::to_string(augmenter->size()) + " px, not " +
                           std::to_string(input_size));
  }

  [[nodiscard]] stratum::Index size() const override {
    return static_cast<stratum::Index>(part_.size());
  }
  [[nodiscard]] std::vector<stratum::Shape> input_shapes() const override {
    return {{size_, size_, 3}};
  }
  [[nodiscard]] std::vector<stratum::Shape> target_shapes() const override {
    const stratum::Index cells = size_ / encoding_.stride;
    return {{cells, cells, encoding_.heatmap_channels()}, {cells, cells, 2}, {cells, cells, 2}};
  }
  [[nodiscard]] const stratum::SceneCollection& scenes() const { return scenes_; }
  [[nodiscard]] int input_size() const { return size_; }
  [[nodiscard]] HeatmapTarget target() const { return target_; }
  [[nodiscard]] const stratum::CenterNetEncoding& encoding() const { return encoding_; }
  /// The scene of sample k (an index into the collection).
  [[nodiscard]] stratum::Index scene_index(stratum::Index k) const {
    return part_[static_cast<std::size_t>(k)];
  }
  /// Where sample k's scene lies in its (unaugmented) letterbox.
  [[nodiscard]] stratum::Letterbox geometry(stratum::Index k) const {
    const stratum::Scene& s = scenes_.scene(scene_index(k));
    return stratum::letterbox_geometry(s.width, s.height, size_);
  }

  void gather(std::span<const stratum::Index> indices,
              stratum::DenseBatch<float>& batch) const override {
    using namespace stratum;
    for (Index i : indices) check_index(i);
    const auto n = static_cast<Index>(indices.size());
    const Index cells = size_ / encoding_.stride;
    const Index pixels = Index{size_} * size_ * 3;
    batch.inputs.resize(1);
    batch.inputs[0].resize({n, size_, size_, 3});
    // The target maps are built in the batch's own tensors (moved out and back), so that a
    // steady state of same-sized batches allocates nothing.
    batch.targets.resize(3);
    batch.masks.resize(3);
    CenterNetTargets<float> maps{std::move(batch.targets[0]), std::move(batch.targets[1]),
                                 std::move(batch.targets[2]), std::move(batch.masks[1])};
    maps.resize(n, cells, cells, encoding_);
    const std::uint64_t first_draw = augmenter_ ? augmenter_->reserve(std::uint64_t(n)) : 0;
    parallel_for(n, [&](Index k) {
      const Index scene = scene_index(indices[static_cast<std::size_t>(k)]);
      const Scene& s = scenes_.scene(scene);
      float* target = batch.inputs[0].data() + k * pixels;
      std::vector<LabelledBox> boxes;
      if (augmenter_) {
        boxes = augmenter_->augment(scenes_.pixels_of(scene), s.width, s.height, s.boxes, target,
                                    first_draw + std::uint64_t(k));
      } else {
        const LetterboxedImage boxed = letterbox(scenes_.image(scene), size_);
        for (Index p = 0; p < pixels; ++p)
          target[p] = static_cast<float>(boxed.image.pixels[static_cast<std::size_t>(p)]) / 255.0f;
        for (const LabelledBox& b : s.boxes)
          boxes.push_back({boxed.geometry.to_letterbox(b.box), b.class_id});
      }
      encode_centernet_targets<float>(heatmap_boxes(std::move(boxes), target_), encoding_, maps, k);
    });
    batch.targets[0] = std::move(maps.heatmap);
    batch.targets[1] = std::move(maps.size);
    batch.targets[2] = std::move(maps.offset);
    batch.masks[1] = std::move(maps.mask);
    batch.masks[2] = batch.masks[1];
    batch.has_mask = {false, true, true};
  }

 private:
  const stratum::SceneCollection& scenes_;
  std::vector<stratum::Index> part_;
  int size_;
  HeatmapTarget target_;
  stratum::CenterNetEncoding encoding_;
  stratum::BoxAugmenter* augmenter_;
};

}  // namespace mask_detection
