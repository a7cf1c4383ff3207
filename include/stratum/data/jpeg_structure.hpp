// Checks of a JPEG's marker structure, made before stb_image sees the file.
//
// stb_image 2.27 (Debian 12's libstb) trusts a corrupt JPEG in ways that read or write out of
// bounds or return pixels made from uninitialised memory:
//   - a DHT segment may declare more than 256 codes in one Huffman table; stb writes them past
//     the end of its 256-entry arrays;
//   - a scan may name a Huffman table that no DHT segment defined; stb then decodes with the
//     table's uninitialised memory and indexes its arrays with garbage;
//   - a scan may cover a component whose quantisation table no DQT segment defined; the pixels
//     then come from uninitialised memory.
// It also fills a JPEG cut short with grey instead of failing. Later stb versions check the
// first two; we check all four here, walking the markers in the order stb reads them, so that
// every table stb will build or use has been looked at:
//   - before the frame header (SOF), stb skips stray bytes between segments; after it, a marker
//     must follow each segment directly;
//   - the entropy-coded data after a scan header ends at the first 0xFF byte followed by a byte
//     other than 0x00 (a stuffed 0xFF), 0xFF (fill) or a restart marker (0xD0-0xD7).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "../errors.hpp"
#include "binary_io.hpp"

namespace stratum::detail {

/// A JPEG whose end-of-image marker is missing was cut short (stb_image would fill the missing
/// part with grey rather than fail). Zero padding after the marker, which some writers append,
/// is allowed.
inline bool jpeg_is_complete(std::span<const std::uint8_t> bytes) {
  std::size_t end = bytes.size();
  while (end > 0 && bytes[end - 1] == 0) --end;
  return end >= 2 && bytes[end - 2] == 0xFF && bytes[end - 1] == 0xD9;
}

/// Throws IoError naming `name` when the JPEG in `bytes` is truncated or its tables are not
/// what its scans need (see the top of this file). Files that pass may still be corrupt in
/// ways stb_image detects itself.
inline void check_jpeg_structure(std::span<const std::uint8_t> bytes, const std::string& name) {
  auto corrupt = [&](const std::string& what) {
    return IoError("'" + name + "' is a corrupt JPEG (" + what + ")");
  };
  if (!jpeg_is_complete(bytes))
    throw IoError("'" + name + "' is a truncated JPEG (no end-of-image marker)");
  // stb reads a zero past the end of the data; reading the same keeps the walk in step with it.
  auto byte_at = [&](std::size_t i) -> unsigned { return big_endian_at(bytes, i, 1); };

  std::array<std::array<bool, 4>, 2> huffman_defined{};  // [0 = DC, 1 = AC][table]
  std::array<bool, 4> quantisation_defined{};
  std::array<int, 256> quantisation_of_component;  // by component id; -1 = not in the frame
  quantisation_of_component.fill(-1);
  bool frame_seen = false;
  bool progressive = false;

  std::size_t pos = 2;  // after the start-of-image marker
  while (true) {
    if (pos >= bytes.size()) throw corrupt("no end-of-image marker after the last segment");
    if (bytes[pos] != 0xFF) {
      if (frame_seen) throw corrupt("expected a marker at byte " + std::to_string(pos));
      ++pos;
      continue;
    }
    while (pos < bytes.size() && bytes[pos] == 0xFF) ++pos;  // fill bytes before a marker
    const unsigned marker = byte_at(pos++);
    if (marker == 0xD9) return;  // end of image: stb stops reading here
    if (marker == 0x00 || marker == 0x01 || marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7))
      throw corrupt("unexpected marker " + std::to_string(marker) + " at byte " +
                    std::to_string(pos - 2));

    const std::size_t length = big_endian_at(bytes, pos, 2);
    if (length < 2 || pos + length > bytes.size())
      throw corrupt("segment at byte " + std::to_string(pos - 2) +
                    " runs past the end of the file");
    const std::size_t segment_end = pos + length;

    if (marker == 0xC4) {  // DHT: tables read exactly as stb reads them
      long left = static_cast<long>(length) - 2;
      std::size_t at = pos + 2;
      while (left > 0) {
        const unsigned table_class = byte_at(at) >> 4, table = byte_at(at) & 15;
        if (table_class > 1 || table > 3) throw corrupt("bad Huffman table number");
        unsigned codes = 0;
        for (std::size_t i = 1; i <= 16; ++i) codes += byte_at(at + i);
        if (codes > 256)
          throw corrupt("a Huffman table declares " + std::to_string(codes) +
                        " codes, at most 256");
        huffman_defined[table_class][table] = true;
        at += 17 + codes;
        left -= 17 + static_cast<long>(codes);
      }
    } else if (marker == 0xDB) {  // DQT: one or more tables of 64 8-bit or 16-bit entries
      std::size_t at = pos + 2;
      while (at < segment_end) {
        const unsigned precision = byte_at(at) >> 4, table = byte_at(at) & 15;
        if (table > 3) throw corrupt("bad quantisation table number");
        quantisation_defined[table] = true;
        at += 1 + (precision == 0 ? 64 : 128);
      }
    } else if (marker == 0xC0 || marker == 0xC1 || marker == 0xC2) {  // the frames stb decodes
      if (frame_seen) throw corrupt("a second frame header");
      frame_seen = true;
      progressive = marker == 0xC2;
      const unsigned components = byte_at(pos + 7);
      for (unsigned c = 0; c < components; ++c) {
        const unsigned table = byte_at(pos + 10 + 3 * c);
        if (table > 3) throw corrupt("bad quantisation table number in the frame header");
        quantisation_of_component[byte_at(pos + 8 + 3 * c)] = static_cast<int>(table);
      }
    } else if (marker == 0xDA) {  // SOS: the tables this scan decodes with must exist
      if (!frame_seen) throw corrupt("a scan before the frame header");
      const unsigned components = byte_at(pos + 2);
      const std::size_t after = pos + 3 + 2 * components;
      const unsigned spectral_start = byte_at(after), approximation_high = byte_at(after + 2) >> 4;
      // Baseline scans use both tables. A progressive scan uses the DC table only in the
      // first pass over the DC coefficients, the AC table only for AC coefficients.
      const bool uses_dc = !progressive || (spectral_start == 0 && approximation_high == 0);
      const bool uses_ac = !progressive || spectral_start > 0;
      for (unsigned c = 0; c < components; ++c) {
        const unsigned id = byte_at(pos + 3 + 2 * c), tables = byte_at(pos + 4 + 2 * c);
        const unsigned dc = tables >> 4, ac = tables & 15;
        if (dc > 3 || ac > 3) throw corrupt("bad Huffman table number in a scan");
        if ((uses_dc && !huffman_defined[0][dc]) || (uses_ac && !huffman_defined[1][ac]))
          throw corrupt("a scan uses a Huffman table that no DHT segment defines");
        const int quantisation = quantisation_of_component[id];
        if (quantisation >= 0 && !quantisation_defined[static_cast<std::size_t>(quantisation)])
          throw corrupt("a scan uses a quantisation table that no DQT segment defines");
      }
      // Skip the entropy-coded data to the marker that ends it.
      std::size_t at = segment_end;
      while (at + 1 < bytes.size()) {
        if (bytes[at] == 0xFF) {
          std::size_t next = at + 1;
          while (next < bytes.size() && bytes[next] == 0xFF) ++next;
          const unsigned after_ff = byte_at(next);
          if (after_ff != 0x00 && !(after_ff >= 0xD0 && after_ff <= 0xD7)) break;
          at = next + 1;
        } else {
          ++at;
        }
      }
      pos = at;
      continue;
    }
    pos = segment_end;
  }
}

}  // namespace stratum::detail
