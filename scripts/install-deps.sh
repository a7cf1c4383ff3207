#!/usr/bin/env bash
# Installs what stratum's build, tests and example need, from Debian's packages.
# Idempotent: prints nothing and touches nothing when everything is already installed.
#
#   scripts/install-deps.sh             the build, tests, fuzzers, examples and benchmarks
#   scripts/install-deps.sh --golden    also python3-torch and numpy, to regenerate tests/data/golden_*
#   scripts/install-deps.sh --onednn    also oneDNN, which the benchmarks then compare with
set -euo pipefail

# clang and its sanitizer runtimes build the sanitizer tests and the libFuzzer targets.
# pugixml parses the Pascal VOC annotations of the detection data. g++-aarch64-linux-gnu (with
# the AArch64 C and C++ libraries it depends on) cross-builds the tests for 64-bit ARM, and
# qemu-user's qemu-aarch64 runs them (cmake/toolchains/aarch64-linux-gnu.cmake). Open MPI
# (libopenmpi-dev: headers and library; openmpi-bin: mpirun) builds stratum::distributed,
# data-parallel training over MPI, and runs its tests (docs/distributed.md).
packages=(cmake g++ make libeigen3-dev libstb-dev doctest-dev libbenchmark-dev clang libclang-rt-dev
          libpugixml-dev g++-aarch64-linux-gnu qemu-user libopenmpi-dev openmpi-bin)
[[ "${1:-}" == "--golden" ]] && packages+=(python3-torch python3-numpy)
# Debian builds oneDNN with its OpenCL GPU runtime: its CMake package requires OpenCL (the
# ICD loader's library and headers), which libdnnl-dev only recommends, and recommendations are
# not installed here.
[[ "${1:-}" == "--onednn" ]] && packages+=(libdnnl-dev ocl-icd-opencl-dev)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
[[ "$(id -u)" -ne 0 ]] && sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
