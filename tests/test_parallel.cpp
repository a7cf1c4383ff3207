// The thread pool and the parallel loops (parallel.hpp, thread_pool.hpp): every task runs
// exactly once whatever the thread count, regions started inside a task run on that thread,
// a task's exception reaches the caller, and a reduction's slots cover the range in order.
#include <doctest/doctest.h>
#include <stratum/parallel.hpp>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace stratum;

namespace {

/// Runs body with `threads` threads, then restores the thread count.
template <typename Body>
void with_threads(int threads, Body&& body) {
  const int saved = num_threads();
  set_num_threads(threads);
  body();
  set_num_threads(saved);
}

}  // namespace

TEST_CASE("parallel_for runs every index exactly once, for any thread count") {
  for (int threads : {1, 2, 3, 5})
    with_threads(threads, [&] {
      CHECK(num_threads() == threads);
      for (Index count : {0, 1, 2, 7, 64, 1000}) {
        std::vector<std::atomic<int>> runs(static_cast<std::size_t>(count));
        for (int region = 0; region < 20; ++region)
          parallel_for(count, [&](Index i) { runs[static_cast<std::size_t>(i)]++; });
        for (Index i = 0; i < count; ++i) {
          INFO("threads " << threads << ", count " << count << ", index " << i);
          CHECK(runs[static_cast<std::size_t>(i)] == 20);
        }
      }
    });
}

TEST_CASE("parallel_for uses the pool's threads, each with its own index") {
  with_threads(2, [] {
    std::vector<std::atomic<int>> by_thread(2);
    std::atomic<int> out_of_range{0};
    // Tasks long enough that the worker wakes up and takes some.
    parallel_for(64, [&](Index) {
      const int t = thread_index();
      if (t < 0 || t >= 2) {
        out_of_range++;
        return;
      }
      by_thread[static_cast<std::size_t>(t)]++;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    });
    CHECK(out_of_range == 0);
    CHECK(by_thread[0] + by_thread[1] == 64);
    CHECK(by_thread[0] > 0);
    CHECK(by_thread[1] > 0);
  });
  CHECK(thread_index() == 0);
}

/// The ranges a region of `count` items is claimed in, for `threads` threads and ranges of at
/// most `longest`: what ThreadPool::run_length gives, claim after claim.
std::vector<Index> claimed_range_starts(Index count, Index longest, Index threads) {
  std::vector<Index> starts;
  for (Index begin = 0; begin < count;) {
    starts.push_back(begin);
    begin += detail::ThreadPool::run_length(count - begin, longest, threads);
  }
  return starts;
}

TEST_CASE("run_length: full ranges while much is left, shrinking to single items at the end") {
  // 960 items (the notebook's conv2 bands at batch 32) on 2 threads, ranges of at most 30.
  const std::vector<Index> starts = claimed_range_starts(960, 30, 2);
  std::vector<Index> lengths;
  for (std::size_t r = 0; r < starts.size(); ++r)
    lengths.push_back((r + 1 < starts.size() ? starts[r + 1] : 960) - starts[r]);
  CHECK(lengths.front() == 30);
  CHECK(lengths.back() == 1);
  for (std::size_t r = 1; r < lengths.size(); ++r) {
    INFO("range " << r);
    CHECK(lengths[r] <= lengths[r - 1]);  // never longer than the one before
  }
  // Full ranges while more than 2 x threads x 30 = 120 items are left, and at 120: 29 of them.
  CHECK(std::count(lengths.begin(), lengths.end(), Index{30}) == 29);
  CHECK(lengths.size() < 32 + 20);  // the tail adds few claims
  // Ranges of one item are plain one-by-one hand-out, and a range never passes `longest`.
  CHECK(claimed_range_starts(10, 1, 2).size() == 10);
  CHECK(detail::ThreadPool::run_length(1000000, 7, 4) == 7);
  CHECK(detail::ThreadPool::run_length(1, 7, 4) == 1);
}

TEST_CASE("parallel_for hands out runs of consecutive indices, each run on one thread") {
  with_threads(2, [] {
    constexpr Index count = 320;
    const Index longest = count / (tasks_per_thread * 2);  // runs of 10, shorter at the end
    std::vector<int> thread_of(static_cast<std::size_t>(count), -1);
    // Tasks long enough that both threads take some.
    parallel_for(count, [&](Index i) {
      thread_of[static_cast<std::size_t>(i)] = thread_index();
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    });
    std::vector<bool> starts_run(static_cast<std::size_t>(count), false);
    for (Index start : claimed_range_starts(count, longest, 2))
      starts_run[static_cast<std::size_t>(start)] = true;
    int threads_seen[2] = {0, 0};
    for (Index i = 0; i < count; ++i) {
      const int t = thread_of[static_cast<std::size_t>(i)];
      REQUIRE((t == 0 || t == 1));
      threads_seen[t] = 1;
      if (!starts_run[static_cast<std::size_t>(i)]) {
        INFO("index " << i);
        CHECK(t == thread_of[static_cast<std::size_t>(i - 1)]);
      }
    }
    CHECK(threads_seen[0] + threads_seen[1] == 2);
  });
}

