// Encoders for the image kinds stb_image_write cannot produce, so the tests can write every
// format the loader must read: palette PNGs with transparency (tRNS), 16-bit PNGs, and GIFs.
// They favour brevity over compression: PNG data goes in stored (uncompressed) deflate blocks,
// and the GIF's LZW stream sends every pixel as a literal code.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace stratum::testing {

using Bytes = std::vector<std::uint8_t>;

inline void write_bytes(const std::filesystem::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline void put_u32_be(Bytes& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}

inline std::uint32_t crc32(const Bytes& bytes, std::size_t from) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = from; i < bytes.size(); ++i) {
    crc ^= bytes[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

inline void png_chunk(Bytes& out, const char* type, const Bytes& data) {
  put_u32_be(out, static_cast<std::uint32_t>(data.size()));
  const std::size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put_u32_be(out, crc32(out, start));
}

/// A PNG from raw scanlines (`bytes_per_row` each, filter byte added here).
/// colour_type: 0 grey, 2 RGB, 3 palette, 6 RGBA. `palette` is RGB triples; `alpha` the tRNS.
inline Bytes encode_png(int width, int height, int bit_depth, int colour_type, const Bytes& rows,
                        std::size_t bytes_per_row, const Bytes& palette = {}, const Bytes& alpha = {}) {
  Bytes png{0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  Bytes header;
  put_u32_be(header, static_cast<std::uint32_t>(width));
  put_u32_be(header, static_cast<std::uint32_t>(height));
  header.insert(header.end(), {static_cast<std::uint8_t>(bit_depth), static_cast<std::uint8_t>(colour_type), 0, 0, 0});
  png_chunk(png, "IHDR", header);
  if (!palette.empty()) png_chunk(png, "PLTE", palette);
  if (!alpha.empty()) png_chunk(png, "tRNS", alpha);

  Bytes raw;  // filter type 0 before each row
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    raw.insert(raw.end(), rows.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(y) * bytes_per_row),
               rows.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(y + 1) * bytes_per_row));
  }
  Bytes z{0x78, 0x01};  // zlib header: deflate, no preset dictionary
  for (std::size_t pos = 0; pos < raw.size() || pos == 0; pos += 65535) {
    const std::size_t n = std::min<std::size_t>(65535, raw.size() - pos);
    z.push_back(pos + n >= raw.size() ? 1 : 0);  // BFINAL, BTYPE = stored
    z.insert(z.end(), {static_cast<std::uint8_t>(n), static_cast<std::uint8_t>(n >> 8),
                       static_cast<std::uint8_t>(~n), static_cast<std::uint8_t>(~n >> 8)});
    z.insert(z.end(), raw.begin() + static_cast<std::ptrdiff_t>(pos), raw.begin() + static_cast<std::ptrdiff_t>(pos + n));
    if (n == 0) break;
  }
  std::uint32_t a = 1, b = 0;  // Adler-32 of the uncompressed data
  for (std::uint8_t v : raw) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  put_u32_be(z, (b << 16) | a);
  png_chunk(png, "IDAT", z);
  png_chunk(png, "IEND", {});
  return png;
}

/// A GIF of palette indices (`palette` holds 256 RGB triples).
inline Bytes encode_gif(int width, int height, const Bytes& indices, const Bytes& palette) {
  Bytes gif{'G', 'I', 'F', '8', '9', 'a'};
  auto put16 = [&](int v) {
    gif.push_back(static_cast<std::uint8_t>(v));
    gif.push_back(static_cast<std::uint8_t>(v >> 8));
  };
  put16(width);
  put16(height);
  gif.insert(gif.end(), {0xF7, 0, 0});  // global colour table of 256 entries
  gif.insert(gif.end(), palette.begin(), palette.end());
  gif.push_back(0x2C);  // image descriptor
  put16(0);
  put16(0);
  put16(width);
  put16(height);
  gif.push_back(0);
  gif.push_back(8);  // LZW minimum code size

  // Codes are 9 bits: CLEAR = 256, END = 257. Each literal after the first adds a dictionary
  // entry in the decoder; clearing every 200 literals keeps the code size at 9 bits.
  Bytes data;
  std::uint32_t bits = 0;
  int count = 0;
  auto emit = [&](std::uint32_t code) {
    bits |= code << count;
    count += 9;
    while (count >= 8) {
      data.push_back(static_cast<std::uint8_t>(bits));
      bits >>= 8;
      count -= 8;
    }
  };
  for (std::size_t i = 0; i < indices.size(); ++i) {
    if (i % 200 == 0) emit(256);
    emit(indices[i]);
  }
  emit(257);
  if (count > 0) data.push_back(static_cast<std::uint8_t>(bits));
  for (std::size_t pos = 0; pos < data.size(); pos += 255) {
    const std::size_t n = std::min<std::size_t>(255, data.size() - pos);
    gif.push_back(static_cast<std::uint8_t>(n));
    gif.insert(gif.end(), data.begin() + static_cast<std::ptrdiff_t>(pos), data.begin() + static_cast<std::ptrdiff_t>(pos + n));
  }
  gif.push_back(0);     // end of image data
  gif.push_back(0x3B);  // trailer
  return gif;
}

}  // namespace stratum::testing
