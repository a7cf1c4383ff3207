// mask_detector detect: drawing boxes and text (clipped at the edges), the Detector on a
// detector graph whose output is known (a bright spot gives a heatmap peak at a known cell, so
// the box it decodes to is known in the letterbox and, mapped back, in the photo), the
// face-then-classifier path, model files that are not detectors, and the command itself run
// in-process on photos and a folder with a corrupt file.
#include <doctest/doctest.h>
#include <mask_detection/detect_command.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

#include "temp_dir.hpp"

namespace detect_test {

using namespace stratum;
namespace fs = std::filesystem;

// ---- A small JSON reader, to check detect's output by its structure -----------------------

struct Json {
  enum class Kind { null, boolean, number, string, array, object } kind = Kind::null;
  double number = 0;
  std::string text;
  std::vector<Json> items;
  std::vector<std::string> keys;  // an object's members: keys[k] is values[k]'s name
  std::vector<Json> values;

  [[nodiscard]] bool has(const std::string& key) const {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  }
  const Json& operator[](const std::string& key) const {
    const auto at = std::find(keys.begin(), keys.end(), key);
    if (at == keys.end()) throw std::runtime_error("JSON object without '" + key + "'");
    return values[static_cast<std::size_t>(at - keys.begin())];
  }
  const Json& operator[](std::size_t i) const { return items.at(i); }
};

/// Parses one JSON document (RFC 8259; \u escapes of ASCII only); throws on anything else.
class JsonReader {
 public:
  static Json parse(std::string_view text) {
    JsonReader reader(text);
    Json value = reader.value();
    reader.skip_space();
    if (reader.at_ != text.size()) reader.fail("text after the document");
    return value;
  }

 private:
  explicit JsonReader(std::string_view text) : s_(text) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("JSON: " + what + " at offset " + std::to_string(at_));
  }
  void skip_space() {
    while (at_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[at_]))) ++at_;
  }
  char peek() {
    skip_space();
    if (at_ >= s_.size()) fail("unexpected end");
    return s_[at_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++at_;
  }
  bool accept(char c) {
    if (peek() != c) return false;
    ++at_;
    return true;
  }

  std::string string_literal() {
    expect('"');
    std::string out;
    for (;;) {
      if (at_ >= s_.size()) fail("unterminated string");
      const char c = s_[at_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_ >= s_.size()) fail("unterminated escape");
      const char e = s_[at_++];
      const std::string_view simple = "\"\\/bfnrt", meaning = "\"\\/\b\f\n\r\t";
      if (const auto k = simple.find(e); k != std::string_view::npos) {
        out += meaning[k];
      } else if (e == 'u' && at_ + 4 <= s_.size()) {
        const int code = std::stoi(std::string(s_.substr(at_, 4)), nullptr, 16);
        if (code >= 0x80) fail("non-ASCII \\u escape");
        out += static_cast<char>(code);
        at_ += 4;
      } else {
        fail("bad escape");
      }
    }
  }

  Json value() {
    Json v;
    const char c = peek();
    if (c == '{') {
      v.kind = Json::Kind::object;
      ++at_;
      if (accept('}')) return v;
      do {
        v.keys.push_back(string_literal());
        expect(':');
        v.values.push_back(value());
      } while (accept(','));
      expect('}');
    } else if (c == '[') {
      v.kind = Json::Kind::array;
      ++at_;
      if (accept(']')) return v;
      do v.items.push_back(value());
      while (accept(','));
      expect(']');
    } else if (c == '"') {
      v.kind = Json::Kind::string;
      v.text = string_literal();
    } else if (s_.substr(at_, 4) == "true" || s_.substr(at_, 5) == "false") {
      v.kind = Json::Kind::boolean;
      v.number = s_[at_] == 't';
      at_ += s_[at_] == 't' ? 4 : 5;
    } else if (s_.substr(at_, 4) == "null") {
      at_ += 4;
    } else {
      // A JSON number: -? digits (. digits)? ([eE] [+-]? digits)?, checked before strtod reads it.
      const std::size_t start = at_;
      auto digits = [&] {
        const std::size_t from = at_;
        while (at_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[at_]))) ++at_;
        if (at_ == from) fail("expected a digit");
      };
      if (s_[at_] == '-') ++at_;
      digits();
      if (at_ < s_.size() && s_[at_] == '.') ++at_, digits();
      if (at_ < s_.size() && (s_[at_] == 'e' || s_[at_] == 'E')) {
        ++at_;
        if (at_ < s_.size() && (s_[at_] == '+' || s_[at_] == '-')) ++at_;
        digits();
      }
      v.kind = Json::Kind::number;
      v.number = std::stod(std::string(s_.substr(start, at_ - start)));
    }
    return v;
  }

  std::string_view s_;
  std::size_t at_ = 0;
};

