// Threads: one knob for all of stratum.
//
// stratum parallelises at the level of whole images or tiles with OpenMP and keeps each
// thread's Eigen GEMMs single-threaded inside those regions (Eigen runs sequentially when
// called from inside an OpenMP parallel region). Outside them, Eigen may use the same number
// of threads for its own large products (the Dense layers). `set_num_threads` sets both.
// Without OpenMP everything runs on one thread and the pragmas compile to nothing.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "tensor.hpp"

#define STRATUM_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define STRATUM_OMP(x) STRATUM_PRAGMA(omp x)
#else
#define STRATUM_OMP(x)
#endif

namespace stratum {

/// Sets how many threads stratum's kernels and Eigen's products use (at least 1).
inline void set_num_threads(int threads) {
  threads = std::max(threads, 1);
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
  Eigen::setNbThreads(threads);
}

/// The number of threads a parallel region will use.
inline int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// The index of the calling thread inside a parallel region (0 outside one).
inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/// Runs body(begin, end) over [0, size) in blocks of `block` elements, spread over the threads
/// (static schedule). For element-wise work, whose result cannot depend on the split.
template <typename Body>
void parallel_for_blocks(Index size, Index block, Body&& body) {
  STRATUM_OMP(parallel for schedule(static))
  for (Index begin = 0; begin < size; begin += block) body(begin, std::min(size, begin + block));
}

/// One scratch buffer per thread, kept between calls so that a training step allocates nothing.
/// Call `prepare` outside the parallel region, then `get` inside it.
template <typename T>
class ThreadScratch {
 public:
  void prepare(Index elements_per_thread) {
    buffers_.resize(static_cast<std::size_t>(num_threads()));
    for (auto& b : buffers_)
      if (static_cast<Index>(b.size()) < elements_per_thread)
        b.resize(static_cast<std::size_t>(elements_per_thread));
  }
  [[nodiscard]] T* get() { return buffers_[static_cast<std::size_t>(thread_index())].data(); }
  [[nodiscard]] T* get(int thread) { return buffers_[static_cast<std::size_t>(thread)].data(); }
  [[nodiscard]] int count() const { return static_cast<int>(buffers_.size()); }

 private:
  std::vector<AlignedVector<T>> buffers_;
};

}  // namespace stratum
