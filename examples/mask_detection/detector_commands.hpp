// mask_detector's detector commands:
//
//   train-detector    --data DIR [--test-list FILE] [options]   train and save a detector
//   evaluate-detector --data DIR --model FILE [--test-list FILE] [--json]
//
// DIR holds images/ and annotations/ (Pascal VOC), as Kaggle's "Face Mask Detection" archive
// (andrewmvd/face-mask-detection) unpacks. A detector model file is a graph model
// (save_graph_model) whose metadata holds "kind" = "detector", "input_size" (the letterbox
// side S), "stride" (4), "classes" (comma-separated, in heatmap channel order) and "design"
// ("one-stage": a heatmap channel per class; "face-then-classifier": one channel, "face", and
// the compact classifier labels each face), and whose outputs are, in order: heatmap logits
// (S/4, S/4, classes), size (S/4, S/4, 2: log of width and height in cells) and offset
// (S/4, S/4, 2: the centre's position in its cell), as detection/centernet_targets.hpp and
// decode.hpp define them. evaluate-detector scores a detector through `detect`'s own code
// (detector_inference.hpp), so that its figures are those of what users run.
#pragma once

#include <stratum/callbacks/learning_rate_scheduler.hpp>
#include <stratum/model/checkpoint.hpp>
#include <stratum/model/graph_serialization.hpp>
#include <stratum/plot.hpp>
#include <stratum/progress.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "detector_data.hpp"
#include "detector_evaluation.hpp"
#include "detector_inference.hpp"
#include "detector_model.hpp"
#include "resume.hpp"

