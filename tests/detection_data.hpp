// Where the tests find the face-mask detection set (read-only, beside the repository:
// ../shared/datasets/face-mask-detection), and a writer for hand-made VOC files.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

namespace stratum::testing {

/// The face-mask detection set's folder, or an empty path when it is not there.
inline std::filesystem::path face_mask_detection_dir() {
  const std::filesystem::path dir = std::filesystem::path(STRATUM_TEST_DATA_DIR) / ".." / ".." /
                                    ".." / "shared" / "datasets" / "face-mask-detection";
  std::error_code error;
  return std::filesystem::is_directory(dir / "annotations", error) ? dir.lexically_normal()
                                                                   : std::filesystem::path();
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

/// A VOC <object> element.
inline std::string voc_object(const std::string& name, const std::string& xmin,
                              const std::string& ymin, const std::string& xmax,
                              const std::string& ymax) {
  return "<object><name>" + name + "</name><bndbox><xmin>" + xmin + "</xmin><ymin>" + ymin +
         "</ymin><xmax>" + xmax + "</xmax><ymax>" + ymax + "</ymax></bndbox></object>";
}

/// A VOC file of a width x height image holding `objects`.
inline std::string voc_document(int width, int height, const std::string& objects) {
  return "<annotation><size><width>" + std::to_string(width) + "</width><height>" +
         std::to_string(height) + "</height><depth>3</depth></size>" + objects + "</annotation>";
}

}  // namespace stratum::testing
