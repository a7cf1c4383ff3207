#!/usr/bin/env bash
# The README's test command: installs what is needed, then builds and runs every test three
# times: in an optimised build (GCC), under AddressSanitizer + UndefinedBehaviorSanitizer
# (Clang), and cross-built for 64-bit ARM (AArch64) under qemu-user; then runs each libFuzzer
# target from the fixed seed FUZZ_SEED (default 1) for FUZZ_RUNS inputs (default 40000 images
# and 400000 model files) or FUZZ_SECONDS (default 90), whichever ends first.
# The fixed seed makes a run replayable: the same build tries the same inputs every time (a
# build elsewhere, whose instrumentation differs, follows another path from the same seed).
# To search for new failures, fuzz longer from random seeds, for example
#   FUZZ_RUNS=-1 FUZZ_SECONDS=1800 FUZZ_SEED=0 bash scripts/test.sh
# (seed 0 lets libFuzzer pick one).
#
# Each phase prints how long it took. The tests are one program per build, compiled in a few
# unity batches (tests/CMakeLists.txt says why). On a fresh clone of an idle 2-core machine
# (packages installed) the whole command took 18 min 49 s (33 min 10 s of CPU): release build
# 220 s and tests 34 s, ASan build 405 s and tests 58 s, AArch64 build 184 s and tests 59 s,
# fuzz build 113 s and fuzzing 56 s.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
jobs="$(nproc 2>/dev/null || echo 2)"

phase_start=$SECONDS
# Prints the phase that just ended and its duration.
phase_done() {
  echo "== $1: $((SECONDS - phase_start)) s"
  phase_start=$SECONDS
}

for preset in release asan aarch64; do
  echo "== ${preset}: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  phase_done "${preset} build"
  echo "== ${preset}: test"
  exclude=()
  case "$preset" in
    # Once is enough for the packaging tests (they build a separate project against the
    # library) and for the smoke run on real photos (minutes of decoding under ASan).
    asan) exclude=(-LE "packaging|realdata") ;;
    # The AArch64 build has no examples, so no mask_detector tests; the packaging tests check
    # CMake's install and find_package on the build machine, the same for every CPU.
    aarch64) exclude=(-LE "packaging") ;;
  esac
  ctest --preset "$preset" -j "$jobs" "${exclude[@]}"
  phase_done "${preset} tests"
done

echo "== fuzz: build and run each target from seed ${FUZZ_SEED:-1}"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs"
phase_done "fuzz build"
declare -A default_runs=([image]=40000 [model]=400000) fuzzer
# Both targets run at once, each on one core: every one is a single process.
for target in image model; do
  # libFuzzer adds what it finds to the first corpus folder: a fresh copy in the build tree,
  # so the repository's seeds stay as they are and every run starts from the same inputs.
  corpus="build/fuzz/corpus-${target}"
  rm -rf "$corpus" && mkdir -p "$corpus"
  cp tests/fuzz/corpus/"${target}"/* "$corpus"/
  "build/fuzz/tests/fuzz/fuzz_${target}" "$corpus" -runs="${FUZZ_RUNS:-${default_runs[$target]}}" \
    -seed="${FUZZ_SEED:-1}" -max_total_time="${FUZZ_SECONDS:-90}" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix=build/fuzz/ -print_final_stats=1 >"build/fuzz/fuzz_${target}.log" 2>&1 &
  fuzzer[$target]=$!
done
for target in image model; do
  log="build/fuzz/fuzz_${target}.log"
  if ! wait "${fuzzer[$target]}"; then
    # The failing input is left as build/fuzz/crash-* (or leak-*, timeout-*, oom-*).
    tail -n 60 "$log"
    kill "${fuzzer[@]}" 2>/dev/null || true
    echo "fuzz_${target} FAILED: see $log and build/fuzz/ for the input that failed"
    exit 1
  fi
  grep -E "^Done|number_of_executed_units" "$log" || true
  echo "fuzz_${target}: no failures"
done
phase_done "fuzzing"
echo "suites: 4 passed, 0 failed (release tests, ASan+UBSan tests, AArch64 tests under qemu, fuzzing)"
