// Training checkpoints: a run interrupted at any batch and resumed from its latest checkpoint
// ends with exactly the weights of the uninterrupted run. Every piece of training state is
// in play: BatchNormalization statistics, Dropout masks, shuffling, augmentation, AdamW's
// moments, a cosine schedule, reduce-on-plateau and early stopping with restored weights.
#include <doctest/doctest.h>
#include <stratum/callbacks/early_stopping.hpp>
#include <stratum/callbacks/learning_rate_scheduler.hpp>
#include <stratum/callbacks/reduce_lr_on_plateau.hpp>
#include <stratum/data/image_dataset.hpp>
#include <stratum/model/checkpoint.hpp>
#include <stratum/stratum.hpp>

#include <fstream>
#include <optional>

#include "temp_dir.hpp"

using namespace stratum;
namespace fs = std::filesystem;

namespace {

constexpr int epochs = 5;
constexpr Index batch_size = 8;

/// 60 striped 12x12 images (label = stripe direction), as 8-bit pixels.
LabelledImages stripes() {
  const auto synthetic = make_stripes<float>(60, 12, 3, 17);
  LabelledImages images;
  images.width = images.height = 12;
  images.class_names = {"horizontal", "vertical"};
  for (float v : synthetic.images)
    images.pixels.push_back(static_cast<std::uint8_t>(std::clamp(v, 0.0f, 1.0f) * 255));
  images.labels = synthetic.labels;
  for (Index i = 0; i < 60; ++i) {
    images.files.push_back(std::to_string(i));
    images.content_hashes.push_back(static_cast<std::uint64_t>(i));
  }
  return images;
}

std::unique_ptr<Sequential<float>> make_model() {
  auto model = std::make_unique<Sequential<float>>(Shape{12, 12, 3}, 3);
  model->add<Conv2D>(6, 3, Activation::linear, 1, Padding::same);
  model->add<BatchNormalization>();
  model->add<ReLU>();
  model->add<MaxPool2D>(2);
  model->add<GlobalAveragePooling2D>();
  model->add<Dropout>(0.25);
  model->add<Dense>(2);
  model->compile(std::make_unique<SparseCategoricalCrossentropy<float>>(true),
                 std::make_unique<Adam<float>>(3e-3, 0.9, 0.999, 1e-7, 1e-2));
  return model;
}

/// A checkpoint's progress, read into a fresh model.
TrainingProgress read_progress(const fs::path& path) {
  auto model = make_model();
  ReduceLROnPlateau<float> plateau;
  EarlyStopping<float> stopping;
  ImageAugmenter augmenter(5);
  std::vector<Stateful*> state{&plateau, &stopping, &augmenter};
  return load_checkpoint(path, *model, state);
}

struct Interruption {
  int epoch;
  Index batch;
};

struct CrashForTest {};

/// Trains from scratch, or from `checkpoint` when `resume`; throws CrashForTest at the
/// interruption, if any. Returns every weight of the final model.
std::vector<float> train(const LabelledImages& images, const fs::path& checkpoint, bool resume,
                         std::optional<Interruption> interruption) {
  auto model_pointer = make_model();
  Sequential<float>& model = *model_pointer;

  std::vector<Index> train_part(48), validation_part(12);
  std::iota(train_part.begin(), train_part.end(), Index{0});
  std::iota(validation_part.begin(), validation_part.end(), Index{48});
  ImageAugmenter augmenter(5);
  const ImageDataset<float> train_data(images, train_part, &augmenter),
      validation(images, validation_part);

  const long long steps = epochs * (48 / batch_size);
  LearningRateScheduler<float> schedule(cosine_decay(3e-3, steps, 0.1));
  ReduceLROnPlateau<float> plateau({.monitor = "val_loss", .factor = 0.5, .patience = 1});
  EarlyStopping<float> stopping(
      {.monitor = "val_loss", .patience = 2, .restore_best_weights = true});
  std::vector<Stateful*> state{&plateau, &stopping, &augmenter};

  TrainingProgress progress;
  if (resume) progress = load_checkpoint(checkpoint, model, state);
  TrainingCheckpoint<float> saver(checkpoint, progress, {state.begin(), state.end()});
  LambdaCallback<float> crash;
  crash.batch_end = [&](Sequential<float>&, const BatchLogs& logs) {
    if (interruption && logs.epoch == interruption->epoch && logs.batch == interruption->batch)
      throw CrashForTest{};
  };

  FitOptions<float> options;
  options.epochs = epochs;
  options.initial_epoch = progress.stop_training ? epochs : progress.completed_epochs;
  options.batch_size = batch_size;
  options.validation_data = &validation;
  options.verbose = 0;
  options.callbacks = {&schedule, &plateau, &stopping, &crash, &saver};
  model.fit(train_data, options);

  std::vector<float> weights;
  for (auto* p : model.parameters())
    weights.insert(weights.end(), p->value.begin(), p->value.end());
  return weights;
}

}  // namespace

