#!/usr/bin/env bash
# The README's test command: installs what is needed, then builds and runs every test in an
# optimised build (GCC) and under AddressSanitizer + UndefinedBehaviorSanitizer (Clang), and
# the numeric ones (tensors, kernels, layers, gradient checks, training, golden values:
# tests/CMakeLists.txt says which) cross-built for 64-bit ARM (AArch64) under qemu-user; and
# runs each libFuzzer target (built in the ASan build) from the fixed seed FUZZ_SEED (default
# 1) for FUZZ_RUNS inputs (default 10000 images and 100000 model files) or FUZZ_SECONDS
# (default 600, a safety net: the run count is what ends a normal run), whichever ends first.
# The fixed seed makes a run replayable: the same build tries the same inputs every time (a
# build elsewhere, whose instrumentation differs, follows another path from the same seed).
# To search for new failures, fuzz longer from random seeds, for example
#   FUZZ_RUNS=-1 FUZZ_SECONDS=1800 FUZZ_SEED=0 bash scripts/test.sh
# (seed 0 lets libFuzzer pick one).
#
# The three builds run one after the other, each on every core; each build's tests (and the
# fuzzers, after the ASan build) run in the background meanwhile, so that no core waits for a
# test that runs alone or for the last file of a build. Their output goes to build/test-logs/,
# and is printed when something fails. Each step prints its wall-clock time, its CPU time and
# when it began.
#
# Time: fresh clones on the idle 2-core machine, one window of the host: 43a4992 took 18 min 41 s
# (1121 s): release build 341 s (CPU 640 s), its tests 134 s; ASan build 362 s (CPU 661 s), its
# tests 324 s; AArch64 build 344 s (CPU 632 s), tests under qemu 68 s. fdd9ce2 took 15 min 9 s
# (909 s): release build 338 s (CPU 610 s), its tests 131 s; ASan build 304 s (CPU 550 s:
# test_distributed at -O0), its tests 241 s (the convolution tests' reference once instead of
# once per SIMD path, the scenes in ../shared left out); AArch64 build 187 s (CPU 137 s: the test
# program at -O1), tests under qemu 75 s. 2887d8c, in a later window when the host ran about 15 %
# faster (release build 281 s, CPU 539 s), took 12 min 36 s (756 s): ASan build 258 s, its tests
# 195 s; AArch64 build 170 s, tests under qemu 43 s. CPU times are inflated where steps overlap
# (on this virtual machine a process that waits for a core seems to be charged for it): the
# AArch64 build at -O3 took 632 s of CPU beside the ASan tests, while its two test batches took
# 218 s compiled two at a time with nothing else running.
# Earlier: a fresh clone of 83c0e68 on the idle 2-core machine took 19 min 38 s (1178 s; 37 min 6 s
# of CPU): release build 359 s (CPU 670 s), its tests 146 s; ASan build 390 s (CPU 712 s: the
# quickstart and test_distributed, which the run below left out, are compiled in it), its tests
# 338 s, the fuzzers 34 s and 32 s; AArch64 build 358 s (CPU 659 s), tests under qemu 65 s.
# A fresh clone of 7bace80 (with the MPI tests) on the idle 2-core machine took 20 min 4 s
# (34 min 33 s of CPU): release build 368 s (CPU 685 s), its tests 143 s in the background;
# ASan build 402 s (CPU 536 s; the test program at -O0, see tests/CMakeLists.txt), its tests
# 340 s (CPU 376 s) and the fuzzers 19 s / 31 s in the background; AArch64 build 362 s (CPU
# 670 s), tests under qemu 66 s. A fresh clone of 3911bea, before the MPI work, took 21 min 2 s
# (39 min 12 s of CPU): ASan build CPU 1024 s (test program at -O1) and its tests 173 s, the
# fuzzers 300 s and 127 s of one core each (40,000 images, 400,000 model files), the two
# mask_detector test programs compiled apart (86 s of CPU in the release build), the packaging
# tests' consumers at -O3 (46 s of CPU each instead of 20 s). The builds, one after the other,
# are the critical path: the goal of 9 minutes is not reached.
# Before this layout (3414d6b: steps one after the other, four test batches, the fuzzers
# in a build of their own, every test file cross-built), a fresh clone on an idle 2-core
# machine took 18 min 49 s (33 min 10 s of CPU): release build 220 s and tests 34 s, ASan
# build 405 s and tests 58 s, AArch64 build 184 s and tests 59 s, fuzz build 113 s and fuzzing
# 56 s. Where a build's CPU goes (one translation unit, measured with /usr/bin/time): the
# headers alone (stratum.hpp, doctest) cost 8.7 s with GCC -O3 and 7.0 s with Clang -O1, every
# batch; the rest is the code the tests instantiate, which sanitizers make twice as costly
# (test_activations.cpp: 15.0 s with Clang -O1 -g1, 22.9 s with ASan+UBSan) and which -O2
# instead of -O3 makes only 6 % cheaper (GCC 12, x86-64 and AArch64 alike).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
jobs="$(nproc 2>/dev/null || echo 2)"
logs=build/test-logs
rm -rf "$logs" && mkdir -p "$logs"

