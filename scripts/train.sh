#!/usr/bin/env bash
# The README's main command: installs what is needed, builds the examples and runs the main job.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc 2>/dev/null || echo 2)" --target quickstart
./build/release/examples/quickstart "$@"
