// CenterNet's targets and their decoding (detection/centernet_targets.hpp, detection/decode.hpp):
// maps worked out by hand, the rules for overlaps and shared cells, and encode -> decode
// recovering the boxes.
#include <doctest/doctest.h>

#include <stratum/detection/centernet_targets.hpp>
#include <stratum/detection/decode.hpp>
#include <stratum/random.hpp>

#include <cmath>
#include <limits>
#include <vector>

using namespace stratum;

namespace centernet_test {

/// Element (n, i, j, c) of an NHWC tensor.
template <typename T>
T at(const Tensor<T>& t, Index n, Index i, Index j, Index c) {
  return t[((n * t.dim(1) + i) * t.dim(2) + j) * t.dim(3) + c];
}

/// The sum of a tensor: how much of it is not zero, for "nothing else was written".
template <typename T>
double total(const Tensor<T>& t) {
  double sum = 0;
  for (T v : t) sum += double(v);
  return sum;
}

}  // namespace centernet_test

TEST_CASE("centernet_gaussian_radius: CenterNet's formula, by hand") {
  // 6 x 6 cells, min_overlap 0.7: the third case decides,
  //   a = 2.8, b = -1.4 * 12 = -16.8, c = -0.3 * 36 = -10.8,
  //   r3 = (b + sqrt(b^2 - 4ac)) / 2 = (-16.8 + sqrt(282.24 + 120.96)) / 2 = 1.64 -> 1
  //   (r1 = (12 + sqrt(144 - 4 * 6.35)) / 2 = 11.4, r2 = (24 + sqrt(576 - 172.8)) / 2 = 22.0).
  CHECK(centernet_gaussian_radius(6, 6, 0.7) == 1);
  // 20 x 20: r3 = (-56 + sqrt(3136 + 1344)) / 2 = 5.47 -> 5.
  CHECK(centernet_gaussian_radius(20, 20, 0.7) == 5);
  // 3 x 3: r3 = (-8.4 + sqrt(70.56 + 30.24)) / 2 = 0.82 -> 0: a single cell.
  CHECK(centernet_gaussian_radius(3, 3, 0.7) == 0);
  // A lower overlap allows larger shifts: 20 x 20 at 0.5: r3 = (-40 + sqrt(1600 + 1600)) / 4 ...
  // with CenterNet's /2: (-40 + 56.57) / 2 = 8.28 -> 8.
  CHECK(centernet_gaussian_radius(20, 20, 0.5) == 8);
}

TEST_CASE("CenterNet targets of one box, by hand") {
  // Input 64 x 64, stride 4: output 16 x 16, two classes. Box [2, 26] x [6, 30], class 1:
  //   w = h = 24 px = 6 cells; centre (14, 18) px = (3.5, 4.5) cells: cell (i, j) = (4, 3),
  //   offset (0.5, 0.5); size (log 6, log 6); radius 1 (above), sigma = 3 / 6 = 0.5:
  //   heatmap 1 at (4, 3), exp(-1 / 0.5) = e^-2 at its four neighbours, e^-4 at the diagonals.
  CenterNetEncoding encoding;
  encoding.classes = 2;
  CenterNetTargets<double> targets;
  targets.resize(2, 16, 16, encoding);
  const std::vector<LabelledBox> boxes{{{2, 6, 26, 30}, 1}};
  CHECK(encode_centernet_targets<double>(boxes, encoding, targets, 1) == 1);
  using centernet_test::at;
  const auto& heat = targets.heatmap;
  CHECK(at(heat, 1, 4, 3, 1) == 1.0);
  CHECK(at(heat, 1, 3, 3, 1) == doctest::Approx(std::exp(-2.0)));
  CHECK(at(heat, 1, 5, 3, 1) == doctest::Approx(std::exp(-2.0)));
  CHECK(at(heat, 1, 4, 2, 1) == doctest::Approx(std::exp(-2.0)));
  CHECK(at(heat, 1, 4, 4, 1) == doctest::Approx(std::exp(-2.0)));
  CHECK(at(heat, 1, 3, 2, 1) == doctest::Approx(std::exp(-4.0)));
  CHECK(at(heat, 1, 5, 4, 1) == doctest::Approx(std::exp(-4.0)));
  CHECK(centernet_test::total(heat) ==
        doctest::Approx(1 + 4 * std::exp(-2.0) + 4 * std::exp(-4.0)));
  CHECK(at(targets.size, 1, 4, 3, 0) == doctest::Approx(std::log(6.0)));
  CHECK(at(targets.size, 1, 4, 3, 1) == doctest::Approx(std::log(6.0)));
  CHECK(at(targets.offset, 1, 4, 3, 0) == doctest::Approx(0.5));
  CHECK(at(targets.offset, 1, 4, 3, 1) == doctest::Approx(0.5));
  CHECK(at(targets.mask, 1, 4, 3, 0) == 1.0);
  CHECK(centernet_test::total(targets.mask) == 1.0);
  CHECK(centernet_test::total(targets.size) == doctest::Approx(2 * std::log(6.0)));
  // Sample 0 untouched.
  for (Index k = 0; k < 16 * 16 * 2; ++k) CHECK(targets.heatmap[k] == 0.0);

  // Linear sizes: (6, 6) cells. Encoding the sample again replaces what was there.
  encoding.size_encoding = SizeEncoding::linear;
  encode_centernet_targets<double>(boxes, encoding, targets, 1);
  CHECK(at(targets.size, 1, 4, 3, 0) == 6.0);
  CHECK(centernet_test::total(targets.mask) == 1.0);
}

