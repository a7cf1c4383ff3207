// mask_detector: train, evaluate and use a face-mask classifier on folders of photos.
//
//   mask_detector train    --data DIR [options]     the Keras notebook's protocol, leak-free
//   mask_detector evaluate --data DIR [--model FILE]  metrics on the held-out test part (or --all)
//   mask_detector predict  [--model FILE] PATH...     label and probability per photo or folder
//   mask_detector detect   [--model FILE] PATH...     every face in a photo, boxed and labelled
//
// Without --model, evaluate and predict use the compact model shipped in models/.
//
// DIR holds with_mask/ (label 1) and without_mask/ (label 0), as Kaggle's archive unpacks.
// See docs/mask-detection.md.
#include <stratum/callbacks/early_stopping.hpp>
#include <stratum/callbacks/learning_rate_scheduler.hpp>
#include <stratum/callbacks/reduce_lr_on_plateau.hpp>
#include <stratum/data/corruptions.hpp>
#include <stratum/data/image_dataset.hpp>
#include <stratum/data/split.hpp>
#include <stratum/metrics.hpp>
#include <stratum/model/checkpoint.hpp>
#include <stratum/model/fold_batch_normalization.hpp>
#include <stratum/plot.hpp>
#include <stratum/stratum.hpp>
#if STRATUM_WITH_MPI  // built where MPI is: mpirun -np N mask_detector train (docs/distributed.md)
#include <stratum/distributed/communicator.hpp>
#include <stratum/distributed/cores_per_rank.hpp>
#include <stratum/distributed/mpi_data_parallel.hpp>
#endif

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "architectures.hpp"
#include "cli.hpp"
#include "detect_command.hpp"
#include "photo_files.hpp"
#include "resume.hpp"
#if STRATUM_DETECTOR_COMMANDS  // they read Pascal VOC files: built where pugixml is
#include "detector_commands.hpp"
#endif

namespace fs = std::filesystem;
using namespace stratum;
using mask_detection::Arguments;
using mask_detection::collect_images;
using mask_detection::json_string;
using mask_detection::OptionSpec;
using mask_detection::UsageError;

namespace {

const std::vector<std::string> class_names{"without_mask", "with_mask"};  // labels 0 and 1
constexpr double test_fraction = 0.2;        // the notebook's train_test_split(test_size=0.2)
constexpr double validation_fraction = 0.1;  // the notebook's fit(validation_split=0.1)

const std::vector<OptionSpec> data_options{
    {"data", "DIR", "dataset folder with with_mask/ and without_mask/ (default: data)"},
    {"cache", "DIR",
     "where decoded images are cached (default: $XDG_CACHE_HOME/stratum or ~/.cache/stratum)"},
    {"no-cache", "", "decode every image, read and write no cache"},
    {"strict", "", "stop at the first file that cannot be decoded instead of skipping it"},
    {"threads", "N", "threads to use (default: all cores)"},
};

std::vector<OptionSpec> with_data_options(std::vector<OptionSpec> specs) {
  specs.insert(specs.end(), data_options.begin(), data_options.end());
  specs.push_back({"help", "", "show this help"});
  return specs;
}

fs::path default_cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return fs::path(xdg) / "stratum";
  if (const char* home = std::getenv("HOME"); home && *home)
    return fs::path(home) / ".cache" / "stratum";
  return fs::temp_directory_path() / "stratum-cache";
}

/// Prints the command's help and returns true if --help was given; rejects stray arguments.
bool help_or_no_positionals(const Arguments& args, const std::string& text) {
  if (args.has("help")) {
    std::cout << text << args.help();
    return true;
  }
  if (!args.positional().empty())
    throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  return false;
}

void apply_threads(const Arguments& args) {
  if (args.has("threads")) set_num_threads(static_cast<int>(args.get_int("threads", 0, 1, 1024)));
}

std::string hex(std::uint64_t v) {
  std::ostringstream out;
  out << std::hex << std::setw(16) << std::setfill('0') << v;
  return out.str();
}

/// Identifies a dataset by its files' names and contents.
std::string fingerprint(const LabelledImages& images) {
  Fnv1a h;
  for (Index i = 0; i < images.count(); ++i)
    h.add(images.files[static_cast<std::size_t>(i)])
        .add(images.content_hashes[static_cast<std::size_t>(i)]);
  return hex(h.value());
}

std::string percent(double fraction) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(2) << 100 * fraction << " %";
  return out.str();
}

