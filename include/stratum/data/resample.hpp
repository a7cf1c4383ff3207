// Resampling an 8-bit RGB image to another size: stb_image_resize's filters and arithmetic, in
// loops of our own that give the same bytes faster.
//
// The math. The filter is separable: output pixel (x, y), channel c, is
//
//   h_r(x) = sum_i wx_i(x) * (in[r][clamp(col_i(x))][c] / 255)           (each input row r)
//   v(x, y) = sum_j wy_j(y) * h_clamp(row_j(y))(x)
//   out    = floor(255 * clamp(v, 0, 1) + 0.5)
//
// with stb's weights (stbir__calculate_filters): Mitchell-Netravali (B = C = 1/3) when
// shrinking, its support widened by the scale factor so that every input pixel counts (no
// aliasing), Catmull-Rom when enlarging; positions past the edge read the edge pixel; each
// output's weights normalised to sum to 1.
//
// Why not stb's own loops: stb_image_resize 0.97 scatters each input pixel into the outputs it
// touches, one float at a time, and sets up its filters on every call; it was the largest cost
// of `detect` after the network (letterboxing a 640 x 480 photo took 3.8 ms on 2 threads). Here
// the taps of each output are listed once (ResampleTaps), each needed input row is filtered
// horizontally once into a small ring of rows, and the vertical sums run over whole rows, which
// the compiler vectorises. The products are the same as stb's and are added in the order stb
// adds them (ascending input position, from 0), and nothing is fused into a multiply-add
// (no_fp_contract.hpp, as for stb in stb.hpp), so the bytes are those of one stb call, in any
// build and for any thread count: tests/test_image.cpp compares them on random images and sizes.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <Eigen/Core>

#include "../parallel.hpp"
#include "no_fp_contract.hpp"
#include "stb.hpp"

STRATUM_NO_FP_CONTRACT_BEGIN

