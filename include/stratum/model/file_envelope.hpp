// The envelope shared by stratum's binary files (models, training checkpoints):
//
//   magic     8 bytes   89 'S' 'T' k 0D 0A 1A 0A   (k names the kind; PNG's trick catches
//                                                  text-mode mangling and truncation to 7 bits)
//   version   u32
//   size      u64       the whole file's length, so truncation is recognised as such
//   body      ...
//   checksum  u64       FNV-1a of every byte before it
//
// `open_envelope` checks all of it before anything in the body is trusted, and says what is
// wrong and with which file.
#pragma once

#include <array>
#include <cstring>
#include <span>
#include <string>

#include "../data/binary_io.hpp"
#include "../hash.hpp"

namespace stratum::detail {

using Magic = std::array<std::uint8_t, 8>;

constexpr Magic file_magic(char kind) {
  return {0x89, 'S', 'T', static_cast<std::uint8_t>(kind), 0x0D, 0x0A, 0x1A, 0x0A};
}

/// The kinds of stratum file, so that a file of one kind given where another is expected is
/// named for what it is.
struct FileKind {
  char letter;
  const char* what;    // as open_envelope's `what`
  const char* loader;  // the function that reads it
};
inline constexpr std::array<FileKind, 3> file_kinds{{{'R', "model", "load_model"},
                                                     {'G', "graph model", "load_graph_model"},
                                                     {'C', "checkpoint", "load_checkpoint"}}};

/// Starts a file: magic, version and a size to be filled in by `seal_envelope`.
inline void begin_envelope(BinaryWriter& w, const Magic& magic, std::uint32_t version) {
  w.put_array(std::span<const std::uint8_t>(magic));
  w.put(version);
  w.put(std::uint64_t{0});
}

/// Ends a file: fills in its size and appends the checksum.
inline std::vector<std::uint8_t> seal_envelope(BinaryWriter& w) {
  auto& bytes = w.bytes();
  const std::uint64_t size = bytes.size() + 8;
  std::memcpy(bytes.data() + 12, &size, 8);
  w.put(Fnv1a().add(std::span<const std::uint8_t>(bytes)).value());
  return std::move(bytes);
}

/// Checks the envelope of `bytes` (named `name` in errors; `what` is "model", say) and returns
/// a reader over its body.
inline BinaryReader open_envelope(std::span<const std::uint8_t> bytes, const std::string& name,
                                  const Magic& magic, const std::string& what,
                                  std::uint32_t newest_version) {
  constexpr std::size_t header = 8 + 4 + 8;
  if (bytes.size() < 8 || std::memcmp(bytes.data(), magic.data(), 8) != 0) {
    for (const FileKind& kind : file_kinds)
      if (bytes.size() >= 8 && std::memcmp(bytes.data(), file_magic(kind.letter).data(), 8) == 0)
        throw IoError("'" + name + "' is not a stratum " + what + " file: it is a stratum " +
                      kind.what + " file (read it with " + kind.loader + ")");
    throw IoError("'" + name + "' is not a stratum " + what + " file");
  }
  if (bytes.size() < header + 8)
    throw IoError("'" + name + "' is truncated: only " + std::to_string(bytes.size()) + " bytes");
  std::uint32_t version = 0;
  std::uint64_t size = 0;
  std::memcpy(&version, bytes.data() + 8, 4);
  std::memcpy(&size, bytes.data() + 12, 8);
  if (version > newest_version)
    throw IoError("'" + name + "' was written in " + what + " format version " +
                  std::to_string(version) + "; this build of stratum reads versions up to " +
                  std::to_string(newest_version) + ": update stratum to load it");
  if (version == 0) throw IoError("'" + name + "' has an invalid format version 0");
  if (bytes.size() < size)
    throw IoError("'" + name + "' is truncated: " + std::to_string(bytes.size()) + " of " +
                  std::to_string(size) + " bytes");
  if (bytes.size() > size)
    throw IoError("'" + name + "' has " + std::to_string(bytes.size() - size) +
                  " unexpected bytes after the end of the " + what);
  std::uint64_t checksum = 0;
  std::memcpy(&checksum, bytes.data() + bytes.size() - 8, 8);
  if (Fnv1a().add(bytes.first(bytes.size() - 8)).value() != checksum)
    throw IoError("'" + name + "' is corrupt: its checksum does not match its contents");
  return BinaryReader(bytes.subspan(header, bytes.size() - header - 8), name);
}

}  // namespace stratum::detail