TEST_CASE("a region inside a task runs on that task's thread") {
  with_threads(3, [] {
    std::vector<std::atomic<int>> cells(20 * 30);
    std::atomic<int> moved{0};
    parallel_for(20, [&](Index i) {
      const int outer = thread_index();
      parallel_for(30, [&](Index j) {
        if (thread_index() != outer) moved++;
        cells[static_cast<std::size_t>(i * 30 + j)]++;
      });
    });
    CHECK(moved == 0);
    for (auto& c : cells) CHECK(c == 1);
  });
}

TEST_CASE("threads_for_region: every thread outside a region, one inside a task") {
  with_threads(3, [] {
    CHECK(threads_for_region() == 3);
    std::vector<int> inside(8, 0);
    parallel_for(8, [&](Index i) { inside[static_cast<std::size_t>(i)] = threads_for_region(); });
    CHECK(inside == std::vector<int>(8, 1));
    CHECK(threads_for_region() == 3);  // the region is over
  });
}

TEST_CASE("an exception in a task reaches the caller, and the pool still works after it") {
  with_threads(2, [] {
    std::atomic<int> ran{0};
    CHECK_THROWS_WITH_AS(parallel_for(50,
                                      [&](Index i) {
                                        ran++;
                                        if (i == 17) throw std::runtime_error("task 17 failed");
                                      }),
                         "task 17 failed", std::runtime_error);
    CHECK(ran == 50);  // the other tasks still ran
    std::atomic<Index> sum{0};
    parallel_for(100, [&](Index i) { sum += i; });
    CHECK(sum == 4950);
  });
}

TEST_CASE("parallel_for_slots splits the range into contiguous, ordered parts") {
  with_threads(2, [] {
    for (Index count : {1, 5, 8, 9, 100})
      for (Index slots : {1, 3, 8, 16}) {
        std::vector<Index> begins(static_cast<std::size_t>(slots), -1),
            ends(static_cast<std::size_t>(slots), -1);
        const Index used = parallel_for_slots(count, slots, [&](Index s, Index b, Index e) {
          begins[static_cast<std::size_t>(s)] = b;
          ends[static_cast<std::size_t>(s)] = e;
        });
        INFO("count " << count << ", slots " << slots);
        CHECK(used == std::min(count, slots));
        CHECK(begins[0] == 0);
        CHECK(ends[static_cast<std::size_t>(used - 1)] == count);
        for (Index s = 0; s < used; ++s) {
          CHECK(ends[static_cast<std::size_t>(s)] > begins[static_cast<std::size_t>(s)]);
          if (s > 0)
            CHECK(begins[static_cast<std::size_t>(s)] == ends[static_cast<std::size_t>(s - 1)]);
        }
      }
  });
}

TEST_CASE("a reduction over slots gives the same bits every time for a thread count") {
  // Float sums depend on their order: slots summed in slot order make that order fixed.
  std::vector<float> values(10007);
  for (std::size_t i = 0; i < values.size(); ++i)
    values[i] = 1.0f / float(i + 1) * (i % 3 ? 1.f : -3.f);
  auto reduce = [&] {
    const Index slots = reduction_slots(static_cast<Index>(values.size()), 1);
    std::vector<float> partial(static_cast<std::size_t>(slots), 0.f);
    parallel_for_slots(static_cast<Index>(values.size()), slots, [&](Index s, Index b, Index e) {
      for (Index i = b; i < e; ++i)
        partial[static_cast<std::size_t>(s)] += values[static_cast<std::size_t>(i)];
    });
    return std::accumulate(partial.begin(), partial.end(), 0.f);
  };
  with_threads(2, [&] {
    const float first = reduce();
    for (int run = 0; run < 50; ++run) CHECK(reduce() == first);
  });
}

TEST_CASE("reduction_slots: one per task, fewer for large partial results, never more than items") {
  with_threads(2, [] {
    CHECK(reduction_slots(1000, 100) == tasks_per_thread * 2);
    // Partials of a million values each: the floor of four slots per thread.
    CHECK(reduction_slots(1000, reduction_partials_budget) == 8);
    CHECK(reduction_slots(1000, reduction_partials_budget / 12) == 12);
    CHECK(reduction_slots(5, 100) == 5);
    CHECK(reduction_slots(0, 100) == 1);
    // Inside a task a region runs on one thread: four slots at most there.
    std::vector<Index> inside(2, 0);
    parallel_for(2, [&](Index i) {
      inside[static_cast<std::size_t>(i)] = reduction_slots(1000, reduction_partials_budget);
    });
    CHECK(inside == std::vector<Index>{4, 4});
  });
}

TEST_CASE("regions started from several threads at once take turns") {
  with_threads(2, [] {
    std::atomic<Index> total{0};
    std::vector<std::thread> callers;
    for (int c = 0; c < 3; ++c)
      callers.emplace_back([&] {
        for (int r = 0; r < 20; ++r) parallel_for(10, [&](Index i) { total += i; });
      });
    for (auto& t : callers) t.join();
    CHECK(total == 3 * 20 * 45);
  });
}
