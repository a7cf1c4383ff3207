// Which SIMD instruction set the hot kernels run on, chosen once at run time from what the CPU
// has, so that a program compiled for baseline x86-64 (no -march) runs the same kernels as one
// compiled with -march=native.
//
// A header-only library cannot ship one object file per instruction set, so each fast kernel
// is compiled for its instruction set inside the user's translation unit with GCC's and
// Clang's `target` attribute (STRATUM_TARGET_AVX2, STRATUM_TARGET_AVX512 below): the compiler
// emits AVX2 or AVX-512 code for those functions only, whatever the command line says, and the
// rest of the program stays baseline. The kernels' callers ask simd_path() which one to run.
// A target function cannot be inlined into a baseline one, so the switch happens at the level
// of a whole register block or panel, where one call costs nothing measurable.
//
//   path      compiled (GCC/Clang on x86-64)            runs when the CPU has
//   avx512    always, target("avx512f,avx2,fma")        AVX-512F (and the OS saves zmm state)
//   avx2      always, target("avx2,fma")                AVX2 and FMA
//   neon      on AArch64 (NEON is part of the base ISA)  always there
//   portable  always: Eigen, vectorised as the flags allow
//
// MSVC has no target attribute, but lets any intrinsic be used in any function; there the x86
// paths are compiled when /arch enables them (/arch:AVX2, /arch:AVX512), chosen at compile time
// as before, since such a program needs those instructions anyway.
//
// Loops that the compiler vectorises itself (pooling, ReLU) get the same treatment through
// vectorized(body): body is inlined, with everything it calls, into a function compiled for the
// path in force, so that its loops use that path's vector registers.
//
// The environment variable STRATUM_SIMD (portable, avx2, avx512 or neon) overrides the choice
// for a whole program; set_simd_path() does the same from code (the tests run every path the
// CPU has in one build).
#pragma once

#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "../errors.hpp"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define STRATUM_SIMD_AVX2 1
#define STRATUM_SIMD_AVX512 1
#define STRATUM_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define STRATUM_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#if defined(__AVX2__)
#define STRATUM_SIMD_AVX2 1
#endif
#if defined(__AVX512F__)
#define STRATUM_SIMD_AVX512 1
#endif
#define STRATUM_TARGET_AVX2
#define STRATUM_TARGET_AVX512
#endif

// What `vectorized` compiles its loop bodies with. flatten inlines the body, and all it calls,
// into the wrapper, so that the body is compiled for the wrapper's target. GCC 12 vectorises
// only loops whose trip count is a known multiple of the vector length at -O2 (its "very cheap"
// cost model), which leaves a ReLU or pooling loop scalar in a -O2 build where Eigen's SSE code
// had been vectorised; so GCC compiles these wrappers at -O3, whatever the build's level.
// (Clang vectorises at -O2 and has no optimize attribute.)
#if defined(__GNUC__) && !defined(__clang__)
#define STRATUM_VECTORIZED_BODY __attribute__((flatten, optimize("O3")))
#elif defined(__clang__)
#define STRATUM_VECTORIZED_BODY __attribute__((flatten))
#else
#define STRATUM_VECTORIZED_BODY
#endif

// Put before a loop over one pixel's F channels (F a compile-time 8 to 64) inside `vectorized`.
// Without it GCC's -O3 unrolls a loop of 8 or 16 completely before the vectoriser sees it, and
// then vectorises the loop around it instead (over input channels or pixels), with F separate
// sums shuffled across lanes: an edge pixel's loop came to 236-1,537 vector instructions where
// 8-63 do, and the direct convolutions' edge pixels ran several times slower (docs/kernels.md,
// "An eighth window"). An unroll factor below every F keeps the loop whole for the vectoriser,
// which makes it one to four AVX-512 vectors (two to eight AVX2 ones); 4 still lets F = 64
// keep its four AVX-512 sums in registers after vectorisation, as it did before.
#if defined(__GNUC__) || defined(__clang__)
#define STRATUM_CHANNEL_LOOP _Pragma("GCC unroll 4")
#else
#define STRATUM_CHANNEL_LOOP
#endif

// Defining STRATUM_NO_AVX512 leaves the AVX-512 path out of a build: its kernels are not
// compiled and never chosen. For programs meant for CPUs without AVX-512, and for the
// sanitizer build (CMakePresets.json, preset asan), which leaves that path to the optimised
// build's tests: instrumented, the AVX-512 micro-kernels' masked loads made gemm.hpp alone take
// 45 s of CPU to compile instead of 17 s, and a batch of the tests 203 s instead of 165 s
// (Clang 14, -O1, ASan + UBSan).
#if defined(STRATUM_NO_AVX512)
#undef STRATUM_SIMD_AVX512
#endif

#if defined(__aarch64__) || defined(_M_ARM64)
#define STRATUM_SIMD_NEON 1
#endif

#if defined(STRATUM_SIMD_AVX2) || defined(STRATUM_SIMD_AVX512)
#include <immintrin.h>
#endif

