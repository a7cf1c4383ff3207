// FNV-1a, 64 bit: a small, fast, byte-order-independent hash. stratum uses it to recognise
// byte-identical files, to key the image cache, and as the checksum of its binary files. It
// detects accidental corruption; it is not a cryptographic hash.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace stratum {

class Fnv1a {
 public:
  Fnv1a& add(std::span<const std::uint8_t> bytes) {
    for (std::uint8_t b : bytes) state_ = (state_ ^ b) * 0x100000001b3ULL;
    return *this;
  }
  Fnv1a& add(std::string_view text) {
    return add(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
  }
  Fnv1a& add(std::uint64_t value) {
    for (int i = 0; i < 8; ++i) state_ = (state_ ^ ((value >> (8 * i)) & 0xFF)) * 0x100000001b3ULL;
    return *this;
  }
  [[nodiscard]] std::uint64_t value() const { return state_; }

 private:
  std::uint64_t state_ = 0xcbf29ce484222325ULL;
};

}  // namespace stratum