// ---- Models with a known output ------------------------------------------------------------

constexpr int spot_input = 64;  // letterbox side; stride 4, so 16 x 16 cells

/// A detector graph: three 4x4 stride-4 convolutions of the input, so every output cell sees
/// exactly its own 4x4 pixels. Heatmap logit of channel `face_channel` = 10 m - 8, with m the
/// mean of the cell's pixels in [0, 1] (a bright cell scores about 0.9, the grey padding
/// sigmoid(-3) = 0.05, black sigmoid(-8)); the other channels -10. Size log 4 (16 x 16 pixels),
/// offset 0.5: each box is centred on its cell.
std::unique_ptr<GraphModel<float>> spot_detector(int classes, int face_channel) {
  auto model = std::make_unique<GraphModel<float>>(1);
  const Node image = model->input({spot_input, spot_input, 3}, "image");
  const Node heat = model->add<Conv2D>(image, classes, 4, Activation::linear, 4);
  const Node size = model->add<Conv2D>(image, 2, 4, Activation::linear, 4);
  const Node offset = model->add<Conv2D>(image, 2, 4, Activation::linear, 4);
  model->build({heat, size, offset});
  auto set = [&](Node n, auto kernel_value, auto bias_value) {
    auto params = model->layer(n)->parameters();
    Tensor<float>& kernel = params[0]->value;  // (4, 4, 3, filters)
    const Index filters = kernel.dim(3);
    for (Index k = 0; k < kernel.size(); ++k) kernel[k] = kernel_value(k % filters);
    for (Index f = 0; f < filters; ++f) params[1]->value[f] = bias_value(f);
  };
  set(
      heat, [&](Index c) { return c == face_channel ? 10.0f / 48.0f : 0.0f; },
      [&](Index c) { return c == face_channel ? -8.0f : -10.0f; });
  set(
      size, [](Index) { return 0.0f; }, [](Index) { return std::log(4.0f); });
  set(
      offset, [](Index) { return 0.0f; }, [](Index) { return 0.5f; });
  return model;
}

Metadata detector_metadata(const std::string& classes, const std::string& design) {
  return {{"kind", "detector"},
          {"input_size", std::to_string(spot_input)},
          {"stride", "4"},
          {"classes", classes},
          {"design", design}};
}

const std::string mask_classes = "with_mask,without_mask,mask_weared_incorrect";

/// The one-stage spot detector (finding without_mask faces), saved to `path`.
void save_spot_detector(const fs::path& path) {
  auto model = spot_detector(3, 1);
  save_graph_model(*model, path, detector_metadata(mask_classes, "one-stage"));
}

/// The one-stage spot detector, saved in `dir` and loaded as `detect` loads it.
mask_detection::Detector load_spot_detector(const testing::TempDir& dir) {
  save_spot_detector(dir.path() / "spot.stmodel");
  return mask_detection::Detector::load(dir.path() / "spot.stmodel", "unused");
}

/// A black W x H photo with a bright Gaussian spot (sigma 12 pixels) centred at (cx, cy).
Image spot_photo(int width, int height, double cx, double cy) {
  Image photo{width, height,
              std::vector<std::uint8_t>(static_cast<std::size_t>(width * height * 3))};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const double d2 = (x + 0.5 - cx) * (x + 0.5 - cx) + (y + 0.5 - cy) * (y + 0.5 - cy);
      const auto v = static_cast<std::uint8_t>(std::lround(255 * std::exp(-d2 / (2 * 144.0))));
      for (int c = 0; c < 3; ++c)
        photo.pixels[static_cast<std::size_t>((y * width + x) * 3 + c)] = v;
    }
  return photo;
}

void write_photo(const fs::path& path, const Image& photo) {
  write_png(path, photo);
}

Rgb pixel(const Image& image, int x, int y) {
  const auto at = static_cast<std::size_t>((y * image.width + x) * 3);
  return {image.pixels[at], image.pixels[at + 1], image.pixels[at + 2]};
}

