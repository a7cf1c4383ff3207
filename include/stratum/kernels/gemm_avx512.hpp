// The AVX-512 micro-kernel of gemm.hpp: a block of 8 rows x 32 columns of C in 16 zmm registers.
//
//   per k: load B[k, j..j+32) (2 vectors), broadcast A[i..i+8, k] one by one, 16 FMAs
//
// A panel narrower than 32 columns (the last one) uses masked loads and stores. Products of
// fewer than 4 rows hold 128 columns of each row in 8 zmm registers instead (few_rows). Compiled
// for AVX-512F with the target attribute whatever the build's flags (simd_path.hpp).
#pragma once

#include "simd_path.hpp"

#if defined(STRATUM_SIMD_AVX512)

#include <algorithm>

#include "../tensor.hpp"
#include "gemm_block.hpp"

namespace stratum::kernels::detail {

/// C[0..R) x [0..32) = A[0..R) x B[:, 0..32) (+ C); with Masked, only the first `width`
/// columns are read and written. Full panels use plain loads and stores: in a build without
/// -march (the kernel compiled through the target attribute, generic tuning), GCC 12 kept the
/// two masks on the stack and reloaded them into mask registers at every k (two `kmovw` from
/// memory in the inner loop, which the -march=native build does not have). Measured alone, the
/// change was within the noise of alternating runs (docs/kernels.md, "A fourth window").
template <int R, bool Masked>
STRATUM_TARGET_AVX512 inline void gemm_block_avx512(Index K, const float* a, Index a_row_stride,
                                                    Index a_col_stride, const float* b, Index ldb,
                                                    float* c, Index ldc, bool accumulate,
                                                    Index width) {
  // The lanes j < width of each half, for the masked loads and stores.
  auto first_lanes = [](Index n) {
    return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
  };
  const __mmask16 mask0 = first_lanes(width), mask1 = first_lanes(width - 16);
  __m512 acc[R][2];
  STRATUM_UNROLL
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (Index k = 0; k < K; ++k) {
    const float* bk = b + k * ldb;
    const __m512 b0 = Masked ? _mm512_maskz_loadu_ps(mask0, bk) : _mm512_loadu_ps(bk);
    const __m512 b1 = Masked ? _mm512_maskz_loadu_ps(mask1, bk + 16) : _mm512_loadu_ps(bk + 16);
    const float* ak = a + k * a_col_stride;
    STRATUM_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m512 ar = _mm512_set1_ps(ak[r * a_row_stride]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
    }
  }
  STRATUM_UNROLL
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    if constexpr (Masked) {
      if (accumulate) {
        acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_maskz_loadu_ps(mask0, cr));
        acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_maskz_loadu_ps(mask1, cr + 16));
      }
      _mm512_mask_storeu_ps(cr, mask0, acc[r][0]);
      _mm512_mask_storeu_ps(cr + 16, mask1, acc[r][1]);
    } else {
      if (accumulate) {
        acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_loadu_ps(cr));
        acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_loadu_ps(cr + 16));
      }
      _mm512_storeu_ps(cr, acc[r][0]);
      _mm512_storeu_ps(cr + 16, acc[r][1]);
    }
  }
}

/// C[0..R) x [0..16 V) = A[0..R) x B[:, 0..16 V) (+ C), for R < 4 rows: V vectors of each row
/// in registers while k runs over all of K, so that B's rows are read whole, in one pass when
/// N <= 16 V (GemmAvx512::few_rows says why). Each element is summed over k in order in one
/// register and C added last, as in gemm_block_avx512: a row comes out the same in any M.
template <int R, int V>
STRATUM_TARGET_AVX512 inline void gemm_row_chunk_avx512(Index K, const float* a, Index a_row_stride,
                                                        Index a_col_stride, const float* b,
                                                        Index ldb, float* c, Index ldc,
                                                        bool accumulate) {
  __m512 acc[R][V];
  STRATUM_UNROLL
  for (int r = 0; r < R; ++r) {
    STRATUM_UNROLL
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  }
  for (Index k = 0; k < K; ++k) {
    const float* bk = b + k * ldb;
    const float* ak = a + k * a_col_stride;
    __m512 ar[R];
    STRATUM_UNROLL
    for (int r = 0; r < R; ++r) ar[r] = _mm512_set1_ps(ak[r * a_row_stride]);
    STRATUM_UNROLL
    for (int v = 0; v < V; ++v) {
      const __m512 bv = _mm512_loadu_ps(bk + 16 * v);
      STRATUM_UNROLL
      for (int r = 0; r < R; ++r) acc[r][v] = _mm512_fmadd_ps(ar[r], bv, acc[r][v]);
    }
  }
  STRATUM_UNROLL
  for (int r = 0; r < R; ++r) {
    STRATUM_UNROLL
    for (int v = 0; v < V; ++v) {
      float* cv = c + r * ldc + 16 * v;
      _mm512_storeu_ps(cv, accumulate ? _mm512_add_ps(acc[r][v], _mm512_loadu_ps(cv)) : acc[r][v]);
    }
  }
}

