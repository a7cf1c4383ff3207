// Loading a folder of photos: counts, skipped files, duplicates, the cache, and the split.
#include <doctest/doctest.h>
#include <stratum/data/image_dataset.hpp>
#include <stratum/data/split.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <set>
#include <sstream>

#include "image_writers.hpp"
#include "photo_folder.hpp"
#include "temp_dir.hpp"

using namespace stratum;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> classes{"without_mask", "with_mask"};

ImageFolderOptions quiet_options(int size = 32) {
  ImageFolderOptions o;
  o.width = o.height = size;
  o.log = nullptr;
  return o;
}

std::set<std::string> listing(const fs::path& root) {
  std::set<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(root)) names.insert(e.path().string());
  return names;
}

/// load_image_folder(root, classes, options) with a guard that it never opens `fifo`. Opening
/// a FIFO for reading waits for a writer, so while the load runs on another thread, this one
/// keeps opening the FIFO's writing end without waiting: that succeeds only when a reader has
/// it open or is waiting to. Then `fifo_opened` is set and the writing end closed at once,
/// which ends the reader's wait with nothing to read: the test fails instead of hanging.
LabelledImages load_without_opening(const fs::path& fifo, const fs::path& root,
                                    const ImageFolderOptions& options, bool& fifo_opened) {
  auto load =
      std::async(std::launch::async, [&] { return load_image_folder(root, classes, options); });
  while (load.wait_for(std::chrono::milliseconds(5)) != std::future_status::ready) {
    const int writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (writer >= 0) {
      fifo_opened = true;
      ::close(writer);
    }
  }
  return load.get();
}

}  // namespace

TEST_CASE("a folder of photos loads with labels, duplicates found, bad files skipped and named") {
  testing::TempDir dir;
  testing::write_photo_folder(dir.path(), 12, 1);
  fs::copy_file(dir.path() / "with_mask/with_mask_1.jpg",
                dir.path() / "with_mask/with_mask_copy.jpg");
  fs::copy_file(dir.path() / "with_mask/with_mask_1.jpg",
                dir.path() / "with_mask/with_mask_copy2.jpg");
  testing::write_bytes(dir.path() / "without_mask/empty.jpg", {});
  testing::write_bytes(dir.path() / "without_mask/notes.jpg", {'h', 'e', 'l', 'l', 'o'});
  const auto before = listing(dir.path());

  std::ostringstream log;
  auto options = quiet_options();
  options.log = &log;
  const LabelledImages images = load_image_folder(dir.path(), classes, options);
  CHECK(images.count() == 26);
  CHECK(images.class_count(0) == 12);
  CHECK(images.class_count(1) == 14);
  CHECK(images.pixels.size() == std::size_t(26 * 32 * 32 * 3));
  REQUIRE(images.skipped.size() == 2);
  CHECK(images.skipped[0].file == "without_mask/empty.jpg");
  CHECK(images.skipped[1].file == "without_mask/notes.jpg");
  CHECK(log.str().find("warning: skipped 'without_mask/notes.jpg' is not an image") !=
        std::string::npos);
  // Labels follow the class folder.
  for (Index i = 0; i < images.count(); ++i)
    CHECK(images.labels[std::size_t(i)] ==
          (images.files[std::size_t(i)].rfind("with_mask/", 0) == 0 ? 1 : 0));
  const auto groups = duplicate_groups(images);
  REQUIRE(groups.size() == 1);
  CHECK(groups[0].size() == 3);
  // The dataset folder is only read.
  CHECK(listing(dir.path()) == before);

  options.strict = true;
  CHECK_THROWS_WITH_AS(load_image_folder(dir.path(), classes, options),
                       "'without_mask/empty.jpg' is empty", IoError);
}