TEST_CASE("A run interrupted at any point and resumed ends bit-identical to an uninterrupted one") {
  const LabelledImages images = stripes();
  testing::TempDir dir;
  const fs::path path = dir.path() / "run.checkpoint";
  const std::vector<float> uninterrupted = train(images, path, false, std::nullopt);

  // Interrupted after the last checkpoint of a finished run (before its model was saved, say):
  // resuming trains nothing and ends with the same weights.
  CHECK(train(images, path, true, std::nullopt) == uninterrupted);

  const TrainingProgress finished = read_progress(path);
  const int last = finished.completed_epochs - 1;
  INFO("the uninterrupted run trained " << finished.completed_epochs << " epochs");
  // The learning rate changed between epochs (schedule and plateau), and training went on
  // after its best epoch, so the restored weights differ from the last epoch's.
  REQUIRE(last >= 2);

  // First batch of a run, middle of an epoch, last batch of an epoch, the last epoch.
  for (const Interruption at :
       {Interruption{0, 0}, Interruption{1, 3}, Interruption{2, 5}, Interruption{last, 2}}) {
    CAPTURE(at.epoch);
    CAPTURE(at.batch);
    fs::remove(path);
    CHECK_THROWS_AS(train(images, path, false, at), CrashForTest);
    REQUIRE(fs::exists(path));
    const std::vector<float> resumed = train(images, path, true, std::nullopt);
    REQUIRE(resumed.size() == uninterrupted.size());
    CHECK(std::memcmp(resumed.data(), uninterrupted.data(), resumed.size() * sizeof(float)) == 0);
    // Every epoch's figures too, not only the (possibly restored) final weights.
    const History history = read_progress(path).history;
    CHECK(history.loss == finished.history.loss);
    CHECK(history.val_loss == finished.history.val_loss);
    CHECK(history.learning_rate == finished.history.learning_rate);
  }
}

TEST_CASE("A checkpoint records its progress and history and refuses what does not fit") {
  const LabelledImages images = stripes();
  testing::TempDir dir;
  const fs::path path = dir.path() / "run.checkpoint";
  CHECK_THROWS_AS(train(images, path, false, Interruption{2, 1}), CrashForTest);

  auto model_pointer = make_model();
  Sequential<float>& model = *model_pointer;
  ReduceLROnPlateau<float> plateau;
  EarlyStopping<float> stopping;
  ImageAugmenter augmenter(5);
  std::vector<Stateful*> state{&plateau, &stopping, &augmenter};

  const TrainingProgress progress = load_checkpoint(path, model, state);
  CHECK(progress.completed_epochs == 2);
  CHECK(progress.history.epochs() == 2);
  CHECK(progress.history.val_loss.size() == 2);
  CHECK(model.optimizer().iterations() == 2 * 6);
  CHECK(augmenter.draws() == 2 * 48);
  CHECK(stopping.best_epoch() >= 0);

  // Too few pieces of extra state: refused, naming the file.
  std::vector<Stateful*> fewer{&plateau, &stopping};
  CHECK_THROWS_WITH_AS(load_checkpoint(path, model, fewer), doctest::Contains("run.checkpoint"),
                       IoError);

  // Another architecture: refused, naming the layer.
  Sequential<float> other({12, 12, 3}, 3);
  other.add<Conv2D>(7, 3, Activation::linear, 1, Padding::same);
  other.add<GlobalAveragePooling2D>();
  other.add<Dense>(2);
  other.compile(std::make_unique<SparseCategoricalCrossentropy<float>>(true),
                std::make_unique<Adam<float>>());
  CHECK_THROWS_WITH_AS(load_checkpoint(path, other, state), doctest::Contains("architecture"),
                       IoError);

  // Another optimizer: refused.
  model.compile(std::make_unique<SparseCategoricalCrossentropy<float>>(true),
                std::make_unique<SGD<float>>());
  CHECK_THROWS_WITH_AS(load_checkpoint(path, model, state), doctest::Contains("optimizer"),
                       IoError);

  // Truncated, or one byte changed: refused before anything is read.
  std::vector<std::uint8_t> bytes = read_file(path);
  const std::vector<std::uint8_t> truncated(
      bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(bytes.size() / 2));
  CHECK_THROWS_WITH_AS(restore_checkpoint(truncated, "half", model, state),
                       doctest::Contains("truncated"), IoError);
  bytes[bytes.size() / 2] ^= 0x40;
  CHECK_THROWS_WITH_AS(restore_checkpoint(bytes, "flipped", model, state),
                       doctest::Contains("corrupt"), IoError);
  // A model file is not a checkpoint.
  CHECK_THROWS_WITH_AS(restore_checkpoint(serialize_model(model), "model", model, state),
                       doctest::Contains("not a stratum checkpoint"), IoError);
}