// (panel and blocks have the shape of GemmAvx2's. Each kernel keeps its own, declared with its
// target attribute: a helper shared by both would be compiled for the baseline target, and
// GCC does not inline a function compiled for AVX-512 or AVX2 into it, so every block would
// become a call.)
struct GemmAvx512 {
  static constexpr Index rows = 8, columns = 32;

  /// C (M x width) = A (M x K) B[:, 0..width) (+ C), width <= 32.
  STRATUM_TARGET_AVX512 static void panel(Index M, Index width, Index K, const float* a,
                                          Index a_row_stride, Index a_col_stride, const float* b,
                                          Index ldb, float* c, Index ldc, bool accumulate) {
    if (width == columns)
      blocks<false>(M, width, K, a, a_row_stride, a_col_stride, b, ldb, c, ldc, accumulate);
    else
      blocks<true>(M, width, K, a, a_row_stride, a_col_stride, b, ldb, c, ldc, accumulate);
  }

  /// C (M x N) = A (M x K) B (+ C) for M < 4: a matrix-vector product in all but name, bound
  /// by reading B once. Panel by panel, B would be read in strips of 32 columns, rows far apart
  /// (512 bytes for the notebook's first Dense layer, 128 columns): four passes over 14.7 MB a
  /// thread. Here 128 columns of each row stay in registers (up to 24 accumulators for 3 rows),
  /// so that layer's B is read in one pass, row after row; the columns past the last whole 128
  /// run in the panels' blocks.
  STRATUM_TARGET_AVX512 static void few_rows(Index M, Index N, Index K, const float* a,
                                             Index a_row_stride, Index a_col_stride, const float* b,
                                             Index ldb, float* c, Index ldc, bool accumulate) {
    constexpr int vectors = 8;
    constexpr Index chunk = 16 * vectors;
    Index j = 0;
    with_block_rows<3>(M, [&](auto block_rows) {
      for (; j + chunk <= N; j += chunk)
        gemm_row_chunk_avx512<decltype(block_rows)::value, vectors>(
            K, a, a_row_stride, a_col_stride, b + j, ldb, c + j, ldc, accumulate);
    });
    for (; j < N; j += columns)
      panel(M, std::min(columns, N - j), K, a, a_row_stride, a_col_stride, b + j, ldb, c + j, ldc,
            accumulate);
  }

 private:
  // Blocks of 8 rows; a remainder of 1 to 4 rows joins the last block (up to 12 rows, 24
  // accumulators, still within the 32 registers), since a block of few rows issues few FMAs
  // per load: M = 9 (the first layer's weight gradient, 3x3 taps of 3 channels) runs as one
  // block of 9 rather than 8 + 1.
  template <bool Masked>
  STRATUM_TARGET_AVX512 static void blocks(Index M, Index width, Index K, const float* a,
                                           Index a_row_stride, Index a_col_stride, const float* b,
                                           Index ldb, float* c, Index ldc, bool accumulate) {
    const Index i = gemm_last_block_start(M, rows, /*merge_up_to=*/4);
    for (Index r = 0; r < i; r += rows)
      gemm_block_avx512<rows, Masked>(K, a + r * a_row_stride, a_row_stride, a_col_stride, b, ldb,
                                      c + r * ldc, ldc, accumulate, width);
    const float* ai = a + i * a_row_stride;
    float* ci = c + i * ldc;
    with_block_rows<12>(M - i, [&](auto block_rows) {
      gemm_block_avx512<decltype(block_rows)::value, Masked>(K, ai, a_row_stride, a_col_stride, b,
                                                             ldb, ci, ldc, accumulate, width);
    });
  }
};

}  // namespace stratum::kernels::detail

#endif