namespace stratum::detail {

/// One axis of a resize: output position o is the sum of weight[o * taps + t] *
/// input[index[o * taps + t]] over t in [0, taps), added in that order. Indices are clamped to
/// the image. Every output has the same number of taps: the shorter lists end with taps of
/// weight 0, which change no sum (x * 0 is a zero, and s + 0 = s unless s is itself a zero,
/// whose sign may flip but never reaches a byte), and a fixed count lets the horizontal pass
/// run several outputs side by side.
struct ResampleTaps {
  int outputs = 0;
  int taps = 0;
  std::vector<int> index;
  std::vector<float> weight;
  int widest_window = 1;  // the most consecutive input positions one output reads
};

/// The taps of resizing `input_size` positions to `output_size`, from stb's own filter set-up
/// (so that the weights are stb's to the bit), listed per output in the order stb adds them.
inline ResampleTaps resample_taps(int input_size, int output_size) {
  // As stbir__calculate_transform and stbir__choose_filter compute them for a whole image.
  const float scale = static_cast<float>(output_size) / static_cast<float>(input_size);
  const bool enlarging = stbir__use_upsampling(scale);
  const auto filter = static_cast<stbir_filter>(enlarging ? STBIR_DEFAULT_FILTER_UPSAMPLE
                                                          : STBIR_DEFAULT_FILTER_DOWNSAMPLE);
  const int groups = stbir__get_contributors(scale, filter, input_size, output_size);
  const int group_width = stbir__get_coefficient_width(filter, scale);
  std::vector<stbir__contributors> ranges(static_cast<std::size_t>(groups));
  std::vector<float> coefficients(static_cast<std::size_t>(groups) *
                                  static_cast<std::size_t>(group_width));
  stbir__calculate_filters(ranges.data(), coefficients.data(), filter, scale, 0.0f, input_size,
                           output_size);

  // Enlarging, group g is output g and lists its inputs n0..n1 in order. Shrinking, group g is
  // input g - margin (stb walks the margins past both edges too) and lists the outputs n0..n1 it
  // adds into; stb walks the groups in order, so each output's taps are in input order.
  std::vector<std::vector<std::pair<int, float>>> taps(static_cast<std::size_t>(output_size));
  const int margin = enlarging ? 0 : stbir__get_filter_pixel_margin(filter, scale);
  for (int g = 0; g < groups; ++g) {
    const stbir__contributors& range = ranges[static_cast<std::size_t>(g)];
    for (int n = range.n0; n <= range.n1; ++n) {
      const float w =
          coefficients[static_cast<std::size_t>(g) * static_cast<std::size_t>(group_width) +
                       static_cast<std::size_t>(n - range.n0)];
      const int input = enlarging ? n : g - margin;
      const int output = enlarging ? g : n;
      if (output < 0 || output >= output_size) continue;  // stb clamps its ranges to the image
      taps[static_cast<std::size_t>(output)].emplace_back(std::clamp(input, 0, input_size - 1), w);
    }
  }
  ResampleTaps result;
  result.outputs = output_size;
  for (const auto& list : taps) result.taps = std::max(result.taps, static_cast<int>(list.size()));
  for (const auto& list : taps) {
    for (const auto& [input, w] : list) {
      result.index.push_back(input);
      result.weight.push_back(w);
    }
    for (auto t = list.size(); t < static_cast<std::size_t>(result.taps); ++t) {
      result.index.push_back(list.empty() ? 0 : list.back().first);
      result.weight.push_back(0.0f);
    }
    if (!list.empty()) {
      const auto [lowest, highest] = std::minmax_element(
          list.begin(), list.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      result.widest_window = std::max(result.widest_window, highest->first - lowest->first + 1);
    }
  }
  return result;
}

/// The horizontal pass over one input row: `out` gets the filtered row, 3 floats per output
/// position. `row` holds the input row as floats (v / 255, as stb decodes a byte), 3 per pixel
/// and one more after the last, so that each tap reads its pixel as 4 floats, one vector, whose
/// fourth lane is never used. Four outputs at a time, so that their sums (chains of additions)
/// proceed side by side.
inline void resample_row(const float* row, const ResampleTaps& taps, float* out) {
  using Pixel = Eigen::Array4f;  // r, g, b and a lane that is never used
  const auto count = static_cast<std::size_t>(taps.taps);
  const int* index = taps.index.data();
  const float* weight = taps.weight.data();
  // sum += tap t's pixel times its weight: a product, then a sum, as stb computes them.
  auto add = [&](Pixel& sum, std::size_t t) {
    sum += Eigen::Map<const Pixel>(row + 3 * static_cast<std::size_t>(index[t])) * weight[t];
  };
  auto store = [&](const Pixel& sum, std::size_t o) {
    out[3 * o] = sum[0];
    out[3 * o + 1] = sum[1];
    out[3 * o + 2] = sum[2];
  };
  const auto outputs = static_cast<std::size_t>(taps.outputs);
  std::size_t o = 0;
  for (; o + 4 <= outputs; o += 4) {
    Pixel sum0 = Pixel::Zero(), sum1 = Pixel::Zero(), sum2 = Pixel::Zero(), sum3 = Pixel::Zero();
    for (std::size_t t = o * count; t < (o + 1) * count; ++t) {
      add(sum0, t);
      add(sum1, t + count);
      add(sum2, t + 2 * count);
      add(sum3, t + 3 * count);
    }
    store(sum0, o);
    store(sum1, o + 1);
    store(sum2, o + 2);
    store(sum3, o + 3);
  }
  for (; o < outputs; ++o) {
    Pixel sum = Pixel::Zero();
    for (std::size_t t = o * count; t < (o + 1) * count; ++t) add(sum, t);
    store(sum, o);
  }
}

/// The taps of the last few axes resized on this thread, most recent first: a folder of photos
/// of one size, or a detector letterboxing frames, sets up its filters once (stb's set-up,
/// quadratic in the size, took 0.4 ms for a 640 x 480 photo; the whole letterbox now takes
/// 0.7 ms on 2 threads). Shared, so that an entry the cache drops stays valid for its user.
inline std::shared_ptr<const ResampleTaps> cached_resample_taps(int input_size, int output_size) {
  struct Entry {
    int input_size, output_size;
    std::shared_ptr<const ResampleTaps> taps;
  };
  constexpr std::size_t kept = 4;
  thread_local std::vector<Entry> recent;
  auto found = std::find_if(recent.begin(), recent.end(), [&](const Entry& e) {
    return e.input_size == input_size && e.output_size == output_size;
  });
  Entry entry =
      found != recent.end()
          ? *found
          : Entry{input_size, output_size,
                  std::make_shared<const ResampleTaps>(resample_taps(input_size, output_size))};
  if (found != recent.end())
    recent.erase(found);
  else if (recent.size() == kept)
    recent.pop_back();
  recent.insert(recent.begin(), entry);
  return entry.taps;
}

/// Resamples the RGB image `in` (in_width x in_height, rows packed) to out_width x out_height
/// into `out`, whose rows start `out_row_bytes` apart. Bands of output rows run on the threads.
inline void resample_rgb(const std::uint8_t* in, int in_width, int in_height, std::uint8_t* out,
                         int out_width, int out_height, std::size_t out_row_bytes) {
  const auto columns_taps = cached_resample_taps(in_width, out_width);
  const auto rows_taps = cached_resample_taps(in_height, out_height);
  const ResampleTaps& columns = *columns_taps;
  const ResampleTaps& rows = *rows_taps;
  const auto in_row_values = static_cast<std::size_t>(in_width) * 3;
  const auto row_floats = static_cast<std::size_t>(out_width) * 3;
  // A band re-filters the input rows its first output reads that the band before had filtered,
  // so bands are not made smaller than this many output rows.
  constexpr int min_band_rows = 16;
  const int bands = std::clamp(threads_for_region(), 1, std::max(1, out_height / min_band_rows));
  // Decoding a byte to a float: stb's v / 255, looked up.
  std::array<float, 256> unit;
  for (int v = 0; v < 256; ++v) unit[static_cast<std::size_t>(v)] = static_cast<float>(v) / 255.0f;
  parallel_for(bands, [&](Index band) {
    using Array = Eigen::ArrayXf;
    const auto n = static_cast<Index>(row_floats);
    // The input rows filtered so far, each in slot (row % ring), enough for one output's window.
    const auto ring = static_cast<std::size_t>(rows.widest_window);
    Array filtered(static_cast<Index>(ring) * n);
    std::vector<int> filtered_row(ring, -1);
    std::vector<float> decoded(in_row_values + 1);
    Array sum(n), scaled(n);
    Eigen::ArrayXi whole(n);
    const int first = static_cast<int>(band * out_height / bands);
    const int end = static_cast<int>((band + 1) * out_height / bands);
    for (int y = first; y < end; ++y) {
      // The vertical pass as Eigen array expressions: vectorised at any optimisation level (GCC
      // vectorises plain loops only at -O3), a product then a sum, as stb computes them.
      sum.setZero();
      for (int t = 0; t < rows.taps; ++t) {
        const auto tap = static_cast<std::size_t>(y) * static_cast<std::size_t>(rows.taps) +
                         static_cast<std::size_t>(t);
        const int input_row = rows.index[tap];
        const std::size_t slot = static_cast<std::size_t>(input_row) % ring;
        float* h = filtered.data() + static_cast<Index>(slot) * n;
        if (filtered_row[slot] != input_row) {
          const std::uint8_t* bytes = in + static_cast<std::size_t>(input_row) * in_row_values;
          for (std::size_t i = 0; i < in_row_values; ++i) decoded[i] = unit[bytes[i]];
          resample_row(decoded.data(), columns, h);
          filtered_row[slot] = input_row;
        }
        sum += Eigen::Map<const Array>(h, n) * rows.weight[tap];
      }
      // stb's rounding, (int)(255 * v + 0.5) with the product in float and the sum in double,
      // is floor(q + 0.5) of q = 255 * v exactly: q's whole part, plus one when the fraction
      // (exact in float) is at least one half; computed so, it vectorises.
      scaled = sum.max(0.0f).min(1.0f) * 255.0f;
      whole = scaled.cast<int>();
      whole += (scaled - whole.cast<float>() >= 0.5f).cast<int>();
      std::uint8_t* target = out + static_cast<std::size_t>(y) * out_row_bytes;
      for (Index i = 0; i < n; ++i) target[i] = static_cast<std::uint8_t>(whole[i]);
    }
  });
}

}  // namespace stratum::detail

STRATUM_NO_FP_CONTRACT_END
