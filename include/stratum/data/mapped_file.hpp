// A file mapped read-only into memory (POSIX mmap): data larger than memory read in place.
//
// The kernel reads the file's pages into the page cache as they are first touched, and maps
// them into the process; they count in its resident set (RSS) from then on. `release` hands
// pages back (madvise MADV_DONTNEED): they leave the process's resident set but stay in the
// page cache, shared by every process that maps the same file (the MPI ranks of one machine),
// and a later read maps them again without touching the disk. A reader that releases what it
// has read therefore keeps its RSS at what it is reading now, however large the file.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

#include "../errors.hpp"

namespace stratum {

class MappedFile {
 public:
  /// Maps the whole of `path`. Throws IoError naming it when it cannot be opened or mapped.
  explicit MappedFile(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw IoError("cannot open '" + path.string() + "'");
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
      ::close(fd);
      throw IoError("cannot read '" + path.string() + "'");
    }
    size_ = static_cast<std::size_t>(info.st_size);
    if (size_ > 0) {
      void* address = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
      if (address == MAP_FAILED) {
        ::close(fd);
        throw IoError("cannot map '" + path.string() + "' into memory");
      }
      data_ = static_cast<const std::uint8_t*>(address);
    }
    ::close(fd);  // the mapping keeps the file open
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
  }

  [[nodiscard]] std::span<const std::uint8_t> bytes() const { return {data_, size_}; }

  /// Takes the pages holding bytes [offset, offset + length) out of this process's resident
  /// set (see the top of the file), with the rest of their fault-around blocks: on a page
  /// fault, Linux maps not only the page but every page of the aligned 64 KB block around it
  /// that is in the page cache (fault_around_bytes), so reading one image maps parts of its
  /// neighbours too, which would stay mapped if they had been released before. Whatever a
  /// neighbour being read at the same time by another thread loses is mapped again from the
  /// page cache on its next access. Thread-safe.
  void release(std::size_t offset, std::size_t length) const {
    if (!data_ || length == 0) return;
    constexpr std::size_t fault_around_block = std::size_t{64} << 10;
    const std::size_t begin = offset / fault_around_block * fault_around_block;
    const std::size_t end = std::min(size_, (offset + length + fault_around_block - 1) /
                                                fault_around_block * fault_around_block);
    ::madvise(const_cast<std::uint8_t*>(data_) + begin, end - begin, MADV_DONTNEED);
  }

 private:
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace stratum
