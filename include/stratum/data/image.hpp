// Reading photos: decode any JPEG (baseline or progressive), PNG (grey, RGB, RGBA, palette with
// transparency, 8 or 16 bit), BMP or GIF (first frame) with stb_image, choosing the decoder by
// the file's content, never its name; composite transparency onto a background colour; resize
// with a filter that does not alias.
//
// Corrupt files: JPEGs and PNGs are checked first (jpeg_structure.hpp, png_structure.hpp) for
// the faults stb_image 2.27 would read or allocate out of bounds on; stb catches the rest.
//
// Alpha: a transparent pixel shows the background colour (white by default), blended in 8-bit
// sRGB as most viewers do: out = (a * colour + (255 - a) * background) / 255.
//
// Resizing: stb_image_resize's Mitchell filter, whose support widens with the scale factor, so
// a 20-megapixel photo shrunk to 128x128 averages every source pixel instead of sampling a few
// (which would alias); run by stratum's own loops on every thread (resample.hpp), which give
// stb's bytes faster. The aspect ratio is not kept: like the Keras notebook, each photo is
// stretched to the target size.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "binary_io.hpp"
#include "jpeg_structure.hpp"
#include "png_structure.hpp"
#include "resample.hpp"
#include "stb.hpp"

/// The largest image decoded, in pixels: 268 megapixels (about 1 GiB as RGBA). Larger claims
/// are refused before any memory is allocated for them.
#ifndef STRATUM_MAX_IMAGE_PIXELS
#define STRATUM_MAX_IMAGE_PIXELS (1LL << 28)
#endif

namespace stratum {

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC).
struct Image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // width * height * 3
};

using Rgb = std::array<std::uint8_t, 3>;
inline constexpr Rgb white{255, 255, 255};

/// The container format named by a file's first bytes: "JPEG", "PNG", "GIF", "BMP" or "" when
/// none of those.
inline std::string image_format(std::span<const std::uint8_t> bytes) {
  auto starts = [&](std::initializer_list<int> magic) {
    if (bytes.size() < magic.size()) return false;
    std::size_t i = 0;
    for (int m : magic)
      if (bytes[i++] != m) return false;
    return true;
  };
  if (starts({0xFF, 0xD8, 0xFF})) return "JPEG";
  if (starts({0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A})) return "PNG";
  if (starts({'G', 'I', 'F', '8'})) return "GIF";
  if (starts({'B', 'M'})) return "BMP";
  return "";
}

/// Decodes an image file's bytes to RGB. `name` is used in error messages.
/// Throws IoError for empty, unrecognised, truncated, corrupt or absurdly large images.
inline Image decode_image(std::span<const std::uint8_t> bytes, const std::string& name,
                          Rgb background = white) {
  if (bytes.empty()) throw IoError("'" + name + "' is empty");
  const std::string format = image_format(bytes);
  if (format.empty())
    throw IoError("'" + name + "' is not an image (not JPEG, PNG, GIF or BMP by its content)");
  // stb_image trusts some things a corrupt file gets wrong; these checks come first.
  std::vector<std::uint8_t> repaired;
  if (format == "JPEG") detail::check_jpeg_structure(bytes, name);
  if (format == "PNG") bytes = detail::check_png_structure(bytes, name, repaired);
  if (bytes.size() > static_cast<std::size_t>(INT32_MAX))
    throw IoError("'" + name + "' is too large to decode");
  const auto size = static_cast<int>(bytes.size());
  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(bytes.data(), size, &width, &height, &channels))
    throw IoError("'" + name + "' is a corrupt " + format + " (" + stbi_failure_reason() + ")");
  if (width < 1 || height < 1 || static_cast<long long>(width) * height > STRATUM_MAX_IMAGE_PIXELS)
    throw IoError("'" + name + "' has an unsupported size " + std::to_string(width) + "x" +
                  std::to_string(height));

  stbi_uc* rgba = stbi_load_from_memory(bytes.data(), size, &width, &height, &channels, 4);
  if (!rgba)
    throw IoError("'" + name + "' is a corrupt " + format + " (" + stbi_failure_reason() + ")");
  Image image;
  image.width = width;
  image.height = height;
  image.pixels.resize(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3);
  for (std::size_t p = 0; p < static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
       ++p) {
    const unsigned alpha = rgba[4 * p + 3];
    for (std::size_t c = 0; c < 3; ++c)
      image.pixels[3 * p + c] = static_cast<std::uint8_t>(
          (alpha * rgba[4 * p + c] + (255 - alpha) * background[c] + 127) / 255);
  }
  stbi_image_free(rgba);
  return image;
}

inline Image load_image(const std::filesystem::path& path, Rgb background = white) {
  return decode_image(read_file(path), path.string(), background);
}

/// `image` as a JPEG file's bytes at `quality` (1 to 100), encoded by stb_image_write in memory.
inline std::vector<std::uint8_t> encode_jpeg(const Image& image, int quality) {
  if (quality < 1 || quality > 100)
    throw Error("encode_jpeg: the quality must be 1 to 100, not " + std::to_string(quality));
  std::vector<std::uint8_t> bytes;
  // (resize and memcpy rather than insert: GCC 12 warns, wrongly, about insert inlined here)
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<std::uint8_t>*>(context);
    const std::size_t end = out->size();
    out->resize(end + static_cast<std::size_t>(size));
    std::memcpy(out->data() + end, data, static_cast<std::size_t>(size));
  };
  if (!stbi_write_jpg_to_func(append, &bytes, image.width, image.height, 3, image.pixels.data(),
                              quality))
    throw Error("encode_jpeg: stb_image_write could not encode a " + std::to_string(image.width) +
                "x" + std::to_string(image.height) + " image");
  return bytes;
}

/// Resamples `image` to width x height into `out`, whose rows start `out_row_bytes` apart (a
/// letterbox writes into the middle of its square this way, with no copy between): stb's
/// filters, on every thread, in loops of our own (resample.hpp), the bytes of stb_image_resize.
inline void resize_image_into(const Image& image, std::uint8_t* out, int width, int height,
                              std::size_t out_row_bytes) {
  if (width < 1 || height < 1) throw Error("resize_image: target size must be positive");
  if (image.width == width && image.height == height) {
    const auto row_bytes = static_cast<std::size_t>(width) * 3;
    for (int y = 0; y < height; ++y)
      std::copy_n(image.pixels.data() + static_cast<std::size_t>(y) * row_bytes, row_bytes,
                  out + static_cast<std::size_t>(y) * out_row_bytes);
    return;
  }
  detail::resample_rgb(image.pixels.data(), image.width, image.height, out, width, height,
                       out_row_bytes);
}

/// Resamples to width x height (see the note at the top of this file).
inline Image resize_image(const Image& image, int width, int height) {
  if (width < 1 || height < 1) throw Error("resize_image: target size must be positive");
  if (image.width == width && image.height == height) return image;
  Image out{width, height,
            std::vector<std::uint8_t>(static_cast<std::size_t>(width) *
                                      static_cast<std::size_t>(height) * 3)};
  resize_image_into(image, out.pixels.data(), width, height, static_cast<std::size_t>(width) * 3);
  return out;
}

/// Writes an RGB image as PNG. Throws IoError on failure.
inline void write_png(const std::filesystem::path& path, const Image& image) {
  if (!stbi_write_png(path.string().c_str(), image.width, image.height, 3, image.pixels.data(),
                      image.width * 3))
    throw IoError("cannot write PNG '" + path.string() + "'");
}

}  // namespace stratum
