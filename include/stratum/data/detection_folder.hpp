// A detection dataset from a folder of scenes and their box annotations, in either layout:
//
//   DIR/images/<stem>.<ext>        every scene (JPEG, PNG, BMP or GIF, by content; image.hpp)
//   DIR/annotations/<stem>.xml     Pascal VOC (voc.hpp)      or
//   DIR/labels/<stem>.txt          YOLO labels (yolo_labels.hpp; labels/classes.txt is ignored)
//
// Images and annotations pair by file stem, not by VOC's <filename> (the face-mask set's XML
// files still name the PNGs its JPEGs were converted from). An annotation without its image,
// or (VOC) an image without its annotation, is skipped with a warning; YOLO's convention is
// that an image without a label file shows no objects. An image that cannot be decoded and an
// annotation that cannot be read are skipped; a bad object is left out (annotation.hpp). Each
// skip and each object left out is printed as a warning naming the file (and the object), the
// load goes on, and the summary counts them; with `strict` the first of them in file order is
// thrown instead.
//
// Every scene is decoded once, in parallel, and kept at its own size as 8-bit RGB (transparent
// pixels composited on `background`, as image.hpp does); with `cache_dir`, the decoded scenes
// and their boxes are stored there (the cache file's name hashes every file's path, size and
// modification time, the class list and the options), so the next run skips decoding. The
// dataset folder itself is only ever read.
//
// Byte-identical images are found by content hash, as load_image_folder does: the face-mask
// set holds five such pairs, each annotated twice. The splits (split_scenes,
// split_scenes_with_test_list) keep every such group on one side.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../hash.hpp"
#include "../parallel.hpp"
#include "../progress.hpp"
#include "annotation.hpp"
#include "binary_io.hpp"
#include "image.hpp"
#include "image_folder.hpp"
#include "split.hpp"
#include "voc.hpp"
#include "yolo_labels.hpp"

namespace stratum {

struct DetectionFolderOptions {
  /// Stop at the first file that is skipped or object that is left out, instead of warning.
  bool strict = false;
  /// How far past the image's edge a box may reach and be clamped (annotation.hpp).
  float edge_tolerance = 1.0f;
  Rgb background = white;
  /// Where to keep the decoded scenes; empty means no cache.
  std::filesystem::path cache_dir;
  /// Progress and warnings; null for silence.
  std::ostream* log = &std::cerr;
};

/// One scene: where it came from, its size, its boxes (in its own pixels).
struct Scene {
  std::string name;        // the file stem: "maksssksksss5"
  std::string image_file;  // relative to the folder: "images/maksssksksss5.jpg"
  std::string
      annotation_file;  // "annotations/maksssksksss5.xml"; "" for a YOLO image without labels
  int width = 0, height = 0;
  std::vector<LabelledBox> boxes;
  std::uint64_t content_hash = 0;  // of the image file's bytes, as image_folder.hpp computes it
  std::size_t pixel_offset = 0;    // where its height x width x 3 pixels start in `pixels`
};

struct SceneCollection {
  std::vector<std::string> class_names;
  std::vector<Scene> scenes;            // in order of name
  std::vector<std::uint8_t> pixels;     // every scene's pixels, one after another
  std::vector<SkippedFile> skipped;     // files left out, and why
  std::vector<AnnotationIssue> issues;  // objects left out, and why
  int clamped_boxes = 0;                // boxes clamped to their image (annotation.hpp)
  bool from_cache = false;

