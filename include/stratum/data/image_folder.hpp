// A labelled image collection from a folder with one sub-folder per class, the layout Kaggle's
// archives unpack to:
//
//   DIR/without_mask/*.jpg   label 0
//   DIR/with_mask/*.jpg      label 1        (labels follow the order of `class_names`)
//
// Every file is decoded in parallel (image.hpp), resized, and kept as 8-bit RGB: 49 KB per
// 128x128 image instead of 196 KB as floats. Files that cannot be decoded are skipped with a
// warning that names them, or, with `strict`, stop the load; so are entries that are not
// regular files (folders, FIFOs, devices, sockets, dangling symbolic links), which are never
// opened: opening a FIFO blocks until something writes to it. Symbolic links to images load as
// the images. Byte-identical files are found by content hash, so a split can keep every copy of
// a photo on the same side.
//
// The decoded collection can be cached in a folder of the caller's choice: the cache file's
// name is a hash of every file's path, size and modification time, the target size and the
// background colour, so any change to the data or the options makes a new one. The dataset
// folder itself is only ever read.
//
// Data larger than memory: with `map_cache`, the pixels are not read from the cache into
// memory but mapped (mapped_file.hpp), and a reader hands each image's pages back once it has
// used them (LabelledImages::release), so a process's memory does not grow with the number
// of photos, and the processes of one machine share one copy in the page cache. (The first
// load, which decodes the photos and writes the cache, still holds them all in memory.)
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "../hash.hpp"
#include "../parallel.hpp"
#include "../progress.hpp"
#include "binary_io.hpp"
#include "image.hpp"
#include "mapped_file.hpp"

namespace stratum {

struct ImageFolderOptions {
  int width = 128;
  int height = 128;
  Rgb background = white;
  /// Fail on the first file that cannot be decoded, or is not a regular file, instead of
  /// skipping it.
  bool strict = false;
  /// Where to keep the decoded collection; empty means no cache.
  std::filesystem::path cache_dir;
  /// Map the cache's pixels instead of reading them into memory (see the top of the file).
  bool map_cache = false;
  /// Progress and warnings; null for silence.
  std::ostream* log = &std::cerr;
};

struct SkippedFile {
  std::string file;
  std::string reason;
};

struct LabelledImages {
  int width = 0;
  int height = 0;
  std::vector<std::string> class_names;
  std::vector<std::uint8_t> pixels;           // count() x height x width x 3, unless mapped
  std::vector<int> labels;                    // index into class_names
  std::vector<std::string> files;             // relative to the folder: "with_mask/x.jpg"
  std::vector<std::uint64_t> content_hashes;  // FNV-1a of the file's bytes (with its size)
  std::vector<SkippedFile> skipped;
  bool from_cache = false;
  /// With ImageFolderOptions::map_cache, the cache file whose bytes from `mapped_offset` on
  /// hold the pixels, in place of `pixels`.
  std::shared_ptr<const MappedFile> mapped;
  std::size_t mapped_offset = 0;

