// Scene folders with box annotations: pairing by name, every bad file skipped and named (or
// fatal with strict), the decode cache, duplicate groups, the splits and their summary, and the
// real face-mask detection set with its reference test list.
#include <doctest/doctest.h>
#include <stratum/data/detection_folder.hpp>
#include <stratum/data/scene_split.hpp>

#include <set>
#include <sstream>

#include "detection_data.hpp"
#include "image_writers.hpp"
#include "temp_dir.hpp"

using namespace stratum;
using stratum::testing::voc_document;
using stratum::testing::voc_object;
using stratum::testing::write_text;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> scene_test_classes{"with_mask", "without_mask"};

/// A width x height PNG of one colour (by `shade`) at `path`.
void write_scene_png(const fs::path& path, int width, int height, std::uint8_t shade) {
  Image image{width, height,
              std::vector<std::uint8_t>(std::size_t(width) * std::size_t(height) * 3, shade)};
  image.pixels[0] = 255;  // not uniform, so the first pixel tells scenes apart too
  write_png(path, image);
}

/// DIR/images + DIR/annotations with three good scenes (a, b and c, a byte-identical copy of a)
/// and one of each kind of bad file.
void write_scene_folder(const fs::path& root) {
  fs::create_directories(root / "images");
  fs::create_directories(root / "annotations");
  const fs::path images = root / "images", notes = root / "annotations";
  write_scene_png(images / "a.png", 40, 30, 90);
  write_text(notes / "a.xml", voc_document(40, 30,
                                           voc_object("with_mask", "2", "3", "10", "12") +
                                               voc_object("dog", "1", "1", "4", "4")));
  write_scene_png(images / "b.png", 40, 20, 150);
  write_text(notes / "b.xml",  // reaches one pixel past the right edge: clamped
             voc_document(40, 20,
                          voc_object("without_mask", "30", "5", "41", "15") +
                              voc_object("with_mask", "1", "1", "8", "8")));
  fs::copy_file(images / "a.png", images / "c.png");  // the same photo, annotated again
  write_text(notes / "c.xml", voc_document(40, 30, voc_object("with_mask", "2", "4", "10", "12")));
  write_scene_png(images / "d.png", 10, 10, 10);          // no annotation
  write_text(notes / "e.xml", voc_document(10, 10, ""));  // no image
  write_scene_png(images / "f.png", 10, 10, 20);
  write_text(notes / "f.xml", "<annotation><size>");                           // broken XML
  stratum::testing::write_bytes(images / "g.jpg", {'h', 'e', 'l', 'l', 'o'});  // not an image
  write_text(notes / "g.xml", voc_document(10, 10, ""));
  write_scene_png(images / "h.png", 12, 10, 30);
  write_text(notes / "h.xml", voc_document(10, 12, ""));  // <size> disagrees with the image
  write_text(images / ".DS_Store", "x");                  // hidden: ignored
  write_text(notes / "README.txt", "not an annotation");  // not .xml: ignored
}

DetectionFolderOptions quiet_scene_options() {
  DetectionFolderOptions options;
  options.log = nullptr;
  return options;
}

std::set<std::string> scene_folder_listing(const fs::path& root) {
  std::set<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(root))
    names.insert(e.path().string() + " " + std::to_string(e.is_regular_file() ? e.file_size() : 0));
  return names;
}

/// `count` in-memory scenes with boxes of both classes; scenes i and i + 1 share a hash (one
/// photo annotated twice) when i is a multiple of 7.
SceneCollection synthetic_scenes(int count) {
  SceneCollection data;
  data.class_names = scene_test_classes;
  for (int i = 0; i < count; ++i) {
    Scene s;
    s.name = "s" + std::to_string(i);
    s.width = s.height = 1;
    s.content_hash = static_cast<std::uint64_t>(i % 7 == 1 ? i - 1 : i);
    s.boxes.push_back({{0, 0, 1, 1}, i % 5 == 0 ? 1 : 0});
    data.scenes.push_back(s);
  }
  data.pixels.assign(std::size_t(count) * 3, 0);
  for (int i = 0; i < count; ++i) data.scenes[std::size_t(i)].pixel_offset = std::size_t(i) * 3;
  return data;
}