TEST_CASE(
    "CenterNet targets: overlapping Gaussians keep the maximum; a shared cell keeps the smaller "
    "box") {
  CenterNetEncoding encoding;
  encoding.classes = 2;
  CenterNetTargets<float> targets;
  targets.resize(1, 16, 16, encoding);
  using centernet_test::at;
  // Two 24 px boxes of class 0 (radius 1), centres in cells (4, 3) and (4, 5): cell (4, 4) is a
  // neighbour of both, e^-2 from each, and stays e^-2 (a maximum, not a sum).
  // A third box, 8 x 12 px of class 1 (2 x 3 cells), centre (13, 17) px = (3.25, 4.25) cells:
  // the same cell (4, 3) as the first, smaller (96 < 576 px^2), so its size and offset win:
  // (log 2, log 3) and (0.25, 0.25). Its own class channel gets its own peak.
  const std::vector<LabelledBox> boxes{
      {{2, 6, 26, 30}, 0}, {{10, 6, 34, 30}, 0}, {{9, 11, 17, 23}, 1}};
  CHECK(encode_centernet_targets<float>(boxes, encoding, targets, 0) == 3);
  CHECK(at(targets.heatmap, 0, 4, 3, 0) == 1.0f);
  CHECK(at(targets.heatmap, 0, 4, 5, 0) == 1.0f);
  CHECK(at(targets.heatmap, 0, 4, 4, 0) == doctest::Approx(std::exp(-2.0)));
  CHECK(at(targets.heatmap, 0, 4, 3, 1) == 1.0f);
  CHECK(at(targets.size, 0, 4, 3, 0) == doctest::Approx(std::log(2.0)));
  CHECK(at(targets.size, 0, 4, 3, 1) == doctest::Approx(std::log(3.0)));
  CHECK(at(targets.offset, 0, 4, 3, 0) == doctest::Approx(0.25));
  CHECK(at(targets.offset, 0, 4, 3, 1) == doctest::Approx(0.25));
  CHECK(centernet_test::total(targets.mask) == 2.0);  // (4, 3) and (4, 5)
  // The order of the boxes does not matter.
  const std::vector<LabelledBox> reversed(boxes.rbegin(), boxes.rend());
  CenterNetTargets<float> again;
  again.resize(1, 16, 16, encoding);
  encode_centernet_targets<float>(reversed, encoding, again, 0);
  for (Index k = 0; k < again.size.size(); ++k) CHECK(again.size[k] == targets.size[k]);
  for (Index k = 0; k < again.heatmap.size(); ++k) CHECK(again.heatmap[k] == targets.heatmap[k]);
}

TEST_CASE("CenterNet targets: one face class, clipping, boxes outside the input") {
  CenterNetEncoding encoding;
  encoding.classes = 3;
  encoding.single_class = true;
  CenterNetTargets<float> targets;
  targets.resize(1, 8, 8, encoding);  // input 32 x 32
  CHECK(targets.heatmap.shape() == Shape{1, 8, 8, 1});
  using centernet_test::at;
  // Class 2 goes to the one channel. [-8, 8] x [0, 8] is clipped to [0, 8] x [0, 8]: 2 x 2 cells
  // centred at (1, 1) cells: cell (1, 1), offset (0, 0), size log 2. [40, 50] is outside: skipped.
  const std::vector<LabelledBox> boxes{{{-8, 0, 8, 8}, 2}, {{40, 0, 50, 8}, 1}};
  CHECK(encode_centernet_targets<float>(boxes, encoding, targets, 0) == 1);
  CHECK(at(targets.heatmap, 0, 1, 1, 0) == 1.0f);
  CHECK(at(targets.offset, 0, 1, 1, 0) == 0.0f);
  CHECK(at(targets.size, 0, 1, 1, 0) == doctest::Approx(std::log(2.0)));
  CHECK(centernet_test::total(targets.mask) == 1.0);
}

