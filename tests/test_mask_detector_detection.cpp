// mask_detector's detector commands end to end: train-detector and evaluate-detector on a tiny
// generated folder of scenes (drawn faces, Pascal VOC files), the warnings for bad annotations,
// --strict making them fatal, and the model file's contract with `detect`.
#include <doctest/doctest.h>
#include <stratum/data/image.hpp>
#include <stratum/model/graph_serialization.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "run_mask_detector.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;

// Its own namespace: the file is compiled in one translation unit with other test files.
namespace mask_detector_detection_test {

namespace {

using DetectorRun = stratum::testing::ProgramRun;

DetectorRun run_detector_command(const std::string& args, bool stdout_only = false) {
  return stratum::testing::run_mask_detector(args, stdout_only);
}

struct DrawnFace {
  int x_min, y_min, x_max, y_max;  // VOC: 1-based, inclusive
  std::string label;
};

/// A scene of `width` x `height`: a textured background with a skin-coloured disc per face,
/// its lower half blue (a mask) for with_mask.
stratum::Image draw_scene(int width, int height, const std::vector<DrawnFace>& faces, int seed) {
  stratum::Image image{width, height,
                       std::vector<std::uint8_t>(std::size_t(width) * std::size_t(height) * 3)};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      std::uint8_t* p =
          image.pixels.data() + (std::size_t(y) * std::size_t(width) + std::size_t(x)) * 3;
      p[0] = static_cast<std::uint8_t>(60 + (x * 7 + y * 3 + seed * 11) % 40);
      p[1] = static_cast<std::uint8_t>(90 + (x * 5 + y * 11 + seed) % 30);
      p[2] = static_cast<std::uint8_t>(70 + (x + y * 13) % 50);
    }
  for (const DrawnFace& f : faces) {
    const double cx = (f.x_min + f.x_max) / 2.0 - 1, cy = (f.y_min + f.y_max) / 2.0 - 1;
    const double rx = (f.x_max - f.x_min + 1) / 2.0, ry = (f.y_max - f.y_min + 1) / 2.0;
    for (int y = std::max(0, f.y_min - 1); y < std::min(height, f.y_max); ++y)
      for (int x = std::max(0, f.x_min - 1); x < std::min(width, f.x_max); ++x) {
        const double dx = (x - cx) / rx, dy = (y - cy) / ry;
        if (dx * dx + dy * dy > 1) continue;
        std::uint8_t* p =
            image.pixels.data() + (std::size_t(y) * std::size_t(width) + std::size_t(x)) * 3;
        const bool masked = f.label == "with_mask" && y > cy;
        p[0] = masked ? 40 : 225;
        p[1] = masked ? 90 : 180;
        p[2] = masked ? 220 : 150;
      }
  }
  return image;
}

std::string voc_xml(int width, int height, const std::vector<DrawnFace>& faces) {
  std::ostringstream out;
  out << "<annotation><size><width>" << width << "</width><height>" << height
      << "</height><depth>3</depth></size>";
  for (const DrawnFace& f : faces)
    out << "<object><name>" << f.label << "</name><bndbox><xmin>" << f.x_min << "</xmin><ymin>"
        << f.y_min << "</ymin><xmax>" << f.x_max << "</xmax><ymax>" << f.y_max
        << "</ymax></bndbox></object>";
  out << "</annotation>";
  return out.str();
}

void write_text_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

/// A folder of `count` 96 x 72 scenes with one to three faces each, VOC annotations, and a test
/// list naming the last quarter of them. Returns the test list's path.
fs::path make_scene_folder(const fs::path& root, int count) {
  fs::create_directories(root / "images");
  fs::create_directories(root / "annotations");
  const char* labels[] = {"with_mask", "without_mask", "mask_weared_incorrect"};
  std::ostringstream test_list;
  for (int s = 0; s < count; ++s) {
    std::vector<DrawnFace> faces;
    for (int f = 0; f <= s % 3; ++f) {
      const int side = 12 + (s * 5 + f * 7) % 14;
      const int x = 2 + (f * 31 + s * 3) % (96 - side - 4),
                y = 2 + (s * 7 + f * 13) % (72 - side - 4);
      faces.push_back({x, y, x + side - 1, y + side - 1, labels[(s + f) % 3]});
    }
    const std::string name = "scene" + std::to_string(s);
    stratum::write_png(root / "images" / (name + ".png"), draw_scene(96, 72, faces, s));
    write_text_file(root / "annotations" / (name + ".xml"), voc_xml(96, 72, faces));
    if (s >= count * 3 / 4) test_list << name << '\n';
  }
  write_text_file(root / "test_scenes.txt", test_list.str());
  return root / "test_scenes.txt";
}

std::string quote_path(const fs::path& p) {
  return "'" + p.string() + "'";
}

}  // namespace