/// The photos of `dir`; `log` gets the decoding's progress and warnings (null: none).
LabelledImages load_dataset(const Arguments& args, const fs::path& dir, int width, int height,
                            Rgb background, std::ostream* log = &std::cerr) {
  ImageFolderOptions options;
  options.log = log;
  options.width = width;
  options.height = height;
  options.background = background;
  options.strict = args.has("strict");
  if (!args.has("no-cache")) options.cache_dir = args.get("cache", default_cache_dir().string());
  options.map_cache = true;  // photos read from the cache as used: memory does not grow with them
  LabelledImages images = load_image_folder(dir, class_names, options);

  std::cout << "Dataset " << dir.string() << ": " << images.count() << " images (";
  for (std::size_t c = class_names.size(); c-- > 0;)
    std::cout << class_names[c] << " " << images.class_count(static_cast<int>(c))
              << (c ? ", " : "");
  std::cout << "), " << images.skipped.size() << " skipped\n";
  for (const auto& s : images.skipped) std::cout << "  skipped " << s.reason << '\n';
  const auto groups = duplicate_groups(images);
  std::size_t in_groups = 0;
  for (const auto& g : groups) in_groups += g.size();
  std::cout << "Duplicates: " << groups.size() << " groups of byte-identical files (" << in_groups
            << " files, " << in_groups - groups.size()
            << " of them extra copies); each group stays on one side of every split\n";
  return images;
}

std::vector<Index> all_indices(const LabelledImages& images) {
  std::vector<Index> all(static_cast<std::size_t>(images.count()));
  std::iota(all.begin(), all.end(), Index{0});
  return all;
}

/// The notebook's protocol, leak-free: 80/20 train/test, then 10 % of train for validation,
/// each split stratified, seeded, and made over groups of identical files.
struct Parts {
  std::vector<Index> train, validation, test;
};

Parts split_dataset(const LabelledImages& images, std::uint64_t seed) {
  const Split outer = stratified_group_split(images.labels, images.content_hashes,
                                             all_indices(images), test_fraction, seed);
  const Split inner = stratified_group_split(images.labels, images.content_hashes, outer.train,
                                             validation_fraction, seed + 1);
  return {inner.train, inner.test, outer.test};
}

struct Scores {
  ConfusionMatrix confusion{class_names};
  double loss = 0;
};

Scores score(Sequential<float>& model, const LabelledImages& images,
             const std::vector<Index>& part) {
  const ImageDataset<float> data(images, part);
  const Tensor<float> output = model.predict(data, 64);
  std::vector<int> labels;
  for (Index i : part) labels.push_back(images.labels[static_cast<std::size_t>(i)]);
  Scores s;
  s.loss = model.loss().compute(output, labels, nullptr);
  const Index outputs = output.dim(1);
  for (std::size_t k = 0; k < labels.size(); ++k)
    s.confusion.add(labels[k], model.loss().predicted_label(
                                   output.data() + static_cast<Index>(k) * outputs, outputs));
  return s;
}

/// The images `part` of `images`, each degraded by `corruption`. Photo k's engine is seeded
/// by `seed`, the corruption's number and the photo's content hash, so a photo is degraded the
/// same way whatever part it is in and however many threads run.
LabelledImages corrupted_copy(const LabelledImages& images, const std::vector<Index>& part,
                              const Corruption& corruption, std::size_t number,
                              std::uint64_t seed) {
  LabelledImages out;
  out.width = images.width;
  out.height = images.height;
  out.class_names = images.class_names;
  out.pixels.resize(part.size() * static_cast<std::size_t>(images.image_size()));
  for (Index i : part) {
    out.labels.push_back(images.labels[static_cast<std::size_t>(i)]);
    out.files.push_back(images.files[static_cast<std::size_t>(i)]);
    out.content_hashes.push_back(images.content_hashes[static_cast<std::size_t>(i)]);
  }
  const auto count = static_cast<Index>(part.size());
  const Index size = images.image_size();
  parallel_for(count, [&](Index k) {
    const std::uint8_t* source = images.image(part[static_cast<std::size_t>(k)]);
    const Image photo{images.width, images.height, {source, source + size}};
    images.release(part[static_cast<std::size_t>(k)]);
    Random rng(Fnv1a()
                   .add(seed)
                   .add(std::uint64_t{number})
                   .add(out.content_hashes[static_cast<std::size_t>(k)])
                   .value());
    const Image degraded = corruption.apply(photo, rng);
    std::copy(degraded.pixels.begin(), degraded.pixels.end(), out.pixels.begin() + k * size);
  });
  return out;
}

