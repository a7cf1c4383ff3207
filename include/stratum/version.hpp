// The library's version (kept in step with CMakeLists.txt's project(VERSION)).
#pragma once

#define STRATUM_VERSION_MAJOR 0
#define STRATUM_VERSION_MINOR 1
#define STRATUM_VERSION_PATCH 0

namespace stratum {
inline constexpr const char* version = "0.1.0";
}  // namespace stratum
