#!/usr/bin/env python3
"""The step-time model of data-parallel training in docs/distributed.md, as tables.

    python3 scripts/distributed_cost_model.py [--compute-ms NETWORK=MS ...]

One node computes a step of the global batch (32) in T1 ms (--compute-ms; by default the
training steps of benchmarks/README.md, this machine with 2 threads). On N nodes, each computes its 1/N of the batch:

    compute(N) = T1 / N                                  (perfect split of the work)
    comm(N)    = 2 (N - 1) / N * G / bandwidth + 2 (N - 1) * latency
                                                         (ring all-reduce of G gradient bytes)
    no overlap:    step(N) = compute(N) + comm(N)
    overlap:       step(N) = compute(N) + max(0, comm(N) - w compute(N))

w is the part of a step left to compute once most of the gradient bytes are ready, the
window in which buckets can be all-reduced while backward goes on: for the notebook's
network, conv2's and conv1's backward passes after the Dense layer's (27.6 + 8.2 ms of its
60.5 ms step, benchmarks/README.md), w = 0.6; for the compact network, whose largest
layers are its last convolutions, w = 0.5 (an estimate).

The global batch stays 32, so N stops at 32 (one sample a node). A network stops scaling
where comm(N) outgrows the window w compute(N): beyond that, every node added costs
more in communication than it saves in computation.

With --weak, every node keeps a batch of 32 (the global batch is 32 N, and the learning rate
must follow): compute(N) = T1, the figure is the efficiency T1 / step(N), up to N = 64.
"""
import argparse

NETWORKS = {  # trainable parameters, float32 gradients
    "notebook": 7_400_706,
    "compact": 246_018,
}
OVERLAP_WINDOW = {"notebook": 0.6, "compact": 0.5}  # w, above
LINKS_GBIT = [10, 25, 100]
NODES = [1, 2, 4, 8, 16, 32, 64]
LATENCY_S = 10e-6  # per ring step: a small message over TCP or RoCE, order of magnitude


def comm_ms(nodes, gradient_bytes, gbit):
    if nodes == 1:
        return 0.0
    bandwidth = gbit * 1e9 / 8
    seconds = 2 * (nodes - 1) / nodes * gradient_bytes / bandwidth + 2 * (nodes - 1) * LATENCY_S
    return 1000 * seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compute-ms", action="append", default=[],
                        help="NETWORK=MS: one node's step of batch 32 (default: this machine's "
                             "with 2 threads, benchmarks/README.md: notebook=60.5, "
                             "compact=66.2)")
    parser.add_argument("--weak", action="store_true",
                        help="a batch of 32 on every node instead of 32 in all")
    parser.add_argument("--bytes-per-gradient", type=int, default=4,
                        help="4 for float32 gradients, 2 for bf16/fp16 compression")
    args = parser.parse_args()
    compute = {"notebook": 60.5, "compact": 66.2}
    for item in args.compute_ms:
        name, ms = item.split("=")
        compute[name] = float(ms)

    for name, parameters in NETWORKS.items():
        gradient = parameters * args.bytes_per_gradient
        t1 = compute[name]
        print(f"\n{name}: {parameters:,} parameters, {gradient / 1e6:.2f} MB of gradients, "
              f"T1 = {t1:g} ms a step of 32 on one node")
        figure = "efficiency" if args.weak else "speed-up"
        print(f"{'N':>3} {'compute':>8} | " + " | ".join(
            f"{g:>3} Gb/s: comm  no-ovl  overlap  {figure:>10}" for g in LINKS_GBIT))
        nodes = NODES if args.weak else [n for n in NODES if n <= 32]
        compute_ms = (lambda n: t1) if args.weak else (lambda n: t1 / n)
        for n in nodes:
            c = compute_ms(n)
            cells = []
            for g in LINKS_GBIT:
                m = comm_ms(n, gradient, g)
                overlap = c + max(0.0, m - OVERLAP_WINDOW[name] * c)
                value = f"{100 * t1 / overlap:9.0f}%" if args.weak else f"{t1 / overlap:9.2f}x"
                cells.append(f"{m:6.2f} {c + m:7.2f} {overlap:8.2f} {value}")
            print(f"{n:>3} {c:8.2f} | " + " | ".join(f"     {cell}" for cell in cells))
        for g in LINKS_GBIT:
            window = OVERLAP_WINDOW[name]
            last = max((n for n in nodes if comm_ms(n, gradient, g) <= window * compute_ms(n)),
                       default=1)
            print(f"  {g:>3} Gb/s: communication stays hidden in backward up to N = {last}"
                  + (" (of 64)" if args.weak and last == 64 else ""))


if __name__ == "__main__":
    main()
