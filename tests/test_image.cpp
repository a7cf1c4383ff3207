// Image decoding: every format the loader promises, written by the test itself, plus the bad
// files a real folder contains.
#include <doctest/doctest.h>

#include <algorithm>
#include <stratum/data/image.hpp>
#include <stratum/hash.hpp>
#include <stratum/parallel.hpp>
#include <stratum/random.hpp>

#include "image_writers.hpp"
#include "temp_dir.hpp"

using namespace stratum;
using stratum::testing::Bytes;

namespace {

/// A w x h RGB gradient: pixel (x, y) = (10x, 20y, 100).
std::vector<std::uint8_t> gradient(int w, int h) {
  std::vector<std::uint8_t> p;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) p.insert(p.end(), {std::uint8_t(10 * x), std::uint8_t(20 * y), 100});
  return p;
}

std::array<int, 3> pixel(const Image& image, int x, int y) {
  const auto* p = image.pixels.data() + 3 * (static_cast<std::size_t>(y) * static_cast<std::size_t>(image.width) + static_cast<std::size_t>(x));
  return {p[0], p[1], p[2]};
}

void check_gradient(const Image& image, int tolerance) {
  REQUIRE(image.width == 8);
  REQUIRE(image.height == 6);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 8; ++x) {
      const auto p = pixel(image, x, y);
      CHECK(std::abs(p[0] - 10 * x) <= tolerance);
      CHECK(std::abs(p[1] - 20 * y) <= tolerance);
      CHECK(std::abs(p[2] - 100) <= tolerance);
    }
}

Bytes file_bytes(const std::filesystem::path& path) { return read_file(path); }

}  // namespace

TEST_CASE("decoding chooses the decoder by content, whatever the file is called") {
  testing::TempDir dir;
  const auto rgb = gradient(8, 6);
  const auto path = dir.path() / "really_a_png.jpg";
  REQUIRE(stbi_write_png(path.string().c_str(), 8, 6, 3, rgb.data(), 8 * 3));
  CHECK(image_format(file_bytes(path)) == "PNG");
  check_gradient(load_image(path), 0);
}

TEST_CASE("JPEG baseline and progressive, BMP, GIF") {
  testing::TempDir dir;
  const auto rgb = gradient(8, 6);
  SUBCASE("baseline JPEG") {
    const auto path = dir.path() / "a.jpg";
    REQUIRE(stbi_write_jpg(path.string().c_str(), 8, 6, 3, rgb.data(), 100));
    check_gradient(load_image(path), 12);  // lossy, chroma subsampled
  }
  SUBCASE("baseline JPEG encoded in memory (encode_jpeg): the file's bytes") {
    const auto path = dir.path() / "a.jpg";
    REQUIRE(stbi_write_jpg(path.string().c_str(), 8, 6, 3, rgb.data(), 100));
    const Image image{8, 6, rgb};
    CHECK(encode_jpeg(image, 100) == file_bytes(path));
    check_gradient(decode_image(encode_jpeg(image, 100), "a.jpg"), 12);
    CHECK_THROWS_WITH_AS(encode_jpeg(image, 0), doctest::Contains("encode_jpeg"), Error);
    CHECK_THROWS_AS(encode_jpeg(image, 101), Error);
  }
  SUBCASE("progressive JPEG") {
    const Image image = load_image(STRATUM_TEST_DATA_DIR "/progressive.jpg");
    REQUIRE(image.width == 24);
    REQUIRE(image.height == 16);
    const auto p = pixel(image, 12, 8);
    CHECK(std::abs(p[0] - 120) <= 12);
    CHECK(std::abs(p[1] - 120) <= 12);
    CHECK(std::abs(p[2] - 128) <= 12);
  }
  SUBCASE("BMP") {
    const auto path = dir.path() / "a.bmp";
    REQUIRE(stbi_write_bmp(path.string().c_str(), 8, 6, 3, rgb.data()));
    check_gradient(load_image(path), 0);
  }
  SUBCASE("GIF") {
    Bytes palette(768), indices;
    for (int i = 0; i < 256; ++i) {
      palette[3 * std::size_t(i)] = std::uint8_t(i);
      palette[3 * std::size_t(i) + 1] = std::uint8_t(255 - i);
      palette[3 * std::size_t(i) + 2] = 7;
    }
    for (int i = 0; i < 20 * 30; ++i) indices.push_back(std::uint8_t(i % 251));
    const auto path = dir.path() / "a.gif";
    testing::write_bytes(path, testing::encode_gif(20, 30, indices, palette));
    const Image image = load_image(path);
    REQUIRE(image.width == 20);
    REQUIRE(image.height == 30);
    for (int i : {0, 1, 250, 251, 599}) {
      const auto p = pixel(image, i % 20, i / 20);
      CHECK(p == std::array<int, 3>{i % 251, 255 - i % 251, 7});
    }
  }
}