  [[nodiscard]] Index count() const { return static_cast<Index>(labels.size()); }
  [[nodiscard]] Index image_size() const { return Index{width} * height * 3; }
  /// Image i's pixels (height x width x 3), wherever they are.
  [[nodiscard]] const std::uint8_t* image(Index i) const {
    return (mapped ? mapped->bytes().data() + mapped_offset : pixels.data()) + i * image_size();
  }
  /// Says that image i has been read: mapped, its pages leave the process's resident set.
  void release(Index i) const {
    if (mapped)
      mapped->release(mapped_offset + static_cast<std::size_t>(i * image_size()),
                      static_cast<std::size_t>(image_size()));
  }
  [[nodiscard]] Index class_count(int label) const {
    return std::count(labels.begin(), labels.end(), label);
  }
};

/// Groups of equal content hashes (byte-identical files): each group's member indices, for
/// groups of two or more.
inline std::vector<std::vector<Index>> duplicate_groups(
    std::span<const std::uint64_t> content_hashes) {
  std::map<std::uint64_t, std::vector<Index>> by_hash;
  for (std::size_t i = 0; i < content_hashes.size(); ++i)
    by_hash[content_hashes[i]].push_back(static_cast<Index>(i));
  std::vector<std::vector<Index>> groups;
  for (auto& [hash, members] : by_hash)
    if (members.size() > 1) groups.push_back(std::move(members));
  std::sort(groups.begin(), groups.end());
  return groups;
}

/// Groups of byte-identical files of `images` (see above).
inline std::vector<std::vector<Index>> duplicate_groups(const LabelledImages& images) {
  return duplicate_groups(images.content_hashes);
}

namespace detail {

/// The type of a file that is not a regular file, in words: "folder", "FIFO"...
inline std::string file_type_name(std::filesystem::file_type type) {
  switch (type) {
    case std::filesystem::file_type::directory:
      return "folder";
    case std::filesystem::file_type::fifo:
      return "FIFO";
    case std::filesystem::file_type::character:
      return "character device";
    case std::filesystem::file_type::block:
      return "block device";
    case std::filesystem::file_type::socket:
      return "socket";
    default:
      return "unknown type";
  }
}

}  // namespace detail

/// Why `entry` cannot be read as a file, as the rest of a sentence that starts with its name
/// ("is a dangling symbolic link (to 'x.jpg')"), or nothing if it is a regular file, itself or
/// through symbolic links. Decided from the file's type alone: nothing is opened.
inline std::optional<std::string> why_not_a_regular_file(
    const std::filesystem::directory_entry& entry) {
  namespace fs = std::filesystem;
  std::error_code error, ignored;
  const fs::file_status status = entry.status(error);  // where symbolic links lead
  if (fs::is_regular_file(status)) return std::nullopt;
  std::string link;  // the link's target as written in it, if the entry is a symbolic link
  if (entry.is_symlink(ignored)) {
    link = "'" + fs::read_symlink(entry.path(), ignored).string() + "'";
    if (status.type() == fs::file_type::not_found)
      return "is a dangling symbolic link (to " + link + ")";
  }
  if (error)
    return (link.empty() ? "cannot be examined: "
                         : "is a symbolic link to " + link + " that cannot be followed: ") +
           error.message();
  const std::string what = "not a regular file (" + detail::file_type_name(status.type()) + ")";
  return link.empty() ? "is " + what : "is a symbolic link to " + link + ", which is " + what;
}

namespace detail {

struct FolderEntry {
  std::filesystem::path path;
  std::string relative;
  int label = 0;
  std::uintmax_t size = 0;
  std::int64_t modified = 0;
  std::string problem;  // why it is not a regular file, after its name; empty for files to decode
};

inline std::vector<FolderEntry> list_image_folder(const std::filesystem::path& root,
                                                  const std::vector<std::string>& class_names) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(root))
    throw IoError("dataset folder '" + root.string() + "' does not exist or is not a folder");
  if (class_names.size() < 2) throw Error("an image folder needs at least two classes");
  std::vector<FolderEntry> entries;
  for (std::size_t label = 0; label < class_names.size(); ++label) {
    const fs::path folder = root / class_names[label];
    if (!fs::is_directory(folder)) {
      std::string expected;
      for (const auto& c : class_names) expected += " " + c + "/";
      throw IoError("dataset folder '" + root.string() + "' has no '" + class_names[label] +
                    "/' folder (expected one folder per class:" + expected + ")");
    }
    const std::size_t first = entries.size();
    for (const auto& item : fs::directory_iterator(folder)) {
      const auto name = item.path().filename().string();
      if (name.empty() || name[0] == '.') continue;  // hidden files: .DS_Store and the like
      FolderEntry entry;
      entry.path = item.path();
      entry.relative = class_names[label] + "/" + name;
      entry.label = static_cast<int>(label);
      if (const auto problem = why_not_a_regular_file(item)) {
        entry.problem = "'" + entry.relative + "' " + *problem;
      } else {
        entry.size = item.file_size();
        entry.modified =
            static_cast<std::int64_t>(item.last_write_time().time_since_epoch().count());
      }
      entries.push_back(std::move(entry));
    }
    if (entries.size() == first)
      throw Error("class '" + class_names[label] + "' has no files in '" + folder.string() + "'");
  }
  // Directory order is arbitrary; sort so that a seed means the same split everywhere.
  std::sort(entries.begin(), entries.end(),
            [](const FolderEntry& a, const FolderEntry& b) { return a.relative < b.relative; });
  return entries;
}

inline constexpr char image_cache_magic[8] = {'S', 'T', 'I', 'M', 'G', 'C', '0', '1'};

inline std::filesystem::path cache_file(const std::vector<FolderEntry>& entries,
                                        const std::vector<std::string>& class_names,
                                        const ImageFolderOptions& options) {
  Fnv1a key;
  key.add(std::string_view(image_cache_magic, 8));
  for (const auto& c : class_names) key.add(c).add(std::uint64_t{0});
  for (const auto& e : entries)
    key.add(e.relative)
        .add(e.problem)
        .add(static_cast<std::uint64_t>(e.size))
        .add(static_cast<std::uint64_t>(e.modified));
  key.add(static_cast<std::uint64_t>(options.width))
      .add(static_cast<std::uint64_t>(options.height));
  for (auto c : options.background) key.add(std::uint64_t{c});
  char name[64];
  std::snprintf(name, sizeof name, "images-%016llx.bin",
                static_cast<unsigned long long>(key.value()));
  return options.cache_dir / name;
}