TEST_CASE("train-detector and evaluate-detector on a small scene folder") {
  stratum::testing::TempDir dir;
  const fs::path data = dir.path() / "scenes";
  const fs::path test_list = make_scene_folder(data, 24);
  const fs::path model = dir.path() / "det.stmodel";
  const std::string common = "--data " + quote_path(data) + " --test-list " +
                             quote_path(test_list) + " --cache-dir " +
                             quote_path(dir.path() / "cache") + " --threads 2";

  const DetectorRun train = run_detector_command(
      "train-detector " + common +
      " --design one-stage --epochs 2 --batch 4 --input-size 64 --crop-size 64 --quiet --out " +
      quote_path(model));
  INFO(train.output);
  REQUIRE(train.exit_code == 0);
  // The split with its counts: 6 test scenes from the list, 10 % of the other 18 validate.
  CHECK(train.output.find("test scenes from") != std::string::npos);
  CHECK(train.output.find("Scenes: 24 with 48 boxes") != std::string::npos);
  CHECK(train.output.find("validation AP50:") != std::string::npos);
  CHECK(fs::exists(model));
  CHECK_FALSE(fs::exists(dir.path() / "det.checkpoint"));  // removed when the run completes
  CHECK(fs::exists(dir.path() / "det.history.csv"));
  CHECK(fs::exists(dir.path() / "det.history.png"));
  CHECK(fs::exists(dir.path() / "cache"));
  std::ifstream csv(dir.path() / "det.history.csv");
  std::string header;
  std::getline(csv, header);
  CHECK(header.find("val_ap50") != std::string::npos);
  CHECK(header.find("heatmap_loss") != std::string::npos);
  CHECK(header.find("val_loss") != std::string::npos);  // whole letterboxes: a validation loss

  // The contract with `detect`: the metadata and the three outputs in order.
  auto loaded = stratum::load_graph_model<float>(model);
  CHECK(loaded.metadata["kind"] == "detector");
  CHECK(loaded.metadata["input_size"] == "64");
  CHECK(loaded.metadata["stride"] == "4");
  CHECK(loaded.metadata["classes"] == "with_mask,without_mask,mask_weared_incorrect");
  CHECK(loaded.metadata["design"] == "one-stage");
  REQUIRE(loaded.model->output_count() == 3);
  CHECK(loaded.model->shape(loaded.model->output_node(0)) == stratum::Shape{16, 16, 3});
  CHECK(loaded.model->shape(loaded.model->output_node(1)) == stratum::Shape{16, 16, 2});
  CHECK(loaded.model->shape(loaded.model->output_node(2)) == stratum::Shape{16, 16, 2});

  const DetectorRun text =
      run_detector_command("evaluate-detector " + common + " --model " + quote_path(model));
  INFO(text.output);
  REQUIRE(text.exit_code == 0);
  CHECK(text.output.find("Test part: 6 scenes") != std::string::npos);
  CHECK(text.output.find("mean AP50 (with_mask, without_mask)") != std::string::npos);
  CHECK(text.output.find("By box size") != std::string::npos);
  CHECK(text.output.find("16-31 px") != std::string::npos);

  const DetectorRun json = run_detector_command(
      "evaluate-detector " + common + " --json --model " + quote_path(model), true);
  INFO(json.output);
  REQUIRE(json.exit_code == 0);
  CHECK(json.output.front() == '{');  // stdout holds the JSON alone
  CHECK(json.output.find("\"mean_ap50\"") != std::string::npos);
  CHECK(json.output.find("\"by_size\"") != std::string::npos);
  // 6 test scenes with 12 boxes: 1, 2 and 3 faces in turn.
  CHECK(json.output.find("\"boxes\": ") != std::string::npos);
}