/// A wide and a tall photo, each with its spot on the centre of a letterbox cell, and the box
/// that cell decodes to, mapped back by hand:
///   200 x 100: scale 64/200 = 0.32, resized 64 x 32, offset (0, 16). Cell (row 8, column 10)
///     has its centre at (42, 34) in the letterbox, (42 / 0.32, (34 - 16) / 0.32) =
///     (131.25, 56.25) in the photo; the 16-pixel box is 50 photo pixels wide and high.
///   90 x 180: scale 64/180, resized 32 x 64, offset (16, 0). Cell (5, 9): centre (38, 22),
///     ((38 - 16) * 180/64, 22 * 180/64) = (61.875, 61.875); the box is 45 pixels.
struct SpotCase {
  int width, height;
  Box expected;
};
const SpotCase spot_cases[] = {{200, 100, {106.25f, 31.25f, 156.25f, 81.25f}},
                               {90, 180, {39.375f, 39.375f, 84.375f, 84.375f}}};

Image spot_case_photo(const SpotCase& c) {
  return spot_photo(c.width, c.height, c.expected.center_x(), c.expected.center_y());
}

/// A classifier of 16 x 16 photos that says (without_mask 0.25, with_mask 0.75) to anything.
void save_constant_classifier(const fs::path& path) {
  Sequential<float> model({16, 16, 3}, 1);
  model.add<Flatten>();
  model.add<Dense>(2, Activation::softmax);
  model.compile(std::make_unique<SparseCategoricalCrossentropy<float>>(), nullptr);
  auto params = model.layer(1).parameters();
  params[0]->value.set_zero();
  params[1]->value[0] = 0.0f;
  params[1]->value[1] = std::log(3.0f);
  save_model(model, path, {{"class_names", "without_mask,with_mask"}});
}

// ---- Running the command in-process ---------------------------------------------------------

struct DetectRun {
  int exit_code;
  std::string out, err;
};

