// Model files: a bit-exact round trip, and a clear refusal of every kind of damaged file.
#include <doctest/doctest.h>
#include <stratum/model/serialization.hpp>
#include <stratum/stratum.hpp>

#include "temp_dir.hpp"

using namespace stratum;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<Sequential<float>> every_layer_model() {
  auto model = std::make_unique<Sequential<float>>(Shape{11, 10, 3}, 3);
  model->add<Conv2D>(4, Size2{3, 2}, Activation::relu, Size2{2, 1}, Padding::same);
  model->add<MaxPool2D>(2, 1, Padding::valid);
  model->add<Conv2D>(5, 3, Activation::sigmoid);
  model->add<ReLU>();
  model->add<Flatten>();
  model->add<Dense>(6, Activation::softmax);
  model->add<Dropout>(0.25);
  model->add<Sigmoid>();
  model->add<Dense>(3);
  model->add<Softmax>();
  model->compile(std::make_unique<SparseCategoricalCrossentropy<float>>(false), nullptr);
  return model;
}

std::vector<std::uint8_t> read_all(const fs::path& p) { return read_file(p); }

void write_all(const fs::path& p, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_CASE("save and load round-trip bit-exactly, with metadata") {
  testing::TempDir dir;
  auto model = every_layer_model();
  const Metadata metadata{{"class_names", "a,b,c"}, {"note", "hello"}};
  save_model(*model, dir.path() / "m.stmodel", metadata);
  const LoadedModel<float> loaded = load_model<float>(dir.path() / "m.stmodel");
  CHECK(loaded.metadata == metadata);
  Sequential<float>& copy = *loaded.model;
  REQUIRE(copy.size() == model->size());
  CHECK(copy.input_shape() == model->input_shape());
  CHECK(copy.loss().name() == "SparseCategoricalCrossentropy");
  CHECK(!copy.loss().from_logits());
  for (std::size_t i = 0; i < model->size(); ++i) {
    CHECK(copy.layer(i).name() == model->layer(i).name());
    CHECK(copy.layer(i).config().values == model->layer(i).config().values);
    auto a = model->layer(i).parameters(), b = copy.layer(i).parameters();
    REQUIRE(a.size() == b.size());
    for (std::size_t p = 0; p < a.size(); ++p)
      CHECK(std::equal(a[p]->value.begin(), a[p]->value.end(), b[p]->value.begin()));
  }
  Tensor<float> x({2, 11, 10, 3});
  Random rng(1);
  for (auto& v : x) v = float(rng.uniform());
  const Tensor<float> expected = model->forward(x, Mode::inference);
  const Tensor<float>& actual = copy.forward(x, Mode::inference);
  CHECK(std::equal(expected.begin(), expected.end(), actual.begin()));
  // Saving the loaded model gives the same bytes.
  save_model(copy, dir.path() / "again.stmodel", loaded.metadata);
  CHECK(read_all(dir.path() / "again.stmodel") == read_all(dir.path() / "m.stmodel"));
}

TEST_CASE("damaged, foreign and newer files are refused with a message that says why") {
  testing::TempDir dir;
  auto model = every_layer_model();
  const fs::path good = dir.path() / "good.stmodel", bad = dir.path() / "bad.stmodel";
  save_model(*model, good);
  const auto bytes = read_all(good);

  for (std::size_t keep : {std::size_t(0), std::size_t(5), std::size_t(30), bytes.size() / 2, bytes.size() - 1}) {
    write_all(bad, std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + long(keep)));
    INFO("kept " << keep << " bytes");
    CHECK_THROWS_AS(load_model<float>(bad), IoError);
  }
  write_all(bad, std::vector<std::uint8_t>(bytes.begin(), bytes.end() - 100));
  CHECK_THROWS_WITH_AS(load_model<float>(bad), doctest::Contains("is truncated"), IoError);

  auto flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x10;
  write_all(bad, flipped);
  CHECK_THROWS_WITH_AS(load_model<float>(bad), doctest::Contains("is corrupt: its checksum does not match"), IoError);

  auto longer = bytes;
  longer.push_back(0);
  write_all(bad, longer);
  CHECK_THROWS_WITH_AS(load_model<float>(bad), doctest::Contains("1 unexpected bytes"), IoError);

  write_all(bad, {'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  CHECK_THROWS_WITH_AS(load_model<float>(bad), ("'" + bad.string() + "' is not a stratum model file").c_str(), IoError);

  auto newer = bytes;
  newer[8] = 2;
  write_all(bad, newer);
  CHECK_THROWS_WITH_AS(load_model<float>(bad),
                       doctest::Contains("was written in model format version 2; this build of "
                                         "stratum reads versions up to 1: update stratum"),
                       IoError);
  CHECK_THROWS_WITH_AS(load_model<float>(dir.path() / "missing.stmodel"), doctest::Contains("cannot open"), IoError);
}

TEST_CASE("a well-formed file with impossible contents is refused") {
  // Files re-checksummed after an edit: the loader must not trust the checksum alone.
  Sequential<float> model({4, 4, 1});
  model.add<Conv2D>(2, 3);
  const auto original = serialize_model(model);
  auto with_value = [&](const std::string& key, double value) {
    auto bytes = original;
    const auto at = std::search(bytes.begin(), bytes.end(), key.begin(), key.end());
    REQUIRE(at != bytes.end());
    std::memcpy(&*(at + long(key.size())), &value, 8);
    const std::uint64_t checksum = Fnv1a().add(std::span(bytes.data(), bytes.size() - 8)).value();
    std::memcpy(bytes.data() + bytes.size() - 8, &checksum, 8);
    return bytes;
  };
  CHECK_THROWS_WITH_AS(deserialize_model<float>(with_value("padding", 7), "odd.stmodel"),
                       doctest::Contains("describes a model that cannot be built"), IoError);
  CHECK_THROWS_WITH_AS(deserialize_model<float>(with_value("kernel_h", 2.5), "odd.stmodel"),
                       doctest::Contains("is not a whole number"), IoError);
  // A layer whose parameters could not fit in the file is refused before any allocation.
  CHECK_THROWS_WITH_AS(deserialize_model<float>(with_value("filters", 1e6), "odd.stmodel"),
                       doctest::Contains("describes a Conv2D layer larger than the file"), IoError);
  // A taller kernel needs more values than the file stores.
  CHECK_THROWS_AS(deserialize_model<float>(with_value("kernel_h", 4), "odd.stmodel"), IoError);
}

TEST_CASE("saving replaces the file atomically and leaves no temporary behind") {
  testing::TempDir dir;
  auto model = every_layer_model();
  const fs::path path = dir.path() / "m.stmodel";
  save_model(*model, path);
  const auto first = read_all(path);
  model->layer(0).parameters()[0]->value[0] += 1.0f;
  save_model(*model, path);
  CHECK(read_all(path) != first);
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++files;
  CHECK(files == 1);
  // A save that cannot happen leaves the existing file alone.
  CHECK_THROWS_AS(save_model(*model, dir.path() / "no/such/folder/m.stmodel"), IoError);
  CHECK(load_model<float>(path).model->size() == model->size());
}