TEST_CASE("CenterNet targets reject bad boxes and shapes, naming them") {
  CenterNetEncoding encoding;
  encoding.classes = 2;
  CenterNetTargets<float> targets;
  targets.resize(1, 8, 8, encoding);
  const std::vector<LabelledBox> unknown{{{0, 0, 4, 4}, 0}, {{0, 0, 4, 4}, 2}};
  CHECK_THROWS_WITH_AS(encode_centernet_targets<float>(unknown, encoding, targets, 0),
                       "encode_centernet_targets: box 1 has class 2, outside [0, 2)", Error);
  const std::vector<LabelledBox> nan{{{0, 0, std::nanf(""), 4}, 0}};
  CHECK_THROWS_WITH_AS(encode_centernet_targets<float>(nan, encoding, targets, 0),
                       "encode_centernet_targets: box 0 has a coordinate that is not finite",
                       Error);
  CHECK_THROWS_AS(encode_centernet_targets<float>({}, encoding, targets, 1), ShapeError);
  encoding.classes = 3;  // the heatmap has 2 channels
  CHECK_THROWS_AS(encode_centernet_targets<float>({}, encoding, targets, 0), ShapeError);
  encoding.stride = 0;
  CHECK_THROWS_AS(targets.resize(1, 8, 8, encoding), Error);
}

TEST_CASE("decode_centernet: 3x3 peaks, top-K, threshold, boxes in input pixels, by hand") {
  // One image, 4 x 5 cells, stride 4, two classes, linear sizes. Heatmap (class 0):
  //   (1, 1) 0.9  peak                      box: centre ((1 + 0.5) 4, (1 + 0.25) 4) = (6, 5),
  //                                         size (2, 3) cells = (8, 12) px: [2, 10] x [-1, 11]
  //   (1, 2) 0.6  beside 0.9: not a peak
  //   (3, 4) 0.6  peak
  //   (0, 4) 0.3  peak, below a threshold of 0.5
  // class 1: (3, 0) 0.6 and (3, 1) 0.6: equal neighbours, both peaks; offset (0.5, 0.5), size
  // 1 cell: centres (2, 14) and (6, 14), boxes [0, 4] x [12, 16] and [4, 8] x [12, 16].
  // Ranked by score, then position (row, column, channel): 0.9 (1,1,0); 0.6 (3,0,1),
  // (3,1,1), (3,4,0). Top 3 drops (3,4,0).
  Tensor<float> heat({1, 4, 5, 2}), size({1, 4, 5, 2}), offset({1, 4, 5, 2});
  heat.set_zero();
  size.fill(1);
  offset.set_zero();
  const auto put = [](Tensor<float>& t, Index i, Index j, Index c, float v) {
    t[(i * 5 + j) * 2 + c] = v;
  };
  put(heat, 1, 1, 0, 0.9f);
  put(heat, 1, 2, 0, 0.6f);
  put(heat, 3, 4, 0, 0.6f);
  put(heat, 0, 4, 0, 0.3f);
  put(heat, 3, 0, 1, 0.6f);
  put(heat, 3, 1, 1, 0.6f);
  put(size, 1, 1, 0, 2);
  put(size, 1, 1, 1, 3);
  put(offset, 1, 1, 0, 0.5f);
  put(offset, 1, 1, 1, 0.25f);
  for (Index j : {0, 1})
    for (Index c : {0, 1}) put(offset, 3, j, c, 0.5f);
  CenterNetEncoding encoding;
  encoding.classes = 2;
  encoding.size_encoding = SizeEncoding::linear;
  CenterNetDecodeOptions options;
  options.top_k = 3;
  options.score_threshold = 0.5f;
  const auto detections = decode_centernet(heat, size, offset, encoding, options);
  REQUIRE(detections.size() == 1);
  const auto& d = detections[0];
  REQUIRE(d.size() == 3);
  CHECK(d[0].score == 0.9f);
  CHECK(d[0].class_id == 0);
  CHECK(d[0].box == Box{2, -1, 10, 11});
  CHECK(d[1].class_id == 1);
  CHECK(d[1].box == Box{0, 12, 4, 16});
  CHECK(d[2].class_id == 1);
  CHECK(d[2].box == Box{4, 12, 8, 16});
  options.top_k = 10;
  CHECK(decode_centernet(heat, size, offset, encoding, options)[0].size() == 4);
  options.score_threshold = 0;
  // Every zero cell with no greater neighbour is a peak too at threshold 0: the 0.3 joins.
  const auto all = decode_centernet(heat, size, offset, encoding, options)[0];
  CHECK(all[4].score == doctest::Approx(0.3f));

  // Logits: sigmoid(2.1972) = 0.9; the peaks are the same.
  for (float& v : heat) v = std::log(v / (1 - v) + 1e-30f);
  options.from_logits = true;
  options.score_threshold = 0.5f;
  const auto from_logits = decode_centernet(heat, size, offset, encoding, options)[0];
  REQUIRE(from_logits.size() == 4);
  CHECK(from_logits[0].score == doctest::Approx(0.9f));
  CHECK(from_logits[0].box == d[0].box);
}

