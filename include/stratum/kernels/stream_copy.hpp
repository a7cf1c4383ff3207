// Copying a kernel's finished output to memory around the cache.
//
// An ordinary store first reads the cache line it writes into (read-for-ownership), so writing
// a large output that is not read again soon costs twice its size in memory traffic: 130 MB
// instead of 65 MB for the notebook's first convolution at batch 32, which is then bound by
// memory rather than arithmetic. Non-temporal ("streaming") stores write whole lines without
// reading them. Used for outputs far larger than the caches; with no SIMD extension it is a
// plain copy.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

#include "../tensor.hpp"

namespace stratum::kernels {

/// Whether an output of `values` elements is large enough to stream: well beyond the caches
/// (16 MB), so that the next layer would not have found it there anyway. Smaller outputs are
/// written normally and stay in cache for the next layer.
template <typename T>
bool worth_streaming(Index values) {
  return double(values) * sizeof(T) > 16.0 * (1 << 20);
}

/// target[0, count) = source[0, count), with non-temporal stores where the target is aligned
/// to the vector width. Ends with a store fence, so other threads see the values once they
/// synchronise with this one.
template <typename T>
void stream_copy(const T* source, T* target, Index count) {
#if defined(__AVX512F__) || defined(__AVX__)
  if constexpr (std::is_same_v<T, float>) {
#if defined(__AVX512F__)
    constexpr Index width = 16;
#else
    constexpr Index width = 8;
#endif
    if (reinterpret_cast<std::uintptr_t>(target) % (width * sizeof(float)) == 0) {
      Index i = 0;
      for (; i + width <= count; i += width) {
#if defined(__AVX512F__)
        _mm512_stream_ps(target + i, _mm512_loadu_ps(source + i));
#else
        _mm256_stream_ps(target + i, _mm256_loadu_ps(source + i));
#endif
      }
      std::copy(source + i, source + count, target + i);
      _mm_sfence();
      return;
    }
  }
#endif
  std::copy(source, source + count, target);
}

}  // namespace stratum::kernels