  [[nodiscard]] Index count() const { return static_cast<Index>(scenes.size()); }
  [[nodiscard]] const Scene& scene(Index i) const { return scenes[static_cast<std::size_t>(i)]; }
  /// Scene i's pixels (height x width x 3).
  [[nodiscard]] const std::uint8_t* pixels_of(Index i) const {
    return pixels.data() + scene(i).pixel_offset;
  }
  /// A copy of scene i's image.
  [[nodiscard]] Image image(Index i) const {
    const Scene& s = scene(i);
    const auto begin = pixels.begin() + static_cast<std::ptrdiff_t>(s.pixel_offset);
    return {s.width, s.height,
            std::vector<std::uint8_t>(begin, begin + std::ptrdiff_t{s.width} * s.height * 3)};
  }
  [[nodiscard]] std::vector<std::uint64_t> content_hashes() const {
    std::vector<std::uint64_t> hashes;
    for (const Scene& s : scenes) hashes.push_back(s.content_hash);
    return hashes;
  }
};

namespace detail {

enum class AnnotationFormat { voc, yolo };

struct ScenePaths {
  std::string name;
  std::filesystem::path image, annotation;  // either may be empty
  std::string image_relative, annotation_relative;
  std::uintmax_t image_size = 0, annotation_size = 0;
  std::int64_t image_modified = 0, annotation_modified = 0;
  std::string problem;  // why the scene cannot be read at all; empty if it can
};

/// The regular, non-hidden files of `folder` by stem (a later duplicate stem is a problem).
inline std::map<std::string, std::filesystem::directory_entry> files_by_stem(
    const std::filesystem::path& folder, const std::string& relative_folder,
    std::map<std::string, std::string>& problems, const std::string& skip_name = "") {
  std::map<std::string, std::filesystem::directory_entry> files;
  std::vector<std::filesystem::directory_entry> entries;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) entries.push_back(entry);
  std::sort(entries.begin(), entries.end());  // directory order is arbitrary
  for (const auto& entry : entries) {
    const std::string file = entry.path().filename().string();
    if (file.empty() || file[0] == '.' || file == skip_name) continue;
    const std::string relative = relative_folder + "/" + file;
    const std::string stem = entry.path().stem().string();
    if (const auto problem = why_not_a_regular_file(entry)) {
      problems[relative] = "'" + relative + "' " + *problem;
    } else if (files.count(stem)) {
      problems[relative] = "'" + relative + "' has the same name as '" + relative_folder + "/" +
                           files[stem].path().filename().string() + "' (files pair by name)";
    } else {
      files[stem] = entry;
    }
  }
  return files;
}

inline std::int64_t modification_stamp(const std::filesystem::directory_entry& entry) {
  return static_cast<std::int64_t>(entry.last_write_time().time_since_epoch().count());
}

/// Pairs DIR/images with DIR/annotations (VOC) or DIR/labels (YOLO). Scenes that cannot be
/// paired carry a problem; so do files that are not regular files.
inline std::vector<ScenePaths> list_detection_folder(const std::filesystem::path& root,
                                                     AnnotationFormat& format) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(root))
    throw IoError("dataset folder '" + root.string() + "' does not exist or is not a folder");
  if (!fs::is_directory(root / "images"))
    throw IoError("dataset folder '" + root.string() + "' has no 'images/' folder");
  std::string annotation_folder;
  if (fs::is_directory(root / "annotations")) {
    format = AnnotationFormat::voc;
    annotation_folder = "annotations";
  } else if (fs::is_directory(root / "labels")) {
    format = AnnotationFormat::yolo;
    annotation_folder = "labels";
  } else {
    throw IoError("dataset folder '" + root.string() +
                  "' has neither 'annotations/' (Pascal VOC) nor 'labels/' (YOLO)");
  }
  const std::string extension = format == AnnotationFormat::voc ? ".xml" : ".txt";

  std::map<std::string, std::string> problems;  // by relative path
  const auto images = files_by_stem(root / "images", "images", problems);
  auto annotations = files_by_stem(root / annotation_folder, annotation_folder, problems,
                                   format == AnnotationFormat::yolo ? "classes.txt" : "");
  for (auto it = annotations.begin(); it != annotations.end();) {  // other files: not ours
    if (it->second.path().extension() != extension)
      it = annotations.erase(it);
    else
      ++it;
  }

  std::set<std::string> names;
  for (const auto& [stem, entry] : images) names.insert(stem);
  for (const auto& [stem, entry] : annotations) names.insert(stem);
  std::vector<ScenePaths> scenes;
  for (const auto& name : names) {
    ScenePaths paths;
    paths.name = name;
    if (const auto it = images.find(name); it != images.end()) {
      paths.image = it->second.path();
      paths.image_relative = "images/" + paths.image.filename().string();
      paths.image_size = it->second.file_size();
      paths.image_modified = modification_stamp(it->second);
    }
    if (const auto it = annotations.find(name); it != annotations.end()) {
      paths.annotation = it->second.path();
      paths.annotation_relative = annotation_folder + "/" + paths.annotation.filename().string();
      paths.annotation_size = it->second.file_size();
      paths.annotation_modified = modification_stamp(it->second);
    }
    if (paths.image.empty())
      paths.problem =
          "'" + paths.annotation_relative + "' has no image (no 'images/" + name + ".*')";
    else if (paths.annotation.empty() && format == AnnotationFormat::voc)
      paths.problem = "'" + paths.image_relative + "' has no annotation ('" + annotation_folder +
                      "/" + name + extension + "')";
    scenes.push_back(std::move(paths));
  }
  for (const auto& [file, problem] : problems) {  // files that are not regular files
    ScenePaths paths;
    paths.name = file;
    paths.problem = problem;
    scenes.push_back(std::move(paths));
  }
  return scenes;
}