/// Every scene exactly once over the parts, and no group of identical images cut in two.
void check_scene_partition(const SceneCollection& data, const SceneSplit& split) {
  std::vector<int> part(std::size_t(data.count()), -1);
  int p = 0;
  for (const auto* indices : {&split.train, &split.validation, &split.test}) {
    for (Index i : *indices) {
      CHECK(part[std::size_t(i)] == -1);
      part[std::size_t(i)] = p;
    }
    ++p;
  }
  CHECK(std::count(part.begin(), part.end(), -1) == 0);
  for (const auto& group : duplicate_groups(data.content_hashes()))
    for (Index i : group) CHECK(part[std::size_t(i)] == part[std::size_t(group.front())]);
}

/// The numbers of the summary's row for `part` ("train", "validation", "test").
std::vector<long> summary_row(const std::string& summary, const std::string& part) {
  std::istringstream lines(summary);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    if (name != part) continue;
    std::vector<long> numbers;
    for (long n; fields >> n;) numbers.push_back(n);
    return numbers;
  }
  return {};
}

}  // namespace

TEST_CASE("detection folder: scenes pair by name; bad files are skipped and named") {
  stratum::testing::TempDir dir;
  write_scene_folder(dir.path());
  const auto before = scene_folder_listing(dir.path());
  std::ostringstream log;
  DetectionFolderOptions options;
  options.log = &log;
  const SceneCollection data = load_detection_folder(dir.path(), scene_test_classes, options);

  REQUIRE(data.count() == 3);
  CHECK(data.scene(0).name == "a");
  CHECK(data.scene(0).image_file == "images/a.png");
  CHECK(data.scene(0).annotation_file == "annotations/a.xml");
  CHECK(data.scene(0).width == 40);
  CHECK(data.scene(0).height == 30);
  REQUIRE(data.scene(0).boxes.size() == 1);  // the 'dog' is left out
  CHECK(data.scene(0).boxes[0].box == Box{1, 2, 10, 12});
  REQUIRE(data.scene(1).boxes.size() == 2);
  CHECK(data.scene(1).boxes[0].box == Box{29, 4, 40, 15});  // clamped from 41
  CHECK(data.scene(1).boxes[0].class_id == 1);
  CHECK(data.clamped_boxes == 1);
  CHECK(data.scene(2).name == "c");
  CHECK(data.scene(0).content_hash == data.scene(2).content_hash);
  CHECK(data.scene(0).content_hash != data.scene(1).content_hash);
  CHECK(duplicate_groups(data.content_hashes()) == std::vector<std::vector<Index>>{{0, 2}});
  // Pixels: each scene's own, at its own size.
  const Image b = data.image(1);
  CHECK(b.width == 40);
  CHECK(b.pixels.size() == 40 * 20 * 3);
  CHECK(b.pixels[0] == 255);
  CHECK(b.pixels[3] == 150);
  CHECK(data.pixels_of(2)[3] == 90);

  REQUIRE(data.issues.size() == 1);
  CHECK(data.issues[0].message().find("'annotations/a.xml' object 1 (dog): unknown class 'dog'") ==
        0);
  REQUIRE(data.skipped.size() == 5);
  const std::string reasons[] = {
      "'images/d.png' has no annotation ('annotations/d.xml')", "'annotations/e.xml' has no image",
      "'annotations/f.xml' is not well-formed XML", "'images/g.jpg' is not an image",
      "'annotations/h.xml' gives the image size 10x12 but the image is 12x10"};
  for (std::size_t i = 0; i < 5; ++i) {
    CAPTURE(i);
    CHECK(data.skipped[i].reason.find(reasons[i]) == 0);
    CHECK(log.str().find("warning: skipped " + reasons[i]) != std::string::npos);
  }
  CHECK(log.str().find("warning: left out 'annotations/a.xml' object 1 (dog)") !=
        std::string::npos);
  CHECK(scene_folder_listing(dir.path()) == before);  // the data folder is only read

  // Strict: the first problem in name order stops the load.
  DetectionFolderOptions strict = quiet_scene_options();
  strict.strict = true;
  CHECK_THROWS_WITH_AS(load_detection_folder(dir.path(), scene_test_classes, strict),
                       doctest::Contains("'annotations/a.xml' object 1 (dog)"), AnnotationError);
  fs::remove(dir.path() / "annotations" / "a.xml");
  CHECK_THROWS_WITH_AS(load_detection_folder(dir.path(), scene_test_classes, strict),
                       doctest::Contains("'images/a.png' has no annotation"), IoError);
}

