// The GEMM micro-kernels against three plain loops, on random shapes: single rows and columns,
// sizes that are not multiples of the register block (8 x 32 with AVX-512, 6 x 16 with AVX2),
// both layouts of A, with and without accumulation, on every SIMD path this CPU can run.
#include <doctest/doctest.h>
#include <stratum/kernels/gemm.hpp>
#include <stratum/random.hpp>

#include "compare.hpp"
#include "simd_paths.hpp"

#include <algorithm>
#include <string>
#include <vector>

using namespace stratum;

namespace {

template <typename T>
void check_gemm(Index M, Index N, Index K, bool transposed_a, bool accumulate, Random& rng,
                Index ldb = 0) {
  if (ldb == 0) ldb = N + static_cast<Index>(rng.below(3));
  const Index ldc = N + static_cast<Index>(rng.below(3));
  std::vector<T> a(static_cast<std::size_t>(M * K)), b(static_cast<std::size_t>(K * ldb)),
      c(static_cast<std::size_t>(M * ldc)), reference;
  for (auto* v : {&a, &b, &c})
    for (auto& e : *v) e = static_cast<T>(rng.uniform(-1, 1));
  reference = c;
  // A stored row-major (row stride K) or as its transpose (row stride 1, column stride M).
  const Index row_stride = transposed_a ? 1 : K, col_stride = transposed_a ? M : 1;
  kernels::gemm(M, N, K, a.data(), row_stride, col_stride, b.data(), ldb, c.data(), ldc,
                accumulate);
  kernels::gemm_reference(M, N, K, a.data(), row_stride, col_stride, b.data(), ldb,
                          reference.data(), ldc, accumulate);
  double worst = 0;
  for (Index i = 0; i < M; ++i)
    for (Index j = 0; j < N; ++j) {
      const auto k = static_cast<std::size_t>(i * ldc + j);
      worst = testing::worse_error(worst, std::abs(double(c[k]) - double(reference[k])));
    }
  // Sums of K products of values in [-1, 1]: float rounding grows like sqrt(K) * 2^-24.
  const double tolerance = (sizeof(T) == 4 ? 1e-5 : 1e-12) * std::sqrt(double(K) + 1);
  INFO("M=" << M << " N=" << N << " K=" << K << " transposed A=" << transposed_a
            << " accumulate=" << accumulate << " ldb=" << ldb
            << " path=" << kernels::gemm_float_path() << ": worst error " << worst);
  CHECK(worst <= tolerance);
  // Padding columns between N and ldc are never written.
  for (Index i = 0; i < M; ++i)
    for (Index j = N; j < ldc; ++j)
      CHECK(c[static_cast<std::size_t>(i * ldc + j)] ==
            reference[static_cast<std::size_t>(i * ldc + j)]);
}

}  // namespace

TEST_CASE("gemm matches the reference loops on random shapes") {
  testing::for_each_simd_path([] {
    MESSAGE("float GEMM path: " << std::string(kernels::gemm_float_path()));
    Random rng(31);
    for (int trial = 0; trial < 60; ++trial) {
      const Index M = 1 + static_cast<Index>(rng.below(trial < 20 ? 10 : 70));
      const Index N = 1 + static_cast<Index>(rng.below(trial < 20 ? 40 : 100));
      const Index K = static_cast<Index>(rng.below(300));
      check_gemm<float>(M, N, K, rng.below(2) == 1, rng.below(2) == 1, rng);
      check_gemm<double>(M, N, K, rng.below(2) == 1, rng.below(2) == 1, rng);
    }
    // The notebook's second convolution: forward, backward data and backward weights tiles.
    check_gemm<float>(455, 64, 288, false, false, rng);
    check_gemm<float>(455, 288, 64, false, false, rng);
    check_gemm<float>(288, 64, 455, true, true, rng);
  });
}

// B's rows 128 floats or more apart: the SIMD paths copy each panel into contiguous rows
// before the blocks of rows read it (when more than one block will), so these shapes cover the
// copy, including a last panel narrower than the vector width; 1 to 3 rows go to few_rows
// instead (chunks of 128 columns with AVX-512, of 64 or 32 with AVX2, then panels for the rest),
// whose chunk boundaries the widths straddle.
TEST_CASE("gemm with B's rows far apart, and with fewer than four rows") {
  testing::for_each_simd_path([] {
    Random rng(32);
    for (const Index M : {1, 2, 3, 4, 9, 32, 45})
      for (const Index N : {1, 7, 33, 63, 64, 65, 96, 127, 128, 130, 257, 300}) {
        const Index ldb = std::max<Index>(N, 128) + static_cast<Index>(rng.below(5));
        check_gemm<float>(M, N, 1 + static_cast<Index>(rng.below(400)), rng.below(2) == 1,
                          rng.below(2) == 1, rng, ldb);
      }
    // The notebook's first Dense layer: one thread's block of 1,920 inputs, and one image's
    // half of the 57,600.
    check_gemm<float>(32, 128, 1920, false, true, rng, 128);
    check_gemm<float>(1, 128, 28800, false, true, rng, 128);
  });
}

