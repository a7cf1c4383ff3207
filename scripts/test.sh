#!/usr/bin/env bash
# The README's test command: installs what is needed, builds and runs every test twice, in an
# optimised build and under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
jobs="$(nproc 2>/dev/null || echo 2)"

for preset in release asan; do
  echo "== ${preset}: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "== ${preset}: test"
  # The packaging tests build a separate project against the library; once is enough.
  exclude=()
  [[ "$preset" == asan ]] && exclude=(-LE packaging)
  ctest --preset "$preset" -j "$jobs" "${exclude[@]}"
done
