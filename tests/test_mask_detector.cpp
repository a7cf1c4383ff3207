// The mask_detector program end to end: train, evaluate and predict on a small generated
// folder of photos, its errors and exit codes, and a smoke run on the real Kaggle photos in
// ../shared when they are there.
#include <doctest/doctest.h>
#include <stratum/data/image_folder.hpp>

#include <csignal>
#include <fstream>
#include <numeric>
#include <sstream>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image_writers.hpp"
#include "photo_folder.hpp"
#include "run_mask_detector.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;

// Its own namespace: the file is compiled in one translation unit with other test files.
namespace mask_detector_test {

namespace {

using Run = stratum::testing::ProgramRun;

Run run(const std::string& args, bool stdout_only = false) {
  return stratum::testing::run_mask_detector(args, stdout_only);
}

std::string quoted(const fs::path& p) {
  return "'" + p.string() + "'";
}

/// Starts `command` (its program looked up in PATH unless it is a path) with its standard
/// output and error into a pipe; returns its pid and the pipe's reading end.
std::pair<pid_t, int> spawn_with_output(std::vector<std::string> command) {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::vector<char*> argv;
  for (auto& a : command) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  REQUIRE(posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  return {pid, pipe_fds[0]};
}

/// Starts mask_detector with `args` (one per element, not shell-quoted), reads its output until
/// it contains `marker`, then kills it with SIGKILL, as a power cut or the OOM killer would.
/// Returns what it printed; fails the test if it ended before printing the marker.
std::string kill_when_printed(const std::vector<std::string>& args, const std::string& marker) {
  std::vector<std::string> command{STRATUM_MASK_DETECTOR};
  command.insert(command.end(), args.begin(), args.end());
  const auto [pid, output_fd] = spawn_with_output(std::move(command));
  std::string output;
  char buffer[4096];
  while (output.find(marker) == std::string::npos) {
    const ssize_t n = ::read(output_fd, buffer, sizeof buffer);
    if (n <= 0) break;
    output.append(buffer, static_cast<std::size_t>(n));
  }
  const bool seen = output.find(marker) != std::string::npos;
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(output_fd);
  INFO(output);
  REQUIRE(seen);
  REQUIRE(WIFSIGNALED(status));
  return output;
}

#ifdef STRATUM_MPIEXEC
/// The process of MPI rank `rank` among the children of `launcher` (mpirun starts the ranks
/// of its own machine itself), found in /proc; 0 if there is none.
pid_t rank_process(pid_t launcher, int rank) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const std::size_t after_name = line.rfind(')');  // "pid (name) state ppid ..."
    if (after_name == std::string::npos) continue;
    std::istringstream fields(line.substr(after_name + 2));
    char state = 0;
    pid_t parent = 0;
    fields >> state >> parent;
    if (parent != launcher) continue;
    std::ifstream environment(entry.path() / "environ", std::ios::binary);
    std::string variable;
    while (std::getline(environment, variable, '\0'))
      if (variable == "OMPI_COMM_WORLD_RANK=" + std::to_string(rank)) return std::stoi(name);
  }
  return 0;
}

/// Starts `argv` (an mpirun command line), reads its output until it contains `marker`, then
/// kills rank `rank` with SIGKILL and reads on until the job ends. Returns the job's exit code
/// (-1 if it ended by a signal) and everything it printed.
std::pair<int, std::string> kill_rank_when_printed(std::vector<std::string> command,
                                                   const std::string& marker, int rank) {
  const auto [pid, output_fd] = spawn_with_output(std::move(command));
  std::string output;
  char buffer[4096];
  bool killed = false;
  for (;;) {
    if (!killed && output.find(marker) != std::string::npos) {
      const pid_t victim = rank_process(pid, rank);
      INFO(output);
      REQUIRE(victim > 0);
      ::kill(victim, SIGKILL);
      killed = true;
    }
    const ssize_t n = ::read(output_fd, buffer, sizeof buffer);
    if (n <= 0) break;
    output.append(buffer, static_cast<std::size_t>(n));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(output_fd);
  INFO(output);
  REQUIRE(killed);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}
#endif

std::vector<std::uint8_t> file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// Runs mask_detector with `args` and checks that it exits with `exit_code` and says `message`.
void check_fails(const std::string& args, int exit_code, const std::string& message) {
  INFO("mask_detector " << args);
  const Run result = run(args);
  CHECK(result.exit_code == exit_code);
  CHECK(contains(result.output, message));
}

}  // namespace

TEST_CASE("train, evaluate and predict on a generated folder of photos") {
  stratum::testing::TempDir dir;
  const fs::path data = dir.path() / "data", model = dir.path() / "m.stmodel";
  stratum::testing::write_photo_folder(data, 30, 11);
  const std::string common = "--data " + quoted(data) + " --model " + quoted(model) + " --cache " +
                             quoted(dir.path() / "cache");

  const Run train = run("train " + common + " --epochs 2 --batch 16 --seed 5 --quiet");
  INFO(train.output);
  REQUIRE(train.exit_code == 0);
  CHECK(contains(train.output, "60 images (with_mask 30, without_mask 30), 0 skipped"));
  CHECK(contains(train.output, "Total params: 7,400,706"));
  CHECK(contains(train.output, "Epoch 2/2"));
  CHECK(contains(train.output, "val_accuracy"));
  CHECK(contains(train.output, "Test part (12 images never seen in training): accuracy"));
  CHECK(fs::exists(model));
  CHECK(fs::exists(dir.path() / "m.history.png"));
  std::ifstream csv(dir.path() / "m.history.csv");
  int lines = 0;
  for (std::string line; std::getline(csv, line);) ++lines;
  CHECK(lines == 3);  // header and two epochs

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
  CHECK(contains(json.output, "\"samples\": 60"));
  CHECK(!contains(json.output, "corruptions"));

  // --corruptions: the same clean figures, then one row per corruption and their mean.
  const Run corrupted = run("evaluate " + common + " --corruptions");
  INFO(corrupted.output);
  REQUIRE(corrupted.exit_code == 0);
  CHECK(contains(corrupted.output, accuracy));
  const auto table = corrupted.output.substr(corrupted.output.find("Under corruptions"));
  for (const char* row : {"down-scale      to 24 px and back", "down-scale      to 48 px and back",
                          "JPEG            quality 10", "JPEG            quality 40",
                          "Gaussian blur   sigma 2 px", "Gaussian noise  sigma 0.08",
                          "brightness      -0.25", "brightness      +0.25", "contrast        x0.5",
                          "contrast        x1.5", "grey-scale", "cut-off crop    0.7 of each side"})
    CHECK(contains(table, row));
  // The mean row is the mean of the 14 rows above it (each printed to 0.01 %).
  std::istringstream table_lines(table);
  std::vector<double> accuracies;
  double mean = -1;
  for (std::string line; std::getline(table_lines, line);) {
    const auto percent_sign = line.find(" %");
    if (percent_sign == std::string::npos || contains(line, "none (clean)")) continue;
    const double value = std::stod(line.substr(line.rfind(' ', percent_sign - 1)));
    if (line.rfind("mean of 14", 0) == 0)
      mean = value;
    else
      accuracies.push_back(value);
  }
  REQUIRE(accuracies.size() == 14);
  CHECK(mean == doctest::Approx(std::accumulate(accuracies.begin(), accuracies.end(), 0.0) / 14)
                    .epsilon(1e-4));
  // Seeded: the same seed repeats every figure; the noise and the crop draw from it.
  CHECK(run("evaluate " + common + " --corruptions").output == corrupted.output);
  const Run corrupted_json =
      run("evaluate " + common + " --corruptions --json --corruption-seed 9", true);
  REQUIRE(corrupted_json.exit_code == 0);
  CHECK(contains(corrupted_json.output,
                 "\"corruptions\": [{\"name\": \"down-scale\", \"strength\": \"to 24 px and "
                 "back\", \"accuracy\": "));
  CHECK(contains(corrupted_json.output, "\"recall\": {\"without_mask\": "));
  CHECK(contains(corrupted_json.output, "], \"corruption_mean_accuracy\": "));
  CHECK(run("evaluate " + common + " --corruptions --corruption-seed -1").exit_code == 2);

  const Run predict =
      run("predict --model " + quoted(model) + " " + quoted(data / "with_mask/with_mask_1.jpg") +
          " " + quoted(data / "without_mask/without_mask_1.jpg"));
  INFO(predict.output);
  CHECK(predict.exit_code == 0);
  CHECK(contains(predict.output, "with_mask_1.jpg: "));
  CHECK(contains(predict.output, "(probability "));

  stratum::testing::write_bytes(dir.path() / "notes.jpg", {'h', 'i'});
  const Run bad =
      run("predict --json --model " + quoted(model) + " " + quoted(dir.path() / "notes.jpg"));
  CHECK(bad.exit_code == 1);
  CHECK(contains(bad.output, "\"error\": "));
  CHECK(contains(bad.output, "is not an image"));
}

TEST_CASE("train killed mid-run and resumed ends bit-identical to an uninterrupted run") {
  stratum::testing::TempDir dir;
  const fs::path data = dir.path() / "data";
  stratum::testing::write_photo_folder(data, 16, 21);
  // The compact network with everything that carries state: augmentation, AdamW, a cosine
  // schedule, dropout, batch normalisation, early stopping.
  const std::vector<std::string> common{"train",
                                        "--data",
                                        data.string(),
                                        "--cache",
                                        (dir.path() / "cache").string(),
                                        "--arch",
                                        "compact",
                                        "--epochs",
                                        "4",
                                        "--batch",
                                        "8",
                                        "--seed",
                                        "3",
                                        "--threads",
                                        "2",
                                        "--early-stopping",
                                        "3",
                                        "--quiet"};
  auto command = [&](const std::string& model, const std::string& extra = "") {
    std::string line;
    for (const auto& a : common) line += quoted(fs::path(a)) + " ";
    return line + "--model " + quoted(dir.path() / model) + " " + extra;
  };

  const Run whole = run(command("whole.stmodel"));
  INFO(whole.output);
  REQUIRE(whole.exit_code == 0);
  CHECK(contains(whole.output, "Total params: 246,754"));
  CHECK(!fs::exists(dir.path() / "whole.checkpoint"));  // removed once the model is saved

  // Killed once the second epoch has ended: inside the checkpoint write or the third epoch.
  std::vector<std::string> killed_args = common;
  killed_args.insert(killed_args.end(), {"--model", (dir.path() / "resumed.stmodel").string()});
  kill_when_printed(killed_args, "Epoch 2/4");
  REQUIRE(fs::exists(dir.path() / "resumed.checkpoint"));
  CHECK(!fs::exists(dir.path() / "resumed.stmodel"));

  check_fails(command("resumed.stmodel", "--resume --lr 0.01"), 1,
              "was written by a run with other settings");

  const Run resumed = run(command("resumed.stmodel", "--resume"));
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK(contains(resumed.output, "Resuming from "));
  CHECK(contains(resumed.output, "Epoch 4/4"));
  CHECK(!contains(resumed.output, "Epoch 1/4"));
  // The same bytes: weights, moving statistics and every metadata entry (test accuracy too).
  CHECK(file_bytes(dir.path() / "resumed.stmodel") == file_bytes(dir.path() / "whole.stmodel"));

  check_fails(command("resumed.stmodel", "--resume"), 1, "no checkpoint at");
}

#ifdef STRATUM_MPIEXEC
TEST_CASE("mpirun: a rank killed mid-run ends the job, and resume ends bit-identical") {
  stratum::testing::TempDir dir;
  const fs::path data = dir.path() / "data";
  stratum::testing::write_photo_folder(data, 16, 21);
  // 2 ranks, one thread each; the compact network with augmentation, dropout and batch
  // normalisation. The last batch of each epoch (7 photos) is cut unevenly, 3 and 4.
  const std::vector<std::string> mpirun{
      STRATUM_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-np", "2", STRATUM_MASK_DETECTOR};
  const std::vector<std::string> train{
      "train",  "--data",  data.string(), "--cache",   (dir.path() / "cache").string(),
      "--arch", "compact", "--epochs",    "4",         "--batch",
      "8",      "--seed",  "3",           "--threads", "1",
      "--quiet"};
  auto arguments = [&](const std::string& model, const std::string& extra = "") {
    std::vector<std::string> all = mpirun;
    all.insert(all.end(), train.begin(), train.end());
    all.insert(all.end(), {"--model", (dir.path() / model).string()});
    if (!extra.empty()) all.push_back(extra);
    return all;
  };
  auto command_line = [&](const std::vector<std::string>& all) {
    std::string line;
    for (const auto& a : all) line += quoted(fs::path(a)) + " ";
    return line + "2>&1";
  };

  const Run whole = stratum::testing::run_shell(command_line(arguments("whole.stmodel")));
  INFO(whole.output);
  REQUIRE(whole.exit_code == 0);
  CHECK(contains(whole.output, "Threads: 1 per rank, 2 ranks"));
  // Rank 0 alone prints: one summary, one line per epoch.
  CHECK(whole.output.find("Total params") == whole.output.rfind("Total params"));
  CHECK(whole.output.find("Epoch 4/4") == whole.output.rfind("Epoch 4/4"));

  // Rank 1 killed once rank 0 has printed the second epoch's line (before its checkpoint).
  const auto [exit_code, output] =
      kill_rank_when_printed(arguments("resumed.stmodel"), "Epoch 2/4", 1);
  CHECK(exit_code != 0);
  CHECK(contains(output, "exited on signal 9"));
  REQUIRE(fs::exists(dir.path() / "resumed.checkpoint"));
  CHECK(!fs::exists(dir.path() / "resumed.stmodel"));

  const Run resumed =
      stratum::testing::run_shell(command_line(arguments("resumed.stmodel", "--resume")));
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK(contains(resumed.output, "Resuming from "));
  CHECK(contains(resumed.output, "Epoch 4/4"));
  CHECK(file_bytes(dir.path() / "resumed.stmodel") == file_bytes(dir.path() / "whole.stmodel"));
}
#endif

TEST_CASE("predict classifies every image of a folder and sums up") {
  stratum::testing::TempDir dir;
  const fs::path data = dir.path() / "data";
  stratum::testing::write_photo_folder(data, 8, 8);
  const fs::path model = dir.path() / "m.stmodel";
  REQUIRE(run("train --data " + quoted(data) +
              " --no-cache --epochs 1 --arch compact --quiet --model " + quoted(model))
              .exit_code == 0);
  stratum::testing::write_bytes(data / "with_mask" / "readme.txt",
                                {'h', 'i'});  // not an image: ignored
  const Run folder = run("predict --model " + quoted(model) + " " + quoted(data / "with_mask") +
                         " " + quoted(data / "without_mask/without_mask_1.jpg"));
  INFO(folder.output);
  CHECK(folder.exit_code == 0);
  CHECK(contains(folder.output, "with_mask_8.jpg: "));
  CHECK(!contains(folder.output, "readme"));
  CHECK(contains(folder.output, "9 images: with_mask "));
  CHECK(contains(folder.output, ", unreadable 0"));
  // No --model: the shipped model in models/ classifies it, no dataset or training needed.
  const Run shipped = run("predict " + quoted(data / "with_mask/with_mask_1.jpg"));
  INFO(shipped.output);
  CHECK(shipped.exit_code == 0);
  CHECK(contains(shipped.output, "with_mask_1.jpg: "));
  fs::create_directories(dir.path() / "empty");
  stratum::testing::write_bytes(dir.path() / "empty" / "notes.txt", {'h', 'i'});
  check_fails("predict --model " + quoted(model) + " " + quoted(dir.path() / "empty"), 1,
              "holds no image files");
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
  check_fails("train --data " + quoted(dir.path() / "one") + " --no-cache", 1,
              "has no 'without_mask/' folder");

  check_fails("train --epoch 3", 2, "unknown option '--epoch'");
  check_fails("train --epochs many", 2, "--epochs takes a whole number");
  check_fails("train --arch compact --no-augment --corrupt 0.2", 2, "--corrupt needs augmentation");
  check_fails("train --arch compact --corrupt 1.5", 2, "--corrupt takes a number from 0 to 1");
#ifdef STRATUM_MPIEXEC  // built with MPI
  check_fails("train --gradient-compression bf16", 2,
              "--gradient-compression applies to training under mpirun");
  check_fails("train --gradient-compression fp8", 1, "unknown gradient compression 'fp8'");
#else
  check_fails("train --gradient-compression bf16", 2,
              "--gradient-compression needs a build with MPI");
#endif
  CHECK(run("frobnicate").exit_code == 2);
  for (const char* command : {"train", "evaluate", "predict"}) {
    const Run help = run(std::string(command) + " --help");
    CHECK(help.exit_code == 0);
    CHECK(contains(help.output, "usage: mask_detector"));
  }
  check_fails("predict --model " + quoted(dir.path() / "none.stmodel") + " x.jpg", 1,
              "cannot open");
  // detect runs as a command of the program (its own tests: test_detect.cpp).
  const Run detect_help = run("detect --help");
  CHECK(detect_help.exit_code == 0);
  CHECK(contains(detect_help.output, "usage: mask_detector detect"));
  check_fails("detect", 2, "detect needs at least one image or folder");
  check_fails("detect --model " + quoted(dir.path() / "none.stmodel") + " x.jpg", 1, "cannot open");
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
  const Run train =
      run("train --data " + quoted(dir.path()) + " --no-cache --epochs 1 --quiet --model " +
          quoted(dir.path() / "m.stmodel"));
  INFO(train.output);
  CHECK(train.exit_code == 0);
  CHECK(contains(train.output, ", 0 skipped"));
  CHECK(contains(train.output, "Epoch 1/1"));
}

}  // namespace mask_detector_test