inline constexpr char scene_cache_magic[8] = {'S', 'T', 'S', 'C', 'E', 'N', '0', '1'};

inline std::filesystem::path scene_cache_file(const std::vector<ScenePaths>& scenes,
                                              const std::vector<std::string>& class_names,
                                              const DetectionFolderOptions& options) {
  Fnv1a key;
  key.add(std::string_view(scene_cache_magic, 8));
  for (const auto& c : class_names) key.add(c).add(std::uint64_t{0});
  for (const auto& s : scenes)
    key.add(s.name)
        .add(s.problem)
        .add(s.image_relative)
        .add(static_cast<std::uint64_t>(s.image_size))
        .add(static_cast<std::uint64_t>(s.image_modified))
        .add(s.annotation_relative)
        .add(static_cast<std::uint64_t>(s.annotation_size))
        .add(static_cast<std::uint64_t>(s.annotation_modified));
  std::uint32_t tolerance_bits = 0;
  std::memcpy(&tolerance_bits, &options.edge_tolerance, 4);
  key.add(std::uint64_t{tolerance_bits});
  for (auto c : options.background) key.add(std::uint64_t{c});
  char name[64];
  std::snprintf(name, sizeof name, "scenes-%016llx.bin",
                static_cast<unsigned long long>(key.value()));
  return options.cache_dir / name;
}

inline void write_scene_cache(const std::filesystem::path& path, const SceneCollection& data) {
  BinaryWriter w = begin_checksummed_file(scene_cache_magic);
  w.put(static_cast<std::uint32_t>(data.class_names.size()));
  for (const auto& c : data.class_names) w.put_string(c);
  w.put(static_cast<std::uint64_t>(data.scenes.size()));
  for (const Scene& s : data.scenes) {
    w.put_string(s.name);
    w.put_string(s.image_file);
    w.put_string(s.annotation_file);
    w.put(static_cast<std::int32_t>(s.width));
    w.put(static_cast<std::int32_t>(s.height));
    w.put(s.content_hash);
    w.put(static_cast<std::uint64_t>(s.pixel_offset));
    w.put(static_cast<std::uint64_t>(s.boxes.size()));
    for (const LabelledBox& b : s.boxes) {
      for (float v : {b.box.x_min, b.box.y_min, b.box.x_max, b.box.y_max}) w.put(v);
      w.put(static_cast<std::int32_t>(b.class_id));
    }
  }
  w.put(static_cast<std::uint64_t>(data.pixels.size()));
  w.put_array(std::span<const std::uint8_t>(data.pixels));
  w.put(static_cast<std::uint64_t>(data.skipped.size()));
  for (const auto& s : data.skipped) {
    w.put_string(s.file);
    w.put_string(s.reason);
  }
  w.put(static_cast<std::uint64_t>(data.issues.size()));
  for (const auto& issue : data.issues) {
    w.put_string(issue.file);
    w.put(static_cast<std::int32_t>(issue.object));
    w.put_string(issue.class_name);
    w.put_string(issue.problem);
  }
  w.put(static_cast<std::int32_t>(data.clamped_boxes));
  write_checksummed_file(path, w);
}

