// Splitting a SceneCollection (detection_folder.hpp) into train, validation and test parts by
// scene, never separating byte-identical scenes, and the summary that prints the parts' counts.
//
// Two ways to choose the test part:
// - a list of scene names (`--test-list FILE`: one file stem a line, as the face-mask set's
//   test_scenes.txt), so that every design and every run is scored on the same scenes as a
//   published reference;
// - a seeded split: stratified_group_split (split.hpp) over groups of identical images, each
//   scene stratified by the rarest class it contains (by box count over the whole collection),
//   so that the rare classes are spread over both parts in proportion.
// Then `validation_fraction` of the training scenes is held out for validation the same way
// (seed + 1, as the classifier's split does).
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "detection_folder.hpp"
#include "image_folder.hpp"
#include "split.hpp"

namespace stratum {

struct SceneSplit {
  std::vector<Index> train, validation, test;  // indices into the collection's scenes
};

/// Each scene's rarest class among its boxes (rarest by box count over all scenes), or -1 for
/// a scene without boxes: the strata of a seeded split.
inline std::vector<int> scene_strata(const SceneCollection& data) {
  std::vector<Index> boxes_of_class(data.class_names.size());
  for (const Scene& s : data.scenes)
    for (const LabelledBox& b : s.boxes) ++boxes_of_class[static_cast<std::size_t>(b.class_id)];
  std::vector<int> strata;
  for (const Scene& s : data.scenes) {
    int rarest = -1;
    for (const LabelledBox& b : s.boxes)
      if (rarest < 0 || boxes_of_class[static_cast<std::size_t>(b.class_id)] <
                            boxes_of_class[static_cast<std::size_t>(rarest)])
        rarest = b.class_id;
    strata.push_back(rarest);
  }
  return strata;
}

/// The scene names of a list file: one a line, white space around it ignored, blank lines and
/// lines starting with '#' skipped. Throws IoError naming the file.
inline std::vector<std::string> read_scene_list(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot open the scene list '" + path.string() + "'");
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    const std::string_view name = detail::trimmed(line);
    if (!name.empty() && name.front() != '#') names.emplace_back(name);
  }
  if (names.empty()) throw IoError("the scene list '" + path.string() + "' names no scene");
  return names;
}

namespace detail {

/// Holds out `validation_fraction` of `train` (seeded, stratified, groups kept together).
inline void hold_out_validation(const SceneCollection& data, SceneSplit& split,
                                double validation_fraction, std::uint64_t seed) {
  const std::vector<int> strata = scene_strata(data);
  const std::vector<std::uint64_t> hashes = data.content_hashes();
  const Split inner =
      stratified_group_split(strata, hashes, split.train, validation_fraction, seed + 1);
  split.train = inner.train;
  split.validation = inner.test;
}

}  // namespace detail

/// A seeded split: `test_fraction` of the scenes for testing, then `validation_fraction` of
/// the rest for validation (see the top of this file).
inline SceneSplit split_scenes(const SceneCollection& data, std::uint64_t seed,
                               double test_fraction = 0.2, double validation_fraction = 0.1) {
  const std::vector<int> strata = scene_strata(data);
  const std::vector<std::uint64_t> hashes = data.content_hashes();
  std::vector<Index> all(static_cast<std::size_t>(data.count()));
  for (Index i = 0; i < data.count(); ++i) all[static_cast<std::size_t>(i)] = i;
  const Split outer = stratified_group_split(strata, hashes, all, test_fraction, seed);
  SceneSplit split;
  split.train = outer.train;
  split.test = outer.test;
  std::sort(split.test.begin(), split.test.end());
  detail::hold_out_validation(data, split, validation_fraction, seed);
  return split;
}

