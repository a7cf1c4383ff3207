// bfloat16 gradients for the all-reduce (GradientCompression::bf16 in gradient_buckets.hpp):
// half the bytes on the link, summed in float.
//
// A bfloat16 is the upper 16 bits of a float: the same sign and 8-bit exponent (so the same
// range: no overflow where float has none), and 7 of float's 23 mantissa bits, a relative
// precision of 2^-8 (about 0.4 %). Rounding is to nearest, ties to even, on the bits:
//
//   upper 16 bits of ( bits(x) + 0x7FFF + bit 16 of bits(x) )
//
// A mantissa that rounds up past its top carries into the exponent (the next power of two, or
// infinity past the largest finite value), as IEEE rounding does. A NaN stays a NaN: rounding
// could clear its mantissa and make it an infinity, so it is truncated and quietened instead.
//
// sum_bfloat16 is the MPI reduction: both operands widened to float, added in float, the sum
// rounded once to bfloat16. In an all-reduce every partial sum passes through bfloat16 between
// ranks, so a sum over N ranks carries up to N - 1 roundings of at most 2^-8 of a partial sum
// each, besides the rounding of every rank's own gradient.
#pragma once

#include <mpi.h>

#include <bit>
#include <cstdint>

namespace stratum {

inline std::uint16_t to_bfloat16(float x) {
  const auto bits = std::bit_cast<std::uint32_t>(x);
  if ((bits & 0x7FFFFFFFU) > 0x7F800000U) return static_cast<std::uint16_t>((bits >> 16) | 0x40U);
  const std::uint32_t rounding = 0x7FFFU + ((bits >> 16) & 1U);
  return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

inline float from_bfloat16(std::uint16_t b) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

/// An MPI_User_function over MPI_UINT16_T: inout[i] = bfloat16(float(in[i]) + float(inout[i])).
inline void sum_bfloat16(void* in, void* inout, int* length, MPI_Datatype*) {
  const auto* a = static_cast<const std::uint16_t*>(in);
  auto* b = static_cast<std::uint16_t*>(inout);
  for (int i = 0; i < *length; ++i) b[i] = to_bfloat16(from_bfloat16(a[i]) + from_bfloat16(b[i]));
}

}  // namespace stratum
