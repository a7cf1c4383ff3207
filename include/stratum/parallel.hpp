// Threads: one knob for all of stratum, and the two loops every parallel kernel is written with.
//
// stratum parallelises at the level of whole images, rows or tiles, on its own thread pool
// (thread_pool.hpp: dynamic, so that a busy machine costs no more than the CPU time it takes).
// Each task runs the single-threaded kernels (our GEMM, Eigen's element-wise code) inside.
//
//   parallel_for(count, body)             body(i) for each i, handed out in runs of consecutive
//                                         i (at most tasks_per_thread runs per thread)
//   parallel_for_slots(count, slots, body) body(slot, begin, end) over `slots` fixed parts, for
//                                         reductions: each slot sums into its own partial result,
//                                         and the caller adds the partials in slot order
//
// Which thread runs which task varies from run to run; results never depend on it. A
// reduction's slots depend only on the size and the thread count, so the same thread count
// gives the same bits every time.
#pragma once

#include <algorithm>
#include <vector>

#include "tensor.hpp"
#include "thread_pool.hpp"

namespace stratum {

/// Sets how many threads stratum's kernels use (at least 1).
inline void set_num_threads(int threads) {
  threads = std::max(threads, 1);
  detail::ThreadPool::instance().resize(threads);
}

/// The number of threads a parallel region uses.
inline int num_threads() {
  return detail::ThreadPool::instance().size();
}

/// The index of the calling thread inside a parallel region, in [0, num_threads()); 0 outside.
inline int thread_index() {
  return detail::ThreadPool::thread_index();
}

/// How many threads a parallel region started here runs on: 1 inside a task of another region
/// (which runs a new region on the calling thread), num_threads() elsewhere. For work that pays
/// a cost of its own per part, so that it splits only where the parts can run at once.
inline int threads_for_region() {
  return detail::ThreadPool::in_task() ? 1 : num_threads();
}

/// How many tasks a parallel_for region is cut into at most, per thread. Handing out one row at
/// a time made each of a convolution's 4,032 output rows (about 2 us of work each: 7.6 ms on one
/// thread) a task of its own, and two threads took longer than one: conv1_forward_direct/32
/// took 8.6-10.0 ms with two threads, 7.6-9.6 ms with one; in runs of consecutive rows,
/// 4.1-4.6 ms with two (docs/kernels.md, "A seventh window"). Each thread's rows then follow one
/// another, so the input rows that neighbouring output rows share stay in its cache, and the
/// shared counters are touched 32 times a region, not 4,032. 16 runs per thread still leave a
/// thread that the system deschedules holding at most 1/16 of its share, which the other
/// threads do not wait for.
inline constexpr Index tasks_per_thread = 16;

/// Runs body(i) for every i in [0, count) on the pool's threads, in runs of consecutive i, each
/// run to whichever thread is free: runs of count / (tasks_per_thread x threads) (at least 1)
/// while much is left, shorter ones towards the end (ThreadPool::run_length). For work whose
/// results cannot depend on which thread runs which i.
template <typename Body>
void parallel_for(Index count, Body&& body) {
  const Index tasks = tasks_per_thread * Index{threads_for_region()};
  auto run = [&](Index begin, Index end) {
    for (Index i = begin; i < end; ++i) body(i);
  };
  detail::ThreadPool::instance().run_ranges(count, (count + tasks - 1) / tasks, run);
}

/// Runs body(begin, end) over [0, size) in blocks of `block` elements, in parallel.
template <typename Body>
void parallel_for_blocks(Index size, Index block, Body&& body) {
  auto run_block = [&](Index b) { body(b * block, std::min(size, (b + 1) * block)); };
  parallel_for((size + block - 1) / block, run_block);
}

/// How many values the partial results of one reduction may hold in all before it takes fewer
/// slots: 4 MB of floats, which the slots zero and the caller's threads sum again.
inline constexpr Index reduction_partials_budget = Index{1} << 20;

/// The number of parts a parallel reduction over `count` items splits into, when each part's
/// partial result holds `partial_size` values: as many as parallel_for's tasks, so that the
/// slots a descheduled thread would have taken go to the others, and on a quiet machine the
/// threads end within a small slot of each other (with four slots per thread, the by-image
/// backward pass of the notebook's conv2 had one thread idle for 2 ms of its 46 at the end);
/// fewer where the partials would pass reduction_partials_budget, but at least four per thread.
inline Index reduction_slots(Index count, Index partial_size) {
  const Index threads = threads_for_region();
  const Index affordable = reduction_partials_budget / std::max<Index>(partial_size, 1);
  const Index slots = std::clamp(affordable, 4 * threads, tasks_per_thread * threads);
  return std::clamp<Index>(slots, 1, std::max<Index>(count, 1));
}

/// Runs body(slot, begin, end) for the `slots` contiguous parts of [0, count) (as even as
/// can be, fewer when count is smaller), in parallel. Returns the number of slots used.
template <typename Body>
Index parallel_for_slots(Index count, Index slots, Body&& body) {
  slots = std::clamp<Index>(slots, 1, std::max<Index>(count, 1));
  auto run_slot = [&](Index slot) { body(slot, count * slot / slots, count * (slot + 1) / slots); };
  parallel_for(slots, run_slot);
  return slots;
}

/// One scratch buffer per thread (or per slot of a reduction), kept between calls so that a
/// training step allocates nothing. Call `prepare` outside the parallel region, then `get`
/// inside it.
template <typename T>
class ThreadScratch {
 public:
  void prepare(Index elements_per_thread) { prepare(elements_per_thread, num_threads()); }
  void prepare(Index elements_per_buffer, Index buffers) {
    buffers_.resize(static_cast<std::size_t>(buffers));
    for (auto& b : buffers_)
      if (static_cast<Index>(b.size()) < elements_per_buffer)
        b.resize(static_cast<std::size_t>(elements_per_buffer));
  }
  [[nodiscard]] T* get() { return buffers_[static_cast<std::size_t>(thread_index())].data(); }
  [[nodiscard]] T* get(Index buffer) { return buffers_[static_cast<std::size_t>(buffer)].data(); }
  [[nodiscard]] int count() const { return static_cast<int>(buffers_.size()); }

 private:
  std::vector<AlignedVector<T>> buffers_;
};

/// out[0 .. count) = the sum over the buffers of `partials`, in buffer order, of each one's
/// values [offset, offset + count): how a reduction adds its slots' partial results, in an
/// order that depends only on the slots.
template <typename T>
void sum_slots(ThreadScratch<T>& partials, Index offset, Index count, T* out) {
  std::copy_n(partials.get(0) + offset, count, out);
  for (int t = 1; t < partials.count(); ++t) {
    const T* partial = partials.get(t) + offset;
    for (Index i = 0; i < count; ++i) out[i] += partial[i];
  }
}

}  // namespace stratum
