// The AVX2 + FMA micro-kernel of gemm.hpp: a block of 6 rows x 16 columns of C in 12 ymm
// registers (of the 16), the other four holding two vectors of B and the broadcast of A.
//
//   per k: load B[k, j..j+16) (2 vectors), broadcast A[i..i+6, k] one by one, 12 FMAs
//
// A panel narrower than 16 columns (the last one) uses masked loads and stores. Products of
// fewer than 4 rows hold 64 columns of a row (32 of each of two or three) in registers instead
// (few_rows). Compiled for AVX2 and FMA with the target attribute whatever the build's flags
// (simd_path.hpp).
#pragma once

#include "simd_path.hpp"

#if defined(STRATUM_SIMD_AVX2)

#include <algorithm>

#include "../tensor.hpp"
#include "gemm_block.hpp"

namespace stratum::kernels::detail {

/// C[0..R) x [0..16) = A[0..R) x B[:, 0..16) (+ C); with Masked, only the first `width`
/// columns are read and written. (Full panels use plain loads and stores: AMD's masked
/// stores are microcoded and cost several cycles each.)
template <int R, bool Masked>
STRATUM_TARGET_AVX2 inline void gemm_block_avx2(Index K, const float* a, Index a_row_stride,
                                                Index a_col_stride, const float* b, Index ldb,
                                                float* c, Index ldc, bool accumulate, Index width) {
  // The lanes j < width of each half (sign bit set), for the masked loads and stores.
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i mask0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(width)), lanes);
  const __m256i mask1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(width - 8)), lanes);
  __m256 acc[R][2];
  STRATUM_UNROLL
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (Index k = 0; k < K; ++k) {
    const float* bk = b + k * ldb;
    const __m256 b0 = Masked ? _mm256_maskload_ps(bk, mask0) : _mm256_loadu_ps(bk);
    const __m256 b1 = Masked ? _mm256_maskload_ps(bk + 8, mask1) : _mm256_loadu_ps(bk + 8);
    const float* ak = a + k * a_col_stride;
    STRATUM_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m256 ar = _mm256_broadcast_ss(ak + r * a_row_stride);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
  }
  STRATUM_UNROLL
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    if constexpr (Masked) {
      if (accumulate) {
        acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_maskload_ps(cr, mask0));
        acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_maskload_ps(cr + 8, mask1));
      }
      _mm256_maskstore_ps(cr, mask0, acc[r][0]);
      _mm256_maskstore_ps(cr + 8, mask1, acc[r][1]);
    } else {
      if (accumulate) {
        acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(cr));
        acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(cr + 8));
      }
      _mm256_storeu_ps(cr, acc[r][0]);
      _mm256_storeu_ps(cr + 8, acc[r][1]);
    }
  }
}

/// C[0..R) x [0..8 V) = A[0..R) x B[:, 0..8 V) (+ C), for R < 4 rows: V vectors of each row in
/// registers while k runs over all of K (as gemm_row_chunk_avx512; the same order of sums).
template <int R, int V>
STRATUM_TARGET_AVX2 inline void gemm_row_chunk_avx2(Index K, const float* a, Index a_row_stride,
                                                    Index a_col_stride, const float* b, Index ldb,
                                                    float* c, Index ldc, bool accumulate) {
  __m256 acc[R][V];
  STRATUM_UNROLL
  for (int r = 0; r < R; ++r) {
    STRATUM_UNROLL
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();
  }
  for (Index k = 0; k < K; ++k) {
    const float* bk = b + k * ldb;
    const float* ak = a + k * a_col_stride;
    __m256 ar[R];
    STRATUM_UNROLL
    for (int r = 0; r < R; ++r) ar[r] = _mm256_broadcast_ss(ak + r * a_row_stride);
    STRATUM_UNROLL
    for (int v = 0; v < V; ++v) {
      const __m256 bv = _mm256_loadu_ps(bk + 8 * v);
      STRATUM_UNROLL
      for (int r = 0; r < R; ++r) acc[r][v] = _mm256_fmadd_ps(ar[r], bv, acc[r][v]);
    }
  }
  STRATUM_UNROLL
  for (int r = 0; r < R; ++r) {
    STRATUM_UNROLL
    for (int v = 0; v < V; ++v) {
      float* cv = c + r * ldc + 8 * v;
      _mm256_storeu_ps(cv, accumulate ? _mm256_add_ps(acc[r][v], _mm256_loadu_ps(cv)) : acc[r][v]);
    }
  }
}

struct GemmAvx2 {
  static constexpr Index rows = 6, columns = 16;

  /// C (M x width) = A (M x K) B[:, 0..width) (+ C), width <= 16.
  STRATUM_TARGET_AVX2 static void panel(Index M, Index width, Index K, const float* a,
                                        Index a_row_stride, Index a_col_stride, const float* b,
                                        Index ldb, float* c, Index ldc, bool accumulate) {
    if (width == columns)
      blocks<false>(M, width, K, a, a_row_stride, a_col_stride, b, ldb, c, ldc, accumulate);
    else
      blocks<true>(M, width, K, a, a_row_stride, a_col_stride, b, ldb, c, ldc, accumulate);
  }

  /// C (M x N) = A (M x K) B (+ C) for M < 4, B read in chunks of whole rows' columns
  /// (GemmAvx512::few_rows says why): 64 columns of one row in 8 registers, or 32 columns of
  /// two or three rows (up to 12 accumulators, 3 broadcasts and a vector of B: the 16
  /// registers); the columns past the last whole chunk run in the panels' blocks.
  STRATUM_TARGET_AVX2 static void few_rows(Index M, Index N, Index K, const float* a,
                                           Index a_row_stride, Index a_col_stride, const float* b,
                                           Index ldb, float* c, Index ldc, bool accumulate) {
    Index j = 0;
    with_block_rows<3>(M, [&](auto block_rows) {
      constexpr int R = decltype(block_rows)::value, vectors = R == 1 ? 8 : 4;
      constexpr Index chunk = 8 * vectors;
      for (; j + chunk <= N; j += chunk)
        gemm_row_chunk_avx2<R, vectors>(K, a, a_row_stride, a_col_stride, b + j, ldb, c + j, ldc,
                                        accumulate);
    });
    for (; j < N; j += columns)
      panel(M, std::min(columns, N - j), K, a, a_row_stride, a_col_stride, b + j, ldb, c + j, ldc,
            accumulate);
  }

 private:
  // (Merging a remainder into the last block, as the AVX-512 kernel does, would need more
  // accumulators than the 16 registers hold.)
  template <bool Masked>
  STRATUM_TARGET_AVX2 static void blocks(Index M, Index width, Index K, const float* a,
                                         Index a_row_stride, Index a_col_stride, const float* b,
                                         Index ldb, float* c, Index ldc, bool accumulate) {
    const Index i = gemm_last_block_start(M, rows, /*merge_up_to=*/0);
    for (Index r = 0; r < i; r += rows)
      gemm_block_avx2<rows, Masked>(K, a + r * a_row_stride, a_row_stride, a_col_stride, b, ldb,
                                    c + r * ldc, ldc, accumulate, width);
    const float* ai = a + i * a_row_stride;
    float* ci = c + i * ldc;
    with_block_rows<rows>(M - i, [&](auto block_rows) {
      gemm_block_avx2<decltype(block_rows)::value, Masked>(K, ai, a_row_stride, a_col_stride, b,
                                                           ldb, ci, ldc, accumulate, width);
    });
  }
};

}  // namespace stratum::kernels::detail

#endif
