#!/usr/bin/env bash
# The README's test command: installs what is needed, then builds and runs every test twice, in
# an optimised build and under AddressSanitizer + UndefinedBehaviorSanitizer, and runs each
# libFuzzer target from the fixed seed FUZZ_SEED (default 1) for FUZZ_RUNS inputs (default
# 40000 images and 400000 model files) or FUZZ_SECONDS (default 90), whichever ends first.
# The fixed seed makes a run replayable: the same build tries the same inputs every time (a
# build elsewhere, whose instrumentation differs, follows another path from the same seed).
# To search for new failures, fuzz longer from random seeds, for example
#   FUZZ_RUNS=-1 FUZZ_SECONDS=1800 FUZZ_SEED=0 bash scripts/test.sh
# (seed 0 lets libFuzzer pick one).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
jobs="$(nproc 2>/dev/null || echo 2)"

for preset in release asan; do
  echo "== ${preset}: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "== ${preset}: test"
  # Once is enough for the packaging tests (they build a separate project against the
  # library) and for the smoke run on real photos (minutes of decoding under ASan).
  exclude=()
  [[ "$preset" == asan ]] && exclude=(-LE "packaging|realdata")
  ctest --preset "$preset" -j "$jobs" "${exclude[@]}"
done

echo "== fuzz: build and run each target from seed ${FUZZ_SEED:-1}"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs"
declare -A default_runs=([image]=40000 [model]=400000)
for target in image model; do
  # libFuzzer adds what it finds to the first corpus folder: a fresh copy in the build tree,
  # so the repository's seeds stay as they are and every run starts from the same inputs.
  corpus="build/fuzz/corpus-${target}"
  rm -rf "$corpus" && mkdir -p "$corpus"
  cp tests/fuzz/corpus/"${target}"/* "$corpus"/
  log="build/fuzz/fuzz_${target}.log"
  if ! "build/fuzz/tests/fuzz/fuzz_${target}" "$corpus" -runs="${FUZZ_RUNS:-${default_runs[$target]}}" -seed="${FUZZ_SEED:-1}" \
      -max_total_time="${FUZZ_SECONDS:-90}" -timeout=10 -rss_limit_mb=2048 -artifact_prefix=build/fuzz/ -print_final_stats=1 \
      >"$log" 2>&1; then
    # The failing input is left as build/fuzz/crash-* (or leak-*, timeout-*, oom-*).
    tail -n 60 "$log"
    echo "fuzz_${target} FAILED: see $log and build/fuzz/ for the input that failed"
    exit 1
  fi
  grep -E "^Done|number_of_executed_units" "$log" || true
  echo "fuzz_${target}: no failures"
done
echo "suites: 3 passed, 0 failed (release tests, ASan+UBSan tests, fuzzing)"