namespace mask_detection {

namespace detector_detail {

namespace fs = std::filesystem;

/// Where decoded scenes are cached unless --cache-dir says otherwise: the build folder (never
/// the data folder, which is only read).
inline fs::path default_detector_cache() {
#ifdef STRATUM_BUILD_CACHE_DIR
  return STRATUM_BUILD_CACHE_DIR;
#else
  return fs::temp_directory_path() / "stratum-cache";
#endif
}

inline const std::vector<OptionSpec> detector_data_options{
    {"data", "DIR", "scene folder with images/ and annotations/ (Pascal VOC)"},
    {"test-list", "FILE",
     "the test scenes, one name a line (default: a seeded 80/20 split by scene)"},
    {"cache-dir", "DIR", "where decoded scenes are cached (default: the build folder's cache/)"},
    {"no-cache", "", "decode every scene, read and write no cache"},
    {"strict", "", "stop at the first bad file or object instead of warning and leaving it out"},
    {"threads", "N", "threads to use (default: all cores)"},
    {"help", "", "show this help"},
};

inline std::vector<OptionSpec> with_detector_data_options(std::vector<OptionSpec> specs) {
  specs.insert(specs.end(), detector_data_options.begin(), detector_data_options.end());
  return specs;
}

/// Prints `text` and the options for --help (true), or checks that there are no positionals.
inline bool help_requested(const Arguments& args, const std::string& text) {
  if (args.has("help")) {
    std::cout << text << args.help();
    return true;
  }
  if (!args.positional().empty())
    throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  return false;
}

inline fs::path data_folder(const Arguments& args) {
  if (!args.has("data"))
    throw UsageError(
        "--data DIR is needed: a folder with images/ and annotations/, as the Kaggle dataset "
        "andrewmvd/face-mask-detection unpacks");
  return args.get("data", "");
}

inline DetectorData load_data(const Arguments& args, std::uint64_t seed, std::ostream& out) {
  if (args.has("threads"))
    stratum::set_num_threads(static_cast<int>(args.get_int("threads", 0, 1, 1024)));
  const fs::path cache = args.has("no-cache")
                             ? fs::path{}
                             : fs::path(args.get("cache-dir", default_detector_cache().string()));
  if (!cache.empty()) fs::create_directories(cache);
  return load_detector_data(data_folder(args), args.get("test-list", ""), args.has("strict"), cache,
                            seed, out);
}

/// Scores the network's heatmap on a part of the scenes (per class, or faces).
inline DetectorScores score_part(stratum::GraphModel<float>& model, const DetectorData& data,
                                 const std::vector<stratum::Index>& part, int input_size,
                                 HeatmapTarget target, float threshold) {
  const DetectorSamples samples(data.scenes, part, input_size, target);
  return score_detections(data.scenes, part, detect_scenes(model, samples), threshold, target);
}

/// What the heatmap of a design's network stands for; throws on an unknown design.
inline HeatmapTarget heatmap_target(const std::string& design) {
  if (design == "one-stage") return HeatmapTarget::per_class;
  if (design == "face-then-classifier") return HeatmapTarget::faces;
  throw UsageError("--design is one-stage or face-then-classifier, not '" + design + "'");
}

/// Scores `detector` as `detect` runs it (Detector::detect with `how`'s input sizes and
/// letterbox, with every score: AP needs the whole ranking) on each scene of `part`, its classes
/// matched to the scenes' by name. A progress bar on `log`: the face-then-classifier design
/// classifies up to 100 crops a scene.
inline DetectorScores score_test_scenes(Detector& detector, const stratum::SceneCollection& scenes,
                                        const std::vector<stratum::Index>& part,
                                        float operating_threshold, const DetectorOptions& how,
                                        std::ostream& log) {
  std::vector<int> scene_class;  // of each class the detector reports
  for (const std::string& name : detector.class_names()) {
    const auto it = std::find(scenes.class_names.begin(), scenes.class_names.end(), name);
    if (it == scenes.class_names.end())
      throw stratum::Error("the detector's class '" + name + "' is not one of the scenes' (" +
                           join_names(scenes.class_names) + ")");
    scene_class.push_back(static_cast<int>(it - scenes.class_names.begin()));
  }
  DetectorOptions options = how;
  options.score_threshold = 0;
  options.top_k = detections_per_scene;
  std::vector<std::vector<stratum::Detection>> detections;
  stratum::ProgressBar bar(log, static_cast<stratum::Index>(part.size()));
  for (stratum::Index scene : part) {
    detections.push_back(detector.detect(scenes.image(scene), options));
    for (auto& d : detections.back())
      d.class_id = scene_class[static_cast<std::size_t>(d.class_id)];
    bar.update(static_cast<stratum::Index>(detections.size()), {});
  }
  bar.finish({});
  return score_detections(scenes, part, detections, operating_threshold);
}

/// The operating threshold of precision and recall: a detection counts from this score on.
inline constexpr float default_operating_threshold = 0.3f;

/// After each epoch: AP50 on the validation scenes, printed and added to the epoch's figures
/// ("val_ap50": the mean over with_mask and without_mask, "val_map50": all three classes; for a
/// face heatmap both are the face AP50), then the epoch handed to `next` (the checkpoint, which
/// records the history), so that the history CSV and the checkpoint hold them.
class ValidationAveragePrecision final : public stratum::Callback<float> {
 public:
  ValidationAveragePrecision(stratum::GraphModel<float>& model, const DetectorData& data,
                             int input_size, HeatmapTarget target, stratum::Callback<float>& next,
                             std::ostream& out)
      : model_(model),
        data_(data),
        input_size_(input_size),
        target_(target),
        next_(next),
        out_(out) {}

  void on_train_begin(stratum::Model<float>& m) override { next_.on_train_begin(m); }
  void on_epoch_begin(stratum::Model<float>& m, int epoch) override {
    next_.on_epoch_begin(m, epoch);
  }
  void on_epoch_end(stratum::Model<float>& m, const stratum::EpochLogs& logs) override {
    if (data_.split.validation.empty()) {
      next_.on_epoch_end(m, logs);
      return;
    }
    // A network trained on crops smaller than its letterbox is scored as `detect` runs it: on
    // whole letterboxes, in a copy built for that size.
    std::unique_ptr<stratum::GraphModel<float>> resized;
    if (model_.shape(model_.input_node(0))[0] != input_size_)
      resized = stratum::with_input_shapes(model_, {{input_size_, input_size_, 3}});
    const DetectorScores s = score_part(resized ? *resized : model_, data_, data_.split.validation,
                                        input_size_, target_, default_operating_threshold);
    stratum::EpochLogs with_ap = logs;
    const double map = s.all.mean_voc_ap50().value_or(0.0);
    const double mean =
        target_ == HeatmapTarget::faces ? map : s.all.mean_voc_ap50(headline_classes).value_or(0.0);
    with_ap.named.emplace_back("val_ap50", mean);
    with_ap.named.emplace_back("val_map50", map);
    out_ << "  validation AP50: ";
    const char* separator = "";
    for (const auto& c : s.all.classes) {
      out_ << separator << c.name << ' ' << detail::figure(c.voc_ap50);
      separator = ", ";
    }
    if (target_ == HeatmapTarget::per_class)
      out_ << ", mean (with_mask, without_mask) " << detail::figure(mean) << ", three-class "
           << detail::figure(map);
    out_ << std::endl;
    next_.on_epoch_end(m, with_ap);
  }
  void on_train_end(stratum::Model<float>& m) override { next_.on_train_end(m); }

