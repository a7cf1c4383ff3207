// A competing process for the "under load" benchmarks: users train on machines that are doing
// something else too (a browser, a build, another job), and a parallel kernel that is fast
// only on an idle machine is not fast where they run it.
//
// A Neighbour forks a child process that competes for the CPU until the Neighbour is destroyed
// (SIGKILL, then waitpid): the benchmark starts and stops its own load, so the quiet and the
// loaded figures come from one run of one binary.
//   none    no child: the quiet machine
//   busy    an endless loop, as `sh -c 'while :; do :; done'`: takes one core's time, no memory
//   memory  an endless copy over 64 MB: takes one core's time and memory bandwidth, and evicts
//           the shared cache, as an image-decoding job beside training does
#pragma once

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace stratum::bench {

enum class Load { none, busy, memory };

inline const char* to_string(Load load) {
  return load == Load::none ? "none" : load == Load::busy ? "busy" : "memory";
}

class Neighbour {
 public:
  explicit Neighbour(Load load) {
    if (load == Load::none) return;
    // The buffers are made before fork, so that the child only loops (a forked child of a
    // multi-threaded process should call nothing that may take a lock, malloc included).
    std::vector<char> from, to;
    if (load == Load::memory) from.assign(64 << 20, 1), to.assign(64 << 20, 0);
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
      volatile unsigned spin = 0;  // volatile: the loop is not optimised away
      if (load == Load::busy)
        for (;;) spin = spin + 1;
      for (;;) {
        std::memcpy(to.data(), from.data(), from.size());
        std::swap(from, to);
      }
    }
  }
  Neighbour(const Neighbour&) = delete;
  Neighbour& operator=(const Neighbour&) = delete;
  ~Neighbour() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }

 private:
  pid_t pid_ = -1;
};

}  // namespace stratum::bench
