#!/usr/bin/env bash
# The training-step and all-reduce figures of docs/distributed.md on this machine: each network
# with one process of 2 threads, then with 2 MPI ranks of 1 thread each (all-reduce alone,
# compute alone, and the step with and without overlap). Run it on a quiet machine.
#
#   bash scripts/bench-distributed.sh [--steps N]
set -euo pipefail
cd "$(dirname "$0")/.."

cmake --preset bench >/dev/null
cmake --build --preset bench -j 2 --target bench_distributed
program=build/bench/benchmarks/bench_distributed

mpirun=(mpirun --bind-to core -np 2)
[[ "$(id -u)" -eq 0 ]] && mpirun+=(--allow-run-as-root)

for arch in compact seed; do
  "$program" --arch "$arch" --threads 2 "$@"
  "${mpirun[@]}" "$program" --arch "$arch" --threads 1 "$@"
done