 private:
  stratum::GraphModel<float>& model_;
  const DetectorData& data_;
  int input_size_;
  HeatmapTarget target_;
  stratum::Callback<float>& next_;
  std::ostream& out_;
};

inline std::string data_fingerprint(const stratum::SceneCollection& scenes) {
  stratum::Fnv1a h;
  for (const auto& s : scenes.scenes) h.add(s.name).add(s.content_hash);
  std::ostringstream out;
  out << std::hex << std::setw(16) << std::setfill('0') << h.value();
  return out.str();
}

}  // namespace detector_detail

inline int train_detector(const std::vector<std::string>& raw) {
  using namespace stratum;
  using namespace detector_detail;
  const auto start = std::chrono::steady_clock::now();
  const Arguments args(
      raw,
      with_detector_data_options(with_run_options({
          {"design", "D", "face-then-classifier or one-stage (default: face-then-classifier)"},
          {"epochs", "N", "training epochs (default: 68)"},
          {"batch", "N", "batch size (default: 16)"},
          {"lr", "RATE", "peak learning rate of Adam (default: 0.002)"},
          {"warmup", "N", "epochs of linear warm-up before the cosine decay (default: 1)"},
          {"weight-decay", "W", "AdamW's decoupled weight decay, 0 for Adam (default: 0)"},
          {"input-size", "S",
           "letterbox side the detector runs at, a multiple of 32 (default: 512)"},
          {"crop-size", "C",
           "train on C x C windows of the S letterboxes, a multiple of 32 up to S (default: 3/4 "
           "of S, 384 at 512; C = S trains on whole letterboxes and adds a validation loss)"},
          {"min-scale", "F", "smallest random scale factor of a training view (default: 0.6)"},
          {"max-scale", "F", "largest random scale factor of a training view (default: 1.4)"},
          {"no-augment", "", "train on the letterboxed scenes as they are"},
          {"seed", "N", "seed of the split, the weights, the order and augmentation (default: 42)"},
          {"out", "FILE", "where to save the detector (default: mask_detector_detector.stmodel)"},
      })));
  if (help_requested(
          args,
          "usage: mask_detector train-detector --data DIR [--test-list FILE] [options]\n\n"
          "Trains a CenterNet-style detector that finds faces, whatever they wear, for the\n"
          "face classifier to label (--design face-then-classifier, the shipped design), or\n"
          "that finds every face and labels it with_mask, without_mask or\n"
          "mask_weared_incorrect with a heatmap per class (one-stage). The split is by scene\n"
          "(--test-list, or a seeded 80/20 split), 10 % of the training scenes held out for\n"
          "validation, and identical images kept together. Adam with a warm-up and cosine\n"
          "decay; random scale, crop, flip and colour, on windows of the letterboxes\n"
          "(--crop-size); validation AP50 on whole letterboxes after every epoch; a\n"
          "checkpoint after every epoch lets --resume finish an interrupted run. The defaults\n"
          "are the recipe of the shipped detector (docs/detection.md).\n\n"))
    return 0;
  const std::string design = args.get("design", "face-then-classifier");
  const HeatmapTarget target = heatmap_target(design);
  const int epochs = static_cast<int>(args.get_int("epochs", 68, 0, 100000));
  const Index batch = args.get_int("batch", 16, 1, 4096);
  const double lr = args.get_double("lr", 0.002, 1e-9, 10.0);
  const int warmup_epochs = static_cast<int>(args.get_int("warmup", 1, 0, 100000));
  const double weight_decay = args.get_double("weight-decay", 0.0, 0.0, 1.0);
  const int input_size = static_cast<int>(args.get_int("input-size", 512, 32, 4096));
  if (input_size % 32 != 0) throw UsageError("--input-size must be a multiple of 32");
  // Windows of 3/4 of the side by default: a step costs 9/16 of a whole letterbox's, and most
  // of a scene (and of the faces cut by the window's edge) is still in view.
  const int crop_size = static_cast<int>(
      args.get_int("crop-size", std::max(32, input_size * 3 / 4 / 32 * 32), 32, input_size));
  if (crop_size % 32 != 0) throw UsageError("--crop-size must be a multiple of 32");
  const bool augment = !args.has("no-augment");
  if (!augment && crop_size != input_size)
    throw UsageError("--crop-size needs the augmentation (it cuts random windows)");
  BoxAugmentationOptions augmentation;
  augmentation.letterbox_size = input_size;
  augmentation.min_scale = args.get_double("min-scale", augmentation.min_scale, 0.05, 20.0);
  augmentation.max_scale = args.get_double("max-scale", augmentation.max_scale, 0.05, 20.0);
  if (augmentation.min_scale > augmentation.max_scale)
    throw UsageError("--min-scale must not exceed --max-scale");
  const auto seed = static_cast<std::uint64_t>(args.get_int("seed", 42, 0, 1L << 62));
  const fs::path model_path = args.get("out", "mask_detector_detector.stmodel");
  const auto [checkpoint_path, history_path, plot_path] = run_files(args, model_path);
  if (args.has("resume") && !fs::exists(checkpoint_path))
    throw Error("no checkpoint at '" + checkpoint_path.string() +
                "' to resume from (a finished run removes it)");

  const DetectorData data = load_data(args, seed, std::cout);
  const std::vector<std::string>& heatmap_classes =
      target == HeatmapTarget::faces ? face_class : data.scenes.class_names;
  auto model = build_detector_network(crop_size, static_cast<int>(heatmap_classes.size()), seed);
  compile_detector(*model, lr, weight_decay);
  model->summary();
  std::cout << std::fixed << std::setprecision(2) << "Input " << crop_size << "x" << crop_size
            << (crop_size != input_size ? " crops of " + std::to_string(input_size) + "x" +
                                              std::to_string(input_size) + " letterboxes"
                                        : "")
            << ": " << with_thousands(model->parameter_count()) << " parameters, "
            << detector_multiply_adds(*model) / 1e9 << " G multiply-adds per image ("
            << detector_multiply_adds(*model) * 2 / 1e9 << " GFLOP)";
  if (crop_size != input_size)
    std::cout << "; detecting at " << input_size << "x" << input_size << ": "
              << detector_multiply_adds(*with_input_shapes(*model, {{input_size, input_size, 3}})) *
                     2 / 1e9
              << " GFLOP";
  std::cout << "\nThreads: " << num_threads() << "\n\n";

  BoxAugmenter augmenter(seed + 2, crop_size, augmentation);
  const DetectorSamples train_data(data.scenes, data.split.train, crop_size, target,
                                   augment ? &augmenter : nullptr);
  const DetectorSamples validation_data(data.scenes, data.split.validation, input_size, target);
  const auto steps_per_epoch = static_cast<long long>(
      (data.split.train.size() + std::size_t(batch) - 1) / std::size_t(batch));
  const long long warmup_steps = steps_per_epoch * warmup_epochs;
  LearningRateScheduler<float> schedule(warmup(
      std::max(1LL, warmup_steps), cosine_decay(lr, std::max(1LL, steps_per_epoch * epochs), 0.0)));

  // Everything that shapes the run: a checkpoint resumes only the run it was written by.
  std::ostringstream settings;
  settings << "design=" << design << " epochs=" << epochs << " batch=" << batch << " lr=" << lr
           << " warmup=" << warmup_epochs << " weight_decay=" << weight_decay
           << " input_size=" << input_size << " crop_size=" << crop_size
           << " scales=" << augmentation.min_scale << "-" << augmentation.max_scale
           << " augment=" << augment << " seed=" << seed
           << " test_list=" << args.get("test-list", "")
           << " data=" << data_fingerprint(data.scenes);
  Metadata run_metadata{{"run_settings", settings.str()},
                        {"threads", std::to_string(num_threads())}};
  std::vector<Stateful*> state{&schedule, &augmenter};
  const TrainingProgress progress =
      start_or_resume(args.has("resume"), checkpoint_path, *model, state, run_metadata);
  TrainingCheckpoint<float, GraphModel<float>> checkpoint(checkpoint_path, progress,
                                                          {state.begin(), state.end()});
  ValidationAveragePrecision validation_ap(*model, data, input_size, target, checkpoint, std::cout);

  FitOptions<float, DenseDataset<float>> options;
  options.epochs = epochs;
  options.initial_epoch = progress.stop_training ? epochs : progress.completed_epochs;
  options.batch_size = batch;
  // A tiny folder may leave no scene for validation: then training goes on without it. The
  // validation loss needs samples of the training network's input size: whole letterboxes,
  // so none when training on crops (the validation AP is still scored on whole letterboxes).
  if (data.split.validation.empty())
    std::cout << "warning: no validation scenes; training without validation figures\n";
  else if (crop_size == input_size)
    options.validation_data = &validation_data;
  options.verbose = args.has("quiet") ? 2 : 1;
  options.callbacks = {&schedule, &validation_ap};
  model->fit(train_data, options);
  const History& history = checkpoint.progress().history;

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  DetectorInfo info;
  info.input_size = input_size;
  info.classes = heatmap_classes;
  info.design = design;
  Metadata metadata = detector_metadata(info);
  metadata.insert(run_metadata.begin(), run_metadata.end());
  metadata["split_seed"] = std::to_string(seed);
  metadata["test_list"] = fs::path(args.get("test-list", "")).filename().string();
  metadata["data_fingerprint"] = data_fingerprint(data.scenes);
  metadata["epochs"] = std::to_string(history.epochs());
  metadata["stratum_version"] = stratum::version;
  // The file holds the network at its letterbox size, as `detect` runs it.
  save_graph_model(
      crop_size == input_size ? *model : *with_input_shapes(*model, {{input_size, input_size, 3}}),
      model_path, metadata);
  fs::remove(checkpoint_path);  // the run is complete: nothing left to resume
  if (history.epochs() > 0) {
    history.write_csv(history_path.string());
    write_history_plot(history, plot_path, "mask_detector train-detector", "ap50");
  }
  std::cout << "\nSaved the detector to " << model_path.string();
  if (history.epochs() > 0)
    std::cout << ", the history to " << history_path.string() << " and " << plot_path.string();
  std::cout << "\nTotal time " << format_duration(seconds) << " (" << std::fixed
            << std::setprecision(1) << seconds << " s)\n"
            << "Test figures: mask_detector evaluate-detector --data DIR --model "
            << model_path.string() << (args.has("test-list") ? " --test-list FILE" : "") << '\n';
  return 0;
}

inline int evaluate_detector(const std::vector<std::string>& raw) {
  using namespace stratum;
  using namespace detector_detail;
  const Arguments args(raw, with_detector_data_options({
                                {"model", "FILE", "the detector to score"},
                                {"classifier", "FILE",
                                 "the face classifier of a face-then-classifier detector "
                                 "(default: the shipped compact model)"},
                                {"json", "", "print the figures as JSON"},
                                {"input-sizes", "S[,S...]",
                                 "letterbox sides to run the network at, merging what each "
                                 "finds (default: the model's)"},
                                {"square-letterbox", "",
                                 "run the network on the square letterbox of training, not "
                                 "each photo's own box at the same scale (as detect's option)"},
                                {"part", "NAME",
                                 "the part of the split to score: test (default) or validation "
                                 "(to choose settings such as --input-sizes without looking at "
                                 "the test scenes)"},
                                {"threshold", "P",
                                 "score from which a detection counts for precision and recall "
                                 "(default: 0.3)"},
                            }));
  if (help_requested(
          args,
          "usage: mask_detector evaluate-detector --data DIR --model FILE [--test-list FILE] "
          "[--json]\n\n"
          "Scores a detector on the test scenes of DIR (the scenes of --test-list, or the\n"
          "seeded split stored in the model), with the detections `detect` makes: per-class\n"
          "VOC AP50, their mean over with_mask and without_mask (the headline), the\n"
          "three-class mAP50, COCO AP[.5:.95], precision and recall, and the same by box "
          "size.\n\n"))
    return 0;
  if (!args.has("model")) throw UsageError("--model FILE is needed");
  const std::vector<long> sizes = args.get_int_list("input-sizes", 32, 4096);
  DetectorOptions how;
  how.input_sizes.assign(sizes.begin(), sizes.end());
  how.square_letterbox = args.has("square-letterbox");
  const std::vector<int>& input_sizes = how.input_sizes;
  const std::string part_name = args.get("part", "test");
  if (part_name != "test" && part_name != "validation")
    throw UsageError("--part is test or validation, not '" + part_name + "'");
  const fs::path model_path = args.get("model", "");
  auto loaded = load_graph_model<float>(model_path);
  const DetectorInfo info = read_detector_info(loaded.metadata, model_path.string());
  const HeatmapTarget target = heatmap_target(info.design);
  if (info.classes != (target == HeatmapTarget::faces ? face_class : detector_classes))
    throw Error("'" + model_path.string() + "' is a " + info.design + " detector of classes " +
                join_names(info.classes) + "; evaluate-detector scores detectors of " +
                join_names(detector_classes) + " (one-stage) or of faces (face-then-classifier)");
  if (info.stride != detector_stride)
    throw Error("'" + model_path.string() + "' has stride " + std::to_string(info.stride) +
                ", not " + std::to_string(detector_stride));
  const float threshold =
      static_cast<float>(args.get_double("threshold", default_operating_threshold, 0.0, 1.0));
  const auto seed = static_cast<std::uint64_t>(
      std::stoull(loaded.metadata.count("split_seed") ? loaded.metadata["split_seed"] : "42"));
  const bool json = args.has("json");
  std::ostream& log = json ? std::cerr : std::cout;  // stdout holds the JSON alone
  const DetectorData data = load_data(args, seed, log);
  if (loaded.metadata.count("data_fingerprint") &&
      loaded.metadata["data_fingerprint"] != data_fingerprint(data.scenes))
    std::cerr << "warning: " << data_folder(args).string()
              << " is not the dataset this detector was trained on\n";
  if (!args.has("test-list") && !loaded.metadata["test_list"].empty())
    std::cerr << "warning: the detector was trained with --test-list "
              << loaded.metadata["test_list"]
              << "; without it, the seeded test part may hold its training scenes\n";

#ifdef STRATUM_SHIPPED_MODEL
  const std::string default_classifier = STRATUM_SHIPPED_MODEL;
#else
  const std::string default_classifier = "mask_detector_compact.stmodel";
#endif
  Detector detector(std::move(loaded), model_path.string(),
                    args.get("classifier", default_classifier));
  const auto begin = std::chrono::steady_clock::now();
  const std::vector<stratum::Index>& part =
      part_name == "test" ? data.split.test : data.split.validation;
  const DetectorScores scores = score_test_scenes(detector, data.scenes, part, threshold, how, log);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  if (json) {
    std::cout << scores_to_json(scores) << '\n';
  } else {
    std::string sizes_used = std::to_string(info.input_size);
    if (!input_sizes.empty()) {
      sizes_used = "sizes ";
      for (std::size_t k = 0; k < input_sizes.size(); ++k)
        sizes_used += (k ? "," : "") + std::to_string(input_sizes[k]);
    }
    std::cout << "\n"
              << (part_name == "test" ? "Test" : "Validation") << " part: " << part.size()
              << " scenes, model " << model_path.string() << " (" << info.design << ", input "
              << sizes_used << (how.square_letterbox ? " square" : "") << ", "
              << format_duration(seconds) << " to detect and score)\n\n"
              << scores_to_text(scores);
  }
  return 0;
}

}  // namespace mask_detection