/// Runs detect_command with std::cout and std::cerr captured (restored even if it throws).
DetectRun run_detect(const std::vector<std::string>& args,
                     const mask_detection::DetectDefaults& defaults = {"none.stmodel",
                                                                       "none.stmodel"}) {
  std::ostringstream out, err;
  struct Restore {
    std::streambuf* out;
    std::streambuf* err;
    ~Restore() {
      std::cout.rdbuf(out);
      std::cerr.rdbuf(err);
    }
  } restore{std::cout.rdbuf(out.rdbuf()), std::cerr.rdbuf(err.rdbuf())};
  const int code = mask_detection::detect_command(args, defaults);
  return {code, out.str(), err.str()};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace detect_test

TEST_CASE("draw_boxes: each glyph of the 5x7 font draws its bits, at any scale") {
  using namespace detect_test;
  using mask_detection::draw_text;
  // '1' has 1 + 2 + 1 + 1 + 1 + 1 + 3 = 10 bits: 10 squares of scale x scale.
  for (int scale : {1, 3}) {
    Image canvas{40, 40, std::vector<std::uint8_t>(40 * 40 * 3, 0)};
    draw_text(canvas, "1", 2, 3, {255, 255, 255}, scale);
    Index lit = 0;
    for (auto v : canvas.pixels) lit += v == 255;
    CHECK(lit == 10 * scale * scale * 3);
    // The top row of '1' is 0x04: only its middle column, at x = 2 + 2 scale.
    CHECK(pixel(canvas, 2 + 2 * scale, 3) == Rgb{255, 255, 255});
    CHECK(pixel(canvas, 2 + 1 * scale, 3) == Rgb{0, 0, 0});
  }
  CHECK(mask_detection::glyph('m') == mask_detection::glyph('M'));
  CHECK(mask_detection::glyph('#') == mask_detection::glyph('?'));
  CHECK(mask_detection::text_width("87%", 2) == (3 * 6 - 1) * 2);
  CHECK(mask_detection::detection_label("with_mask", 0.874f) == "with_mask 87%");
}

TEST_CASE("draw_boxes: text and boxes past the edges are clipped to the image") {
  using namespace detect_test;
  using mask_detection::draw_labelled_box;
  using mask_detection::draw_text;
  // The same text drawn at (-7, -3) on a 20 x 10 image and at (13, 7) on a 60 x 30 canvas: the
  // small image must be exactly the canvas' window [20, 40) x [10, 20), and nothing else
  // written (a write past the buffer fails under AddressSanitizer).
  const std::string text = "WITH_MASK 87% .-:";
  for (int scale : {1, 2}) {
    Image small{20, 10, std::vector<std::uint8_t>(20 * 10 * 3, 9)};
    Image canvas{60, 30, std::vector<std::uint8_t>(60 * 30 * 3, 9)};
    draw_text(small, text, -7, -3, {200, 10, 10}, scale);
    draw_text(canvas, text, 13, 7, {200, 10, 10}, scale);
    bool same = true, any = false;
    for (int y = 0; y < 10; ++y)
      for (int x = 0; x < 20; ++x) {
        same = same && pixel(small, x, y) == pixel(canvas, x + 20, y + 10);
        any = any || pixel(small, x, y) != Rgb{9, 9, 9};
      }
    CHECK(same);
    CHECK(any);
    CHECK(small.pixels.size() == 20 * 10 * 3);
  }
  // Boxes reaching past every edge, far past, and wholly outside.
  Image photo{30, 20, std::vector<std::uint8_t>(30 * 20 * 3, 0)};
  const mask_detection::DrawingStyle style{3, 2};
  draw_labelled_box(photo, {-5, -5, 40, 30}, "WITHOUT_MASK 99%", {230, 20, 20}, style);
  draw_labelled_box(photo, {-1e9f, 5, 1e9f, 1e9f}, "X", {0, 200, 0}, style);
  draw_labelled_box(photo, {100, 100, 120, 120}, "Y", {0, 200, 0}, style);
  draw_labelled_box(photo, {25, 15, 29.5f, 19.5f}, "Z", {255, 160, 0}, style);
  CHECK(photo.pixels.size() == 30 * 20 * 3);
}

TEST_CASE(
    "draw_boxes: the outline lies just outside the box in the class colour, the label above") {
  using namespace detect_test;
  Image photo{300, 100, std::vector<std::uint8_t>(300 * 100 * 3, 50)};
  const std::vector<Detection> detections{{{40.5f, 60, 60, 80}, 1, 0.9f},
                                          {{10, 0, 20, 10}, 0, 0.8f}};
  const std::vector<std::string> classes{"with_mask", "without_mask", "mask_weared_incorrect"};
  const Image drawn = mask_detection::draw_detections(photo, detections, classes);
  const Rgb red{230, 20, 20}, green{0, 200, 0}, grey{50, 50, 50};
  CHECK(mask_detection::class_colour("without_mask") == red);
  CHECK(mask_detection::class_colour("with_mask") == green);
  CHECK(mask_detection::class_colour("mask_weared_incorrect") == Rgb{255, 160, 0});
  // Box 1 covers the columns 40..59 and rows 60..79; a 2-pixel outline around them.
  CHECK(pixel(drawn, 38, 70) == red);
  CHECK(pixel(drawn, 39, 70) == red);
  CHECK(pixel(drawn, 60, 70) == red);
  CHECK(pixel(drawn, 61, 70) == red);
  CHECK(pixel(drawn, 50, 81) == red);
  CHECK(pixel(drawn, 40, 70) == grey);  // the face itself is not painted
  CHECK(pixel(drawn, 62, 70) == grey);
  // Its label strip (9 pixels high at scale 1, a pixel of padding around the text) sits on the
  // outline: rows 49..57, from x = 38.
  CHECK(pixel(drawn, 38, 57) == red);
  CHECK(pixel(drawn, 38, 49) == red);
  CHECK(pixel(drawn, 38, 48) == grey);
  // Box 0 touches the top edge: no room above, so its label goes below the outline (row 12 on).
  CHECK(pixel(drawn, 8, 11) == green);
  CHECK(pixel(drawn, 8, 12) == green);
  CHECK(pixel(drawn, 8, 20) == green);
  CHECK(pixel(drawn, 15, 5) == grey);
}

TEST_CASE("Detector: a known peak gives its box in the photo's pixels, letterbox undone") {
  using namespace detect_test;
  testing::TempDir dir;
  auto detector = load_spot_detector(dir);
  CHECK(detector.class_names() ==
        std::vector<std::string>{"with_mask", "without_mask", "mask_weared_incorrect"});
  CHECK(detector.design() == mask_detection::DetectorDesign::one_stage);
  for (const SpotCase& c : spot_cases) {
    INFO(c.width << "x" << c.height);
    const auto found = detector.detect(spot_case_photo(c), detector.default_options());
    REQUIRE(found.size() == 1);
    CHECK(found[0].class_id == 1);
    CHECK(found[0].score > 0.5f);
    CHECK(found[0].box.x_min == doctest::Approx(c.expected.x_min).epsilon(1e-5));
    CHECK(found[0].box.y_min == doctest::Approx(c.expected.y_min).epsilon(1e-5));
    CHECK(found[0].box.x_max == doctest::Approx(c.expected.x_max).epsilon(1e-5));
    CHECK(found[0].box.y_max == doctest::Approx(c.expected.y_max).epsilon(1e-5));
  }
  // The tall photo's cell (5, 11) (centre (46, 22)) is at (84.375, 61.875) in the photo: its
  // 45-pixel box reaches past the right edge, at 90, and is clipped there.
  const auto clipped = detector.detect(spot_photo(90, 180, 84.375, 61.875), {});
  REQUIRE(clipped.size() == 1);
  CHECK(clipped[0].box.x_min == doctest::Approx(61.875).epsilon(1e-5));
  CHECK(clipped[0].box.x_max == 90.0f);
}

TEST_CASE("Detector: the threshold keeps exactly the detections scoring at least it") {
  using namespace detect_test;
  testing::TempDir dir;
  auto detector = load_spot_detector(dir);
  const Image photo = spot_case_photo(spot_cases[0]);
  mask_detection::DetectorOptions options;
  const float score = detector.detect(photo, options).at(0).score;
  options.score_threshold = score;
  CHECK(detector.detect(photo, options).size() == 1);
  options.score_threshold = std::nextafter(score, 1.0f);
  CHECK(detector.detect(photo, options).empty());
  // At 0.01 the grey padding's cells (0.05) count too; those on the padding alone are dropped,
  // the rest are clipped to the photo, and every box is inside it. (The square letterbox: the
  // tight one of this 2:1 photo has no padding.)
  options.score_threshold = 0.01f;
  options.square_letterbox = true;
  const auto many = detector.detect(photo, options);
  CHECK(many.size() > 1);
  for (const auto& d : many) {
    CHECK(d.box.x_min >= 0);
    CHECK(d.box.y_min >= 0);
    CHECK(d.box.x_max <= 200);
    CHECK(d.box.y_max <= 100);
    CHECK(d.box.area() > 0);
  }
}

TEST_CASE("Detector: the tight letterbox runs the network on the photo's box, not the square") {
  using namespace detect_test;
  testing::TempDir dir;
  auto detector = load_spot_detector(dir);
  CHECK(detector.input_multiple() == 4);  // the spot detector's only stride
  // 200 x 100 at 64: the square's 64 x 32, no padding; 90 x 180: 32 x 64.
  CHECK(detector.network_for(200, 100).shape(detector.network_for(200, 100).input_node(0)) ==
        Shape{32, 64, 3});
  CHECK(detector.network_for(90, 180).shape(detector.network_for(90, 180).input_node(0)) ==
        Shape{64, 32, 3});
  CHECK(detector.network().shape(detector.network().input_node(0)) == Shape{64, 64, 3});
  // The spot cases' offsets in the square (16) are whole cells, so both letterboxes see the
  // same pixels in each cell and find the same boxes.
  for (const SpotCase& c : spot_cases) {
    INFO(c.width << "x" << c.height);
    mask_detection::DetectorOptions options;
    const auto tight = detector.detect(spot_case_photo(c), options);
    options.square_letterbox = true;
    const auto square = detector.detect(spot_case_photo(c), options);
    REQUIRE(tight.size() == 1);
    CHECK(tight == square);
  }
  // A photo whose place in the square is not on whole cells: 200 x 90 resizes to 64 x 29
  // (round(28.8)), at row 17 of the square, row 1 of a 64 x 32 box; the spot's box still comes
  // back to the photo's pixels (to within a cell: the spot is not on a cell's centre).
  const Image photo = spot_photo(200, 90, 131.25, 50.0);
  const auto found = detector.detect(photo, {});
  REQUIRE(found.size() == 1);
  CHECK(std::abs(found[0].box.center_x() - 131.25f) < 200.0f / 64);
  CHECK(std::abs(found[0].box.center_y() - 50.0f) < 200.0f / 64);
  CHECK(found[0].box.width() == doctest::Approx(50.0f).epsilon(1e-4));
}

TEST_CASE("Detector: several input sizes merge what each finds, by non-maximum suppression") {
  using namespace detect_test;
  testing::TempDir dir;
  auto detector = load_spot_detector(dir);
  const Image photo = spot_case_photo(spot_cases[0]);
  mask_detection::DetectorOptions options;
  options.score_threshold = 0.01f;  // many boxes, so that the merge has work to do
  const auto own = detector.detect(photo, options);
  options.input_sizes = {spot_input};
  CHECK(detector.detect(photo, options) == own);  // the model's size: the same detections
  options.input_sizes = {2 * spot_input};
  const auto doubled = detector.detect(photo, options);
  REQUIRE_FALSE(doubled.empty());
  // At 128 the same spot covers twice the cells: its 16-pixel boxes are half as large in the
  // photo's pixels.
  CHECK(doubled[0].box.width() == doctest::Approx(own[0].box.width() / 2).epsilon(1e-5));
  options.input_sizes = {spot_input, 2 * spot_input};
  const auto merged = detector.detect(photo, options);
  std::vector<Detection> both = own;
  both.insert(both.end(), doubled.begin(), doubled.end());
  const std::vector<Detection> expected =
      non_maximum_suppression(both, options.iou_threshold, /*across_classes=*/true);
  REQUIRE(expected.size() >= 2);
  CHECK(merged == expected);
  // top_k bounds the peaks of each size, and the detections left after the merge.
  options.top_k = 1;
  const auto best = detector.detect(photo, options);
  REQUIRE(best.size() == 1);
  CHECK(best[0] == expected[0]);
  // A size that is not a multiple of the stride is refused, naming it.
  options.input_sizes = {66};
  CHECK_THROWS_WITH_AS(detector.detect(photo, options),
                       doctest::Contains("input size 66 is not a multiple of"), Error);
}

TEST_CASE("Detector: face-then-classifier labels each face with the classifier") {
  using namespace detect_test;
  testing::TempDir dir;
  auto model = spot_detector(1, 0);
  save_graph_model(*model, dir.path() / "faces.stmodel", detector_metadata("face", "one-stage"));
  save_graph_model(*model, dir.path() / "two.stmodel",
                   detector_metadata("face", "face-then-classifier"));
  save_constant_classifier(dir.path() / "classifier.stmodel");
  auto faces = mask_detection::Detector::load(dir.path() / "faces.stmodel", "unused");
  auto two =
      mask_detection::Detector::load(dir.path() / "two.stmodel", dir.path() / "classifier.stmodel");
  CHECK(two.class_names() == std::vector<std::string>{"without_mask", "with_mask"});
  const Image photo = spot_case_photo(spot_cases[1]);
  mask_detection::DetectorOptions options;
  options.score_threshold = 0.2f;
  const auto face = faces.detect(photo, options);
  const auto labelled = two.detect(photo, options);
  REQUIRE(face.size() == 1);
  REQUIRE(labelled.size() == 1);
  CHECK(labelled[0].box == face[0].box);
  CHECK(labelled[0].class_id == 1);  // with_mask, at 0.75
  CHECK(labelled[0].score == doctest::Approx(face[0].score * 0.75f).epsilon(1e-5));
  // A label probability that takes the score under the threshold drops the face.
  options.score_threshold = face[0].score * 0.8f;
  CHECK(faces.detect(photo, options).size() == 1);
  CHECK(two.detect(photo, options).empty());

  CHECK_THROWS_WITH_AS(
      mask_detection::Detector::load(dir.path() / "two.stmodel", dir.path() / "missing.stmodel"),
      doctest::Contains("needs the face classifier"), IoError);
}

TEST_CASE("Detector: model files that do not keep the contract are named with their fault") {
  using namespace detect_test;
  testing::TempDir dir;
  auto model = spot_detector(3, 1);
  auto fails_with = [&](Metadata metadata, const std::string& message) {
    const fs::path path = dir.path() / "bad.stmodel";
    save_graph_model(*model, path, metadata);
    INFO(message);
    CHECK_THROWS_WITH_AS(mask_detection::Detector::load(path, "unused"),
                         doctest::Contains(message.c_str()), IoError);
  };
  Metadata m = detector_metadata(mask_classes, "one-stage");
  m.erase("kind");
  fails_with(m, "is not a detector model");
  m = detector_metadata("with_mask,without_mask", "one-stage");
  fails_with(m, "heatmap output 'conv2d' of shape (16, 16, 3), expected (16, 16, 2)");
  m = detector_metadata(mask_classes, "one-stage");
  m["stride"] = "8";
  fails_with(m, "expected (8, 8, 3)");
  m["stride"] = "four";
  fails_with(m, "'stride' = 'four', not a positive whole number");
  m = detector_metadata(mask_classes, "two-stage");
  fails_with(m, "has design 'two-stage'");
  m = detector_metadata(mask_classes, "face-then-classifier");
  fails_with(m, "with 3 heatmap classes");
  m = detector_metadata("with_mask,,x", "one-stage");
  fails_with(m, "has an empty name");
  m = detector_metadata(mask_classes, "one-stage");
  m["input_size"] = "128";
  fails_with(m, "whose input is not one 128x128 RGB image");
  m = detector_metadata(mask_classes, "one-stage");
  m["score_threshold"] = "1.5";
  fails_with(m, "not a number from 0 to 1");
}

TEST_CASE("detect: pictures with boxes, a line per photo, and a corrupt file skipped") {
  using namespace detect_test;
  testing::TempDir dir;
  const fs::path model = dir.path() / "spot.stmodel", photos = dir.path() / "photos",
                 out = dir.path() / "out";
  save_spot_detector(model);
  fs::create_directories(photos);
  write_photo(photos / "wide.png", spot_case_photo(spot_cases[0]));
  write_photo(photos / "tall.png", spot_case_photo(spot_cases[1]));
  std::ofstream(photos / "broken.jpg", std::ios::binary) << "\xFF\xD8\xFF\xE0 not a JPEG at all";

  const DetectRun run =
      run_detect({photos.string(), "--model", model.string(), "--out", out.string()});
  INFO(run.out << run.err);
  CHECK(run.exit_code == 1);
  CHECK(contains(run.err, "warning: skipped a photo: '" + (photos / "broken.jpg").string() + "'"));
  CHECK(contains(run.err, "3/3"));  // the progress bar's last line
  CHECK(
      contains(run.out, (photos / "wide.png").string() +
                            ": 1 face (with_mask 0, without_mask 1, mask_weared_incorrect 0) -> " +
                            (out / "wide.png").string()));
  CHECK(contains(
      run.out,
      "3 photos, 2 faces (with_mask 0, without_mask 2, mask_weared_incorrect 0), 1 skipped"));
  CHECK_FALSE(fs::exists(out / "broken.jpg"));

  // The wide photo's box, [106.25, 156.25] x [31.25, 81.25], covers the columns 106..156 and
  // rows 31..81: the red outline is on the two pixels outside them, the spot inside untouched.
  const Image picture = load_image(out / "wide.png");
  CHECK(picture.width == 200);
  CHECK(picture.height == 100);
  const Rgb red = mask_detection::class_colour("without_mask");
  CHECK(pixel(picture, 130, 29) == red);
  CHECK(pixel(picture, 130, 30) == red);
  CHECK(pixel(picture, 104, 56) == red);
  CHECK(pixel(picture, 157, 56) == red);
  CHECK(pixel(picture, 130, 83) == red);
  const Image original = spot_case_photo(spot_cases[0]);
  CHECK(pixel(picture, 131, 56) == pixel(original, 131, 56));
  CHECK(pixel(picture, 130, 84) == pixel(original, 130, 84));
  const Image tall = load_image(out / "tall.png");
  CHECK(tall.width == 90);
  CHECK(tall.height == 180);
}

TEST_CASE("detect --json: every box in the photo's pixels, an error entry for a bad file") {
  using namespace detect_test;
  testing::TempDir dir;
  const fs::path model = dir.path() / "spot.stmodel", out = dir.path() / "out";
  save_spot_detector(model);
  const fs::path wide = dir.path() / "wide.png", tall = dir.path() / "tall.png",
                 missing = dir.path() / "missing.jpg";
  write_photo(wide, spot_case_photo(spot_cases[0]));
  write_photo(tall, spot_case_photo(spot_cases[1]));

  const DetectRun run = run_detect({wide.string(), tall.string(), missing.string(), "--model",
                                    model.string(), "--out", out.string(), "--json"});
  INFO(run.out << run.err);
  CHECK(run.exit_code == 1);
  const Json doc = JsonReader::parse(run.out);
  REQUIRE(doc.kind == Json::Kind::object);
  CHECK(doc["model"].text == model.string());
  CHECK(doc["design"].text == "one-stage");
  REQUIRE(doc["classes"].items.size() == 3);
  CHECK(doc["classes"][1].text == "without_mask");
  CHECK(doc["threshold"].number == doctest::Approx(0.3));
  const Json& list = doc["photos"];
  REQUIRE(list.kind == Json::Kind::array);
  REQUIRE(list.items.size() == 3);
  for (std::size_t k = 0; k < 2; ++k) {
    const Json& photo = list[k];
    const SpotCase& c = spot_cases[k];
    INFO(photo["file"].text);
    CHECK(photo["file"].text == (k == 0 ? wide : tall).string());
    CHECK(photo["width"].number == c.width);
    CHECK(photo["height"].number == c.height);
    CHECK(fs::exists(photo["picture"].text));
    CHECK(photo["counts"]["with_mask"].number == 0);
    CHECK(photo["counts"]["without_mask"].number == 1);
    CHECK(photo["counts"]["mask_weared_incorrect"].number == 0);
    REQUIRE(photo["detections"].items.size() == 1);
    const Json& box = photo["detections"][0];
    CHECK(box.keys.size() == 6);
    CHECK(box["class"].text == "without_mask");
    CHECK(box["score"].number > 0.5);
    CHECK(box["score"].number <= 1.0);
    CHECK(box["x_min"].number == doctest::Approx(c.expected.x_min).epsilon(1e-5));
    CHECK(box["y_min"].number == doctest::Approx(c.expected.y_min).epsilon(1e-5));
    CHECK(box["x_max"].number == doctest::Approx(c.expected.x_max).epsilon(1e-5));
    CHECK(box["y_max"].number == doctest::Approx(c.expected.y_max).epsilon(1e-5));
  }
  CHECK(list[2]["file"].text == missing.string());
  CHECK(contains(list[2]["error"].text, missing.string()));
  CHECK_FALSE(list[2].has("detections"));

  // --threshold above the spot's score: the photo has no face, and an empty list.
  const DetectRun high = run_detect({wide.string(), "--model", model.string(), "--out",
                                     out.string(), "--json", "--threshold", "0.99"});
  CHECK(high.exit_code == 0);
  const Json none = JsonReader::parse(high.out);
  CHECK(none["threshold"].number == doctest::Approx(0.99));
  CHECK(none["photos"][0]["detections"].items.empty());
  CHECK(none["photos"][0]["counts"]["without_mask"].number == 0);
}

TEST_CASE("detect: its errors say what is wrong") {
  using namespace detect_test;
  testing::TempDir dir;
  const fs::path photo = dir.path() / "a.png";
  write_photo(photo, spot_photo(40, 30, 20, 15));
  const std::string missing_message =
      "the shipped detector '" + (dir.path() / "shipped.stmodel").string() + "' is missing";
  CHECK_THROWS_WITH_AS(run_detect({photo.string()}, {dir.path() / "shipped.stmodel", "c"}),
                       doctest::Contains(missing_message.c_str()), Error);
  CHECK_THROWS_WITH_AS(run_detect({}), "detect needs at least one image or folder",
                       mask_detection::UsageError);
  const fs::path model = dir.path() / "spot.stmodel";
  save_spot_detector(model);
  CHECK_THROWS_AS(run_detect({photo.string(), "--model", model.string(), "--threshold", "2"}),
                  mask_detection::UsageError);
  // The folder the photo is in as --out: its copy would replace it, so the photo is skipped.
  const DetectRun same =
      run_detect({photo.string(), "--model", model.string(), "--out", dir.path().string()});
  CHECK(same.exit_code == 1);
  CHECK(contains(same.err, "would be overwritten by its copy with boxes"));
  CHECK(load_image(photo).pixels == spot_photo(40, 30, 20, 15).pixels);
  // Two photos of one name in two folders get two pictures.
  fs::create_directories(dir.path() / "b");
  write_photo(dir.path() / "b" / "a.png", spot_photo(40, 30, 20, 15));
  const DetectRun both =
      run_detect({photo.string(), (dir.path() / "b" / "a.png").string(), "--model", model.string(),
                  "--out", (dir.path() / "out").string()});
  CHECK(both.exit_code == 0);
  CHECK(fs::exists(dir.path() / "out" / "a.png"));
  CHECK(fs::exists(dir.path() / "out" / "a-2.png"));
}