TEST_CASE("entries that are not regular files are named and skipped, never opened") {
  testing::TempDir dir;
  testing::write_photo_folder(dir.path(), 2, 5);
  const fs::path folder = dir.path() / "with_mask";
  fs::create_directories(dir.path() / "album");
  fs::create_symlink("missing.jpg", folder / "a_dangling.jpg");
  fs::create_directory_symlink("../album", folder / "b_album");
  fs::create_symlink("d_pipe.jpg", folder / "c_pipe_link.jpg");
  REQUIRE(::mkfifo((folder / "d_pipe.jpg").c_str(), 0600) == 0);
  fs::create_symlink("/dev/null", folder / "e_null.jpg");
  fs::create_symlink("with_mask_1.jpg", folder / "f_link.jpg");  // a link to a photo loads
  const std::vector<SkippedFile> expected{
      {"with_mask/a_dangling.jpg", "is a dangling symbolic link (to 'missing.jpg')"},
      {"with_mask/b_album",
       "is a symbolic link to '../album', which is not a regular file (folder)"},
      {"with_mask/c_pipe_link.jpg",
       "is a symbolic link to 'd_pipe.jpg', which is not a regular file (FIFO)"},
      {"with_mask/d_pipe.jpg", "is not a regular file (FIFO)"},
      {"with_mask/e_null.jpg",
       "is a symbolic link to '/dev/null', which is not a regular file (character device)"},
  };

  std::ostringstream log;
  auto options = quiet_options();
  options.log = &log;
  bool fifo_opened = false;
  const LabelledImages images =
      load_without_opening(folder / "d_pipe.jpg", dir.path(), options, fifo_opened);
  CHECK(!fifo_opened);
  CHECK(images.class_count(0) == 2);
  CHECK(images.class_count(1) == 3);
  REQUIRE(images.skipped.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const std::string reason = "'" + expected[i].file + "' " + expected[i].reason;
    CHECK(images.skipped[i].file == expected[i].file);
    CHECK(images.skipped[i].reason == reason);
    CHECK(log.str().find("warning: skipped " + reason + "\n") != std::string::npos);
  }
  // The link loads as the photo it points to.
  const auto link = std::find(images.files.begin(), images.files.end(), "with_mask/f_link.jpg");
  const auto photo =
      std::find(images.files.begin(), images.files.end(), "with_mask/with_mask_1.jpg");
  REQUIRE(link != images.files.end());
  REQUIRE(photo != images.files.end());
  CHECK(images.content_hashes[std::size_t(link - images.files.begin())] ==
        images.content_hashes[std::size_t(photo - images.files.begin())]);

  // With `strict`, each stops the load, as an undecodable file does: the first in file order.
  options.strict = true;
  for (const SkippedFile& bad : expected) {
    const std::string error = "'" + bad.file + "' " + bad.reason;
    CHECK_THROWS_WITH_AS(
        load_without_opening(folder / "d_pipe.jpg", dir.path(), options, fifo_opened),
        error.c_str(), IoError);
    CHECK(!fifo_opened);
    fs::remove(dir.path() / bad.file);
  }
  CHECK(load_image_folder(dir.path(), classes, options).count() == 5);
}

TEST_CASE("missing, empty and one-class folders are clear errors") {
  testing::TempDir dir;
  CHECK_THROWS_WITH_AS(load_image_folder(dir.path() / "nope", classes, quiet_options()),
                       doctest::Contains("does not exist"), IoError);
  fs::create_directories(dir.path() / "with_mask");
  Random rng(1);
  testing::write_face(dir.path() / "with_mask/a.jpg", true, rng);
  CHECK_THROWS_WITH_AS(load_image_folder(dir.path(), classes, quiet_options()),
                       doctest::Contains("has no 'without_mask/' folder (expected one folder per "
                                         "class: without_mask/ with_mask/)"),
                       IoError);
  fs::create_directories(dir.path() / "without_mask");
  CHECK_THROWS_WITH_AS(load_image_folder(dir.path(), classes, quiet_options()),
                       doctest::Contains("class 'without_mask' has no files"), Error);
  testing::write_bytes(dir.path() / "without_mask/broken.jpg", {0xFF, 0xD8, 0xFF, 0x00});
  CHECK_THROWS_WITH_AS(load_image_folder(dir.path(), classes, quiet_options()),
                       doctest::Contains("class 'without_mask' has no readable images"), Error);
}

TEST_CASE("the cache returns the same images and is rebuilt when the files change") {
  testing::TempDir data, cache;
  testing::write_photo_folder(data.path(), 5, 2);
  auto options = quiet_options(24);
  options.cache_dir = cache.path();
  const LabelledImages first = load_image_folder(data.path(), classes, options);
  CHECK(!first.from_cache);
  const LabelledImages second = load_image_folder(data.path(), classes, options);
  CHECK(second.from_cache);
  CHECK(second.pixels == first.pixels);
  CHECK(second.labels == first.labels);
  CHECK(second.files == first.files);
  CHECK(second.content_hashes == first.content_hashes);

  // Another size is another cache entry.
  options.width = 20;
  CHECK(!load_image_folder(data.path(), classes, options).from_cache);
  options.width = 24;

  // A changed file invalidates the cache.
  Random rng(9);
  testing::write_face(data.path() / "with_mask/with_mask_2.jpg", true, rng);
  fs::last_write_time(
      data.path() / "with_mask/with_mask_2.jpg",
      fs::last_write_time(data.path() / "with_mask/with_mask_2.jpg") + std::chrono::seconds(5));
  const LabelledImages third = load_image_folder(data.path(), classes, options);
  CHECK(!third.from_cache);
  CHECK(third.pixels != first.pixels);

  // A corrupt cache file is reported and replaced, never trusted.
  for (const auto& e : fs::directory_iterator(cache.path())) {
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x55');
  }
  std::ostringstream log;
  options.log = &log;
  const LabelledImages fourth = load_image_folder(data.path(), classes, options);
  CHECK(!fourth.from_cache);
  CHECK(fourth.pixels == third.pixels);
  CHECK(log.str().find("ignoring the image cache") != std::string::npos);
}