TEST_CASE("train-detector and evaluate-detector, face-then-classifier design") {
  stratum::testing::TempDir dir;
  const fs::path data = dir.path() / "scenes";
  const fs::path test_list = make_scene_folder(data, 24);
  const fs::path model = dir.path() / "faces.stmodel";
  const std::string common = "--data " + quote_path(data) + " --test-list " +
                             quote_path(test_list) + " --no-cache --threads 2";
  const std::string train = "train-detector " + common +
                            " --epochs 1 --batch 4 --input-size 64 --quiet --out " +
                            quote_path(model);

  const DetectorRun unknown = run_detector_command(train + " --design two-stage");
  CHECK(unknown.exit_code != 0);
  CHECK(unknown.output.find("--design is one-stage or face-then-classifier, not 'two-stage'") !=
        std::string::npos);

  const DetectorRun trained = run_detector_command(train + " --design face-then-classifier");
  INFO(trained.output);
  REQUIRE(trained.exit_code == 0);
  // Validation scores the face heatmap as one class.
  CHECK(trained.output.find("validation AP50: face ") != std::string::npos);
  // By default it trains on windows of 3/4 of the letterbox, rounded down to a multiple of 32.
  CHECK(trained.output.find("Input 32x32 crops of 64x64 letterboxes") != std::string::npos);
  auto loaded = stratum::load_graph_model<float>(model);
  CHECK(loaded.metadata["design"] == "face-then-classifier");
  CHECK(loaded.metadata["classes"] == "face");
  CHECK(loaded.model->shape(loaded.model->output_node(0)) == stratum::Shape{16, 16, 1});

  // Scored with the shipped classifier labelling each face: the per-class table of the scenes'
  // three classes (mask_weared_incorrect, which the classifier does not know, scores nothing).
  const DetectorRun scored =
      run_detector_command("evaluate-detector " + common + " --model " + quote_path(model));
  INFO(scored.output);
  REQUIRE(scored.exit_code == 0);
  CHECK(scored.output.find("(face-then-classifier, input 64") != std::string::npos);
  CHECK(scored.output.find("mean AP50 (with_mask, without_mask)") != std::string::npos);
  CHECK(scored.output.find("mask_weared_incorrect") != std::string::npos);

  const DetectorRun no_classifier =
      run_detector_command("evaluate-detector " + common + " --model " + quote_path(model) +
                           " --classifier " + quote_path(dir.path() / "missing.stmodel"));
  CHECK(no_classifier.exit_code != 0);
  CHECK(no_classifier.output.find("missing.stmodel") != std::string::npos);
}

