// The NEON micro-kernel of gemm.hpp (AArch64): a block of 8 rows x 12 columns of C in 24 of the
// 32 128-bit registers, 3 more holding a row of the B panel and 2 a column of the A block.
//
//   per k: load B[k, j..j+12) (3 vectors) and A[i..i+8, k] into the lanes of 2 vectors, then
//          24 multiply-adds by lane (vfmaq_laneq_f32: FMLA by element, no broadcast needed)
//
// 8 x 12 is the block BLIS uses for single precision on ARMv8; 8 x 16 would need all 32
// registers for C alone. Checked for correctness under qemu-user (test_gemm, test_conv2d), and
// for spills in GCC 12's code (none), but not timed on ARM hardware.
//
// NEON has no masked loads or stores, so a panel narrower than 12 columns (the last one) is
// copied into zero-padded rows of 12 floats, and each row of its C block goes through a
// 12-float buffer of which only the panel's columns are written back. Each element is still
// summed over k in order in one register, then C added once, exactly as in a full panel, so the
// result does not depend on how M or N is cut. NEON is part of the AArch64 base instruction
// set: no target attribute or run-time check is needed.
#pragma once

#include "simd_path.hpp"

#if defined(STRATUM_SIMD_NEON)

#include <arm_neon.h>

#include <algorithm>
#include <utility>

#include "../tensor.hpp"
#include "gemm_block.hpp"

namespace stratum::kernels::detail {

/// Loads A[r, k] (at `p`) into lane r % 4 of av[r / 4]; lane 0 by a broadcast, so that the
/// vector needs no value before.
template <int r>
inline void gemm_neon_load_a(float32x4_t* av, const float* p) {
  if constexpr (r % 4 == 0)
    av[r / 4] = vld1q_dup_f32(p);
  else
    av[r / 4] = vld1q_lane_f32(p, av[r / 4], r % 4);
}

/// C[0..R) x [0..12) = A[0..R) x B[:, 0..12) (+ C); each row of B holds 12 readable floats.
/// With Partial, only the first `width` columns of C are read and written.
template <int R, bool Partial>
inline void gemm_block_neon(Index K, const float* a, Index a_row_stride, Index a_col_stride,
                            const float* b, Index ldb, float* c, Index ldc, bool accumulate,
                            Index width) {
  float32x4_t acc[R][3];
  STRATUM_UNROLL
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = acc[r][2] = vdupq_n_f32(0.0f);
  for (Index k = 0; k < K; ++k) {
    const float* bk = b + k * ldb;
    const float32x4_t b0 = vld1q_f32(bk), b1 = vld1q_f32(bk + 4), b2 = vld1q_f32(bk + 8);
    const float* ak = a + k * a_col_stride;
    // A[0..R, k] gathered four to a vector, multiplied by lane: with one scalar register per
    // row (vfmaq_n_f32), GCC loads all eight ahead and spills four accumulators every k.
    float32x4_t av[(R + 3) / 4];
    [&]<int... r>(std::integer_sequence<int, r...>) {
      (gemm_neon_load_a<r>(av, ak + r * a_row_stride), ...);
      ((acc[r][0] = vfmaq_laneq_f32(acc[r][0], b0, av[r / 4], r % 4),
        acc[r][1] = vfmaq_laneq_f32(acc[r][1], b1, av[r / 4], r % 4),
        acc[r][2] = vfmaq_laneq_f32(acc[r][2], b2, av[r / 4], r % 4)),
       ...);
    }
    (std::make_integer_sequence<int, R>());
  }
  STRATUM_UNROLL
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    if constexpr (Partial) {
      float row[12];
      vst1q_f32(row, acc[r][0]);
      vst1q_f32(row + 4, acc[r][1]);
      vst1q_f32(row + 8, acc[r][2]);
      for (Index j = 0; j < width; ++j) cr[j] = accumulate ? row[j] + cr[j] : row[j];
    } else {
      if (accumulate) {
        acc[r][0] = vaddq_f32(acc[r][0], vld1q_f32(cr));
        acc[r][1] = vaddq_f32(acc[r][1], vld1q_f32(cr + 4));
        acc[r][2] = vaddq_f32(acc[r][2], vld1q_f32(cr + 8));
      }
      vst1q_f32(cr, acc[r][0]);
      vst1q_f32(cr + 4, acc[r][1]);
      vst1q_f32(cr + 8, acc[r][2]);
    }
  }
}

struct GemmNeon {
  static constexpr Index rows = 8, columns = 12;

  /// C (M x width) = A (M x K) B[:, 0..width) (+ C), width <= 12.
  static void panel(Index M, Index width, Index K, const float* a, Index a_row_stride,
                    Index a_col_stride, const float* b, Index ldb, float* c, Index ldc,
                    bool accumulate) {
    if (width == columns) {
      blocks<false>(M, width, K, a, a_row_stride, a_col_stride, b, ldb, c, ldc, accumulate);
      return;
    }
    // Reading 12 floats from each row of a narrower panel could run past the end of B.
    thread_local AlignedVector<float> padded;
    padded.assign(static_cast<std::size_t>(K * columns), 0.0f);
    for (Index k = 0; k < K; ++k) std::copy_n(b + k * ldb, width, padded.data() + k * columns);
    blocks<true>(M, width, K, a, a_row_stride, a_col_stride, padded.data(), columns, c, ldc,
                 accumulate);
  }

 private:
  // (A remainder of rows runs as a block of its own: merged into the last full block it would
  // need 27 or more accumulators, leaving too few registers for B and A.)
  template <bool Partial>
  static void blocks(Index M, Index width, Index K, const float* a, Index a_row_stride,
                     Index a_col_stride, const float* b, Index ldb, float* c, Index ldc,
                     bool accumulate) {
    const Index i = gemm_last_block_start(M, rows, /*merge_up_to=*/0);
    for (Index r = 0; r < i; r += rows)
      gemm_block_neon<rows, Partial>(K, a + r * a_row_stride, a_row_stride, a_col_stride, b, ldb,
                                     c + r * ldc, ldc, accumulate, width);
    const float* ai = a + i * a_row_stride;
    float* ci = c + i * ldc;
    with_block_rows<rows>(M - i, [&](auto block_rows) {
      gemm_block_neon<decltype(block_rows)::value, Partial>(K, ai, a_row_stride, a_col_stride, b,
                                                            ldb, ci, ldc, accumulate, width);
    });
  }
};

}  // namespace stratum::kernels::detail

#endif