inline SceneCollection read_scene_cache(const std::filesystem::path& path) {
  const std::vector<std::uint8_t> body =
      read_checksummed_file(path, scene_cache_magic, "a stratum scene cache");
  BinaryReader r(body, path.string());
  SceneCollection data;
  const auto classes = r.get<std::uint32_t>();
  if (classes > r.remaining()) r.fail("claims more classes than it holds");
  data.class_names.resize(classes);
  for (auto& c : data.class_names) c = r.get_string();
  const auto count = r.get<std::uint64_t>();
  if (count > r.remaining()) r.fail("claims more scenes than it holds");
  for (std::uint64_t i = 0; i < count; ++i) {
    Scene s;
    s.name = r.get_string();
    s.image_file = r.get_string();
    s.annotation_file = r.get_string();
    s.width = r.get<std::int32_t>();
    s.height = r.get<std::int32_t>();
    s.content_hash = r.get<std::uint64_t>();
    s.pixel_offset = static_cast<std::size_t>(r.get<std::uint64_t>());
    const auto boxes = r.get<std::uint64_t>();
    if (boxes > r.remaining()) r.fail("claims more boxes than it holds");
    for (std::uint64_t b = 0; b < boxes; ++b) {
      LabelledBox box;
      box.box.x_min = r.get<float>();
      box.box.y_min = r.get<float>();
      box.box.x_max = r.get<float>();
      box.box.y_max = r.get<float>();
      box.class_id = r.get<std::int32_t>();
      s.boxes.push_back(box);
    }
    data.scenes.push_back(std::move(s));
  }
  const auto pixel_count = r.get<std::uint64_t>();
  if (pixel_count > r.remaining()) r.fail("claims more pixels than it holds");
  data.pixels.resize(static_cast<std::size_t>(pixel_count));
  r.get_array(std::span<std::uint8_t>(data.pixels));
  for (const Scene& s : data.scenes)  // every scene's pixels must lie inside the buffer
    if (s.width < 1 || s.height < 1 ||
        s.pixel_offset + std::size_t(s.width) * std::size_t(s.height) * 3 > data.pixels.size())
      r.fail("holds a scene whose pixels lie outside the buffer");
  const auto skipped = r.get<std::uint64_t>();
  if (skipped > r.remaining()) r.fail("claims more skipped files than it holds");
  for (std::uint64_t i = 0; i < skipped; ++i) {
    SkippedFile s;
    s.file = r.get_string();
    s.reason = r.get_string();
    data.skipped.push_back(std::move(s));
  }
  const auto issues = r.get<std::uint64_t>();
  if (issues > r.remaining()) r.fail("claims more annotation problems than it holds");
  for (std::uint64_t i = 0; i < issues; ++i) {
    AnnotationIssue issue;
    issue.file = r.get_string();
    issue.object = r.get<std::int32_t>();
    issue.class_name = r.get_string();
    issue.problem = r.get_string();
    data.issues.push_back(std::move(issue));
  }
  data.clamped_boxes = r.get<std::int32_t>();
  data.from_cache = true;
  return data;
}

inline void print_load_warnings(const SceneCollection& data, std::ostream* log) {
  if (!log) return;
  for (const auto& s : data.skipped) *log << "warning: skipped " << s.reason << '\n';
  for (const auto& issue : data.issues) *log << "warning: left out " << issue.message() << '\n';
}

}  // namespace detail