struct CorruptionScore {
  const Corruption* corruption;
  ConfusionMatrix confusion;
};

/// The model's confusion matrix on `part` under each corruption of the benchmark.
std::vector<CorruptionScore> score_corruptions(Sequential<float>& model,
                                               const LabelledImages& images,
                                               const std::vector<Index>& part,
                                               const std::vector<Corruption>& corruptions,
                                               std::uint64_t seed) {
  std::vector<CorruptionScore> scores;
  for (std::size_t c = 0; c < corruptions.size(); ++c) {
    const LabelledImages degraded = corrupted_copy(images, part, corruptions[c], c, seed);
    scores.push_back({&corruptions[c], score(model, degraded, all_indices(degraded)).confusion});
  }
  return scores;
}

double mean_accuracy(const std::vector<CorruptionScore>& scores) {
  double sum = 0;
  for (const auto& s : scores) sum += s.confusion.accuracy();
  return scores.empty() ? 0.0 : sum / double(scores.size());
}

/// One row per corruption (accuracy and each class's recall), the clean figures first and the
/// mean over the corruptions last.
void print_corruption_table(const Scores& clean, const std::vector<CorruptionScore>& scores,
                            std::uint64_t seed) {
  std::cout << "\nUnder corruptions (each alone, on every photo of the same part; seed " << seed
            << "):\n\n";
  auto row = [](const std::string& name, const std::string& strength, const ConfusionMatrix* m,
                double accuracy) {
    std::cout << std::left << std::setw(16) << name << std::setw(22) << strength << std::right
              << std::setw(9) << percent(accuracy);
    if (m)
      for (int c = 0; c < m->classes(); ++c)
        std::cout << std::setw(22) << std::fixed << std::setprecision(4) << m->recall(c);
    std::cout << '\n';
  };
  std::cout << std::left << std::setw(16) << "corruption" << std::setw(22) << "strength"
            << std::right << std::setw(9) << "accuracy";
  for (const auto& name : class_names) std::cout << std::setw(22) << "recall " + name;
  std::cout << '\n';
  row("none (clean)", "", &clean.confusion, clean.confusion.accuracy());
  for (const auto& s : scores)
    row(s.corruption->name, s.corruption->strength, &s.confusion, s.confusion.accuracy());
  row("mean of " + std::to_string(scores.size()), "", nullptr, mean_accuracy(scores));
}

std::string corruptions_json(const std::vector<CorruptionScore>& scores) {
  std::ostringstream out;
  out << std::setprecision(6) << "\"corruptions\": [";
  for (std::size_t k = 0; k < scores.size(); ++k) {
    const ConfusionMatrix& m = scores[k].confusion;
    out << (k ? ", " : "") << "{\"name\": \"" << scores[k].corruption->name
        << "\", \"strength\": \"" << scores[k].corruption->strength
        << "\", \"accuracy\": " << m.accuracy() << ", \"recall\": {";
    for (int c = 0; c < m.classes(); ++c)
      out << (c ? ", " : "") << '"' << class_names[static_cast<std::size_t>(c)]
          << "\": " << m.recall(c);
    out << "}}";
  }
  out << "], \"corruption_mean_accuracy\": " << mean_accuracy(scores);
  return out.str();
}

void print_scores(const Scores& s, const std::string& part) {
  std::cout << part << ": accuracy " << percent(s.confusion.accuracy()) << " ("
            << static_cast<Index>(
                   std::llround(s.confusion.accuracy() * double(s.confusion.total())))
            << " of " << s.confusion.total() << "), loss " << std::setprecision(4) << s.loss
            << "\n\n"
            << s.confusion.to_text();
}

void print_how_to_get_data(const fs::path& dir) {
  std::cerr
      << "mask_detector: no dataset at '" << dir.string() << "'.\n"
      << "Download the Kaggle \"Face Mask Dataset\" (omkargurav/face-mask-dataset), for example\n"
      << "  kaggle datasets download -d omkargurav/face-mask-dataset\n"
      << "  unzip face-mask-dataset.zip -d data\n"
      << "so that data/with_mask/ and data/without_mask/ hold the photos, or pass --data DIR.\n";
}

/// The callbacks a training run uses, built from its settings.
struct TrainingCallbacks {
  std::unique_ptr<LearningRateScheduler<float>> schedule;
  std::unique_ptr<ReduceLROnPlateau<float>> plateau;
  std::unique_ptr<EarlyStopping<float>> stopping;

