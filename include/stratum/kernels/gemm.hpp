// Matrix product for the convolution kernels and Dense:  C (M x N) = A (M x K) * B (K x N)  [+ C]
//
// C and B are row-major (leading dimensions ldc, ldb). A is addressed through two strides,
// A[i, k] = a[i * a_row_stride + k * a_col_stride], so the same kernel reads a patch matrix
// (row stride K) or its transpose (row stride 1) without copying it.
//
// For float, a register-blocked micro-kernel computes a block of C held entirely in registers
// (gemm_avx512.hpp: 8 rows x 32 columns; gemm_avx2.hpp: 6 rows x 16 columns; gemm_neon.hpp on
// AArch64: 8 rows x 12 columns): per k, it loads one row of a B panel and broadcasts A[i, k]
// for each row of the block into fused multiply-adds. Column panels are walked outermost so that
// one B panel (K x 32 floats) stays in cache while every row block of A passes over it; a panel
// whose rows lie far apart in B is copied into contiguous rows first (gemm_panels says why).
// Products of fewer than 4 rows (one image through a Dense layer) are matrix-vector products,
// bound by reading B: a kernel of each instruction set holds a chunk of whole rows' columns in
// registers instead (few_rows), so B is read in one pass. Each element of C is summed over k in
// order in one register and C added last, whatever block it falls in, so the result does not
// depend on how M is cut: a row of a batch of 1 equals the same row in a batch of 32.
//
// The micro-kernel is chosen at run time on x86-64 (simd_path.hpp): a program built without
// -march runs the same AVX-512 or AVX2 code as a native build. On AArch64 the NEON kernel is
// always there (NEON is part of the base instruction set). The portable path, and double, use
// Eigen's GEMM.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <type_traits>

#include "../tensor.hpp"
#include "gemm_avx2.hpp"
#include "gemm_avx512.hpp"
#include "gemm_neon.hpp"
#include "simd_path.hpp"

namespace stratum::kernels {

/// Which implementation gemm<float> runs now: "avx512", "avx2", "neon" or "portable" (Eigen).
inline const char* gemm_float_path() {
  return to_string(simd_path());
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
  const Eigen::Map<const RowMatrix<T>, 0, Eigen::OuterStride<>> B(b, K, N,
                                                                  Eigen::OuterStride<>(ldb));
  Eigen::Map<RowMatrix<T>, 0, Eigen::OuterStride<>> C(c, M, N, Eigen::OuterStride<>(ldc));
  if (accumulate)
    C.noalias() += A * B;
  else
    C.noalias() = A * B;
}

/// The whole product on micro-kernel `Kernel` (GemmAvx512, GemmAvx2), one column panel of B at
/// a time (outermost, so that the panel stays in cache while every block of rows of A passes
/// over it).
template <typename Kernel>
void gemm_panels(Index M, Index N, Index K, const float* a, Index a_row_stride, Index a_col_stride,
                 const float* b, Index ldb, float* c, Index ldc, bool accumulate) {
  // (Splitting K into L1-sized slices measured slower for the convolutions' shapes, K = 64 to
  // 455, and made no difference to the Dense layer's, so each panel runs over the whole depth.)
  // A panel that several blocks of rows will read, and whose rows lie 128 floats or more
  // apart, is first copied into contiguous rows of Kernel::columns floats. In place, rows 512
  // bytes apart fall on only 8 of L1's 64 sets, so the panel does not stay in L1 from one
  // block of rows to the next: the Dense layer's forward product (W's 128 columns) took
  // 3.5-3.8 ms so, 2.1-2.4 ms packed (and 3.1-3.2 ms on Eigen's GEMM, in the same alternating
  // runs). Packing conv2's kernel too (64 columns, a panel that stays in cache anyway) gave
  // 13.1 and 13.5 ms for conv2 + pool fused forward against 12.5 and 12.1 ms, so narrower B
  // is read in place.
  constexpr Index columns = Kernel::columns;
  const bool pack = M > Kernel::rows && ldb >= 128;
  thread_local AlignedVector<float> packed;
  if (pack) packed.resize(static_cast<std::size_t>(K * columns));
  for (Index j = 0; j < N; j += columns) {
    const Index width = std::min(columns, N - j);
    const float* panel = b + j;
    Index panel_ld = ldb;
    if (pack) {
      for (Index k = 0; k < K; ++k)
        std::copy_n(b + k * ldb + j, width, packed.data() + k * columns);
      panel = packed.data();
      panel_ld = columns;
    }
    Kernel::panel(M, width, K, a, a_row_stride, a_col_stride, panel, panel_ld, c + j, ldc,
                  accumulate);
  }
}

}  // namespace detail

/// C = A B (or C += A B when `accumulate`); see the top of this file for the layouts.
/// Single-threaded: the convolution kernels call it from inside their own parallel loops.
template <typename T>
void gemm(Index M, Index N, Index K, const T* a, Index a_row_stride, Index a_col_stride, const T* b,
          Index ldb, T* c, Index ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  // A product of one to three rows is a matrix-vector product in all but name (see the top).
  // On NEON it goes to Eigen's matrix-vector kernel, compiled for NEON in every AArch64 build;
  // on x86-64 to few_rows, since a build without -march compiles Eigen for SSE2 alone (one
  // image through the notebook took twice the native build's time so, docs/kernels.md).
  if constexpr (std::is_same_v<T, float>) {
    switch (simd_path()) {
#if defined(STRATUM_SIMD_AVX512)
      case SimdPath::avx512:
        if (M < 4)
          return detail::GemmAvx512::few_rows(M, N, K, a, a_row_stride, a_col_stride, b, ldb, c,
                                              ldc, accumulate);
        return detail::gemm_panels<detail::GemmAvx512>(M, N, K, a, a_row_stride, a_col_stride, b,
                                                       ldb, c, ldc, accumulate);
#endif
#if defined(STRATUM_SIMD_AVX2)
      case SimdPath::avx2:
        if (M < 4)
          return detail::GemmAvx2::few_rows(M, N, K, a, a_row_stride, a_col_stride, b, ldb, c, ldc,
                                            accumulate);
        return detail::gemm_panels<detail::GemmAvx2>(M, N, K, a, a_row_stride, a_col_stride, b, ldb,
                                                     c, ldc, accumulate);
#endif
#if defined(STRATUM_SIMD_NEON)
      case SimdPath::neon:
        if (M < 4) break;
        return detail::gemm_panels<detail::GemmNeon>(M, N, K, a, a_row_stride, a_col_stride, b, ldb,
                                                     c, ldc, accumulate);
#endif
      default:
        break;
    }
  }
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