/// The scenes named in `test_names` are the test part; the others train, `validation_fraction`
/// of them held out for validation (seeded). A group of identical images that the list cuts in
/// two goes to the test part whole, with a warning. A listed name that is not a scene is an
/// error, unless the scene was skipped while loading (then a warning).
inline SceneSplit split_scenes_with_test_list(const SceneCollection& data,
                                              std::span<const std::string> test_names,
                                              std::uint64_t seed, double validation_fraction = 0.1,
                                              std::ostream* log = &std::cerr) {
  std::map<std::string, Index> index_of;
  for (Index i = 0; i < data.count(); ++i) index_of[data.scene(i).name] = i;
  std::set<std::string> skipped_names;
  for (const SkippedFile& s : data.skipped)
    skipped_names.insert(std::filesystem::path(s.file).stem().string());

  std::vector<bool> in_test(static_cast<std::size_t>(data.count()), false);
  for (const std::string& name : test_names) {
    if (const auto it = index_of.find(name); it != index_of.end()) {
      in_test[static_cast<std::size_t>(it->second)] = true;
    } else if (skipped_names.count(name)) {
      if (log) *log << "warning: test scene '" << name << "' was skipped while loading\n";
    } else {
      throw Error("the test list names '" + name + "', which is not a scene of the dataset");
    }
  }
  for (const auto& group : duplicate_groups(data.content_hashes())) {
    const auto listed = std::count_if(
        group.begin(), group.end(), [&](Index i) { return in_test[static_cast<std::size_t>(i)]; });
    if (listed == 0 || listed == static_cast<std::ptrdiff_t>(group.size())) continue;
    std::string names;
    for (Index i : group) {
      names += (names.empty() ? "" : ", ") + data.scene(i).name;
      in_test[static_cast<std::size_t>(i)] = true;
    }
    if (log)
      *log << "warning: the test list holds only some of the identical scenes " << names
           << "; all of them go to the test part\n";
  }

  SceneSplit split;
  for (Index i = 0; i < data.count(); ++i)
    (in_test[static_cast<std::size_t>(i)] ? split.test : split.train).push_back(i);
  detail::hold_out_validation(data, split, validation_fraction, seed);
  return split;
}

/// Prints what was loaded and how it was split: scenes read and skipped, objects left out,
/// boxes clamped, duplicate groups, and per part the scenes and the boxes of each class.
inline void print_scene_summary(std::ostream& out, const SceneCollection& data,
                                const SceneSplit& split) {
  Index boxes = 0;
  for (const Scene& s : data.scenes) boxes += static_cast<Index>(s.boxes.size());
  out << "Scenes: " << data.count() << " with " << boxes << " boxes; " << data.skipped.size()
      << " files skipped, " << data.issues.size() << " objects left out; " << data.clamped_boxes
      << " boxes clamped to their image (they reached past its edge)\n";
  const auto groups = duplicate_groups(data.content_hashes());
  Index copies = 0;
  for (const auto& g : groups) copies += static_cast<Index>(g.size()) - 1;
  out << "Duplicates: " << groups.size() << " groups of byte-identical images (" << copies
      << " extra copies), each kept on one side of the split\n";

  // A column per class, as wide as its name.
  auto column = [&](std::size_t c) {
    return static_cast<int>(std::max<std::size_t>(data.class_names[c].size(), 6));
  };
  out << std::left << std::setw(12) << "part" << std::right << std::setw(8) << "scenes"
      << std::setw(8) << "boxes";
  for (std::size_t c = 0; c < data.class_names.size(); ++c)
    out << "  " << std::setw(column(c)) << data.class_names[c];
  out << '\n';
  const std::pair<const char*, const std::vector<Index>*> parts[] = {
      {"train", &split.train}, {"validation", &split.validation}, {"test", &split.test}};
  for (const auto& [name, indices] : parts) {
    std::vector<Index> per_class(data.class_names.size());
    Index part_boxes = 0;
    for (Index i : *indices)
      for (const LabelledBox& b : data.scene(i).boxes) {
        ++per_class[static_cast<std::size_t>(b.class_id)];
        ++part_boxes;
      }
    out << std::left << std::setw(12) << name << std::right << std::setw(8) << indices->size()
        << std::setw(8) << part_boxes;
    for (std::size_t c = 0; c < per_class.size(); ++c)
      out << "  " << std::setw(column(c)) << per_class[c];
    out << '\n';
  }
}

}  // namespace stratum
