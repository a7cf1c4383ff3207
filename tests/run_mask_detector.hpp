// Running the mask_detector program from a test, as a user's shell would.
#pragma once

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include <sys/wait.h>

namespace stratum::testing {

struct ProgramRun {
  int exit_code;       // -1 when the program did not exit normally (a signal)
  std::string output;  // stdout and, unless stdout_only, stderr
};

/// Runs `command` in a shell and captures what it prints on stdout (and stderr, if the command
/// sends it there).
inline ProgramRun run_shell(const std::string& command) {
  std::FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

/// Runs mask_detector (STRATUM_MASK_DETECTOR, the build's program) with `args`, each already
/// shell-safe, and captures what it prints on stdout and, unless `stdout_only`, on stderr.
inline ProgramRun run_mask_detector(const std::string& args, bool stdout_only = false) {
  return run_shell(std::string("'") + STRATUM_MASK_DETECTOR + "' " + args +
                   (stdout_only ? " 2>/dev/null" : " 2>&1"));
}

}  // namespace stratum::testing
