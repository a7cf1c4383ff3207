// The photos a command is given, and how file names go into JSON: shared by predict and detect.
#pragma once

#include <stratum/data/image_folder.hpp>
#include <stratum/errors.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace mask_detection {

/// `s` as a JSON string literal: quoted, with quotes, backslashes and control characters escaped.
inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
      continue;
    }
    out += c;
  }
  return out + "\"";
}

/// The image files to read: each file argument as given, and the image files of each folder
/// argument (by extension, sorted by name). A folder's entries with an image's extension that
/// are not regular files (dangling links, FIFOs, devices, folders) are named in a warning and
/// never opened.
inline std::vector<std::filesystem::path> collect_images(
    const std::vector<std::string>& arguments) {
  static const std::vector<std::string> extensions{".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tga",
                                                   ".ppm", ".pgm",  ".pnm", ".psd", ".hdr"};
  std::vector<std::filesystem::path> files;
  for (const auto& argument : arguments) {
    if (!std::filesystem::is_directory(argument)) {
      files.emplace_back(argument);
      continue;
    }
    std::vector<std::filesystem::path> found;
    for (const auto& entry : std::filesystem::directory_iterator(argument)) {
      std::string ext = entry.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (std::find(extensions.begin(), extensions.end(), ext) == extensions.end()) continue;
      if (const auto problem = stratum::why_not_a_regular_file(entry))
        std::cerr << "warning: skipped '" << entry.path().string() << "' " << *problem << '\n';
      else
        found.push_back(entry.path());
    }
    if (found.empty()) throw stratum::Error("'" + argument + "' holds no image files");
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

}  // namespace mask_detection