  /// In the order fit calls them (the checkpoint comes after them all).
  [[nodiscard]] std::vector<Callback<float>*> all() const {
    std::vector<Callback<float>*> list;
    if (schedule) list.push_back(schedule.get());
    if (plateau) list.push_back(plateau.get());
    if (stopping) list.push_back(stopping.get());
    return list;
  }
};

TrainingCallbacks make_callbacks(const std::string& schedule, double lr, long long total_steps,
                                 int early_stopping) {
  TrainingCallbacks c;
  if (schedule == "cosine")
    c.schedule = std::make_unique<LearningRateScheduler<float>>(cosine_decay(lr, total_steps, 0.0));
  // Step: a tenth of the rate after each third of training.
  if (schedule == "step")
    c.schedule = std::make_unique<LearningRateScheduler<float>>(
        step_decay(lr, 0.1, std::max(1LL, total_steps / 3)));
  if (schedule == "plateau")
    c.plateau = std::make_unique<ReduceLROnPlateau<float>>(
        ReduceLROnPlateauOptions{.factor = 0.2, .patience = 3, .log = &std::cout});
  if (early_stopping > 0)
    c.stopping = std::make_unique<EarlyStopping<float>>(EarlyStoppingOptions{
        .patience = early_stopping, .restore_best_weights = true, .log = &std::cout});
  return c;
}