TEST_CASE("Schedules: cosine decay, step decay and warm-up give the documented rates") {
  const auto cosine = cosine_decay(1.0, 100, 0.1);
  CHECK(cosine(0) == doctest::Approx(1.0));
  CHECK(cosine(50) == doctest::Approx(0.1 + 0.9 * 0.5));
  CHECK(cosine(100) == doctest::Approx(0.1));
  CHECK(cosine(1000) == doctest::Approx(0.1));
  const auto steps = step_decay(0.5, 0.1, 10);
  CHECK(steps(9) == doctest::Approx(0.5));
  CHECK(steps(10) == doctest::Approx(0.05));
  CHECK(steps(25) == doctest::Approx(0.005));
  const auto warm = warmup(4, cosine);
  CHECK(warm(0) == doctest::Approx(0.25));
  CHECK(warm(3) == doctest::Approx(cosine(3)));
  CHECK(warm(4) == doctest::Approx(cosine(4)));
  CHECK_THROWS_AS(cosine_decay(1.0, 0), Error);
}

TEST_CASE("ReduceLROnPlateau and EarlyStopping follow Keras' counting") {
  Sequential<float> model({2}, 0);
  model.add<Dense>(2);
  model.compile(std::make_unique<SparseCategoricalCrossentropy<float>>(true),
                std::make_unique<Adam<float>>(1.0));
  ReduceLROnPlateau<float> plateau({.monitor = "val_loss",
                                    .factor = 0.5,
                                    .patience = 2,
                                    .min_delta = 0,
                                    .cooldown = 1,
                                    .min_lr = 0.2});
  EarlyStopping<float> stopping(
      {.monitor = "val_loss", .patience = 3, .restore_best_weights = true});
  auto epoch = [&](int e, double val_loss) {
    EpochLogs logs;
    logs.epoch = e;
    logs.val_loss = val_loss;
    logs.val_accuracy = 0.5;
    model.layer(0).parameters()[0]->value[0] = float(e);  // marks the weights of each epoch
    plateau.on_epoch_end(model, logs);
    stopping.on_epoch_end(model, logs);
  };
  epoch(0, 1.0);
  epoch(1, 0.8);  // best
  epoch(2, 0.9);
  CHECK(model.optimizer().learning_rate() == 1.0);
  epoch(3, 0.85);  // second epoch without improvement: halve
  CHECK(model.optimizer().learning_rate() == 0.5);
  CHECK(!model.stop_training());
  epoch(4, 0.95);  // cooldown epoch, and the third without improvement: stop
  CHECK(model.optimizer().learning_rate() == 0.5);
  CHECK(model.stop_training());
  epoch(5, 0.99);
  epoch(6, 0.99);
  CHECK(model.optimizer().learning_rate() == 0.25);
  epoch(7, 0.99);
  epoch(8, 0.99);
  CHECK(model.optimizer().learning_rate() == 0.2);  // not below min_lr
  stopping.on_train_end(model);
  CHECK(model.layer(0).parameters()[0]->value[0] == 1.0f);  // the weights of epoch 2 (index 1)
  CHECK(stopping.best_epoch() == 1);

  EpochLogs no_validation;
  CHECK_THROWS_WITH_AS(plateau.on_epoch_end(model, no_validation),
                       doctest::Contains("no validation data"), Error);
  CHECK_THROWS_AS(Monitor("val_f1"), Error);
}

TEST_CASE("AdamW shrinks kernels by lr * weight_decay and leaves biases alone") {
  Sequential<double> model({1}, 0);
  model.add<Dense>(1);
  auto& dense = dynamic_cast<Dense<double>&>(model.layer(0));
  dense.kernel().value[0] = 2.0;
  dense.bias().value[0] = 3.0;
  Adam<double> adamw(0.1, 0.9, 0.999, 1e-7, 0.5);
  CHECK(adamw.name() == "AdamW");
  dense.kernel().grad.set_zero();
  dense.bias().grad.set_zero();
  auto params = model.trainable_parameters();
  adamw.step(params);
  // Zero gradients: Adam's own step is zero, so only the decay acts: 2 * (1 - 0.1 * 0.5).
  CHECK(dense.kernel().value[0] == doctest::Approx(1.9));
  CHECK(dense.bias().value[0] == 3.0);
}
