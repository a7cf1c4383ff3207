# Compile options for stratum's own programs (tests, examples, benchmarks). They are not put on
# the library target: users choose their own flags.
#
#   -Wall -Wextra -Wpedantic   warnings on, and clean (-Werror with STRATUM_WERROR)
#   -fno-math-errno            lets loops with sqrt/exp vectorise (the Adam update); stratum
#                              never reads errno after a math call
#   -march=native              with STRATUM_NATIVE: use every SIMD extension of this CPU
function(stratum_target_options target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -fno-math-errno)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
      # GCC 12 reports the deliberately undefined vectors of its own AVX-512 intrinsics
      # (_mm512_undefined_*) as "may be used uninitialized" wherever Eigen inlines them
      # (GCC bug 105593, fixed in GCC 13). It also reports std::string concatenations as
      # overlapping memcpy calls (-Wrestrict, GCC bug 105329).
      target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized -Wno-restrict)
    endif()
    if(STRATUM_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
    if(STRATUM_NATIVE)
      target_compile_options(${target} PRIVATE -march=native)
    endif()
  elseif(MSVC)
    target_compile_options(${target} PRIVATE /W4 /permissive-)
  endif()
endfunction()