TEST_CASE("PNG: grey, RGB, RGBA, palette with transparency, 16-bit") {
  testing::TempDir dir;
  SUBCASE("grey") {
    const std::vector<std::uint8_t> grey{0, 50, 100, 150, 200, 250};
    const auto path = dir.path() / "grey.png";
    REQUIRE(stbi_write_png(path.string().c_str(), 3, 2, 1, grey.data(), 3));
    const Image image = load_image(path);
    CHECK(pixel(image, 2, 1) == std::array<int, 3>{250, 250, 250});
  }
  SUBCASE("RGBA composited onto the background") {
    // Opaque red, transparent blue, half-transparent green.
    const std::vector<std::uint8_t> rgba{255, 0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 128};
    const auto path = dir.path() / "rgba.png";
    REQUIRE(stbi_write_png(path.string().c_str(), 3, 1, 4, rgba.data(), 12));
    const Image on_white = load_image(path);
    CHECK(pixel(on_white, 0, 0) == std::array<int, 3>{255, 0, 0});
    CHECK(pixel(on_white, 1, 0) == std::array<int, 3>{255, 255, 255});
    CHECK(pixel(on_white, 2, 0) == std::array<int, 3>{127, 255, 127});
    const Image on_black = load_image(path, Rgb{0, 0, 0});
    CHECK(pixel(on_black, 1, 0) == std::array<int, 3>{0, 0, 0});
    CHECK(pixel(on_black, 2, 0) == std::array<int, 3>{0, 128, 0});
  }
  SUBCASE("palette with a transparent entry (tRNS)") {
    const Bytes palette{255, 0, 0, 0, 255, 0, 0, 0, 255};
    const Bytes alpha{255, 0};  // entry 1 fully transparent; entry 2 opaque by default
    const Bytes rows{0, 1, 2, 2, 1, 0};
    const auto path = dir.path() / "palette.png";
    testing::write_bytes(path, testing::encode_png(3, 2, 8, 3, rows, 3, palette, alpha));
    const Image image = load_image(path);
    CHECK(pixel(image, 0, 0) == std::array<int, 3>{255, 0, 0});
    CHECK(pixel(image, 1, 0) == std::array<int, 3>{255, 255, 255});  // transparent: background
    CHECK(pixel(image, 2, 0) == std::array<int, 3>{0, 0, 255});
  }
  SUBCASE("16 bits per channel") {
    Bytes rows;  // 2x1 RGB, big-endian 16-bit samples
    for (int v : {0xFFFF, 0x8000, 0x0000, 0x0000, 0x4000, 0xFFFF})
      rows.insert(rows.end(), {std::uint8_t(v >> 8), std::uint8_t(v)});
    const auto path = dir.path() / "deep.png";
    testing::write_bytes(path, testing::encode_png(2, 1, 16, 2, rows, 12));
    const Image image = load_image(path);
    CHECK(pixel(image, 0, 0) == std::array<int, 3>{255, 128, 0});
    CHECK(pixel(image, 1, 0) == std::array<int, 3>{0, 64, 255});
  }
}

