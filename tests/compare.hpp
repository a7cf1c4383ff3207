// Comparisons for the tests, where a NaN is always a failure.
//
// The kernel tests fill outputs with NaN before a kernel runs, so that an element the kernel
// never writes cannot pass for an earlier correct result. That only works if a NaN difference
// counts as an error: std::max(worst, NaN) keeps `worst`, and `NaN > worst` is false, so a
// plain running maximum lets every NaN through.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

namespace stratum::testing {

/// The larger of two errors, where a NaN error counts as infinitely wrong.
inline double worse_error(double so_far, double error) {
  return std::isnan(error) ? std::numeric_limits<double>::infinity() : std::max(so_far, error);
}

/// The largest |a - r| over `size` elements, relative to the largest |r| (at least 1): long
/// float sums round at the scale of their largest values.
template <typename T>
double worst_scaled_difference(const T* a, const T* r, std::size_t size) {
  double worst = 0, scale = 1;
  for (std::size_t i = 0; i < size; ++i) scale = std::max(scale, std::abs(double(r[i])));
  for (std::size_t i = 0; i < size; ++i)
    worst = worse_error(worst, std::abs(double(a[i]) - double(r[i])) / scale);
  return worst;
}

/// Whether two ranges hold the same values bit for bit (and are as long).
template <typename A, typename B>
bool same_bits(const A& a, const B& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

}  // namespace stratum::testing