int train(const std::vector<std::string>& raw) {
  const auto start = std::chrono::steady_clock::now();
  const Arguments args(
      raw,
      with_data_options(mask_detection::with_run_options({
          {"arch", "NAME", mask_detection::architecture_help},
          {"epochs", "N", "training epochs (default: 25 for seed, 30 for compact)"},
          {"batch", "N", "batch size (default: 32)"},
          {"lr", "RATE", "initial learning rate (default: 0.001 for seed, 0.002 for compact)"},
          {"schedule", "NAME",
           "learning rate: constant, cosine, step or plateau (default: constant for seed, cosine "
           "for compact)"},
          {"weight-decay", "W",
           "AdamW's decoupled weight decay, 0 for Adam (default: 0 for seed, 0.0005 for compact)"},
          {"augment", "",
           "random flips, crops, rotations, brightness and contrast (default for compact)"},
          {"no-augment", "", "train on the photos as they are (default for seed)"},
          {"corrupt", "P",
           "with augmentation, also degrade photos as users' are (cut-off crop, other light, "
           "grey-scale, blur, noise, down-scaling, JPEG), each way with probability P (default: 0 "
           "for seed, 0.1 for compact)"},
          {"early-stopping", "N",
           "stop after N epochs without a better val_loss, keep the best weights (default: off)"},
          {"seed", "N",
           "seed of the split, the initial weights, shuffling, dropout and augmentation (default: "
           "42)"},
          {"model", "FILE", "where to save the trained model (default: mask_detector.stmodel)"},
          {"gradient-compression", "NAME",
           "under mpirun: gradients summed over the ranks as they are (none) or as bfloat16, half "
           "the bytes (bf16) (default: none)"},
      })));
  if (help_or_no_positionals(
          args,
          "usage: mask_detector train [--data DIR] [options]\n\n"
          "Trains on 80 % of the photos (10 % of those held out for validation each epoch)\n"
          "and reports accuracy on the other 20 %. Splits are stratified, seeded and keep\n"
          "byte-identical photos together. A checkpoint after every epoch lets --resume\n"
          "finish an interrupted run with exactly the weights it would have had.\n\n"))
    return 0;
  const std::string arch = args.get("arch", "seed");
  const mask_detection::Recipe defaults = mask_detection::recipe(arch);
  const int epochs = static_cast<int>(args.get_int("epochs", defaults.epochs, 0, 100000));
  const Index batch = args.get_int("batch", 32, 1, 65536);
  const double lr = args.get_double("lr", defaults.learning_rate, 1e-9, 10.0);
  const std::string schedule = args.get("schedule", defaults.schedule);
  if (schedule != "constant" && schedule != "cosine" && schedule != "step" && schedule != "plateau")
    throw UsageError("unknown schedule '" + schedule + "' (constant, cosine, step or plateau)");
  const double weight_decay = args.get_double("weight-decay", defaults.weight_decay, 0.0, 1.0);
  if (args.has("augment") && args.has("no-augment"))
    throw UsageError("give --augment or --no-augment, not both");
  const bool augment = args.has("augment") || (defaults.augment && !args.has("no-augment"));
  const double corruption =
      args.get_double("corrupt", augment ? defaults.corruption_probability : 0.0, 0.0, 1.0);
  if (corruption > 0 && !augment)
    throw UsageError("--corrupt needs augmentation: drop --no-augment");
  const int early_stopping =
      static_cast<int>(args.get_int("early-stopping", defaults.early_stopping, 0, 100000));
  const auto seed = static_cast<std::uint64_t>(args.get_int("seed", 42, 0, 1L << 62));
  const fs::path model_path = args.get("model", "mask_detector.stmodel");
  const auto [checkpoint_path, history_path, plot_path] =
      mask_detection::run_files(args, model_path);
  // Under mpirun every rank runs this, each on its part of every batch (docs/distributed.md).
  // Rank 0 alone prints and writes files; the other ranks' standard output is switched off.
#if STRATUM_WITH_MPI
  std::optional<Communicator> world;
  if (int running = 0; MPI_Initialized(&running) == MPI_SUCCESS && running) world.emplace();
  const int rank = world ? world->rank() : 0;
  if (world && !args.has("threads")) set_num_threads(cores_per_rank());
#else
  const int rank = 0;
#endif
  const std::string compression_name = args.get("gradient-compression", "none");
#if STRATUM_WITH_MPI
  const GradientCompression compression = parse_gradient_compression(compression_name);
  if (compression != GradientCompression::none && !world)
    throw UsageError("--gradient-compression applies to training under mpirun");
#else
  if (compression_name != "none")
    throw UsageError("--gradient-compression needs a build with MPI, run under mpirun");
#endif
  if (rank != 0) std::cout.setstate(std::ios::failbit);
  apply_threads(args);
  const fs::path dir = args.get("data", "data");
  if (!fs::exists(dir)) {
    print_how_to_get_data(dir);
    return 1;
  }
  if (args.has("resume") && !fs::exists(checkpoint_path))
    throw Error("no checkpoint at '" + checkpoint_path.string() +
                "' to resume from (a finished run removes it)");

  auto model = mask_detection::build_network(arch, seed);
#if STRATUM_WITH_MPI
  // Rank 0 decodes the photos and writes the cache before the others read it: two processes
  // writing one cache file would race.
  if (world && rank != 0) world->barrier();
#endif
  const LabelledImages images =
      load_dataset(args, dir, mask_detection::image_size, mask_detection::image_size, white,
                   rank == 0 ? &std::cerr : nullptr);
#if STRATUM_WITH_MPI
  if (world && rank == 0) world->barrier();
#endif
  const Parts parts = split_dataset(images, seed);
  std::cout << "Split (seed " << seed << "): " << parts.train.size() << " train, "
            << parts.validation.size() << " validation, " << parts.test.size() << " test\n"
            << "Threads: " << num_threads();
#if STRATUM_WITH_MPI
  if (world) std::cout << " per rank, " << world->size() << " ranks";
#endif
  std::cout << "\n\n";

  model->compile(mask_detection::network_loss(arch),
                 std::make_unique<Adam<float>>(lr, 0.9, 0.999, 1e-7, weight_decay));
  model->summary();
  AugmentationOptions augmentation;
  augmentation.corruptions.probability = corruption;
  ImageAugmenter augmenter(seed + 2, augmentation);
  const ImageDataset<float> train_data(images, parts.train, augment ? &augmenter : nullptr);
  const ImageDataset<float> validation_data(images, parts.validation);
  const auto steps_per_epoch = static_cast<long long>(
      (parts.train.size() + static_cast<std::size_t>(batch) - 1) / static_cast<std::size_t>(batch));
  const TrainingCallbacks callbacks =
      make_callbacks(schedule, lr, steps_per_epoch * epochs, early_stopping);

  // Everything that shapes the run: a checkpoint resumes only the run it was written by.
  const std::string data_fingerprint = fingerprint(images);  // hashes every file name and hash
  std::ostringstream settings;
  settings << "arch=" << arch << " epochs=" << epochs << " batch=" << batch << " lr=" << lr
           << " schedule=" << schedule << " weight_decay=" << weight_decay << " augment=" << augment
           << " corrupt=" << corruption << " early_stopping=" << early_stopping << " seed=" << seed
           << " data=" << data_fingerprint;
  if (compression_name != "none") settings << " gradient_compression=" << compression_name;
  Metadata run_metadata{{"run_settings", settings.str()},
                        {"threads", std::to_string(num_threads())}};
#if STRATUM_WITH_MPI
  if (world) run_metadata["ranks"] = std::to_string(world->size());
#endif
  std::vector<Stateful*> state;
  for (auto* c : callbacks.all()) state.push_back(c);
  state.push_back(&augmenter);
  const TrainingProgress progress = mask_detection::start_or_resume(
      args.has("resume"), checkpoint_path, *model, state, run_metadata);
  TrainingCheckpoint<float> checkpoint(checkpoint_path, progress, {state.begin(), state.end()});
#if STRATUM_WITH_MPI
  std::optional<MpiDataParallel<float>> replicas;
  if (world)
    model->distribute(
        &replicas.emplace(*world, MpiDataParallel<float>::default_bucket_bytes, compression));
#endif

  FitOptions<float> options;
  options.epochs = epochs;
  options.initial_epoch = progress.stop_training ? epochs : progress.completed_epochs;
  options.batch_size = batch;
  options.validation_data = &validation_data;
  options.verbose = rank != 0 ? 0 : args.has("quiet") ? 2 : 1;
  options.callbacks = callbacks.all();
  if (rank == 0) options.callbacks.push_back(&checkpoint);
  model->fit(train_data, options);
  if (rank != 0) return 0;  // the model, the scores and the files are rank 0's
  const History& history = checkpoint.progress().history;

  const Scores test = score(*model, images, parts.test);
  std::cout << '\n';
  print_scores(
      test, "Test part (" + std::to_string(parts.test.size()) + " images never seen in training)");

  Metadata metadata{
      {"class_names", "without_mask,with_mask"},
      {"image_width", std::to_string(mask_detection::image_size)},
      {"image_height", std::to_string(mask_detection::image_size)},
      {"background", "255,255,255"},
      {"architecture", arch},
      {"split_seed", std::to_string(seed)},
      {"data_fingerprint", data_fingerprint},
      {"epochs", std::to_string(history.epochs())},
      {"test_accuracy", std::to_string(test.confusion.accuracy())},
      {"stratum_version", stratum::version},
  };
  metadata.insert(run_metadata.begin(), run_metadata.end());
  save_model(*model, model_path, metadata);
  fs::remove(checkpoint_path);  // the run is complete: nothing left to resume
  if (history.epochs() > 0) {
    history.write_csv(history_path);
    write_history_plot(history, plot_path, "mask_detector, " + arch + " network");
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "\nSaved the model to " << model_path.string();
  if (history.epochs() > 0)
    std::cout << ", the history to " << history_path.string() << " and " << plot_path.string();
  std::cout << "\nTotal time " << format_duration(seconds) << " (" << std::fixed
            << std::setprecision(1) << seconds << " s)\n";
  return 0;
}

/// The compact model trained on the Kaggle photos and committed under models/: what evaluate
/// and predict use when no --model is given.
std::string shipped_model_name() {
  return fs::path(STRATUM_SHIPPED_MODEL).filename().string();
}

fs::path model_path_argument(const Arguments& args) {
  if (args.has("model")) return args.get("model", "");
  const fs::path shipped = STRATUM_SHIPPED_MODEL;
  if (!fs::exists(shipped))
    throw Error("no --model given, and the shipped model '" + shipped.string() + "' is missing");
  return shipped;
}

/// The model and what its metadata says about the images it expects.
struct ModelInfo {
  LoadedModel<float> loaded;
  int width = mask_detection::image_size, height = mask_detection::image_size;
};

ModelInfo load_for_inference(const fs::path& path) {
  ModelInfo info{load_model<float>(path)};
  auto& meta = info.loaded.metadata;
  if (meta.count("image_width")) info.width = std::stoi(meta["image_width"]);
  if (meta.count("image_height")) info.height = std::stoi(meta["image_height"]);
  if (!info.loaded.model->has_loss())
    throw IoError("'" + path.string() + "' has no loss, so its outputs cannot be read as classes");
  if (info.loaded.model->input_shape() != Shape{info.height, info.width, 3})
    throw IoError("'" + path.string() + "' expects input " +
                  info.loaded.model->input_shape().to_batch_string() + ", not RGB images of " +
                  std::to_string(info.width) + "x" + std::to_string(info.height));
  // evaluate and predict only run the model forward: each convolution - batch normalisation -
  // ReLU run of layers as one convolution, fused with the pooling after it.
  info.loaded.model = fold_batch_normalization(*info.loaded.model);
  return info;
}

int evaluate(const std::vector<std::string>& raw) {
  const Arguments args(
      raw,
      with_data_options({
          {"model", "FILE",
           "the trained model (default: the shipped compact model, " + shipped_model_name() + ")"},
          {"all", "", "evaluate on every image of DIR, not only the held-out test part"},
          {"json", "", "print the metrics as JSON"},
          {"corruptions", "",
           "also the accuracy under each corruption of users' photos, and their mean"},
          {"corruption-seed", "N",
           "seed of the random corruptions, the noise and the crop (default: 1)"},
      }));
  if (help_or_no_positionals(
          args,
          "usage: mask_detector evaluate [--data DIR] [--model FILE] [--all] [--json] "
          "[--corruptions]\n\n"
          "Accuracy, per-class precision, recall and F1, and the confusion matrix on the\n"
          "test part of DIR (the same split as training, from the seed stored in the model)\n"
          "or, with --all, on every image of DIR. With --corruptions, then the accuracy and\n"
          "each class's recall with every photo down-scaled (to 24, 32, 48 px and back),\n"
          "JPEG-compressed (quality 10, 20, 40), blurred, noisy, darker, brighter, in lower\n"
          "and higher contrast, grey, or cut off by a crop, each alone at the fixed strengths\n"
          "of docs/mask-detection.md, and the mean over those 14.\n\n"))
    return 0;
  apply_threads(args);
  const fs::path model_path = model_path_argument(args);
  ModelInfo info = load_for_inference(model_path);
  const fs::path dir = args.get("data", "data");
  if (!fs::exists(dir)) {
    print_how_to_get_data(dir);
    return 1;
  }
  const bool json = args.has("json");
  std::streambuf* saved = nullptr;
  std::ostringstream discard;
  if (json) saved = std::cout.rdbuf(discard.rdbuf());  // keep stdout for the JSON alone
  const LabelledImages images = load_dataset(args, dir, info.width, info.height, white);
  std::vector<Index> part = all_indices(images);
  std::string what = "All of " + dir.string();
  if (!args.has("all")) {
    auto& meta = info.loaded.metadata;
    const auto seed = static_cast<std::uint64_t>(
        std::stoull(meta.count("split_seed") ? meta["split_seed"] : "42"));
    if (meta.count("data_fingerprint") && meta["data_fingerprint"] != fingerprint(images))
      std::cerr << "warning: " << dir.string() << " is not the dataset this model was trained on; "
                << "its 'test part' may overlap the training data. Use --all for other datasets.\n";
    part = split_dataset(images, seed).test;
    what = "Test part of " + dir.string() + " (seed " + std::to_string(seed) + ")";
  }
  const Scores s = score(*info.loaded.model, images, part);
  const bool corruptions = args.has("corruptions");
  const auto corruption_seed =
      static_cast<std::uint64_t>(args.get_int("corruption-seed", 1, 0, 1L << 62));
  const std::vector<Corruption> benchmark = benchmark_corruptions();
  const std::vector<CorruptionScore> corrupted =
      corruptions ? score_corruptions(*info.loaded.model, images, part, benchmark, corruption_seed)
                  : std::vector<CorruptionScore>{};
  if (json) {
    std::cout.rdbuf(saved);
    std::string metrics = s.confusion.to_json();
    metrics.insert(1, "\"part\": \"" + std::string(args.has("all") ? "all" : "test") +
                          "\", \"loss\": " + std::to_string(s.loss) + ", ");
    if (corruptions) metrics.insert(metrics.size() - 1, ", " + corruptions_json(corrupted));
    std::cout << metrics << '\n';
  } else {
    print_scores(s, what + ", model " + model_path.string());
    if (corruptions) print_corruption_table(s, corrupted, corruption_seed);
  }
  return 0;
}

int predict(const std::vector<std::string>& raw) {
  const Arguments args(raw, {
                                {"model", "FILE",
                                 "the trained model (default: the shipped compact model, " +
                                     shipped_model_name() + ")"},
                                {"json", "", "print the results as JSON"},
                                {"threads", "N", "threads to use (default: all cores)"},
                                {"help", "", "show this help"},
                            });
  if (args.has("help")) {
    std::cout << "usage: mask_detector predict [--model FILE] [--json] IMAGE_OR_FOLDER...\n\n"
                 "Prints the predicted label and its probability for each image, and for a folder\n"
                 "every image in it, then a count of each label.\n\n"
              << args.help();
    return 0;
  }
  if (args.positional().empty()) throw UsageError("predict needs at least one image or folder");
  apply_threads(args);
  ModelInfo info = load_for_inference(model_path_argument(args));
  Sequential<float>& model = *info.loaded.model;
  const bool json = args.has("json");
  const std::vector<fs::path> files = collect_images(args.positional());
  std::vector<int> counts(class_names.size(), 0);
  int failures = 0;
  if (json) std::cout << "[";
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string file = files[i].string();
    if (json && i) std::cout << ",";
    try {
      const Image image = resize_image(load_image(file), info.width, info.height);
      Tensor<float> x({1, info.height, info.width, 3});
      for (Index p = 0; p < x.size(); ++p)
        x[p] = static_cast<float>(image.pixels[static_cast<std::size_t>(p)]) / 255.0f;
      const Tensor<float>& out = model.forward(x, Mode::inference);
      double probabilities[2];
      model.loss().class_probabilities(out.data(), out.dim(1), probabilities);
      const int label = model.loss().predicted_label(out.data(), out.dim(1));
      ++counts[static_cast<std::size_t>(label)];
      const auto& name = class_names[static_cast<std::size_t>(label)];
      if (json)
        std::cout << "\n  {\"file\": " << json_string(file) << ", \"label\": \"" << name
                  << "\", \"probability\": " << probabilities[label]
                  << ", \"probabilities\": {\"without_mask\": " << probabilities[0]
                  << ", \"with_mask\": " << probabilities[1] << "}}";
      else
        std::cout << file << ": " << name << " (probability " << std::fixed << std::setprecision(3)
                  << probabilities[label] << ")\n";
    } catch (const Error& e) {
      ++failures;
      if (json)
        std::cout << "\n  {\"file\": " << json_string(file)
                  << ", \"error\": " << json_string(e.what()) << "}";
      else
        std::cerr << "mask_detector: " << e.what() << '\n';
    }
  }
  if (json)
    std::cout << "\n]\n";
  else if (files.size() > 1)
    std::cout << "\n"
              << files.size() << " images: with_mask " << counts[1] << ", without_mask "
              << counts[0] << ", unreadable " << failures << '\n';
  return failures == 0 ? 0 : 1;
}