TEST_CASE("bad files give errors that name them") {
  testing::TempDir dir;
  const auto rgb = gradient(8, 6);
  const auto jpg = dir.path() / "photo.jpg";
  REQUIRE(stbi_write_jpg(jpg.string().c_str(), 8, 6, 3, rgb.data(), 90));
  const Bytes good = file_bytes(jpg);

  CHECK_THROWS_WITH_AS(decode_image(Bytes{}, "empty.jpg"), "'empty.jpg' is empty", IoError);
  const std::string text = "this is not an image";
  CHECK_THROWS_WITH_AS(decode_image(Bytes(text.begin(), text.end()), "notes.jpg"),
                       "'notes.jpg' is not an image (not JPEG, PNG, GIF or BMP by its content)",
                       IoError);
  CHECK_THROWS_WITH_AS(decode_image(Bytes(good.begin(), good.begin() + long(good.size() / 2)), "cut.jpg"),
                       "'cut.jpg' is a truncated JPEG (no end-of-image marker)", IoError);
  Bytes garbage{0xFF, 0xD8, 0xFF};
  for (int i = 0; i < 300; ++i) garbage.push_back(std::uint8_t(i * 7));
  garbage.insert(garbage.end(), {0xFF, 0xD9});
  CHECK_THROWS_AS(decode_image(garbage, "garbage.jpg"), IoError);

  const auto png = dir.path() / "photo.png";
  REQUIRE(stbi_write_png(png.string().c_str(), 8, 6, 3, rgb.data(), 24));
  const Bytes png_bytes = file_bytes(png);
  CHECK_THROWS_WITH_AS(decode_image(Bytes(png_bytes.begin(), png_bytes.begin() + 40), "cut.png"),
                       doctest::Contains("'cut.png' is a truncated PNG"), IoError);
  CHECK_THROWS_WITH_AS(load_image(dir.path() / "missing.jpg"),
                       doctest::Contains("missing.jpg"), IoError);

  // A JPEG followed by zero padding (as some writers leave) is complete.
  Bytes padded = good;
  padded.insert(padded.end(), 64, 0);
  CHECK(decode_image(padded, "padded.jpg").width == 8);
}

namespace {

/// The offset of the n-th (from 0) marker `marker` in a JPEG, found by walking its segments
/// (the test files have no stray bytes, and their scans' data never hold 0xFF).
std::size_t find_segment(const Bytes& jpeg, std::uint8_t marker, int n) {
  std::size_t pos = 2;
  while (pos + 3 < jpeg.size()) {
    REQUIRE(jpeg[pos] == 0xFF);
    const std::uint8_t here = jpeg[pos + 1];
    if (here == marker && n-- == 0) return pos;
    pos += 2 + big_endian_at(jpeg, pos + 2, 2);
    if (here == 0xDA)  // a scan's data runs to the next marker that is not a restart
      while (!(jpeg[pos] == 0xFF && jpeg[pos + 1] != 0 && (jpeg[pos + 1] < 0xD0 || jpeg[pos + 1] > 0xD7)))
        ++pos;
  }
  FAIL("marker not found");
  return 0;
}

}  // namespace

// stb_image 2.27 reads out of bounds on these (the fuzzer found the first); they must be
// refused before it sees them.
TEST_CASE("JPEGs whose tables do not fit their scans are refused by name") {
  testing::TempDir dir;
  const auto path = dir.path() / "photo.jpg";
  REQUIRE(stbi_write_jpg(path.string().c_str(), 8, 6, 3, gradient(8, 6).data(), 90));
  const Bytes baseline = file_bytes(path);
  const Bytes progressive = file_bytes(STRATUM_TEST_DATA_DIR "/progressive.jpg");
  REQUIRE(decode_image(baseline, "photo.jpg").width == 8);
  REQUIRE(decode_image(progressive, "progressive.jpg").width == 24);

  SUBCASE("a Huffman table with more than 256 codes") {
    Bytes bad = baseline;
    const std::size_t dht = find_segment(bad, 0xC4, 0);
    bad[dht + 4 + 15] = 255;  // codes of length 15 and 16
    bad[dht + 4 + 16] = 255;
    CHECK_THROWS_WITH_AS(decode_image(bad, "big.jpg"),
                         doctest::Contains("'big.jpg' is a corrupt JPEG (a Huffman table declares"), IoError);
  }
  SUBCASE("a baseline scan naming an undefined DC table") {
    Bytes bad = baseline;
    bad[find_segment(bad, 0xDA, 0) + 6] = 0x20;  // first component: DC table 2, AC table 0
    CHECK_THROWS_WITH_AS(decode_image(bad, "dc.jpg"),
                         "'dc.jpg' is a corrupt JPEG (a scan uses a Huffman table that no DHT segment defines)",
                         IoError);
  }
  SUBCASE("a progressive AC scan naming an undefined AC table") {
    Bytes bad = progressive;
    bad[find_segment(bad, 0xDA, 1) + 6] = 0x02;  // luma AC scan: AC table 2
    CHECK_THROWS_WITH_AS(decode_image(bad, "ac.jpg"),
                         doctest::Contains("a scan uses a Huffman table that no DHT segment defines"), IoError);
  }
  SUBCASE("a progressive refinement scan may name a DC table it does not use") {
    Bytes odd = progressive;
    odd[find_segment(odd, 0xDA, 6) + 6] = 0x30;  // DC refinement of luma: DC table 3, unused
    CHECK(decode_image(odd, "refine.jpg").width == 24);
  }
  SUBCASE("a component whose quantisation table is never defined") {
    Bytes bad = baseline;
    const std::size_t dqt = find_segment(bad, 0xDB, 0);
    bad[dqt + 4] = static_cast<std::uint8_t>((bad[dqt + 4] & 0xF0) | 3);  // defines table 3, not 0
    CHECK_THROWS_WITH_AS(decode_image(bad, "dqt.jpg"),
                         doctest::Contains("a scan uses a quantisation table that no DQT segment defines"), IoError);
  }
  SUBCASE("a frame header naming quantisation table 15") {
    Bytes bad = baseline;
    bad[find_segment(bad, 0xC0, 0) + 12] = 15;  // the first component's table
    CHECK_THROWS_WITH_AS(decode_image(bad, "tq.jpg"),
                         doctest::Contains("bad quantisation table number in the frame header"), IoError);
  }
  SUBCASE("bytes where a marker should be, after the frame header") {
    Bytes bad = baseline;
    bad[find_segment(bad, 0xDA, 0)] = 0x12;
    CHECK_THROWS_WITH_AS(decode_image(bad, "stray.jpg"), doctest::Contains("expected a marker at byte"), IoError);
  }
}

