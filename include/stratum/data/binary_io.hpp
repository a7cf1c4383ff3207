// Little-endian binary reading and writing with bounds checks, for stratum's file formats
// (and one big-endian read, for the image formats' headers).
// A reader never reads past its buffer: a short file raises IoError("... is truncated ...")
// naming the file, instead of reading garbage.
#pragma once

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#if __has_include(<unistd.h>)
#include <unistd.h>
#endif

#include "../errors.hpp"
#include "../hash.hpp"

namespace stratum {

static_assert(std::endian::native == std::endian::little,
              "stratum's file formats are little-endian; this platform is not");

class BinaryWriter {
 public:
  template <typename V>
  void put(V value) {
    static_assert(std::is_trivially_copyable_v<V>);
    const auto* p = reinterpret_cast<const std::uint8_t*>(&value);
    bytes_.insert(bytes_.end(), p, p + sizeof(V));
  }
  void put_string(const std::string& s) {
    put(static_cast<std::uint32_t>(s.size()));
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  template <typename V>
  void put_array(std::span<const V> values) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(values.data());
    bytes_.insert(bytes_.end(), p, p + values.size_bytes());
  }
  [[nodiscard]] std::vector<std::uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<std::uint8_t> bytes_;
};

class BinaryReader {
 public:
  BinaryReader(std::span<const std::uint8_t> bytes, std::string name)
      : bytes_(bytes), name_(std::move(name)) {}

  template <typename V>
  V get() {
    V value;
    std::memcpy(&value, take(sizeof(V)), sizeof(V));
    return value;
  }
  std::string get_string(std::size_t max_length = 1 << 20) {
    const auto length = get<std::uint32_t>();
    if (length > max_length) fail("holds a string of " + std::to_string(length) + " bytes");
    const auto* p = take(length);
    return std::string(reinterpret_cast<const char*>(p), length);
  }
  template <typename V>
  void get_array(std::span<V> out) {
    if (out.empty()) return;  // memcpy must not see the null pointer of an empty vector
    std::memcpy(out.data(), take(out.size_bytes()), out.size_bytes());
  }
  /// The next n bytes where they lie, without copying them.
  std::span<const std::uint8_t> get_view(std::size_t n) { return {take(n), n}; }
  [[nodiscard]] std::size_t offset() const { return offset_; }
  [[nodiscard]] std::size_t remaining() const { return bytes_.size() - offset_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw IoError("'" + name_ + "' " + what + " (at byte " + std::to_string(offset_) + ")");
  }

 private:
  const std::uint8_t* take(std::size_t n) {
    if (n > remaining())
      throw IoError("'" + name_ + "' is truncated: needed " + std::to_string(n) +
                    " more bytes at byte " + std::to_string(offset_) + " of " +
                    std::to_string(bytes_.size()));
    const auto* p = bytes_.data() + offset_;
    offset_ += n;
    return p;
  }

  std::span<const std::uint8_t> bytes_;
  std::string name_;
  std::size_t offset_ = 0;
};

/// The unsigned big-endian integer of `width` bytes (at most 4) at `at`, as image formats store
/// them; bytes past the end read as 0, as stb_image reads them.
inline std::uint32_t big_endian_at(std::span<const std::uint8_t> bytes, std::size_t at, int width) {
  std::uint32_t value = 0;
  for (int i = 0; i < width; ++i) {
    const std::size_t k = at + static_cast<std::size_t>(i);
    value = value << 8 | (k < bytes.size() ? bytes[k] : 0u);
  }
  return value;
}

/// The whole file as bytes. Throws IoError naming the file.
inline std::vector<std::uint8_t> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open '" + path.string() + "'");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) throw IoError("cannot read '" + path.string() + "'");
  in.seekg(0);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  if (!in.read(reinterpret_cast<char*>(bytes.data()), size))
    throw IoError("cannot read '" + path.string() + "'");
  return bytes;
}

/// Writes `bytes` to `path` so that a crash at any moment leaves either the old file or the
/// complete new one: write a temporary file beside it, flush it to disk, then rename it over
/// the target (an atomic replacement on POSIX file systems).
inline void write_file_atomically(const std::filesystem::path& path,
                                  std::span<const std::uint8_t> bytes) {
  std::filesystem::path temporary = path;
  temporary += ".tmp";
#if __has_include(<unistd.h>)
  temporary += std::to_string(::getpid());
#endif
  std::FILE* file = std::fopen(temporary.string().c_str(), "wb");
  if (!file) throw IoError("cannot write '" + temporary.string() + "'");
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
  ok = std::fflush(file) == 0 && ok;
#if __has_include(<unistd.h>)
  ok = ::fsync(::fileno(file)) == 0 && ok;
#endif
  ok = std::fclose(file) == 0 && ok;
  std::error_code error;
  if (ok) std::filesystem::rename(temporary, path, error);
  if (!ok || error) {
    std::filesystem::remove(temporary, error);
    throw IoError("cannot write '" + path.string() + "'");
  }
}

// The decode caches' frame: an 8-byte magic, the body, and the FNV-1a checksum of everything
// before it (a cache is rebuilt when anything is wrong, so it needs no version or size field).

/// Starts a checksummed file: a writer holding the magic.
inline BinaryWriter begin_checksummed_file(const char (&magic)[8]) {
  BinaryWriter w;
  w.put_array(std::span<const char>(magic, 8));
  return w;
}

/// Appends the checksum to `w` and writes it to `path` atomically, creating its folder.
inline void write_checksummed_file(const std::filesystem::path& path, BinaryWriter& w) {
  w.put(Fnv1a().add(std::span<const std::uint8_t>(w.bytes())).value());
  std::filesystem::create_directories(path.parent_path());
  write_file_atomically(path, w.bytes());
}

/// Reads a file written so and checks its length, checksum and magic; returns its body (the
/// bytes between the magic and the checksum). Throws IoError naming the file, and saying it is
/// not `what` ("a stratum image cache") when the magic differs.
inline std::vector<std::uint8_t> read_checksummed_file(const std::filesystem::path& path,
                                                       const char (&magic)[8],
                                                       const std::string& what) {
  std::vector<std::uint8_t> bytes = read_file(path);
  if (bytes.size() < 16) throw IoError("'" + path.string() + "' is truncated");
  std::uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + bytes.size() - 8, 8);
  if (Fnv1a().add(std::span(bytes.data(), bytes.size() - 8)).value() != stored)
    throw IoError("'" + path.string() + "' is corrupt (checksum mismatch)");
  if (std::memcmp(bytes.data(), magic, 8) != 0)
    throw IoError("'" + path.string() + "' is not " + what);
  return {bytes.begin() + 8, bytes.end() - 8};
}

}  // namespace stratum