TEST_CASE("decode_centernet rejects maps that do not fit, naming them") {
  CenterNetEncoding encoding;
  encoding.classes = 2;
  Tensor<float> heat({1, 4, 5, 2}), size({1, 4, 5, 2}), offset({1, 4, 4, 2});
  heat.set_zero();
  size.set_zero();
  CHECK_THROWS_WITH_AS(decode_centernet(heat, size, offset, encoding),
                       "decode_centernet: offset map (1, 4, 4, 2), expected (1, 4, 5, 2)",
                       ShapeError);
  encoding.classes = 3;
  CHECK_THROWS_AS(decode_centernet(heat, size, size, encoding), ShapeError);
  encoding.classes = 2;
  heat[7] = std::nanf("");
  CHECK_THROWS_WITH_AS(decode_centernet(heat, size, size, encoding),
                       "decode_centernet: the heatmap of image 0 is not a number at (0, 3, 1)",
                       Error);
}

TEST_CASE("CenterNet encode -> decode recovers the boxes") {
  // Random boxes of 2 to 200 px in a 512 x 512 input (128 x 128 cells), at most one centre per
  // cell; the targets' own maps decoded at threshold 0.99 (only the centres are 1) give every
  // box back, in both size encodings, with one class per heatmap and with one face class.
  Random random(14);
  for (const bool single_class : {false, true})
    for (const SizeEncoding units : {SizeEncoding::log, SizeEncoding::linear}) {
      CAPTURE(single_class);
      CenterNetEncoding encoding;
      encoding.classes = 3;
      encoding.single_class = single_class;
      encoding.size_encoding = units;
      std::vector<LabelledBox> boxes;
      std::vector<bool> used(128 * 128, false);
      while (boxes.size() < 40) {
        const double w = std::exp(random.uniform(std::log(2.0), std::log(200.0)));
        const double h = w * random.uniform(0.7, 1.4);
        const double x = random.uniform(0, 512 - w), y = random.uniform(0, 512 - h);
        const auto cell = static_cast<std::size_t>(static_cast<int>((y + h / 2) / 4) * 128 +
                                                   static_cast<int>((x + w / 2) / 4));
        if (y + h > 512 || used[cell]) continue;
        used[cell] = true;
        boxes.push_back(
            {{float(x), float(y), float(x + w), float(y + h)}, static_cast<int>(random.below(3))});
      }
      CenterNetTargets<float> targets;
      targets.resize(2, 128, 128, encoding);
      CHECK(encode_centernet_targets<float>(boxes, encoding, targets, 1) == 40);
      CenterNetDecodeOptions options;
      options.score_threshold = 0.99f;
      const auto decoded =
          decode_centernet(targets.heatmap, targets.size, targets.offset, encoding, options);
      REQUIRE(decoded.size() == 2);
      CHECK(decoded[0].empty());
      REQUIRE(decoded[1].size() == 40);
      for (const auto& box : boxes) {
        const int expected_class = single_class ? 0 : box.class_id;
        int found = 0;
        for (const auto& d : decoded[1])
          if (d.class_id == expected_class && intersection_over_union(d.box, box.box) > 0.9999f) {
            ++found;
            CHECK(d.score == 1.0f);
            CHECK(std::abs(d.box.x_min - box.box.x_min) < 1e-3f);
            CHECK(std::abs(d.box.y_max - box.box.y_max) < 1e-3f);
          }
        CHECK(found == 1);
      }
    }
}