TEST_CASE("detection folder: missing folders and empty results are errors") {
  stratum::testing::TempDir dir;
  const auto options = quiet_scene_options();
  CHECK_THROWS_WITH_AS(load_detection_folder(dir.path() / "nothing", scene_test_classes, options),
                       doctest::Contains("does not exist"), IoError);
  CHECK_THROWS_WITH_AS(load_detection_folder(dir.path(), scene_test_classes, options),
                       doctest::Contains("has no 'images/' folder"), IoError);
  fs::create_directories(dir.path() / "images");
  CHECK_THROWS_WITH_AS(
      load_detection_folder(dir.path(), scene_test_classes, options),
      doctest::Contains("neither 'annotations/' (Pascal VOC) nor 'labels/' (YOLO)"), IoError);
  fs::create_directories(dir.path() / "annotations");
  CHECK_THROWS_WITH_AS(load_detection_folder(dir.path(), scene_test_classes, options),
                       doctest::Contains("has no usable scene"), Error);
}

TEST_CASE("detection folder: the YOLO layout, an image without labels shows no objects") {
  stratum::testing::TempDir dir;
  fs::create_directories(dir.path() / "images");
  fs::create_directories(dir.path() / "labels");
  write_scene_png(dir.path() / "images" / "p.png", 50, 40, 60);
  write_text(dir.path() / "labels" / "p.txt", "1 0.5 0.5 0.2 0.5\n7 0.5 0.5 0.1 0.1\n");
  write_scene_png(dir.path() / "images" / "q.png", 20, 20, 70);  // no labels: no faces
  write_text(dir.path() / "labels" / "classes.txt", "with_mask\nwithout_mask\n");
  const SceneCollection data =
      load_detection_folder(dir.path(), scene_test_classes, quiet_scene_options());
  REQUIRE(data.count() == 2);
  REQUIRE(data.scene(0).boxes.size() == 1);
  CHECK(data.scene(0).boxes[0].box == Box{20, 10, 30, 30});
  CHECK(data.scene(0).boxes[0].class_id == 1);
  CHECK(data.scene(0).annotation_file == "labels/p.txt");
  CHECK(data.scene(1).boxes.empty());
  CHECK(data.scene(1).annotation_file.empty());
  CHECK(data.skipped.empty());  // classes.txt is not a label file
  REQUIRE(data.issues.size() == 1);
  CHECK(data.issues[0].message().find("'labels/p.txt' object 1 (7)") == 0);
}

