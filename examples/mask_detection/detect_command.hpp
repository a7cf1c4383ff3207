// mask_detector detect IMAGE_OR_FOLDER... [--model M] [--out DIR] [--json] [--threshold P]
//
// Finds every face in each photo with a detector model (detector_inference.hpp), writes a copy
// of the photo with the boxes and labels drawn (draw_boxes.hpp) to DIR, and prints one line per
// photo with its count of faces per class, or with --json one JSON document with every box:
//
//   {"model": "m.stmodel", "design": "one-stage", "classes": ["with_mask", ...],
//    "threshold": 0.3, "photos": [
//     {"file": "a.jpg", "width": 640, "height": 480, "picture": "detections/a.jpg",
//      "counts": {"with_mask": 1, ...},
//      "detections": [{"class": "with_mask", "score": 0.93,
//                      "x_min": 12.5, "y_min": 40, "x_max": 50.25, "y_max": 88}]},
//     {"file": "b.jpg", "error": "'b.jpg' is a corrupt JPEG (...)"}]}
//
// Boxes are in the photo's continuous pixel coordinates (stratum/detection/box.hpp). A photo that
// cannot be read is named in a warning and the run goes on (exit code 1 at the end); a folder of
// photos shows a progress bar on the standard error while it runs.
#pragma once

#include <stratum/progress.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "detector_inference.hpp"
#include "draw_boxes.hpp"
#include "photo_files.hpp"