// Every element is summed over k in order in one register and C added last, in few_rows as in
// the panels' blocks: on the SIMD paths a row comes out bit for bit the same alone, in a
// product of 2 or 3 rows, and in one of 9 (Eigen's kernels, on the portable path and on NEON,
// order their sums their own way).
TEST_CASE("gemm: a row comes out the same whatever the number of rows in the product") {
  testing::for_each_simd_path([] {
    const kernels::SimdPath path = kernels::simd_path();
    if (path != kernels::SimdPath::avx512 && path != kernels::SimdPath::avx2) return;
    Random rng(33);
    constexpr Index rows = 9;
    for (const Index N : {5, 32, 64, 100, 128, 130, 300})
      for (const bool transposed_a : {false, true})
        for (const bool accumulate : {false, true}) {
          const Index K = 1 + static_cast<Index>(rng.below(200)), ldb = N + 3, ldc = N + 1;
          std::vector<float> a(static_cast<std::size_t>(rows * K)),
              b(static_cast<std::size_t>(K * ldb)), c0(static_cast<std::size_t>(rows * ldc));
          for (auto* v : {&a, &b, &c0})
            for (auto& e : *v) e = static_cast<float>(rng.uniform(-1, 1));
          // A row-major, or as its transpose with the 9 rows' column stride for every M.
          const Index row_stride = transposed_a ? 1 : K, col_stride = transposed_a ? rows : 1;
          std::vector<float> all = c0;
          kernels::gemm<float>(rows, N, K, a.data(), row_stride, col_stride, b.data(), ldb,
                               all.data(), ldc, accumulate);
          for (const Index M : {1, 2, 3}) {
            std::vector<float> few = c0;
            kernels::gemm<float>(M, N, K, a.data(), row_stride, col_stride, b.data(), ldb,
                                 few.data(), ldc, accumulate);
            INFO("M=" << M << " N=" << N << " K=" << K << " transposed A=" << transposed_a
                      << " accumulate=" << accumulate);
            CHECK(std::equal(few.begin(), few.begin() + M * ldc, all.begin()));
          }
        }
  });
}

TEST_CASE("the SIMD paths: what this CPU runs, and the choice from code") {
  using kernels::SimdPath;
  const auto paths = kernels::available_simd_paths();
  REQUIRE_FALSE(paths.empty());
  CHECK(paths.front() == SimdPath::portable);
  CHECK(kernels::best_simd_path() == paths.back());
  std::string names;
  for (SimdPath p : paths) names += std::string(" ") + kernels::to_string(p);
  MESSAGE("SIMD paths this CPU runs:" << names);
#if defined(__AVX2__) && defined(__FMA__)
  // A build for a CPU with AVX2 runs only on such CPUs: the run-time check must agree.
  CHECK(kernels::simd_path_available(SimdPath::avx2));
#endif
#if defined(__AVX512F__) && !defined(STRATUM_NO_AVX512)
  CHECK(kernels::simd_path_available(SimdPath::avx512));
#endif
  for (SimdPath p : {SimdPath::avx2, SimdPath::avx512, SimdPath::neon})
    if (!kernels::simd_path_available(p)) CHECK_THROWS_AS(kernels::set_simd_path(p), Error);
  testing::for_each_simd_path([&] {
    CHECK(std::string(kernels::gemm_float_path()) == kernels::to_string(kernels::simd_path()));
  });
}

TEST_CASE("STRATUM_SIMD: every path by its name, unknown and unavailable names refused") {
  using kernels::SimdPath;
  for (SimdPath p : kernels::available_simd_paths())
    CHECK(kernels::detail::parse_simd_path(kernels::to_string(p)) == p);
  CHECK_THROWS_WITH_AS(kernels::detail::parse_simd_path("sse9"),
                       doctest::Contains("STRATUM_SIMD=sse9: unknown SIMD path"), Error);
  for (SimdPath p : {SimdPath::avx2, SimdPath::avx512, SimdPath::neon})
    if (!kernels::simd_path_available(p))
      CHECK_THROWS_WITH_AS(kernels::detail::parse_simd_path(kernels::to_string(p)),
                           doctest::Contains("cannot run it (best available: "), Error);
}
