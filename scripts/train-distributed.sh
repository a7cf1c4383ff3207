#!/usr/bin/env bash
# The accuracy runs of docs/distributed.md: each network trained by one process (2 threads) and
# by 2 MPI ranks (1 thread each) on the same data, with the same options and seed, wall time
# and peak memory beside each. Run it on a quiet machine: it takes hours at full length.
#
#   bash scripts/train-distributed.sh [DIR] [extra mask_detector train options...]
#
# DIR defaults to ../shared/datasets/face-mask-dataset. Extra options go to every run, e.g.
# `--epochs 1` to check the commands. Logs, models and histories go to runs/distributed/.
set -euo pipefail
cd "$(dirname "$0")/.."

data="${1:-../shared/datasets/face-mask-dataset}"
[[ $# -gt 0 ]] && shift
program=build/release/examples/mask_detector
out=runs/distributed
mkdir -p "$out"

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j 2 --target mask_detector

mpirun=(mpirun --oversubscribe -np 2)
[[ "$(id -u)" -eq 0 ]] && mpirun+=(--allow-run-as-root)

for arch in seed compact; do
  # One process with both cores, then 2 ranks with one core each (mpirun binds them).
  /usr/bin/time -v -o "$out/$arch-1process.time" \
    "$program" train --data "$data" --arch "$arch" --threads 2 --quiet \
    --model "$out/$arch-1process.stmodel" "$@" 2>&1 | tee "$out/$arch-1process.log"
  # Every rank's /usr/bin/time reports its own peak memory, in one file per rank.
  "${mpirun[@]}" bash -c '/usr/bin/time -v -o "$0.rank$OMPI_COMM_WORLD_RANK" "$@"' \
    "$out/$arch-2ranks.time" "$program" train --data "$data" --arch "$arch" --quiet \
    --model "$out/$arch-2ranks.stmodel" "$@" 2>&1 | tee "$out/$arch-2ranks.log"
done

for log in "$out"/*.log; do
  echo "== $log"
  grep -E "^Threads|^Test part|^Total time" "$log"
done
for time in "$out"/*.time*; do
  echo "$time: $(grep -E 'Maximum resident' "$time")"
done