inline void write_image_cache(const std::filesystem::path& path, const LabelledImages& images) {
  BinaryWriter w = begin_checksummed_file(image_cache_magic);
  w.put(static_cast<std::int32_t>(images.width));
  w.put(static_cast<std::int32_t>(images.height));
  w.put(static_cast<std::uint32_t>(images.class_names.size()));
  for (const auto& c : images.class_names) w.put_string(c);
  w.put(static_cast<std::uint64_t>(images.count()));
  for (Index i = 0; i < images.count(); ++i) {
    const auto k = static_cast<std::size_t>(i);
    w.put(static_cast<std::int32_t>(images.labels[k]));
    w.put(images.content_hashes[k]);
    w.put_string(images.files[k]);
  }
  w.put_array(std::span<const std::uint8_t>(images.pixels));
  w.put(static_cast<std::uint64_t>(images.skipped.size()));
  for (const auto& s : images.skipped) {
    w.put_string(s.file);
    w.put_string(s.reason);
  }
  write_checksummed_file(path, w);
}

/// The size, class names and files of a cache, up to its pixels.
inline void read_image_cache_header(BinaryReader& r, LabelledImages& images) {
  images.width = r.get<std::int32_t>();
  images.height = r.get<std::int32_t>();
  images.class_names.resize(r.get<std::uint32_t>());
  for (auto& c : images.class_names) c = r.get_string();
  const auto count = r.get<std::uint64_t>();
  if (count > r.remaining()) r.fail("claims more images than it holds");
  for (std::uint64_t i = 0; i < count; ++i) {
    images.labels.push_back(r.get<std::int32_t>());
    images.content_hashes.push_back(r.get<std::uint64_t>());
    images.files.push_back(r.get_string());
  }
}

/// The files a cache skipped, after its pixels.
inline void read_image_cache_skipped(BinaryReader& r, LabelledImages& images) {
  const auto skipped = r.get<std::uint64_t>();
  if (skipped > r.remaining()) r.fail("claims more skipped files than it holds");
  for (std::uint64_t i = 0; i < skipped; ++i) {
    SkippedFile s;
    s.file = r.get_string();
    s.reason = r.get_string();
    images.skipped.push_back(std::move(s));
  }
  images.from_cache = true;
}

inline LabelledImages read_image_cache(const std::filesystem::path& path) {
  const std::vector<std::uint8_t> body =
      read_checksummed_file(path, image_cache_magic, "a stratum image cache");
  BinaryReader r(body, path.string());
  LabelledImages images;
  read_image_cache_header(r, images);
  images.pixels.resize(static_cast<std::size_t>(images.count() * images.image_size()));
  r.get_array(std::span<std::uint8_t>(images.pixels));
  read_image_cache_skipped(r, images);
  return images;
}

/// The cache at `path` with its pixels mapped, not read (ImageFolderOptions::map_cache). The
/// checksum is verified over the mapping a block at a time, each block released once hashed,
/// so that checking it does not bring the whole file into the process either.
inline LabelledImages map_image_cache(const std::filesystem::path& path) {
  auto file = std::make_shared<const MappedFile>(path);
  const std::span<const std::uint8_t> bytes = file->bytes();
  if (bytes.size() < 16) throw IoError("'" + path.string() + "' is truncated");
  Fnv1a hash;
  constexpr std::size_t block = std::size_t{16} << 20;
  for (std::size_t at = 0; at < bytes.size() - 8; at += block) {
    const std::size_t length = std::min(block, bytes.size() - 8 - at);
    hash.add(bytes.subspan(at, length));
    file->release(at, length);
  }
  std::uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + bytes.size() - 8, 8);
  if (hash.value() != stored)
    throw IoError("'" + path.string() + "' is corrupt (checksum mismatch)");
  if (std::memcmp(bytes.data(), image_cache_magic, 8) != 0)
    throw IoError("'" + path.string() + "' is not a stratum image cache");
  BinaryReader r(bytes.subspan(8, bytes.size() - 16), path.string());
  LabelledImages images;
  read_image_cache_header(r, images);
  images.mapped_offset = 8 + r.offset();
  r.get_view(static_cast<std::size_t>(images.count() * images.image_size()));
  read_image_cache_skipped(r, images);
  file->release(0, bytes.size());
  images.mapped = std::move(file);
  return images;
}

}  // namespace detail