TEST_CASE("a mapped cache gives the same images, read in place, and is checked like a read one") {
  testing::TempDir data, cache;
  testing::write_photo_folder(data.path(), 5, 4);
  auto options = quiet_options(24);
  const LabelledImages in_memory = load_image_folder(data.path(), classes, options);
  options.cache_dir = cache.path();
  options.map_cache = true;
  // The first load decodes, writes the cache and maps it; the second maps it at once.
  for (const bool from_cache : {false, true}) {
    const LabelledImages mapped = load_image_folder(data.path(), classes, options);
    CHECK(mapped.from_cache == from_cache);
    REQUIRE(mapped.mapped != nullptr);
    CHECK(mapped.pixels.empty());
    CHECK(mapped.labels == in_memory.labels);
    CHECK(mapped.files == in_memory.files);
    for (Index i = 0; i < mapped.count(); ++i) {
      CHECK(std::equal(mapped.image(i), mapped.image(i) + mapped.image_size(), in_memory.image(i)));
      mapped.release(i);  // read again below: the page cache gives the same bytes back
      CHECK(mapped.image(i)[mapped.image_size() - 1] ==
            in_memory.image(i)[mapped.image_size() - 1]);
    }
    // Through a dataset, as training reads it.
    const ImageDataset<float> dataset(mapped, {3, 0});
    Tensor<float> x;
    std::vector<int> labels;
    dataset.gather(std::vector<Index>{1, 0}, x, labels);
    CHECK(x[0] == doctest::Approx(in_memory.image(0)[0] / 255.0));
  }
  // A corrupt mapped cache is refused and replaced, like a read one.
  for (const auto& e : fs::directory_iterator(cache.path())) {
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-20, std::ios::end);
    f.put('\x55');
  }
  std::ostringstream log;
  options.log = &log;
  const LabelledImages replaced = load_image_folder(data.path(), classes, options);
  CHECK(!replaced.from_cache);
  CHECK(log.str().find("is corrupt (checksum mismatch)") != std::string::npos);
  CHECK(
      std::equal(replaced.image(0), replaced.image(0) + replaced.image_size(), in_memory.image(0)));
}

TEST_CASE("ImageDataset scales bytes to [0, 1] batch by batch") {
  testing::TempDir data;
  testing::write_photo_folder(data.path(), 3, 3);
  const LabelledImages images = load_image_folder(data.path(), classes, quiet_options(16));
  const ImageDataset<float> subset(images, {4, 1});
  CHECK(subset.sample_shape() == Shape{16, 16, 3});
  Tensor<float> x;
  std::vector<int> labels;
  const std::vector<Index> batch{1, 0};
  subset.gather(batch, x, labels);
  REQUIRE(x.shape() == Shape{2, 16, 16, 3});
  CHECK(labels == std::vector<int>{images.labels[1], images.labels[4]});
  CHECK(x[0] == doctest::Approx(images.pixels[std::size_t(1 * 16 * 16 * 3)] / 255.0));
  CHECK_THROWS_AS(ImageDataset<float>(images, {99}), Error);
}

TEST_CASE("the split is stratified, seeded and never separates identical files") {
  // 1000 samples, 30 % of class 1, in groups of 1 to 4 identical files.
  std::vector<int> labels;
  std::vector<std::uint64_t> groups;
  Random rng(4);
  std::uint64_t group = 0;
  while (labels.size() < 1000) {
    const int label = rng.uniform() < 0.3 ? 1 : 0;
    const auto copies = 1 + rng.below(4);
    for (std::uint64_t k = 0; k < copies && labels.size() < 1000; ++k) {
      labels.push_back(label);
      groups.push_back(group);
    }
    ++group;
  }
  std::vector<Index> all(1000);
  std::iota(all.begin(), all.end(), Index{0});
  const Split a = stratified_group_split(labels, groups, all, 0.2, 7);
  const Split b = stratified_group_split(labels, groups, all, 0.2, 7);
  const Split c = stratified_group_split(labels, groups, all, 0.2, 8);
  CHECK(a.train == b.train);
  CHECK(a.test == b.test);
  CHECK(a.test != c.test);

  std::set<Index> train(a.train.begin(), a.train.end()), test(a.test.begin(), a.test.end());
  CHECK(train.size() + test.size() == 1000);
  for (Index i : test) CHECK(train.count(i) == 0);
  std::set<std::uint64_t> train_groups, test_groups;
  for (Index i : a.train) train_groups.insert(groups[std::size_t(i)]);
  for (Index i : a.test) test_groups.insert(groups[std::size_t(i)]);
  for (auto g : test_groups) CHECK(train_groups.count(g) == 0);

  for (int label : {0, 1}) {
    const auto in_class = std::count(labels.begin(), labels.end(), label);
    const auto in_test = std::count_if(a.test.begin(), a.test.end(),
                                       [&](Index i) { return labels[std::size_t(i)] == label; });
    // Exact up to the size of one group (at most 4 files).
    CHECK(std::abs(double(in_test) - 0.2 * double(in_class)) <= 4.0);
  }
}