/// Loads the scenes of `root` (see the top of this file) with boxes of `class_names`.
/// Throws IoError for a missing folder or layout, Error when no scene is usable, and, with
/// `options.strict`, the first skipped file or bad object (AnnotationError for annotations).
inline SceneCollection load_detection_folder(const std::filesystem::path& root,
                                             const std::vector<std::string>& class_names,
                                             const DetectionFolderOptions& options = {}) {
  if (class_names.empty()) throw Error("a detection folder needs at least one class");
  detail::AnnotationFormat format{};
  const auto entries = detail::list_detection_folder(root, format);
  std::ostream* log = options.log;

  std::filesystem::path cache;
  if (!options.cache_dir.empty()) {
    cache = detail::scene_cache_file(entries, class_names, options);
    std::error_code exists_error;
    if (std::filesystem::exists(cache, exists_error)) {
      try {
        SceneCollection cached = detail::read_scene_cache(cache);
        if (cached.class_names == class_names &&
            (!options.strict || (cached.skipped.empty() && cached.issues.empty()))) {
          if (log)
            *log << "Loaded " << cached.count() << " decoded scenes from the cache "
                 << cache.string() << '\n';
          detail::print_load_warnings(cached, log);
          return cached;
        }
      } catch (const Error& e) {
        if (log) *log << "warning: ignoring the scene cache: " << e.what() << '\n';
      }
    }
  }

  AnnotationOptions annotation_options;
  annotation_options.strict = options.strict;
  annotation_options.edge_tolerance = options.edge_tolerance;
  const Index n = static_cast<Index>(entries.size());
  std::vector<Image> images(static_cast<std::size_t>(n));
  std::vector<SceneAnnotation> annotations(static_cast<std::size_t>(n));
  std::vector<std::uint64_t> hashes(static_cast<std::size_t>(n));
  std::vector<std::exception_ptr> failures(static_cast<std::size_t>(n));
  std::atomic<Index> done{0};
  // With `strict`, the first failing scene in order: scenes after it are not tried, every
  // scene before it is (so the error reported does not depend on the threads' timing).
  std::atomic<Index> first_failure{n};
  if (log) *log << "Decoding " << n << " scenes from " << root.string() << '\n';
  ProgressBar bar(log ? *log : std::cerr, n);

  parallel_for(n, [&](Index i) {
    if (i > first_failure.load(std::memory_order_relaxed)) return;
    const auto k = static_cast<std::size_t>(i);
    const detail::ScenePaths& paths = entries[k];
    try {
      if (!paths.problem.empty()) throw IoError(paths.problem);
      const std::vector<std::uint8_t> bytes = read_file(paths.image);
      hashes[k] = Fnv1a()
                      .add(std::span<const std::uint8_t>(bytes))
                      .add(std::uint64_t{bytes.size()})
                      .value();
      images[k] = decode_image(bytes, paths.image_relative, options.background);
      const int width = images[k].width, height = images[k].height;
      if (format == detail::AnnotationFormat::voc)
        annotations[k] = read_voc(paths.annotation, class_names, annotation_options,
                                  std::pair{width, height}, paths.annotation_relative);
      else if (!paths.annotation.empty())
        annotations[k] = read_yolo_labels(paths.annotation, width, height, class_names,
                                          annotation_options, paths.annotation_relative);
      else
        annotations[k] = SceneAnnotation{width, height, {}, 0, {}};
    } catch (const std::exception&) {
      failures[k] = std::current_exception();
      images[k] = Image{};
    }
    if (options.strict && failures[k])
      for (Index seen = first_failure.load(); i < seen;)
        first_failure.compare_exchange_weak(seen, i);
    const Index finished = ++done;
    if (log && thread_index() == 0) bar.update(finished, {});
  });
  if (log) bar.finish({});

  if (options.strict)  // the first failure in order (later scenes may not have been tried)
    for (const auto& failure : failures)
      if (failure) std::rethrow_exception(failure);

  SceneCollection data;
  data.class_names = class_names;
  std::size_t pixel_count = 0;
  for (const Image& image : images) pixel_count += image.pixels.size();
  data.pixels.reserve(pixel_count);
  for (Index i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    const detail::ScenePaths& paths = entries[k];
    if (failures[k]) {
      std::string reason;
      try {
        std::rethrow_exception(failures[k]);
      } catch (const std::exception& e) {
        reason = e.what();
      }
      data.skipped.push_back(
          {paths.image_relative.empty() ? paths.name : paths.image_relative, reason});
      continue;
    }
    Scene scene;
    scene.name = paths.name;
    scene.image_file = paths.image_relative;
    scene.annotation_file = paths.annotation_relative;
    scene.width = images[k].width;
    scene.height = images[k].height;
    scene.boxes = std::move(annotations[k].boxes);
    scene.content_hash = hashes[k];
    scene.pixel_offset = data.pixels.size();
    data.pixels.insert(data.pixels.end(), images[k].pixels.begin(), images[k].pixels.end());
    images[k] = Image{};
    data.clamped_boxes += annotations[k].clamped_boxes;
    for (auto& issue : annotations[k].issues) data.issues.push_back(std::move(issue));
    data.scenes.push_back(std::move(scene));
  }
  detail::print_load_warnings(data, log);
  if (data.scenes.empty())
    throw Error("dataset folder '" + root.string() + "' has no usable scene");

  if (!cache.empty()) {
    try {
      detail::write_scene_cache(cache, data);
    } catch (const std::exception& e) {
      if (log) *log << "warning: could not write the scene cache: " << e.what() << '\n';
    }
  }
  return data;
}

}  // namespace stratum