// stb_image 2.27 allocates what an IDAT chunk claims before reading it, and copies to a null
// pointer on an empty first IDAT (the fuzzer found both).
TEST_CASE("PNG chunks: lengths past the end are refused, empty IDAT chunks are dropped") {
  const Bytes rows{10, 20, 30, 40, 50, 60};
  const Bytes png = testing::encode_png(2, 1, 8, 2, rows, 6);
  const auto idat = static_cast<std::size_t>(std::search(png.begin(), png.end(), std::begin("IDAT"), std::end("IDAT") - 1) - png.begin()) - 4;
  REQUIRE(idat < png.size());

  SUBCASE("an empty IDAT before the data decodes as the file without it") {
    Bytes empty_chunk;
    testing::png_chunk(empty_chunk, "IDAT", {});
    Bytes with_empty = png;
    with_empty.insert(with_empty.begin() + static_cast<std::ptrdiff_t>(idat), empty_chunk.begin(), empty_chunk.end());
    with_empty.insert(with_empty.end() - 12, empty_chunk.begin(), empty_chunk.end());  // and one before IEND
    const Image image = decode_image(with_empty, "empty_idat.png");
    CHECK(image.pixels == decode_image(png, "plain.png").pixels);
    CHECK(image.pixels == std::vector<std::uint8_t>(rows.begin(), rows.end()));
  }
  SUBCASE("an IDAT claiming 2 GB in a file of a few bytes") {
    Bytes bad = png;
    bad[idat] = 0x80;
    const std::uint32_t claimed = big_endian_at(bad, idat, 4);
    const std::string expected = "'huge.png' is a truncated PNG (a chunk at byte " + std::to_string(idat) +
                                 " claims " + std::to_string(claimed) + " bytes, more than the file holds)";
    CHECK_THROWS_WITH_AS(decode_image(bad, "huge.png"), expected.c_str(), IoError);
  }
  SUBCASE("no IEND") {
    const Bytes cut(png.begin(), png.end() - 12);
    CHECK_THROWS_WITH_AS(decode_image(cut, "no_end.png"), "'no_end.png' is a truncated PNG (no IEND chunk)", IoError);
  }
}

TEST_CASE("downscaling averages instead of aliasing") {
  // A one-pixel checkerboard is mid-grey at any smaller size; point sampling would return
  // pure black or white pixels.
  Image board;
  board.width = board.height = 1000;
  board.pixels.resize(1000 * 1000 * 3);
  for (std::size_t y = 0; y < 1000; ++y)
    for (std::size_t x = 0; x < 1000; ++x)
      for (std::size_t c = 0; c < 3; ++c) board.pixels[(y * 1000 + x) * 3 + c] = (x + y) % 2 ? 255 : 0;
  const Image small = resize_image(board, 13, 7);
  CHECK(small.width == 13);
  CHECK(small.height == 7);
  for (std::uint8_t v : small.pixels) CHECK(std::abs(int(v) - 128) <= 8);
}