TEST_CASE("train-detector --crop-size trains on crops and saves the network at its letterbox") {
  stratum::testing::TempDir dir;
  const fs::path data = dir.path() / "scenes";
  const fs::path test_list = make_scene_folder(data, 24);  // 2 of them validate
  const fs::path model = dir.path() / "crops.stmodel";
  const std::string common = "train-detector --data " + quote_path(data) + " --test-list " +
                             quote_path(test_list) + " --no-cache --threads 2 --batch 4 " +
                             "--input-size 64 --epochs 1 --quiet --out " + quote_path(model);
  const DetectorRun trained =
      run_detector_command(common + " --crop-size 32 --min-scale 0.9 --max-scale 1.1");
  INFO(trained.output);
  REQUIRE(trained.exit_code == 0);
  CHECK(trained.output.find("Input 32x32 crops of 64x64 letterboxes") != std::string::npos);
  CHECK(trained.output.find("validation AP50: ") != std::string::npos);
  auto loaded = stratum::load_graph_model<float>(model);
  CHECK(loaded.metadata["input_size"] == "64");
  CHECK(loaded.model->shape(loaded.model->input_node(0)) == stratum::Shape{64, 64, 3});
  CHECK(loaded.model->shape(loaded.model->output_node(0)) == stratum::Shape{16, 16, 1});
  CHECK(loaded.metadata["run_settings"].find("crop_size=32 scales=0.9-1.1") != std::string::npos);
  // The crops are smaller than the letterbox, so the history has a validation AP but no
  // validation loss (its column is empty).
  std::ifstream csv(dir.path() / "crops.history.csv");
  auto fields = [&csv] {
    std::string line, field;
    std::getline(csv, line);
    std::vector<std::string> out;
    std::istringstream in(line);
    while (std::getline(in, field, ',')) out.push_back(field);
    return out;
  };
  const std::vector<std::string> header = fields(), first_epoch = fields();
  const auto column = [&](const std::string& name) {
    return static_cast<std::size_t>(std::find(header.begin(), header.end(), name) - header.begin());
  };
  REQUIRE(column("val_ap50") < first_epoch.size());
  CHECK_FALSE(first_epoch[column("val_ap50")].empty());
  REQUIRE(column("val_loss") < first_epoch.size());
  CHECK(first_epoch[column("val_loss")].empty());

  for (const std::string bad :
       {" --crop-size 96", " --crop-size 48", " --crop-size 32 --no-augment",
        " --min-scale 1.5 --max-scale 1.2"}) {
    CAPTURE(bad);
    const DetectorRun refused = run_detector_command(common + bad);
    CHECK(refused.exit_code != 0);
    // The message names the option at fault.
    CHECK((refused.output.find("--crop-size") != std::string::npos ||
           refused.output.find("--min-scale") != std::string::npos));
  }
}

TEST_CASE("train-detector --resume needs a checkpoint") {
  stratum::testing::TempDir dir;
  const fs::path data = dir.path() / "scenes";
  const fs::path test_list = make_scene_folder(data, 12);
  const fs::path model = dir.path() / "det.stmodel";
  const std::string common = "train-detector --data " + quote_path(data) + " --test-list " +
                             quote_path(test_list) + " --no-cache --threads 2 --batch 4 " +
                             "--input-size 64 --quiet --out " + quote_path(model);
  const DetectorRun missing = run_detector_command(common + " --epochs 2 --resume");
  CHECK(missing.exit_code == 1);
  CHECK(missing.output.find("no checkpoint") != std::string::npos);
  REQUIRE(run_detector_command(common + " --epochs 1").exit_code == 0);
  CHECK(fs::exists(model));
  CHECK_FALSE(fs::exists(dir.path() / "det.checkpoint"));
}

