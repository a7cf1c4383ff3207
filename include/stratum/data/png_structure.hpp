// Checks of a PNG's chunk structure, made before stb_image sees the file.
//
// stb_image 2.27 (Debian 12's libstb) reads a PNG's chunks in order from byte 8 (4-byte length,
// 4-byte type, the data, a 4-byte CRC) up to IEND, and trusts two things a corrupt file can get
// wrong:
//   - an IDAT chunk's length: it grows its buffer to the claimed size before reading, so a file
//     of a few bytes can make it allocate gigabytes;
//   - that the first IDAT chunk is not empty: an empty one makes it copy zero bytes to a null
//     pointer (undefined behaviour, harmless in practice, but a sanitizer stops on it). Empty
//     IDAT chunks are legal and carry nothing, so they are dropped rather than refused.
// Every chunk up to IEND must lie inside the file; anything after IEND is ignored, as stb does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "binary_io.hpp"

namespace stratum::detail {

/// Throws IoError naming `name` when a chunk of the PNG in `bytes` runs past the end of the
/// file or IEND is missing. Returns the bytes to decode: `bytes` itself, or a copy without its
/// empty IDAT chunks, kept in `repaired`.
inline std::span<const std::uint8_t> check_png_structure(std::span<const std::uint8_t> bytes,
                                                         const std::string& name,
                                                         std::vector<std::uint8_t>& repaired) {
  auto type_is = [&](std::size_t i, const char* type) {
    for (std::size_t k = 0; k < 4; ++k)
      if (bytes[i + k] != static_cast<std::uint8_t>(type[k])) return false;
    return true;
  };
  constexpr std::size_t signature = 8, framing = 12;  // length + type + CRC
  std::vector<std::size_t> empty_idat_chunks;
  std::size_t pos = signature;
  while (true) {
    if (bytes.size() - pos < framing)
      throw IoError("'" + name + "' is a truncated PNG (no IEND chunk)");
    const std::uint32_t length = big_endian_at(bytes, pos, 4);
    if (length > bytes.size() - pos - framing)
      throw IoError("'" + name + "' is a truncated PNG (a chunk at byte " + std::to_string(pos) +
                    " claims " + std::to_string(length) + " bytes, more than the file holds)");
    if (type_is(pos + 4, "IEND")) break;
    if (length == 0 && type_is(pos + 4, "IDAT")) empty_idat_chunks.push_back(pos);
    pos += framing + length;
  }
  if (empty_idat_chunks.empty()) return bytes;

  repaired.clear();
  repaired.reserve(bytes.size());
  std::size_t copied_to = 0;
  for (std::size_t chunk : empty_idat_chunks) {
    repaired.insert(repaired.end(), bytes.begin() + static_cast<std::ptrdiff_t>(copied_to),
                    bytes.begin() + static_cast<std::ptrdiff_t>(chunk));
    copied_to = chunk + framing;
  }
  repaired.insert(repaired.end(), bytes.begin() + static_cast<std::ptrdiff_t>(copied_to),
                  bytes.end());
  return repaired;
}

}  // namespace stratum::detail
