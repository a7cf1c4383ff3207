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
# The optimised and the ASan builds run one after the other, each on every core; each build's
# tests (and the fuzzers, after the ASan build) run in the background meanwhile, and the
# AArch64 build and its tests run in the background from the start at the lowest priority, so
# that no core waits for a test that runs alone or for the last file of a build. Their output
# goes to build/test-logs/, and is printed when something fails. Each step prints its
# wall-clock time, its CPU time and when it began.
#
# Time, fresh clones on the idle 2-core machine (packages present), one window of the host
# (2026-12-01, an Intel Xeon with AVX-512): 98ad6f6, the builds one after the other, took
# 770 s, about 30 s of it installing the packages (1,395 s of CPU): release build 284 s (CPU
# 501 s), ASan build 223 s, AArch64 build 159 s and its tests 69 s, the ASan tests (228 s)
# beside the last two. Then, each change measured in turn: the release test program at -O1
# and the convolution test's notebook shapes on a few rows, 585 s (1,137 s of CPU); the
# data-parallel tests in stratum_tests, 580 s (1,088 s); the test program in one unity batch,
# 541 s (950 s of CPU: release build 142 s, ASan build 202 s, the AArch64 build 170 s beside
# the ASan tests, whose end it waited for); the AArch64 steps in the background from the
# start, 493 s (8 min 13 s; 962 s of CPU): release build 136 s, ASan build 215 s, the AArch64
# build and tests done at 350 s, the ASan tests (138 s) last. tests/CMakeLists.txt says what
# each choice saves. Earlier layouts: 15 to 21 minutes on the same kind of machine (an AMD
# Zen 3 then).
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

# The AArch64 cross-build and its tests under qemu, from the start, in the background and at
# the lowest priority: they take the CPU time the other builds leave, such as a core that
# waits while the other compiles the last file of a build. (The AArch64 build has no
# examples, so no mask_detector tests; the packaging tests check CMake's install and
# find_package on the build machine, the same for every CPU.)
background "aarch64 build and tests" nice -n 19 bash -c \
  "cmake --build --preset aarch64 -j $jobs && ctest --preset aarch64 -j $jobs -LE packaging"

for preset in release asan; do
  echo "== ${preset}: build"
  TIMEFORMAT="== ${preset} build: %0R s (CPU %0U s user, %0S s sys), began at $SECONDS s"
  time cmake --build --preset "$preset" -j "$jobs"
  exclude=()
  # Once is enough for the packaging tests (they build a separate project against the
  # library) and for the smoke run on real photos (minutes of decoding under ASan).
  if [[ "$preset" == asan ]]; then exclude=(-LE "packaging|realdata"); fi
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
