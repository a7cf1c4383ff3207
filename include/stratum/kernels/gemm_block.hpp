// What the GEMM micro-kernels of every instruction set share: how the rows of a panel are cut
// into register blocks, and the compile-time block heights.
#pragma once

#include <type_traits>
#include <utility>

#include "../tensor.hpp"

// The accumulator arrays of the micro-kernels must live in registers; GCC only promises that
// when the loops over them are unrolled completely before it decides (otherwise it spills them
// every step).
#if defined(__clang__)
#define STRATUM_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define STRATUM_UNROLL _Pragma("GCC unroll 16")
#else
#define STRATUM_UNROLL
#endif

namespace stratum::kernels::detail {

/// Where the last block of rows of an M-row panel starts, for blocks of `rows`: every block
/// before it is full, and a remainder of 1 to `merge_up_to` rows joins the last full block
/// instead of running on its own with few accumulators. M > 0.
constexpr Index gemm_last_block_start(Index M, Index rows, Index merge_up_to) {
  const Index remainder = M % rows;
  if (remainder == 0) return M - rows;
  if (M > rows && remainder <= merge_up_to) return M - rows - remainder;
  return M - remainder;
}

/// Calls body(std::integral_constant<int, n>()) for 1 <= n <= Max: a block height known at
/// compile time, so that the block's accumulators can be registers.
template <int Max, typename Body>
void with_block_rows(Index n, Body&& body) {
  [&]<int... R>(std::integer_sequence<int, R...>) {
    (void)((n == R + 1 ? (body(std::integral_constant<int, R + 1>()), true) : false) || ...);
  }
  (std::make_integer_sequence<int, Max>());
}

}  // namespace stratum::kernels::detail
