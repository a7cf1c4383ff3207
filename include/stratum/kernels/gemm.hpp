// Matrix product for the convolution kernels and Dense:  C (M x N) = A (M x K) * B (K x N)  [+ C]
//
// C and B are row-major (leading dimensions ldc, ldb). A is addressed through two strides,
// A[i, k] = a[i * a_row_stride + k * a_col_stride], so the same kernel reads a patch matrix
// (row stride K) or its transpose (row stride 1) without copying it.
//
// For float, a register-blocked micro-kernel computes a block of C held entirely in registers:
//
//   AVX-512: 8 rows x 32 columns = 16 zmm accumulators       AVX2 + FMA: 6 rows x 16 columns
//            per k: load B[k, j..j+32) (2 vectors),                      = 12 ymm accumulators
//            broadcast A[i..i+8, k] one by one,
//            16 fused multiply-adds
//
//            B panel (K x 32)          C block (8 x 32)
//            k -> [ b0 | b1 ]          [ acc[0][0] | acc[0][1] ]  += A[i+0, k] * [ b0 | b1 ]
//                                      [    ...    |    ...    ]       ...
//                                      [ acc[7][0] | acc[7][1] ]  += A[i+7, k] * [ b0 | b1 ]
//
// Column panels are walked outermost so that one B panel (K x 32 floats) stays in cache while
// every row block of A passes over it; a panel whose rows lie far apart in B is copied into
// contiguous rows first (gemm_panels says why). Products of fewer than 4 rows go to Eigen's
// matrix-vector kernel. The last panel uses masked loads and stores (AVX-512) or
// a scalar loop (AVX2) for N not a multiple of the vector width; the rows left over after the
// blocks of 8 (or 6) use the same kernel with fewer accumulators, or, on AVX-512, join the last
// block when they are 1 to 4 (blocks of up to 12 rows, 24 accumulators). Each element of C is
// summed over k in order in one register, whatever block it falls in, so the result does not
// depend on how M is cut.
//
// Which path is compiled is decided by the compiler flags (-mavx512f, -mavx2 -mfma, or
// -march=native): a header-only library cannot choose at run time without forcing every user
// to build several copies. Without those flags, and for double, Eigen's GEMM does the work.
#pragma once

#include <Eigen/Core>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#include "../tensor.hpp"

// The accumulator arrays below must live in registers; GCC only promises that when the loops
// over them are unrolled completely before it decides (otherwise it spills them every step).
#if defined(__clang__)
#define STRATUM_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define STRATUM_UNROLL _Pragma("GCC unroll 16")
#else
#define STRATUM_UNROLL
#endif

namespace stratum::kernels {

/// Which implementation gemm<float> uses in this build: "avx512", "avx2" or "eigen".
inline const char* gemm_float_path() {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
  return "avx2";
#else
  return "eigen";
#endif
}

namespace detail {

/// The portable path: Eigen's GEMM over strided maps.
template <typename T>
void gemm_eigen(Index M, Index N, Index K, const T* a, Index a_row_stride, Index a_col_stride,
                const T* b, Index ldb, T* c, Index ldc, bool accumulate) {
  using Strided = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
  using ColMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  // A column-major map with inner stride = row stride and outer stride = column stride.
  const Eigen::Map<const ColMajor, 0, Strided> A(a, M, K, Strided(a_col_stride, a_row_stride));
  const Eigen::Map<const RowMatrix<T>, 0, Eigen::OuterStride<>> B(b, K, N, Eigen::OuterStride<>(ldb));
  Eigen::Map<RowMatrix<T>, 0, Eigen::OuterStride<>> C(c, M, N, Eigen::OuterStride<>(ldc));
  if (accumulate)
    C.noalias() += A * B;
  else
    C.noalias() = A * B;
}

#if defined(__AVX512F__)
inline constexpr Index gemm_rows = 8, gemm_columns = 32;

/// C[0..R) x [0..32) (masked to the panel's width) = A[0..R) x B[:, 0..32).
template <int R>
inline void gemm_block_avx512(Index K, const float* a, Index a_row_stride, Index a_col_stride,
                              const float* b, Index ldb, float* c, Index ldc, bool accumulate,
                              __mmask16 mask0, __mmask16 mask1) {
  __m512 acc[R][2];
  STRATUM_UNROLL
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (Index k = 0; k < K; ++k) {
    const __m512 b0 = _mm512_maskz_loadu_ps(mask0, b + k * ldb);
    const __m512 b1 = _mm512_maskz_loadu_ps(mask1, b + k * ldb + 16);
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
    if (accumulate) {
      acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_maskz_loadu_ps(mask0, cr));
      acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_maskz_loadu_ps(mask1, cr + 16));
    }
    _mm512_mask_storeu_ps(cr, mask0, acc[r][0]);
    _mm512_mask_storeu_ps(cr + 16, mask1, acc[r][1]);
  }
}

