// The mask_detector program end to end: train, evaluate and predict on a small generated
// folder of photos, its errors and exit codes, and a smoke run on the real Kaggle photos in
// ../shared when they are there.
#include <doctest/doctest.h>
#include <stratum/data/image_folder.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "image_writers.hpp"
#include "photo_folder.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

struct Run {
  int exit_code;
  std::string output;  // stdout and stderr together
};

/// Runs mask_detector with `args` (each already shell-safe) and captures what it prints on
/// stdout and, unless `stdout_only`, on stderr.
Run run(const std::string& args, bool stdout_only = false) {
  const std::string command = std::string("'") + STRATUM_MASK_DETECTOR + "' " + args +
                              (stdout_only ? " 2>/dev/null" : " 2>&1");
  std::FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("train, evaluate and predict on a generated folder of photos") {
  stratum::testing::TempDir dir;
  const fs::path data = dir.path() / "data", model = dir.path() / "m.stmodel";
  stratum::testing::write_photo_folder(data, 40, 11);
  const std::string common = "--data " + quoted(data) + " --model " + quoted(model) +
                             " --cache " + quoted(dir.path() / "cache");

  const Run train = run("train " + common + " --epochs 3 --batch 16 --seed 5 --quiet");
  INFO(train.output);
  REQUIRE(train.exit_code == 0);
  CHECK(contains(train.output, "80 images (with_mask 40, without_mask 40), 0 skipped"));
  CHECK(contains(train.output, "Total params: 7,400,706"));
  CHECK(contains(train.output, "Epoch 3/3"));
  CHECK(contains(train.output, "val_accuracy"));
  CHECK(contains(train.output, "Test part (16 images never seen in training): accuracy"));
  CHECK(fs::exists(model));
  CHECK(fs::exists(dir.path() / "m.history.png"));
  std::ifstream csv(dir.path() / "m.history.csv");
  int lines = 0;
  for (std::string line; std::getline(csv, line);) ++lines;
  CHECK(lines == 4);  // header and three epochs

  // evaluate reproduces the training run's test part: the same accuracy line.
  const auto test_line = train.output.substr(train.output.find("Test part"));
  const auto accuracy = test_line.substr(test_line.find("accuracy"), 20);
  const Run evaluate = run("evaluate " + common);
  INFO(evaluate.output);
  REQUIRE(evaluate.exit_code == 0);
  CHECK(contains(evaluate.output, accuracy));
  CHECK(contains(evaluate.output, "confusion matrix"));

  const Run json = run("evaluate " + common + " --all --json", true);
  REQUIRE(json.exit_code == 0);
  CHECK(json.output.rfind("{\"part\": \"all\"", 0) == 0);
  CHECK(contains(json.output, "\"samples\": 80"));

  const Run predict = run("predict --model " + quoted(model) + " " +
                          quoted(data / "with_mask/with_mask_1.jpg") + " " +
                          quoted(data / "without_mask/without_mask_1.jpg"));
  INFO(predict.output);
  CHECK(predict.exit_code == 0);
  CHECK(contains(predict.output, "with_mask_1.jpg: "));
  CHECK(contains(predict.output, "(probability "));

  stratum::testing::write_bytes(dir.path() / "notes.jpg", {'h', 'i'});
  const Run bad = run("predict --json --model " + quoted(model) + " " + quoted(dir.path() / "notes.jpg"));
  CHECK(bad.exit_code == 1);
  CHECK(contains(bad.output, "\"error\": "));
  CHECK(contains(bad.output, "is not an image"));
}

TEST_CASE("missing data, bad folders and bad options: clear messages and exit codes") {
  stratum::testing::TempDir dir;
  const Run missing = run("train --data " + quoted(dir.path() / "data") + " --no-cache");
  CHECK(missing.exit_code == 1);
  CHECK(contains(missing.output, "no dataset at"));
  CHECK(contains(missing.output, "kaggle datasets download -d omkargurav/face-mask-dataset"));

  fs::create_directories(dir.path() / "one/with_mask");
  stratum::Random rng(1);
  stratum::testing::write_face(dir.path() / "one/with_mask/a.jpg", true, rng);
  const Run one_class = run("train --data " + quoted(dir.path() / "one") + " --no-cache");
  CHECK(one_class.exit_code == 1);
  CHECK(contains(one_class.output, "has no 'without_mask/' folder"));

  const Run unknown = run("train --epoch 3");
  CHECK(unknown.exit_code == 2);
  CHECK(contains(unknown.output, "unknown option '--epoch'"));
  const Run bad_number = run("train --epochs many");
  CHECK(bad_number.exit_code == 2);
  CHECK(contains(bad_number.output, "--epochs takes a whole number"));
  CHECK(run("frobnicate").exit_code == 2);
  for (const char* command : {"train", "evaluate", "predict"}) {
    const Run help = run(std::string(command) + " --help");
    CHECK(help.exit_code == 0);
    CHECK(contains(help.output, "usage: mask_detector"));
  }
  const Run no_model = run("predict --model " + quoted(dir.path() / "none.stmodel") + " x.jpg");
  CHECK(no_model.exit_code == 1);
  CHECK(contains(no_model.output, "cannot open"));
}

TEST_CASE("smoke run on the real Kaggle photos in ../shared") {
  const fs::path shared = STRATUM_SHARED_DATASET;
  if (!fs::is_directory(shared / "with_mask")) {
    MESSAGE("skipped: no dataset at " << shared.string());
    return;
  }
  // 150 photos of each class, picked from across the numbering (the unusual files, PNGs and
  // progressive JPEGs among them, are numbered 3127 and above), linked into a temporary folder.
  stratum::testing::TempDir dir;
  for (const char* cls : {"with_mask", "without_mask"}) {
    fs::create_directories(dir.path() / cls);
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(shared / cls)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (std::size_t i = 0; i < files.size(); i += files.size() / 150)
      fs::create_symlink(files[i], dir.path() / cls / files[i].filename());
  }
  const Run train = run("train --data " + quoted(dir.path()) + " --no-cache --epochs 1 --quiet --model " +
                        quoted(dir.path() / "m.stmodel"));
  INFO(train.output);
  CHECK(train.exit_code == 0);
  CHECK(contains(train.output, ", 0 skipped"));
  CHECK(contains(train.output, "Epoch 1/1"));
}
