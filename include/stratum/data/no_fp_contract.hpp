// STRATUM_NO_FP_CONTRACT_BEGIN / _END: the functions defined between them round every product
// and every sum as written, with no fused multiply-add. GCC (in its GNU dialects) and Clang
// otherwise fuse a * b + c wherever the target has FMA, so the same code would give different
// bits in a -march=native build and a portable one. Image resizing needs the same bits
// everywhere: stb_image_resize's filter set-up (stb.hpp) and stratum's loops that must match it
// byte for byte (resample.hpp).
#pragma once

#if defined(__clang__)
#define STRATUM_NO_FP_CONTRACT_BEGIN \
  _Pragma("float_control(push)") _Pragma("clang fp contract(off)")
#define STRATUM_NO_FP_CONTRACT_END _Pragma("float_control(pop)")
#elif defined(__GNUC__)
#define STRATUM_NO_FP_CONTRACT_BEGIN \
  _Pragma("GCC push_options") _Pragma("GCC optimize(\"fp-contract=off\")")
#define STRATUM_NO_FP_CONTRACT_END _Pragma("GCC pop_options")
#else
#define STRATUM_NO_FP_CONTRACT_BEGIN
#define STRATUM_NO_FP_CONTRACT_END
#endif