inline void gemm_panel(Index M, Index width, Index K, const float* a, Index a_row_stride,
                       Index a_col_stride, const float* b, Index ldb, float* c, Index ldc,
                       bool accumulate) {
  auto mask = [](Index n) {
    return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
  };
  const __mmask16 mask0 = mask(width), mask1 = mask(width - 16);
  // Blocks of 8 rows; a remainder of 1 to 4 rows joins the last block (up to 12 rows, 24
  // accumulators, still within the 32 registers), since a block of few rows issues few FMAs
  // per load: M = 9 (the first layer's weight gradient, 3x3 taps of 3 channels) runs as one
  // block of 9 rather than 8 + 1.
  const Index remainder = M % gemm_rows;
  const Index merged =
      M > gemm_rows && remainder >= 1 && remainder <= 4 ? gemm_rows + remainder : 0;
  Index i = 0;
  for (; i + gemm_rows <= M - merged; i += gemm_rows)
    gemm_block_avx512<gemm_rows>(K, a + i * a_row_stride, a_row_stride, a_col_stride, b, ldb,
                                 c + i * ldc, ldc, accumulate, mask0, mask1);
  const float* ai = a + i * a_row_stride;
  float* ci = c + i * ldc;
  switch (M - i) {
    case 12: return gemm_block_avx512<12>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate, mask0, mask1);
    case 11: return gemm_block_avx512<11>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate, mask0, mask1);
    case 10: return gemm_block_avx512<10>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate, mask0, mask1);
    case 9: return gemm_block_avx512<9>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate, mask0, mask1);
    case 7: return gemm_block_avx512<7>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate, mask0, mask1);
    case 6: return gemm_block_avx512<6>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate, mask0, mask1);
    case 5: return gemm_block_avx512<5>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate, mask0, mask1);
    case 4: return gemm_block_avx512<4>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate, mask0, mask1);
    case 3: return gemm_block_avx512<3>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate, mask0, mask1);
    case 2: return gemm_block_avx512<2>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate, mask0, mask1);
    case 1: return gemm_block_avx512<1>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate, mask0, mask1);
    default: return;
  }
}

#elif defined(__AVX2__) && defined(__FMA__)
inline constexpr Index gemm_rows = 6, gemm_columns = 16;

/// C[0..R) x [0..16) = A[0..R) x B[:, 0..16) for a full-width panel.
template <int R>
inline void gemm_block_avx2(Index K, const float* a, Index a_row_stride, Index a_col_stride,
                            const float* b, Index ldb, float* c, Index ldc, bool accumulate) {
  __m256 acc[R][2];
  STRATUM_UNROLL
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (Index k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + k * ldb), b1 = _mm256_loadu_ps(b + k * ldb + 8);
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
    if (accumulate) {
      acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(cr));
      acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(cr + 8));
    }
    _mm256_storeu_ps(cr, acc[r][0]);
    _mm256_storeu_ps(cr + 8, acc[r][1]);
  }
}

