// The threads behind stratum's parallel loops (parallel.hpp): a pool made for machines that are
// doing something else too.
//
// With a static split over two threads, a step is as slow as the slower thread, and on a busy
// machine the scheduler takes a core away from one of them for milliseconds at a time: the
// other finishes its half and spins at the barrier, holding a core the late thread could have
// used. Measured on our 2-core machine beside one busy process, two OpenMP threads took 1.2 to
// 5 times as long as one (docs/kernels.md). So this pool
//   - hands out work a range at a time from a shared counter: a thread that runs takes over
//     the work of one that was descheduled, and the region waits at most for the range a late
//     thread holds. The ranges shrink towards the end of a region (run_length), so that on a
//     quiet machine the threads also finish within a few items of each other;
//   - never waits for a worker to join: the calling thread starts on the tasks at once, and a
//     worker that wakes up after every task was taken goes back to sleep;
//   - spins only briefly (spin_time) before it sleeps on a condition variable, so that a
//     waiting thread gives its core back to the machine, where the scheduler can move the
//     late thread onto it.
//
// Task claims carry the region's generation, so a worker that wakes up late can never run a
// task of a region that has ended. The calling thread is thread 0; workers are 1 .. size-1.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "errors.hpp"
#include "tensor.hpp"

namespace stratum::detail {

/// A hint to the CPU that this thread is spinning (x86 PAUSE), so it yields pipeline resources.
inline void spin_pause() {
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// The thread count stratum starts with: STRATUM_NUM_THREADS, else OMP_NUM_THREADS (honoured
/// because stratum ran on OpenMP before), else the CPUs this process may run on (its affinity
/// mask, which taskset, cgroups' cpusets and MPI launchers set), else the hardware's count.
inline int default_thread_count() {
  for (const char* name : {"STRATUM_NUM_THREADS", "OMP_NUM_THREADS"})
    if (const char* value = std::getenv(name); value && *value) {
      char* end = nullptr;
      const long n = std::strtol(value, &end, 10);
      if (*end != '\0' && *end != ',')
        throw Error(std::string(name) + "=" + value + ": not a number");
      if (n >= 1) return static_cast<int>(std::min(n, 1024L));
    }
#if defined(__linux__)
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0) return std::max(CPU_COUNT(&cpus), 1);
#endif
  return static_cast<int>(std::max(std::thread::hardware_concurrency(), 1u));
}

/// How long a waiting thread spins before it sleeps: long enough to catch the next region of a
/// training step without a wake-up (which takes tens of microseconds), short enough that a
/// waiting thread soon gives its core back.
inline constexpr std::chrono::microseconds spin_time{50};

/// A counter that threads wait on until it moves away from a value they saw: they spin for
/// spin_time, then sleep on a condition variable. (A first version slept in C++20's
/// std::atomic::wait; with GCC 12's libstdc++ its workers sometimes slept through the change
/// meant to wake them. A condition variable's rules are plain.)
class WaitableCounter {
 public:
  [[nodiscard]] std::uint32_t load() const { return value_.load(std::memory_order_seq_cst); }

  /// Sets the value and wakes every thread waiting for a change.
  void store(std::uint32_t value) {
    value_.store(value, std::memory_order_seq_cst);
    wake();
  }
  /// Adds `delta`, wakes the waiters, and returns the value before.
  std::uint32_t add(std::uint32_t delta) {
    const std::uint32_t before = value_.fetch_add(delta, std::memory_order_seq_cst);
    wake();
    return before;
  }
  /// Subtracts `delta` and returns the value before; wakes the waiters when it reaches zero.
  std::uint32_t subtract(std::uint32_t delta) {
    const std::uint32_t before = value_.fetch_sub(delta, std::memory_order_seq_cst);
    if (before == delta) wake();
    return before;
  }

  /// Returns once the value differs from `seen`, and the value then.
  std::uint32_t wait_while(std::uint32_t seen) {
    const auto deadline = std::chrono::steady_clock::now() + spin_time;
    for (int spins = 1;; ++spins) {
      if (const std::uint32_t now = load(); now != seen) return now;
      spin_pause();
      if (spins % 64 == 0 && std::chrono::steady_clock::now() > deadline) break;
    }
    std::unique_lock lock(mutex_);
    // Counted before the value is read again: a writer that changes the value after this
    // read sees the sleeper and wakes it (both are sequentially consistent).
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    std::uint32_t now;
    changed_.wait(lock, [&] { return (now = load()) != seen; });
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
    return now;
  }

 private:
  void wake() {
    if (sleepers_.load(std::memory_order_seq_cst) == 0) return;
    { std::lock_guard lock(mutex_); }  // a sleeper between its check and its wait has waited
    changed_.notify_all();
  }

