#!/usr/bin/env bash
# The README's main command: installs what is needed, builds the face-mask detector and trains
# it, the Keras notebook's protocol, on a dataset folder.
#
#   bash scripts/train.sh [DIR] [mask_detector train options...]
#
# DIR defaults to data/, where Kaggle's archive unpacks (with_mask/ and without_mask/ inside).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc 2>/dev/null || echo 2)" --target mask_detector
data="${1:-data}"
[[ $# -gt 0 ]] && shift
exec ./build/release/examples/mask_detector train --data "$data" "$@"
