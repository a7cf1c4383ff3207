// The notebook's layer stack against PyTorch, in the spirit of llm.c's test_gpt2.c.
//
// tests/golden/generate_golden.py built the same network in PyTorch (float64), ran one batch
// through it with Keras' loss, and stored the output, the loss and every parameter gradient.
// Here stratum computes the same from the same weights and inputs and must agree: to float32
// storage precision in double, and to float rounding in float.
#include <mask_detection/architectures.hpp>

#include "gradient_check.hpp"

#include <cstring>
#include <fstream>
#include <map>

using namespace stratum;

namespace {

constexpr Index batch = 4, size = 10, channels = 3;
const std::vector<int> labels{1, 0, 0, 1};

/// The generator's formula: scale * (2u - 1), u from splitmix64 of (salt * 2^32 + i).
double formula(std::uint64_t i, std::uint64_t salt, double scale) {
  std::uint64_t z = (salt << 32) + i + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return scale * (2.0 * (static_cast<double>(z >> 11) * 0x1.0p-53) - 1.0);
}

template <typename T>
void fill(Tensor<T>& t, std::uint64_t salt, double scale) {
  for (Index i = 0; i < t.size(); ++i) t[i] = static_cast<T>(formula(static_cast<std::uint64_t>(i), salt, scale));
}

std::map<std::string, std::vector<float>> read_golden(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot open " << path);
  char magic[8];
  in.read(magic, 8);
  REQUIRE(std::memcmp(magic, "STGOLD01", 8) == 0);
  std::uint32_t count = 0;
  in.read(reinterpret_cast<char*>(&count), 4);
  std::map<std::string, std::vector<float>> records;
  for (std::uint32_t r = 0; r < count; ++r) {
    std::uint32_t name_length = 0;
    in.read(reinterpret_cast<char*>(&name_length), 4);
    std::string name(name_length, '\0');
    in.read(name.data(), name_length);
    std::uint64_t n = 0;
    in.read(reinterpret_cast<char*>(&n), 8);
    std::vector<float> values(n);
    in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(4 * n));
    REQUIRE(in);
    records[name] = std::move(values);
  }
  return records;
}

template <typename T>
void compare(const std::string& what, const Tensor<T>& actual, const std::vector<float>& golden,
             double relative) {
  REQUIRE_MESSAGE(static_cast<std::size_t>(actual.size()) == golden.size(), what);
  double max_abs = 0;
  for (float g : golden) max_abs = std::max(max_abs, double(std::abs(g)));
  double worst = 0;
  for (std::size_t i = 0; i < golden.size(); ++i) {
    const double error = std::abs(double(actual[static_cast<Index>(i)]) - golden[i]);
    worst = std::max(worst, error / (relative * (std::abs(golden[i]) + 0.01 * max_abs) + 1e-30));
  }
  INFO(what << ": worst error / tolerance = " << worst);
  CHECK(worst <= 1.0);
}

template <typename T>
void run_against_pytorch(double relative) {
  const auto golden = read_golden(STRATUM_TEST_DATA_DIR "/golden_notebook_stack.bin");
  Sequential<T> model({size, size, channels});
  mask_detection::add_notebook_layers(model);

  std::uint64_t salt = 1;
  for (std::size_t i = 0; i < model.size(); ++i) {
    auto params = model.layer(i).parameters();
    if (params.empty()) continue;
    const Index fan_in = params[0]->value.size() / params[0]->value.dim(params[0]->value.rank() - 1);
    fill(params[0]->value, salt, std::sqrt(3.0 / double(fan_in)));
    fill(params[1]->value, salt + 100, 0.1);
    ++salt;
  }
  Tensor<T> x({batch, size, size, channels});
  for (Index i = 0; i < x.size(); ++i) x[i] = static_cast<T>(0.5 + formula(static_cast<std::uint64_t>(i), 0, 0.5));

  SparseCategoricalCrossentropy<T> loss;
  const Tensor<T>& output = model.forward(x, Mode::inference);
  compare("output", output, golden.at("output"), relative);
  Tensor<T> d_output;
  const double value = loss.compute(output, labels, &d_output);
  CHECK(value == doctest::Approx(golden.at("loss")[0]).epsilon(relative));
  model.backward(d_output);
  for (std::size_t i = 0; i < model.size(); ++i)
    for (auto* p : model.layer(i).parameters()) {
      const std::string key = model.layer(i).name() + "/" + p->name + "/grad";
      compare(key, p->grad, golden.at(key), relative);
    }
}

}  // namespace

TEST_CASE("the notebook's stack matches PyTorch: output, loss and every gradient (double)") {
  run_against_pytorch<double>(1e-5);
}

TEST_CASE("the notebook's stack matches PyTorch in float") { run_against_pytorch<float>(2e-3); }