TEST_CASE("detection folder: the decode cache returns the same scenes and lives elsewhere") {
  stratum::testing::TempDir dir, cache;
  write_scene_folder(dir.path());
  const auto before = scene_folder_listing(dir.path());
  DetectionFolderOptions options = quiet_scene_options();
  options.cache_dir = cache.path() / "scenes";
  const SceneCollection first = load_detection_folder(dir.path(), scene_test_classes, options);
  CHECK(!first.from_cache);
  std::ostringstream log;
  options.log = &log;
  const SceneCollection second = load_detection_folder(dir.path(), scene_test_classes, options);
  CHECK(second.from_cache);
  CHECK(log.str().find("from the cache") != std::string::npos);
  CHECK(log.str().find("warning: skipped 'images/d.png'") != std::string::npos);  // still said
  CHECK(second.pixels == first.pixels);
  REQUIRE(second.count() == first.count());
  for (Index i = 0; i < first.count(); ++i) {
    CHECK(second.scene(i).name == first.scene(i).name);
    CHECK(second.scene(i).content_hash == first.scene(i).content_hash);
    REQUIRE(second.scene(i).boxes.size() == first.scene(i).boxes.size());
    for (std::size_t k = 0; k < first.scene(i).boxes.size(); ++k) {
      CHECK(second.scene(i).boxes[k].box == first.scene(i).boxes[k].box);
      CHECK(second.scene(i).boxes[k].class_id == first.scene(i).boxes[k].class_id);
    }
  }
  CHECK(second.skipped.size() == first.skipped.size());
  CHECK(second.issues.size() == first.issues.size());
  CHECK(second.issues[0].message() == first.issues[0].message());
  CHECK(second.clamped_boxes == first.clamped_boxes);
  CHECK(scene_folder_listing(dir.path()) == before);
  // A changed annotation makes a new cache file; a corrupt one is ignored with a warning.
  write_text(dir.path() / "annotations" / "c.xml",
             voc_document(40, 30, voc_object("without_mask", "2", "4", "10", "12") + " "));
  const SceneCollection third = load_detection_folder(dir.path(), scene_test_classes, options);
  CHECK(!third.from_cache);
  CHECK(third.scene(2).boxes[0].class_id == 1);
  for (const auto& entry : fs::directory_iterator(options.cache_dir))
    write_text(entry.path(), "garbage");
  log.str("");
  const SceneCollection fourth = load_detection_folder(dir.path(), scene_test_classes, options);
  CHECK(!fourth.from_cache);
  CHECK(log.str().find("warning: ignoring the scene cache") != std::string::npos);
}

TEST_CASE("scene split: a test list, identical scenes kept together, names checked") {
  stratum::testing::TempDir dir;
  write_scene_folder(dir.path());
  const SceneCollection data =
      load_detection_folder(dir.path(), scene_test_classes, quiet_scene_options());
  std::ostringstream log;
  const std::vector<std::string> list{"b"};
  const SceneSplit split = split_scenes_with_test_list(data, list, 1, 0.1, &log);
  CHECK(split.test == std::vector<Index>{1});
  CHECK(split.train.size() + split.validation.size() == 2);
  check_scene_partition(data, split);
  CHECK(log.str().empty());
  // Listing only one of two identical scenes moves both to the test part, with a warning.
  const std::vector<std::string> half_group{"a", "d"};  // d was skipped while loading
  const SceneSplit moved = split_scenes_with_test_list(data, half_group, 1, 0.1, &log);
  CHECK(moved.test == std::vector<Index>{0, 2});
  CHECK(log.str().find("warning: test scene 'd' was skipped while loading") != std::string::npos);
  CHECK(log.str().find("only some of the identical scenes a, c; all of them go to the test part") !=
        std::string::npos);
  const std::vector<std::string> unknown{"b", "zzz"};
  CHECK_THROWS_WITH_AS(split_scenes_with_test_list(data, unknown, 1, 0.1, nullptr),
                       doctest::Contains("names 'zzz', which is not a scene"), Error);
  // The list file: one name a line, comments and blank lines skipped.
  write_text(dir.path() / "list.txt", "# test scenes\n b \n\na\r\n");
  CHECK(read_scene_list(dir.path() / "list.txt") == std::vector<std::string>{"b", "a"});
  write_text(dir.path() / "empty.txt", "\n# nothing\n");
  CHECK_THROWS_WITH_AS(read_scene_list(dir.path() / "empty.txt"),
                       doctest::Contains("names no scene"), IoError);
  CHECK_THROWS_AS(read_scene_list(dir.path() / "missing.txt"), IoError);
}