inline void gemm_panel(Index M, Index width, Index K, const float* a, Index a_row_stride,
                       Index a_col_stride, const float* b, Index ldb, float* c, Index ldc,
                       bool accumulate) {
  if (width < gemm_columns)  // the ragged last panel
    return gemm_eigen<float>(M, width, K, a, a_row_stride, a_col_stride, b, ldb, c, ldc, accumulate);
  Index i = 0;
  for (; i + gemm_rows <= M; i += gemm_rows)
    gemm_block_avx2<gemm_rows>(K, a + i * a_row_stride, a_row_stride, a_col_stride, b, ldb,
                               c + i * ldc, ldc, accumulate);
  const float* ai = a + i * a_row_stride;
  float* ci = c + i * ldc;
  switch (M - i) {
    case 5: return gemm_block_avx2<5>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate);
    case 4: return gemm_block_avx2<4>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate);
    case 3: return gemm_block_avx2<3>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate);
    case 2: return gemm_block_avx2<2>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate);
    case 1: return gemm_block_avx2<1>(K, ai, a_row_stride, a_col_stride, b, ldb, ci, ldc, accumulate);
    default: return;
  }
}
#endif

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
/// The whole product, one column panel of B at a time (outermost, so that the panel stays in
/// cache while every block of rows of A passes over it).
inline void gemm_panels(Index M, Index N, Index K, const float* a, Index a_row_stride,
                        Index a_col_stride, const float* b, Index ldb, float* c, Index ldc,
                        bool accumulate) {
  // (Splitting K into L1-sized slices measured slower for the convolutions' shapes, K = 64 to
  // 455, and made no difference to the Dense layer's, so each panel runs over the whole depth.)
  // A panel that several blocks of rows will read, and whose rows lie 128 floats or more
  // apart, is first copied into contiguous rows of gemm_columns floats. In place, rows 512
  // bytes apart fall on only 8 of L1's 64 sets, so the panel does not stay in L1 from one
  // block of rows to the next: the Dense layer's forward product (W's 128 columns) took
  // 3.5-3.8 ms so, 2.1-2.4 ms packed (and 3.1-3.2 ms on Eigen's GEMM, in the same alternating
  // runs). Packing conv2's kernel too (64 columns, a panel that stays in cache anyway) gave
  // 13.1 and 13.5 ms for conv2 + pool fused forward against 12.5 and 12.1 ms, so narrower B
  // is read in place.
  const bool pack = M > gemm_rows && ldb >= 128;
  thread_local AlignedVector<float> packed;
  if (pack) packed.resize(static_cast<std::size_t>(K * gemm_columns));
  for (Index j = 0; j < N; j += gemm_columns) {
    const Index width = std::min(gemm_columns, N - j);
    const float* panel = b + j;
    Index panel_ld = ldb;
    if (pack) {
      for (Index k = 0; k < K; ++k)
        std::copy_n(b + k * ldb + j, width, packed.data() + k * gemm_columns);
      panel = packed.data();
      panel_ld = gemm_columns;
    }
    gemm_panel(M, width, K, a, a_row_stride, a_col_stride, panel, panel_ld, c + j, ldc,
               accumulate);
  }
}
#endif

}  // namespace detail

/// C = A B (or C += A B when `accumulate`); see the top of this file for the layouts.
/// Single-threaded: the convolution kernels call it from inside their own parallel loops.
template <typename T>
void gemm(Index M, Index N, Index K, const T* a, Index a_row_stride, Index a_col_stride,
          const T* b, Index ldb, T* c, Index ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
  // A product of one to three rows is a matrix-vector product in all but name: the
  // micro-kernel's few accumulators cannot hide the FMA latency, and Eigen's matrix-vector
  // kernel streams B faster (one image through the notebook's first Dense layer: medians of
  // 0.42-0.44 ms so, 0.70-0.75 ms on the micro-kernel).
  if constexpr (std::is_same_v<T, float>) {
    if (M >= 4)
      return detail::gemm_panels(M, N, K, a, a_row_stride, a_col_stride, b, ldb, c, ldc,
                                 accumulate);
  }
#endif
  detail::gemm_eigen<T>(M, N, K, a, a_row_stride, a_col_stride, b, ldb, c, ldc, accumulate);
}

/// The reference: three loops, for the tests.
template <typename T>
void gemm_reference(Index M, Index N, Index K, const T* a, Index a_row_stride, Index a_col_stride,
                    const T* b, Index ldb, T* c, Index ldc, bool accumulate) {
  for (Index i = 0; i < M; ++i)
    for (Index j = 0; j < N; ++j) {
      T sum = accumulate ? c[i * ldc + j] : T(0);
      for (Index k = 0; k < K; ++k) sum += a[i * a_row_stride + k * a_col_stride] * b[k * ldb + j];
      c[i * ldc + j] = sum;
    }
}

}  // namespace stratum::kernels