TEST_CASE("train-detector warns about bad annotations, and --strict makes them fatal") {
  stratum::testing::TempDir dir;
  const fs::path data = dir.path() / "scenes";
  const fs::path test_list = make_scene_folder(data, 12);
  // A box outside the image, a zero-size box, an unknown class, a broken file, an annotation
  // without its image.
  write_text_file(
      data / "annotations" / "scene1.xml",
      voc_xml(96, 72, {{10, 10, 30, 30, "with_mask"}, {120, 10, 140, 30, "with_mask"}}));
  write_text_file(
      data / "annotations" / "scene2.xml",
      voc_xml(96, 72, {{10, 10, 30, 30, "without_mask"}, {41, 40, 40, 50, "with_mask"}}));
  write_text_file(data / "annotations" / "scene3.xml",
                  voc_xml(96, 72, {{10, 10, 30, 30, "with_mask"}, {40, 10, 60, 30, "dog"}}));
  write_text_file(data / "annotations" / "scene4.xml", "<annotation><size><width>96</wid");
  write_text_file(data / "annotations" / "ghost.xml",
                  voc_xml(96, 72, {{1, 1, 20, 20, "with_mask"}}));
  const std::string common = "train-detector --data " + quote_path(data) + " --test-list " +
                             quote_path(test_list) + " --no-cache --threads 2 --batch 4 " +
                             "--input-size 64 --quiet --epochs 1 --out " +
                             quote_path(dir.path() / "det.stmodel");

  const DetectorRun lenient = run_detector_command(common);
  INFO(lenient.output);
  CHECK(lenient.exit_code == 0);
  CHECK(lenient.output.find("annotations/scene1.xml' object 1 (with_mask)") != std::string::npos);
  CHECK(lenient.output.find("annotations/scene2.xml' object 1 (with_mask)") != std::string::npos);
  CHECK(lenient.output.find("annotations/scene3.xml' object 1 (dog)") != std::string::npos);
  CHECK(lenient.output.find("scene4.xml") != std::string::npos);
  CHECK(lenient.output.find("'annotations/ghost.xml' has no image") != std::string::npos);
  CHECK(lenient.output.find("2 files skipped, 3 objects left out") != std::string::npos);
  // 12 scenes leave no validation scene: training goes on without validation.
  CHECK(lenient.output.find("no validation scenes") != std::string::npos);

  const DetectorRun strict = run_detector_command(common + " --strict");
  INFO(strict.output);
  CHECK(strict.exit_code == 1);
  CHECK(strict.output.find("mask_detector train-detector: ") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path() / "det.checkpoint"));
}

TEST_CASE("the detector commands' usage errors") {
  const DetectorRun no_data = run_detector_command("train-detector --epochs 1");
  CHECK(no_data.exit_code == 2);
  CHECK(no_data.output.find("--data DIR is needed") != std::string::npos);
  const DetectorRun bad_size = run_detector_command("train-detector --data x --input-size 100");
  CHECK(bad_size.exit_code == 2);
  const DetectorRun no_model = run_detector_command("evaluate-detector --data x");
  CHECK(no_model.exit_code == 2);
  const DetectorRun bad_sizes =
      run_detector_command("evaluate-detector --data x --model m --input-sizes 384,big");
  CHECK(bad_sizes.exit_code == 2);
  CHECK(bad_sizes.output.find("--input-sizes takes whole numbers from 32 to 4096 separated by "
                              "commas, not '384,big'") != std::string::npos);
  const DetectorRun bad_part =
      run_detector_command("evaluate-detector --data x --model m --part training");
  CHECK(bad_part.exit_code == 2);
  CHECK(bad_part.output.find("--part is test or validation, not 'training'") != std::string::npos);
  const DetectorRun help = run_detector_command("evaluate-detector --help");
  CHECK(help.exit_code == 0);
  CHECK(help.output.find("--test-list FILE") != std::string::npos);
}

TEST_CASE("the shipped detector on the real test scenes in ../shared") {
  const fs::path shared = STRATUM_SHARED_DETECTION_DATASET;
  if (!fs::is_directory(shared / "annotations")) {
    MESSAGE("skipped: no dataset at " << shared.string());
    return;
  }
  // The whole path on the real data: 853 scenes decoded (no cache: ../shared is read-only and
  // the test leaves nothing behind), the 171 test scenes detected as `detect` does, scored.
  const DetectorRun scored = run_detector_command(
      "evaluate-detector --data " + quote_path(shared) + " --test-list " +
      quote_path(shared / "test_scenes.txt") + " --no-cache --threads 2 --json --model " +
      quote_path(STRATUM_SHIPPED_DETECTOR));
  INFO(scored.output);
  REQUIRE(scored.exit_code == 0);
  CHECK(scored.output.find("Scenes: 853 with 4072 boxes; 0 files skipped") != std::string::npos);
  CHECK(scored.output.find("test             171     807") != std::string::npos);
  // A floor far below what the shipped model scores (docs/detection.md), so that only a broken
  // model file or pipeline fails it, not the noise of a retrained model.
  const std::size_t at = scored.output.find("\"mean_ap50\": ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(scored.output.substr(at + 13)) >= 0.5);
}

}  // namespace mask_detector_detection_test