TEST_CASE("scene split: seeded, stratified, group-aware, 80/20 then 10 % for validation") {
  const SceneCollection data = synthetic_scenes(300);
  const SceneSplit a = split_scenes(data, 7), b = split_scenes(data, 7), c = split_scenes(data, 8);
  check_scene_partition(data, a);
  CHECK(a.train == b.train);
  CHECK(a.validation == b.validation);
  CHECK(a.test == b.test);
  CHECK(a.test != c.test);
  // Within a group's size of the targets: 60 test scenes, 24 of the other 240 for validation.
  CHECK(std::abs(static_cast<int>(a.test.size()) - 60) <= 2);
  CHECK(std::abs(static_cast<int>(a.validation.size()) - 24) <= 2);
  // Stratified by the rarest class: without_mask scenes (every fifth) are a fifth of each part.
  const auto rare_in = [&](const std::vector<Index>& part) {
    return std::count_if(part.begin(), part.end(),
                         [&](Index i) { return data.scene(i).boxes[0].class_id == 1; });
  };
  CHECK(std::abs(static_cast<int>(rare_in(a.test)) - 12) <= 2);
  CHECK(scene_strata(data)[0] == 1);
  CHECK(scene_strata(data)[1] == 0);

  std::ostringstream summary;
  print_scene_summary(summary, data, a);
  CHECK(summary.str().find(
            "Scenes: 300 with 300 boxes; 0 files skipped, 0 objects left out; 0 boxes clamped") ==
        0);
  CHECK(summary.str().find("Duplicates: 43 groups of byte-identical images (43 extra copies)") !=
        std::string::npos);
  CHECK(summary.str().find("with_mask  without_mask") != std::string::npos);
  const auto test_row = summary_row(summary.str(), "test");
  REQUIRE(test_row.size() == 4);  // scenes, boxes, and the boxes of each class
  CHECK(test_row[0] == static_cast<long>(a.test.size()));
  CHECK(test_row[1] == static_cast<long>(a.test.size()));
  CHECK(test_row[3] == rare_in(a.test));
}

TEST_CASE("real data: the face-mask detection set, split by its reference test list") {
  const auto dir = stratum::testing::face_mask_detection_dir();
  if (dir.empty()) {
    MESSAGE("skipped: the face-mask detection set is not in ../shared");
    return;
  }
  const std::vector<std::string> classes{"with_mask", "without_mask", "mask_weared_incorrect"};
  std::ostringstream log;
  DetectionFolderOptions options;
  options.log = &log;
  const SceneCollection data = load_detection_folder(dir, classes, options);
  CHECK(data.count() == 853);
  CHECK(data.skipped.empty());
  CHECK(data.issues.empty());
  CHECK(data.clamped_boxes == 12);  // the boxes with xmax = 401 in 400-px scenes
  std::vector<Index> boxes_of_class(3);
  for (const Scene& s : data.scenes) {
    CHECK(!s.boxes.empty());
    for (const LabelledBox& b : s.boxes) ++boxes_of_class[std::size_t(b.class_id)];
  }
  CHECK(boxes_of_class == std::vector<Index>{3232, 717, 123});
  const auto groups = duplicate_groups(data.content_hashes());
  REQUIRE(groups.size() == 5);  // the five byte-identical pairs, 13/737 among them
  CHECK(data.scene(groups[0][0]).name != data.scene(groups[0][1]).name);

  const auto test_names = read_scene_list(dir / "test_scenes.txt");
  const SceneSplit split = split_scenes_with_test_list(data, test_names, 42, 0.1, &log);
  CHECK(split.test.size() == 171);
  CHECK(split.train.size() + split.validation.size() == 682);
  CHECK(std::abs(static_cast<int>(split.validation.size()) - 68) <= 2);
  check_scene_partition(data, split);
  CHECK(log.str().find("warning") == std::string::npos);
  std::ostringstream summary;
  print_scene_summary(summary, data, split);
  MESSAGE(summary.str());
  CHECK(summary.str().find("12 boxes clamped") != std::string::npos);
  CHECK(summary_row(summary.str(), "test").at(0) == 171);
  const auto train = summary_row(summary.str(), "train"),
             validation = summary_row(summary.str(), "validation");
  const auto test = summary_row(summary.str(), "test");
  for (std::size_t k = 1; k < 5; ++k)  // boxes, then per class: the parts add up to the whole
    CHECK(train.at(k) + validation.at(k) + test.at(k) == (k == 1 ? 4072 : boxes_of_class[k - 2]));

  // The seeded split also keeps the groups together.
  check_scene_partition(data, split_scenes(data, 42));
}
