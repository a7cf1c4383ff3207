// A generated two-class image task for examples, tests and quick experiments: noisy stripes.
//
// Label 0 images carry horizontal stripes, label 1 vertical ones, each with a random period,
// phase, contrast and colour, plus uniform noise. A small CNN separates them in a few epochs;
// a linear model on raw pixels cannot, because the phase is random.
#pragma once

#include <cmath>
#include <numbers>
#include <vector>

#include "../random.hpp"
#include "../tensor.hpp"

namespace stratum {

template <typename T>
struct SyntheticImages {
  Tensor<T> images;        // (N, size, size, channels), values in [0, 1]
  std::vector<int> labels;  // N labels, alternating 0, 1, 0, ...
};

template <typename T>
SyntheticImages<T> make_stripes(Index count, Index size, Index channels, std::uint64_t seed,
                                double noise = 0.2) {
  Random rng(seed);
  SyntheticImages<T> data;
  data.images.resize({count, size, size, channels});
  data.labels.resize(static_cast<std::size_t>(count));
  for (Index n = 0; n < count; ++n) {
    const int label = static_cast<int>(n % 2);
    data.labels[static_cast<std::size_t>(n)] = label;
    const double period = rng.uniform(3.0, 6.0), phase = rng.uniform(0.0, 2 * std::numbers::pi);
    const double contrast = rng.uniform(0.25, 0.5);
    std::vector<double> colour(static_cast<std::size_t>(channels));
    for (auto& c : colour) c = rng.uniform(0.5, 1.0);
    for (Index y = 0; y < size; ++y)
      for (Index x = 0; x < size; ++x) {
        const double along = static_cast<double>(label == 0 ? y : x);
        const double stripe = std::sin(2 * std::numbers::pi * along / period + phase);
        for (Index c = 0; c < channels; ++c) {
          const double v = 0.5 + contrast * stripe * colour[static_cast<std::size_t>(c)] +
                           noise * rng.uniform(-1.0, 1.0);
          data.images[((n * size + y) * size + x) * channels + c] =
              static_cast<T>(std::clamp(v, 0.0, 1.0));
        }
      }
  }
  return data;
}

}  // namespace stratum