/// Loads every image of `root`'s class folders (see the top of this file).
/// Throws IoError for a missing folder or class folder, Error for a class without any
/// decodable image, and, with `options.strict`, IoError for the first undecodable file or entry
/// that is not a regular file.
inline LabelledImages load_image_folder(const std::filesystem::path& root,
                                        const std::vector<std::string>& class_names,
                                        const ImageFolderOptions& options = {}) {
  const auto entries = detail::list_image_folder(root, class_names);
  std::ostream* log = options.log;

  std::filesystem::path cache;
  if (!options.cache_dir.empty()) {
    cache = detail::cache_file(entries, class_names, options);
    std::error_code exists_error;
    if (std::filesystem::exists(cache, exists_error)) {
      try {
        LabelledImages cached =
            options.map_cache ? detail::map_image_cache(cache) : detail::read_image_cache(cache);
        if (cached.count() + static_cast<Index>(cached.skipped.size()) ==
                static_cast<Index>(entries.size()) &&
            (!options.strict || cached.skipped.empty())) {
          if (log)
            *log << "Loaded " << cached.count() << " decoded images from the cache "
                 << cache.string() << '\n';
          return cached;
        }
      } catch (const Error& e) {
        if (log) *log << "warning: ignoring the image cache: " << e.what() << '\n';
      }
    }
  }

  LabelledImages images;
  images.width = options.width;
  images.height = options.height;
  images.class_names = class_names;
  const Index n = static_cast<Index>(entries.size()), image_size = images.image_size();
  std::vector<std::uint8_t> pixels(static_cast<std::size_t>(n * image_size));
  std::vector<std::uint64_t> hashes(static_cast<std::size_t>(n));
  std::vector<std::string> errors(static_cast<std::size_t>(n));
  std::atomic<Index> done{0};
  // With `strict`, the first failing file in file order: files after it are not tried, every
  // file before it is (so the error reported does not depend on the threads' timing).
  std::atomic<Index> first_failure{n};
  if (log) *log << "Decoding " << n << " images from " << root.string() << '\n';
  ProgressBar bar(log ? *log : std::cerr, n);

  parallel_for(n, [&](Index i) {
    if (i > first_failure.load(std::memory_order_relaxed)) return;
    const auto k = static_cast<std::size_t>(i);
    errors[k] = entries[k].problem;  // not a regular file: never opened
    if (errors[k].empty()) {
      try {
        const std::vector<std::uint8_t> bytes = read_file(entries[k].path);
        hashes[k] = Fnv1a()
                        .add(std::span<const std::uint8_t>(bytes))
                        .add(std::uint64_t{bytes.size()})
                        .value();
        const Image image =
            resize_image(decode_image(bytes, entries[k].relative, options.background),
                         options.width, options.height);
        std::copy(image.pixels.begin(), image.pixels.end(), pixels.begin() + i * image_size);
      } catch (const std::exception& e) {
        errors[k] = e.what();
      }
    }
    if (options.strict && !errors[k].empty())
      for (Index seen = first_failure.load(); i < seen;)
        first_failure.compare_exchange_weak(seen, i);
    const Index finished = ++done;
    if (log && thread_index() == 0) bar.update(finished, {});
  });
  if (log) bar.finish({});

  if (options.strict)  // the first failure in file order (later files may not have been tried)
    for (const auto& error : errors)
      if (!error.empty()) throw IoError(error);
  for (Index i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    if (!errors[k].empty()) {
      if (log) *log << "warning: skipped " << errors[k] << '\n';
      images.skipped.push_back({entries[k].relative, errors[k]});
      continue;
    }
    images.labels.push_back(entries[k].label);
    images.files.push_back(entries[k].relative);
    images.content_hashes.push_back(hashes[k]);
    images.pixels.insert(images.pixels.end(), pixels.begin() + i * image_size,
                         pixels.begin() + (i + 1) * image_size);
  }
  for (std::size_t label = 0; label < class_names.size(); ++label)
    if (images.class_count(static_cast<int>(label)) == 0)
      throw Error("class '" + class_names[label] + "' has no readable images in '" +
                  (root / class_names[label]).string() + "'");

  if (!cache.empty()) {
    try {
      detail::write_image_cache(cache, images);
      if (options.map_cache) {  // from now on, read like every later load
        LabelledImages mapped = detail::map_image_cache(cache);
        mapped.from_cache = false;
        return mapped;
      }
    } catch (const std::exception& e) {
      if (log) *log << "warning: could not write the image cache: " << e.what() << '\n';
    }
  }
  return images;
}

}  // namespace stratum
