#!/usr/bin/env bash
# The README's test command: installs what is needed, then builds and runs every test twice, in
# an optimised build and under AddressSanitizer + UndefinedBehaviorSanitizer, and runs each
# libFuzzer target for a short while (FUZZ_SECONDS, default 20).
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

echo "== fuzz: build and run each target for ${FUZZ_SECONDS:-20} s"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs"
for target in image model; do
  # libFuzzer adds what it finds to the first corpus folder: a copy in the build tree, so the
  # repository's seeds stay as they are.
  corpus="build/fuzz/corpus-${target}"
  mkdir -p "$corpus"
  cp tests/fuzz/corpus/"${target}"/* "$corpus"/
  log="build/fuzz/fuzz_${target}.log"
  if ! "build/fuzz/tests/fuzz/fuzz_${target}" "$corpus" -max_total_time="${FUZZ_SECONDS:-20}" \
      -timeout=10 -rss_limit_mb=2048 -artifact_prefix=build/fuzz/ -print_final_stats=1 \
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
