#include <doctest/doctest.h>
#include <stratum/stratum.hpp>

#include <cstdint>
#include <set>

using namespace stratum;

TEST_CASE("Shape: sizes and printing") {
  const Shape s{126, 126, 32};
  CHECK(s.rank() == 3);
  CHECK(s.num_elements() == 126 * 126 * 32);
  CHECK(s.to_string() == "(126, 126, 32)");
  CHECK(s.to_batch_string() == "(None, 126, 126, 32)");
  CHECK(Shape{5}.to_string() == "(5,)");
  CHECK(s.with_batch(8) == Shape{8, 126, 126, 32});
  CHECK(s.with_batch(8).without_batch() == s);
}

TEST_CASE("Tensor: NHWC views through Eigen without copies") {
  Tensor<float> t({2, 3, 4, 5});
  for (Index i = 0; i < t.size(); ++i) t[i] = static_cast<float>(i);
  auto v = t.view<4>();
  // Row-major: the last index (channel) varies fastest.
  CHECK(v(1, 2, 3, 4) == static_cast<float>(((1 * 3 + 2) * 4 + 3) * 5 + 4));
  CHECK(v.data() == t.data());
  auto m = t.matrix();
  CHECK(m.rows() == 2);
  CHECK(m.cols() == 60);
  CHECK(m(1, 0) == 60.0f);
  CHECK_THROWS_AS((void)t.view<2>(), ShapeError);
  CHECK_THROWS_AS(t.reshape({7, 7}), ShapeError);
  CHECK_THROWS_AS(Tensor<float>({2, 2}, {1, 2, 3}), ShapeError);
}

TEST_CASE("Tensor: resize keeps the buffer when the size does not grow") {
  Tensor<float> t({4, 8});
  const float* before = t.data();
  t.resize({2, 8});
  t.resize({4, 8});
  CHECK(t.data() == before);
}

TEST_CASE("Tensor: every buffer starts on a cache line, in every build") {
  // Small blocks and large ones (glibc serves those by mmap, 16 bytes past a page boundary);
  // a build without -march would give Eigen's 16-byte alignment.
  for (Index n : {Index{1}, Index{7}, Index{1000}, Index{300000}, Index{5000000}}) {
    Tensor<float> f({n});
    Tensor<double> d({n, 1});
    CHECK(reinterpret_cast<std::uintptr_t>(f.data()) % 64 == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(d.data()) % 64 == 0);
  }
  AlignedVector<float> workspace(12345);
  CHECK(reinterpret_cast<std::uintptr_t>(workspace.data()) % 64 == 0);
}

TEST_CASE("Random: reproducible, uniform, unbiased shuffles") {
  Random a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) CHECK(a.next_u64() == b.next_u64());
  CHECK(a.next_u64() != c.next_u64());

  Random r(1);
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    const double u = r.uniform();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
  }
  CHECK(std::abs(sum / 100000 - 0.5) < 0.005);

  std::vector<int> counts(5);
  for (int i = 0; i < 50000; ++i) ++counts[r.below(5)];
  for (int n : counts) CHECK(std::abs(n - 10000) < 400);

  std::vector<int> v{0, 1, 2, 3, 4, 5, 6, 7};
  r.shuffle(v.begin(), v.end());
  CHECK(std::set<int>(v.begin(), v.end()).size() == 8);

  // The state can be saved and restored (checkpoints rely on it).
  const Random::State saved = r.state();
  const auto next = r.next_u64();
  r.set_state(saved);
  CHECK(r.next_u64() == next);
}
