// Runs a test body on every SIMD path this build and CPU can run (kernels/simd_path.hpp), so
// that one test program checks the AVX-512, AVX2 and portable kernels alike, whatever the
// compiler flags chose.
#pragma once

#include <doctest/doctest.h>
#include <stratum/kernels/simd_path.hpp>

#include <string>

namespace stratum::testing {

/// Calls body() once per available path, with that path in force, then restores the path that
/// was in force before.
template <typename Body>
void for_each_simd_path(Body&& body) {
  struct Restore {
    kernels::SimdPath path = kernels::simd_path();
    ~Restore() { kernels::set_simd_path(path); }
  } restore;  // also when a REQUIRE ends the test early
  for (kernels::SimdPath path : kernels::available_simd_paths()) {
    kernels::set_simd_path(path);
    INFO("SIMD path " << std::string(kernels::to_string(path)));
    body();
  }
}

}  // namespace stratum::testing