  std::atomic<std::uint32_t> value_{0};
  std::atomic<int> sleepers_{0};
  std::mutex mutex_;
  std::condition_variable changed_;
};

class ThreadPool {
 public:
  static ThreadPool& instance() {
    static ThreadPool pool;
    return pool;
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() { stop_workers(); }

  /// The threads a region runs on, the calling thread included.
  [[nodiscard]] int size() const { return size_.load(std::memory_order_relaxed); }

  /// Sets the thread count (at least 1). Not while a region runs.
  void resize(int threads) {
    std::lock_guard lock(region_mutex_);
    stop_workers();
    size_.store(std::max(threads, 1), std::memory_order_relaxed);
  }

  /// The index of the calling thread in the current region: 0 for the caller, 1.. for workers.
  [[nodiscard]] static int thread_index() { return this_thread_index(); }

  /// Runs task(i) for every i in [0, count), on the calling thread and the workers; returns
  /// when all are done. A region started from inside a task runs on the calling thread alone.
  /// An exception thrown by a task is rethrown here (the other tasks still run).
  template <typename Task>
  void run(Index count, Task& task) {
    auto run_one_by_one = [&task](Index begin, Index end) {
      for (Index i = begin; i < end; ++i) task(i);
    };
    run_ranges(count, 1, run_one_by_one);
  }

  /// Runs task(begin, end) over ranges that cover [0, count) once, in order: each claim takes
  /// the next range, of longest_range items while many are left and fewer towards the end
  /// (run_length), so that the threads finish within a few items of each other rather than
  /// one range. Otherwise as run().
  template <typename RangeTask>
  void run_ranges(Index count, Index longest_range, RangeTask& task) {
    if (count <= 0) return;
    if (count == 1 || size() == 1 || inside_region()) {
      task(Index{0}, count);
      return;
    }
    if (count > Index{UINT32_MAX}) throw Error("parallel region of more than 2^32 items");
    std::lock_guard lock(region_mutex_);
    start_workers();
    task_count_ = count;
    longest_range_.store(std::max<Index>(longest_range, 1), std::memory_order_relaxed);
    task_object_ = &task;
    task_call_ = [](void* object, Index begin, Index end) {
      (*static_cast<RangeTask*>(object))(begin, end);
    };
    error_ = nullptr;
    pending_.store(static_cast<std::uint32_t>(count));
    const std::uint32_t generation = generation_.load() + 1;
    cursor_.store(std::uint64_t{generation} << 32 | static_cast<std::uint64_t>(count),
                  std::memory_order_release);
    generation_.store(generation);
    work(generation);
    for (std::uint32_t left = pending_.load(); left != 0;) left = pending_.wait_while(left);
    if (error_) std::rethrow_exception(error_);
  }

  /// How many items a claim takes when `left` are not yet claimed: a share of what is left,
  /// 1 / (2 x threads) of it (as OpenMP's guided schedule shrinks its chunks), at most
  /// `longest_range` and at least one. Where a range of longest_range was the last claim, a
  /// thread could wait for the other's whole range at the end of every region; the shrinking
  /// ranges leave it one item to wait for. It depends only on `left`, so a region's ranges are
  /// the same every time.
  [[nodiscard]] static Index run_length(Index left, Index longest_range, Index threads) {
    return std::clamp<Index>((left + 2 * threads - 1) / (2 * threads), 1, longest_range);
  }
  /// Whether the calling thread is running a task of a region (a region it starts runs on it
  /// alone).
  static bool in_task() { return inside_region(); }

 private:
  ThreadPool() : size_(default_thread_count()) {}

  static int& this_thread_index() {
    thread_local int index = 0;
    return index;
  }
  static bool& inside_region() {
    thread_local bool inside = false;
    return inside;
  }

  /// Claims and runs ranges of region `generation` until none is left, in order (the cursor's
  /// low half counts the items not yet claimed), so that a loop that stops early has run
  /// every item before the one that stopped it.
  void work(std::uint32_t generation) {
    inside_region() = true;
    std::uint64_t cursor = cursor_.load(std::memory_order_acquire);
    for (;;) {
      const auto left = static_cast<Index>(cursor & 0xFFFFFFFFu);
      if (cursor >> 32 != generation || left == 0) break;
      // `take` is worked out before the claim (longest_range_ is atomic for that) and used only
      // if the claim succeeds. Then the region is still running (these items are pending),
      // and task_count_, task_object_ and task_call_ are the ones it published.
      const Index take = run_length(left, longest_range_.load(std::memory_order_relaxed), size());
      if (!cursor_.compare_exchange_weak(cursor, cursor - static_cast<std::uint64_t>(take),
                                         std::memory_order_acq_rel, std::memory_order_acquire))
        continue;
      const Index begin = task_count_ - left;
      try {
        task_call_(task_object_, begin, begin + take);
      } catch (...) {
        std::lock_guard lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
      pending_.subtract(static_cast<std::uint32_t>(take));
      cursor = cursor_.load(std::memory_order_acquire);
    }
    inside_region() = false;
  }

  void worker_loop(int index, std::uint32_t seen) {
    this_thread_index() = index;
    for (;;) {
      seen = generation_.wait_while(seen);
      if (stopping_.load(std::memory_order_acquire)) return;
      work(seen);
    }
  }

  void start_workers() {
    const int wanted = size() - 1;
    if (static_cast<int>(workers_.size()) == wanted) return;
    stopping_.store(false, std::memory_order_relaxed);
    const std::uint32_t now = generation_.load();
    for (int i = 1; i <= wanted; ++i)
      workers_.emplace_back([this, i, now] { worker_loop(i, now); });
  }

  void stop_workers() {
    if (workers_.empty()) return;
    stopping_.store(true, std::memory_order_release);
    generation_.add(1);  // wakes them; no region has this generation
    for (auto& worker : workers_) worker.join();
    workers_.clear();
  }

  std::atomic<int> size_;
  std::vector<std::thread> workers_;
  std::mutex region_mutex_;               // one region at a time, whichever thread starts it
  WaitableCounter generation_;            // the latest region; what idle workers wait on
  std::atomic<std::uint64_t> cursor_{0};  // generation << 32 | items not yet claimed
  WaitableCounter pending_;               // items of the region not yet finished
  std::atomic<bool> stopping_{false};
  Index task_count_ = 0;
  std::atomic<Index> longest_range_{1};  // read before a claim, so atomic
  void* task_object_ = nullptr;
  void (*task_call_)(void*, Index, Index) = nullptr;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace stratum::detail