# Runs "$@" in the background as step $1, its output in $logs/<step>.log. Each step prints
# its wall-clock time, the CPU time of all its processes, and when it began.
declare -A background_pid=()
background_steps=()
background() {
  local step=$1
  shift
  (
    TIMEFORMAT="== $step: %0R s (CPU %0U s user, %0S s sys), began at $SECONDS s"
    time "$@" >"$logs/${step// /-}.log" 2>&1 || { echo "== $step FAILED"; exit 1; }
  ) &
  background_pid[$step]=$!
  background_steps+=("$step")
}

# Copies a fuzz target's seed corpus into the build tree (libFuzzer adds what it finds to the
# first corpus folder: the repository's seeds stay as they are and every run starts from the
# same inputs), then fuzzes.
declare -A default_runs=([image]=10000 [model]=100000)
fuzz() {
  local target=$1 corpus="build/asan/corpus-$1"
  rm -rf "$corpus" && mkdir -p "$corpus" && cp tests/fuzz/corpus/"$target"/* "$corpus"/ &&
    "build/asan/tests/fuzz/fuzz_$target" "$corpus" -runs="${FUZZ_RUNS:-${default_runs[$target]}}" \
    -seed="${FUZZ_SEED:-1}" -max_total_time="${FUZZ_SECONDS:-600}" -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix=build/asan/ -print_final_stats=1
}

# A failed build ends the command: stop the steps still running in the background.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT

for preset in release asan aarch64; do background "${preset} configure" cmake --preset "$preset"; done
for preset in release asan aarch64; do
  wait "${background_pid[${preset} configure]}" || { cat "$logs/${preset}-configure.log"; exit 1; }
done
background_steps=()

for preset in release asan aarch64; do
  echo "== ${preset}: build"
  TIMEFORMAT="== ${preset} build: %0R s (CPU %0U s user, %0S s sys), began at $SECONDS s"
  time cmake --build --preset "$preset" -j "$jobs"
  exclude=()
  case "$preset" in
    # Once is enough for the packaging tests (they build a separate project against the
    # library) and for the smoke run on real photos (minutes of decoding under ASan).
    asan) exclude=(-LE "packaging|realdata") ;;
    # The AArch64 build has no examples, so no mask_detector tests; the packaging tests check
    # CMake's install and find_package on the build machine, the same for every CPU.
    aarch64) exclude=(-LE "packaging") ;;
  esac
  background "${preset} tests" ctest --preset "$preset" -j "$jobs" "${exclude[@]}"
  if [[ "$preset" == asan ]]; then
    # Each fuzz target is a single process: both run at once.
    for target in image model; do background "fuzz_${target}" fuzz "$target"; done
  fi
done

failed=()
for step in "${background_steps[@]}"; do
  wait "${background_pid[$step]}" || failed+=("$step")
done
echo "== all steps done at $SECONDS s"
for step in "${background_steps[@]}"; do
  case "$step" in
    fuzz_*) grep -E "^Done|number_of_executed_units" "$logs/$step.log" || true ;;
    *) grep -E "tests passed|Total Test time" "$logs/${step// /-}.log" || true ;;
  esac
done
if [[ ${#failed[@]} -gt 0 ]]; then
  for step in "${failed[@]}"; do
    echo "== $step FAILED: the end of $logs/${step// /-}.log"
    tail -n 60 "$logs/${step// /-}.log"
  done
  # A fuzzer leaves the failing input as build/asan/crash-* (or leak-*, timeout-*, oom-*).
  echo "suites: $((5 - ${#failed[@]})) passed, ${#failed[@]} failed: ${failed[*]}"
  exit 1
fi
echo "suites: 5 passed, 0 failed (release tests, ASan+UBSan tests, AArch64 tests under qemu, fuzz_image, fuzz_model)"
