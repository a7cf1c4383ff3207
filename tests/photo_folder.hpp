// Writes a small stand-in for the Kaggle folder: with_mask/ and without_mask/ photos of
// various sizes and formats. A "face" is a skin-coloured oval on a random background; a
// "mask" covers its lower half in a light blue. A small CNN tells them apart easily.
#pragma once

#include <stratum/data/image.hpp>
#include <stratum/random.hpp>

#include <filesystem>
#include <string>

namespace stratum::testing {

inline void write_face(const std::filesystem::path& path, bool masked, Random& rng) {
  const int w = 40 + static_cast<int>(rng.below(50)), h = 40 + static_cast<int>(rng.below(50));
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(w * h * 3));
  const double bg[3] = {rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255)};
  const double cx = w * rng.uniform(0.4, 0.6), cy = h * rng.uniform(0.4, 0.6);
  const double rx = w * rng.uniform(0.25, 0.35), ry = h * rng.uniform(0.3, 0.4);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const double dx = (x - cx) / rx, dy = (y - cy) / ry;
      const bool face = dx * dx + dy * dy < 1;
      const bool mask = masked && face && y > cy;
      const double skin[3] = {225, 180, 150}, blue[3] = {170, 210, 240};
      for (int c = 0; c < 3; ++c) {
        const double base = mask ? blue[c] : face ? skin[c] : bg[c];
        rgb[static_cast<std::size_t>((y * w + x) * 3 + c)] =
            static_cast<std::uint8_t>(std::clamp(base + rng.uniform(-20, 20), 0.0, 255.0));
      }
    }
  const std::string s = path.string();
  // Alternate formats; every file is named .jpg, as in the Kaggle set.
  if (rng.below(2)) stbi_write_jpg(s.c_str(), w, h, 3, rgb.data(), 90);
  else stbi_write_png(s.c_str(), w, h, 3, rgb.data(), w * 3);
}

/// `per_class` photos in each class folder of `root`, named like Kaggle's.
inline void write_photo_folder(const std::filesystem::path& root, int per_class, std::uint64_t seed) {
  Random rng(seed);
  for (bool masked : {false, true}) {
    const std::string name = masked ? "with_mask" : "without_mask";
    std::filesystem::create_directories(root / name);
    for (int i = 1; i <= per_class; ++i)
      write_face(root / name / (name + "_" + std::to_string(i) + ".jpg"), masked, rng);
  }
}

}  // namespace stratum::testing