namespace stratum::kernels {

enum class SimdPath { portable, avx2, avx512, neon };

inline const char* to_string(SimdPath path) {
  switch (path) {
    case SimdPath::avx2:
      return "avx2";
    case SimdPath::avx512:
      return "avx512";
    case SimdPath::neon:
      return "neon";
    case SimdPath::portable:
      break;
  }
  return "portable";
}

/// Whether this build has the path's kernels and this CPU can run them.
inline bool simd_path_available(SimdPath path) {
  switch (path) {
    case SimdPath::portable:
      return true;
    case SimdPath::avx2:
#if defined(STRATUM_SIMD_AVX2) && defined(_MSC_VER) && !defined(__clang__)
      return true;  // compiled only under /arch:AVX2, which requires it
#elif defined(STRATUM_SIMD_AVX2)
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
      return false;
#endif
    case SimdPath::avx512:
#if defined(STRATUM_SIMD_AVX512) && defined(_MSC_VER) && !defined(__clang__)
      return true;
#elif defined(STRATUM_SIMD_AVX512)
      // libgcc's and compiler-rt's checks also ask the OS (XGETBV) whether it saves the zmm
      // registers, so a CPU with AVX-512 under an OS that disabled it reports false.
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#else
      return false;
#endif
    case SimdPath::neon:
#if defined(STRATUM_SIMD_NEON)
      return true;
#else
      return false;
#endif
  }
  return false;
}

/// Every path this build and CPU can run, the portable one first.
inline std::vector<SimdPath> available_simd_paths() {
  std::vector<SimdPath> paths;
  for (SimdPath p : {SimdPath::portable, SimdPath::avx2, SimdPath::avx512, SimdPath::neon})
    if (simd_path_available(p)) paths.push_back(p);
  return paths;
}

/// The fastest path this build and CPU can run.
inline SimdPath best_simd_path() {
  return available_simd_paths().back();
}

namespace detail {

inline SimdPath parse_simd_path(const std::string& name) {
  for (SimdPath p : {SimdPath::portable, SimdPath::avx2, SimdPath::avx512, SimdPath::neon})
    if (name == to_string(p)) {
      if (!simd_path_available(p))
        throw Error("STRATUM_SIMD=" + name + ": this " +
                    std::string(simd_path_available(SimdPath::neon) ? "build" : "CPU or build") +
                    " cannot run it (best available: " + to_string(best_simd_path()) + ")");
      return p;
    }
  throw Error("STRATUM_SIMD=" + name + ": unknown SIMD path (portable, avx2, avx512 or neon)");
}

/// The path in force: the environment's choice, else the best one, decided on first use.
inline std::atomic<SimdPath>& simd_path_setting() {
  static std::atomic<SimdPath> setting{[] {
    const char* requested = std::getenv("STRATUM_SIMD");
    return requested && *requested ? parse_simd_path(requested) : best_simd_path();
  }()};
  return setting;
}

}  // namespace detail

/// The path the kernels run on now.
inline SimdPath simd_path() {
  return detail::simd_path_setting().load(std::memory_order_relaxed);
}

/// Makes every kernel run on `path` from now on (for every thread); throws if this build or CPU
/// cannot run it. For tests and benchmarks: do not call it while kernels are running.
inline void set_simd_path(SimdPath path) {
  if (!simd_path_available(path))
    throw Error(std::string("SIMD path ") + to_string(path) +
                " is not available here (best: " + to_string(best_simd_path()) + ")");
  detail::simd_path_setting().store(path, std::memory_order_relaxed);
}

namespace detail {
#if defined(STRATUM_SIMD_AVX512)
template <typename Body>
STRATUM_TARGET_AVX512 STRATUM_VECTORIZED_BODY void run_compiled_for_avx512(Body& body) {
  body();
}
#endif
#if defined(STRATUM_SIMD_AVX2)
template <typename Body>
STRATUM_TARGET_AVX2 STRATUM_VECTORIZED_BODY void run_compiled_for_avx2(Body& body) {
  body();
}
#endif
/// The portable path (and NEON, part of AArch64's base instruction set): the build's own target.
template <typename Body>
STRATUM_VECTORIZED_BODY void run_compiled_for_build_target(Body& body) {
  body();
}
}  // namespace detail

/// Runs body() compiled for the instruction set of the path in force: inlined, with all it
/// calls, into a function with that target, so that the loops the compiler vectorises use its
/// vectors (in a build without -march too). For small bodies of element-wise loops.
template <typename Body>
void vectorized(Body&& body) {
  switch (simd_path()) {
#if defined(STRATUM_SIMD_AVX512)
    case SimdPath::avx512:
      return detail::run_compiled_for_avx512(body);
#endif
#if defined(STRATUM_SIMD_AVX2)
    case SimdPath::avx2:
      return detail::run_compiled_for_avx2(body);
#endif
    default:
      return detail::run_compiled_for_build_target(body);
  }
}

}  // namespace stratum::kernels