constexpr const char* usage =
    "usage: mask_detector COMMAND [options]\n\n"
    "commands:\n"
    "  train     train on a folder of photos (with_mask/, without_mask/) and save the model\n"
    "  evaluate  accuracy, precision, recall, F1 and confusion matrix of a saved model\n"
    "  predict   classify image files, or every image in a folder, with a saved model\n"
    "  detect    find every face in photos (or folders of photos), draw and list them\n"
#if STRATUM_DETECTOR_COMMANDS
    "  train-detector     train a detector of every face in a scene (VOC scene folder)\n"
    "  evaluate-detector  AP50 per class, mean AP, COCO AP and recall of a saved detector\n"
#endif
    "\n"
    "Run 'mask_detector COMMAND --help' for the options of each.\n";

/// Ends the program with `code`. Under mpirun, a failing rank ends the whole job (MPI_Abort):
/// the other ranks would otherwise wait for it forever in their next all-reduce.
int finish(int code) {
#if STRATUM_WITH_MPI
  if (int running = 0; code != 0 && MPI_Initialized(&running) == MPI_SUCCESS && running) {
    std::cerr << "mask_detector: rank " << Communicator().rank() << " failed: ending the job\n";
    MPI_Abort(MPI_COMM_WORLD, code);
  }
#endif
  return code;
}