namespace mask_detection {

/// The models detect uses when it is given none: the shipped detector, and the classifier that
/// labels its faces if it is a face-then-classifier detector.
struct DetectDefaults {
  std::filesystem::path detector;
  std::filesystem::path classifier;
};

/// What detect found in one photo.
struct PhotoDetections {
  std::filesystem::path file;
  int width = 0, height = 0;
  std::vector<stratum::Detection> detections;
  std::filesystem::path picture;  // the drawn copy
  std::string error;              // why the photo was skipped; empty if it was not
};

/// Where the drawn copy of `photo` goes in `out`: its own name, a JPEG for a JPEG photo and a PNG
/// for any other. A name already `taken` in this run (two folders with an a.jpg) gets "-2",
/// "-3", ... before its extension.
inline std::filesystem::path picture_path(const std::filesystem::path& out,
                                          const std::filesystem::path& photo,
                                          std::set<std::string>& taken) {
  std::string extension = photo.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (extension != ".jpg" && extension != ".jpeg") extension = ".png";
  const std::string stem = photo.stem().string();
  std::string name = stem + extension;
  for (int k = 2; !taken.insert(name).second; ++k)
    name = stem + "-" + std::to_string(k) + extension;
  return out / name;
}

/// Writes `image` as JPEG (quality 90) or PNG, by `path`'s extension. Throws IoError on failure.
inline void write_picture(const std::filesystem::path& path, const stratum::Image& image) {
  const std::string extension = path.extension().string();
  if (extension == ".jpg" || extension == ".jpeg") {
    if (!stbi_write_jpg(path.string().c_str(), image.width, image.height, 3, image.pixels.data(),
                        90))
      throw stratum::IoError("cannot write JPEG '" + path.string() + "'");
  } else {
    stratum::write_png(path, image);
  }
}

/// Detections per class, in class order.
inline std::vector<int> class_counts(const std::vector<stratum::Detection>& detections,
                                     std::size_t classes) {
  std::vector<int> counts(classes, 0);
  for (const auto& d : detections) ++counts[static_cast<std::size_t>(d.class_id)];
  return counts;
}

/// "with_mask 2, without_mask 1, mask_weared_incorrect 0"
inline std::string counts_text(const std::vector<int>& counts,
                               const std::vector<std::string>& classes) {
  std::string text;
  for (std::size_t c = 0; c < classes.size(); ++c)
    text += (c ? ", " : "") + classes[c] + " " + std::to_string(counts[c]);
  return text;
}

inline std::string detections_json(const std::vector<PhotoDetections>& photos,
                                   const std::string& model, const std::string& design,
                                   const std::vector<std::string>& classes, float threshold) {
  std::ostringstream out;
  out << std::setprecision(7) << "{\"model\": " << json_string(model)
      << ", \"design\": " << json_string(design) << ", \"classes\": [";
  for (std::size_t c = 0; c < classes.size(); ++c)
    out << (c ? ", " : "") << json_string(classes[c]);
  out << "], \"threshold\": " << threshold << ", \"photos\": [";
  for (std::size_t k = 0; k < photos.size(); ++k) {
    const PhotoDetections& p = photos[k];
    out << (k ? "," : "") << "\n  {\"file\": " << json_string(p.file.string());
    if (!p.error.empty()) {
      out << ", \"error\": " << json_string(p.error) << "}";
      continue;
    }
    out << ", \"width\": " << p.width << ", \"height\": " << p.height
        << ", \"picture\": " << json_string(p.picture.string()) << ", \"counts\": {";
    const std::vector<int> counts = class_counts(p.detections, classes.size());
    for (std::size_t c = 0; c < classes.size(); ++c)
      out << (c ? ", " : "") << json_string(classes[c]) << ": " << counts[c];
    out << "}, \"detections\": [";
    for (std::size_t i = 0; i < p.detections.size(); ++i) {
      const stratum::Detection& d = p.detections[i];
      out << (i ? "," : "")
          << "\n    {\"class\": " << json_string(classes[static_cast<std::size_t>(d.class_id)])
          << ", \"score\": " << d.score << ", \"x_min\": " << d.box.x_min
          << ", \"y_min\": " << d.box.y_min << ", \"x_max\": " << d.box.x_max
          << ", \"y_max\": " << d.box.y_max << "}";
    }
    out << (p.detections.empty() ? "]}" : "\n  ]}");
  }
  out << "\n]}\n";
  return out.str();
}

/// The detect command (file comment). Returns the exit code: 0, or 1 if a photo was skipped;
/// throws UsageError for a mistake in the arguments and stratum::Error when it cannot run at all
/// (no model, an output folder that cannot be made).
inline int detect_command(const std::vector<std::string>& raw, const DetectDefaults& defaults) {
  const Arguments args(
      raw,
      {
          {"model", "FILE",
           "the detector model (default: the shipped detector, " +
               defaults.detector.filename().string() + ")"},
          {"classifier", "FILE",
           "the classifier that labels the faces a face-then-classifier detector finds (default: "
           "the shipped compact classifier, " +
               defaults.classifier.filename().string() + ")"},
          {"out", "DIR", "where the copies with boxes drawn go (default: detections)"},
          {"json", "", "print every box as JSON instead of a line per photo"},
          {"threshold", "P",
           "keep the faces scoring at least P, from 0 to 1 (default: the model's, usually 0.3)"},
          {"input-sizes", "S[,S...]",
           "letterbox sides to run the network at, merging what each finds (default: the "
           "model's; a larger one finds smaller faces)"},
          {"square-letterbox", "",
           "run the network on the whole square letterbox of training, not the photo's own "
           "box at the same scale (slower for photos that are not square)"},
          {"threads", "N", "threads to use (default: all cores)"},
          {"help", "", "show this help"},
      });
  if (args.has("help")) {
    std::cout
        << "usage: mask_detector detect [--model FILE] [--out DIR] [--json] [--threshold P] "
           "IMAGE_OR_FOLDER...\n\n"
           "Finds every face in each photo (and in every photo of a folder), says whether it\n"
           "wears a mask, writes a copy of the photo with each face boxed and labelled to DIR\n"
           "(green with_mask, red without_mask, orange mask_weared_incorrect) and prints the\n"
           "count of each class per photo, or with --json every box in the photo's pixels.\n\n"
        << args.help();
    return 0;
  }
  if (args.positional().empty()) throw UsageError("detect needs at least one image or folder");
  if (args.has("threads"))
    stratum::set_num_threads(static_cast<int>(args.get_int("threads", 0, 1, 1024)));
  std::filesystem::path model_path = args.get("model", "");
  if (model_path.empty()) {
    model_path = defaults.detector;
    if (!std::filesystem::exists(model_path))
      throw stratum::Error(
          "no --model given, and the shipped detector '" + model_path.string() +
          "' is missing: train one with 'mask_detector train-detector' and give it "
          "with --model FILE");
  }
  Detector detector =
      Detector::load(model_path, args.get("classifier", defaults.classifier.string()));
  DetectorOptions options = detector.default_options();
  options.score_threshold =
      static_cast<float>(args.get_double("threshold", options.score_threshold, 0.0, 1.0));
  const std::vector<long> sizes = args.get_int_list("input-sizes", 32, 4096);
  options.input_sizes.assign(sizes.begin(), sizes.end());
  options.square_letterbox = args.has("square-letterbox");
  const std::vector<std::string>& classes = detector.class_names();
  const std::filesystem::path out = args.get("out", "detections");
  const bool json = args.has("json");
  const std::vector<std::filesystem::path> files = collect_images(args.positional());
  std::filesystem::create_directories(out);  // throws filesystem_error naming it

  std::vector<PhotoDetections> photos(files.size());
  std::set<std::string> taken;
  std::optional<stratum::ProgressBar> bar;
  if (files.size() > 1) bar.emplace(std::cerr, static_cast<stratum::Index>(files.size()));
  for (std::size_t k = 0; k < files.size(); ++k) {
    PhotoDetections& p = photos[k];
    p.file = files[k];
    try {
      const stratum::Image photo = stratum::load_image(p.file);
      p.width = photo.width;
      p.height = photo.height;
      p.detections = detector.detect(photo, options);
      p.picture = picture_path(out, p.file, taken);
      if (std::filesystem::exists(p.picture) && std::filesystem::equivalent(p.picture, p.file))
        throw stratum::IoError("'" + p.file.string() +
                               "' would be overwritten by its copy with boxes: give another --out");
      write_picture(p.picture, draw_detections(photo, p.detections, classes));
    } catch (const stratum::Error& e) {
      p.error = e.what();
    }
    if (bar) bar->update(static_cast<stratum::Index>(k + 1), {});
  }
  if (bar) bar->finish({});

  int skipped = 0, faces = 0;
  std::vector<int> totals(classes.size(), 0);
  for (const PhotoDetections& p : photos) {
    if (!p.error.empty()) {
      ++skipped;
      std::cerr << "warning: skipped a photo: " << p.error << '\n';
      continue;
    }
    const std::vector<int> counts = class_counts(p.detections, classes.size());
    for (std::size_t c = 0; c < classes.size(); ++c) totals[c] += counts[c];
    faces += static_cast<int>(p.detections.size());
    if (!json)
      std::cout << p.file.string() << ": " << p.detections.size()
                << (p.detections.size() == 1 ? " face" : " faces") << " ("
                << counts_text(counts, classes) << ") -> " << p.picture.string() << '\n';
  }
  if (json) {
    std::cout << detections_json(
        photos, model_path.string(),
        detector.design() == DetectorDesign::one_stage ? "one-stage" : "face-then-classifier",
        classes, options.score_threshold);
  } else if (files.size() > 1) {
    std::cout << '\n'
              << files.size() << " photos, " << faces << " faces (" << counts_text(totals, classes)
              << "), " << skipped << " skipped; pictures in " << out.string() << '\n';
  }
  return skipped == 0 ? 0 : 1;
}

}  // namespace mask_detection