namespace {

// resize_image runs stb_image_resize's filters in loops of its own (data/resample.hpp), in bands
// of output rows on the threads; the bytes must be those of one stb call.
void check_resize_matches_stb(const Image& image, int out_w, int out_h) {
  const int in_w = image.width, in_h = image.height;
  CAPTURE(in_w);
  CAPTURE(in_h);
  CAPTURE(out_w);
  CAPTURE(out_h);
  std::vector<std::uint8_t> whole(static_cast<std::size_t>(out_w * out_h * 3));
  REQUIRE(stbir_resize_uint8(image.pixels.data(), in_w, in_h, 0, whole.data(), out_w, out_h, 0, 3));
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    const Image resized = resize_image(image, out_w, out_h);
    CHECK(resized.width == out_w);
    CHECK(resized.height == out_h);
    CHECK(resized.pixels == whole);
    if (threads < 3) continue;
    // Into a wider canvas (as a letterbox does): the same rows, the bytes between untouched.
    const std::size_t row = static_cast<std::size_t>(out_w) * 3, stride = row + 5;
    std::vector<std::uint8_t> canvas(stride * static_cast<std::size_t>(out_h), 7);
    resize_image_into(image, canvas.data(), out_w, out_h, stride);
    for (std::size_t y = 0; y < static_cast<std::size_t>(out_h); ++y) {
      CHECK(std::equal(whole.begin() + static_cast<std::ptrdiff_t>(y * row),
                       whole.begin() + static_cast<std::ptrdiff_t>((y + 1) * row),
                       canvas.begin() + static_cast<std::ptrdiff_t>(y * stride)));
      CHECK(std::all_of(canvas.begin() + static_cast<std::ptrdiff_t>(y * stride + row),
                        canvas.begin() + static_cast<std::ptrdiff_t>((y + 1) * stride),
                        [](std::uint8_t v) { return v == 7; }));
    }
  }
}

Image random_image(Random& rng, int width, int height) {
  Image image{width, height, std::vector<std::uint8_t>(static_cast<std::size_t>(width * height * 3))};
  for (auto& v : image.pixels) v = static_cast<std::uint8_t>(rng.below(256));
  return image;
}

}  // namespace

TEST_CASE("resizing gives the bytes of stb_image_resize, on any number of threads") {
  // Random pixels (every filter tap matters). Chosen shapes: the detector's letterbox scale
  // (0.6; smaller than a photo, as the sanitizer build runs this at -O0), shrinking and
  // enlarging, odd sizes, one row or column, a large factor, outputs too short to split into
  // bands; then random shapes, mixing shrinking one side and enlarging the other.
  Random rng(17);
  const int saved_threads = num_threads();
  const std::vector<std::array<int, 4>> shapes{
      {320, 240, 192, 144}, {161, 119, 83, 25}, {37, 53, 96, 96},    {1000, 3, 13, 7},
      {5, 900, 1, 71},      {1, 1, 9, 40},      {97, 65, 97, 33},    {150, 100, 151, 101},
      {2, 2, 1, 1},         {1, 300, 2, 2}};
  for (const auto& shape : shapes)
    check_resize_matches_stb(random_image(rng, shape[0], shape[1]), shape[2], shape[3]);
  for (int i = 0; i < 24; ++i) {
    const auto side = [&] { return 1 + static_cast<int>(rng.below(i % 3 ? 96 : 12)); };
    const int in_w = side(), in_h = side(), out_w = side(), out_h = side();
    if (in_w != out_w || in_h != out_h)
      check_resize_matches_stb(random_image(rng, in_w, in_h), out_w, out_h);
  }
  set_num_threads(saved_threads);
}

TEST_CASE("a resize gives the same bytes in every build: no fused multiply-adds") {
  // The release build compiles for this CPU, with FMA, the sanitizer build without: both must
  // give these bytes, recorded from a portable build. With fusing allowed (no_fp_contract.hpp
  // emptied), an -march=native build of GCC or Clang gives other bytes for the enlargement.
  Random rng(31);
  const Image image = random_image(rng, 160, 120);
  CHECK(Fnv1a().add(resize_image(image, 96, 72).pixels).value() == 0x040969ebaaf87b5eULL);
  CHECK(Fnv1a().add(resize_image(image, 203, 151).pixels).value() == 0x5c8c991dee99b8e1ULL);
}

TEST_CASE("resizes of several sizes in turn each get their own filters") {
  // The filters of the last few sizes are kept per thread (resample.hpp); more sizes in turn
  // than are kept, and back, must still each give stb's bytes.
  Random rng(23);
  const Image image = random_image(rng, 45, 35);
  for (int round = 0; round < 2; ++round)
    for (int size : {10, 15, 22, 32, 40, 50, 10})
      check_resize_matches_stb(image, size, size / 2 + 3);
}