int run_command(const std::string& command, const std::vector<std::string>& args) {
  try {
    if (command == "train") return train(args);
    if (command == "evaluate") return evaluate(args);
    if (command == "predict") return predict(args);
    if (command == "detect")
      return mask_detection::detect_command(args,
                                            {STRATUM_SHIPPED_DETECTOR, STRATUM_SHIPPED_MODEL});
#if STRATUM_DETECTOR_COMMANDS
    if (command == "train-detector") return mask_detection::train_detector(args);
    if (command == "evaluate-detector") return mask_detection::evaluate_detector(args);
#endif
    if (command == "--help" || command == "-h" || command == "help") {
      std::cout << usage;
      return 0;
    }
    std::cerr << (command.empty() ? "" : "mask_detector: unknown command '" + command + "'\n\n")
              << usage;
    return 2;
  } catch (const UsageError& e) {
    std::cerr << "mask_detector " << command << ": " << e.what() << " (see --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "mask_detector " << command << ": " << e.what() << '\n';
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
#if STRATUM_WITH_MPI
  // Started by mpirun (or srun): one rank of a data-parallel job. Started by hand, MPI stays
  // untouched and everything runs as in a build without it.
  std::optional<MpiSession> mpi;
  if (launched_by_mpi()) mpi.emplace(argc, argv);
#endif
  const std::vector<std::string> args(argv + std::min(argc, 2), argv + argc);
  return finish(run_command(argc > 1 ? argv[1] : "", args));
}
