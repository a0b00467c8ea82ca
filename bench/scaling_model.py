#!/usr/bin/env python3
"""The scaling model of docs/distributed.md: epoch time and efficiency of data-parallel
ResNet-18/50 training on N nodes, from terms measured on this machine by
bench/distributed.py and fovea-bench, and a cluster network's latency and bandwidth.

    python3 bench/scaling_model.py [--speedup 16]

Per step, on every node (local batch b, p nodes, S bytes of gradients):

    T_step(p) = T_c                                   compute: forward + backward of b pictures
              + gamma * 2 (p-1)/p * S                 the node's CPU work of the allreduce (sums, copies)
              + max(0, T_net(S, p) - T_b)             the allreduce not hidden behind backward
              + T_net(S_last, p)                      the last bucket, sent when backward ends
    T_net(S, p) = 2 log2(p) alpha + 2 (p-1)/p S beta  (Rabenseifner's reduce-scatter + allgather)

T_b = 2/3 T_c is the backward pass. gamma is the per-byte cost of the allreduce measured
over loopback on 2 ranks (there it is all CPU work: 2 (p-1)/p = 1). An epoch of ImageNet
(1,281,167 pictures) takes ceil(1281167 / (b p)) steps; the efficiency is T_step(1) / T_step(p).
`--speedup K` models nodes K times faster at computing than this 2-core machine (the same
network and MPI costs), where communication weighs more.
"""
import math
import sys

args = sys.argv[1:]
speedup = float(args[args.index("--speedup") + 1]) if "--speedup" in args else 1.0

# measured on this machine (docs/distributed.md): 1 process x 2 threads, 224x224, batch 16
MODELS = {"ResNet-18": {"params": 11_689_512, "t_c": 1.193}, "ResNet-50": {"params": 25_557_032, "t_c": 3.43}}
LOCAL_BATCH = 16
GAMMA = 7.1e-10  # s/byte: the allreduce's slope over loopback, 2 ranks (bench/distributed.py)
LAST_BUCKET = 4 * 2**20  # bytes: fovea's bucket (1 Mi floats)
NETWORKS = {
    "25 GbE (alpha 25 us)": (25e-6, 1 / 3.125e9),
    "100 Gb/s InfiniBand (alpha 2 us)": (2e-6, 1 / 12.5e9),
}
IMAGENET = 1_281_167


def t_net(size, p, alpha, beta):
    return 0.0 if p == 1 else 2 * math.log2(p) * alpha + 2 * (p - 1) / p * size * beta


def t_step(model, p, alpha, beta):
    t_c = model["t_c"] / speedup
    size = 4 * model["params"]
    cpu = GAMMA * 2 * (p - 1) / p * size
    return t_c + cpu + max(0.0, t_net(size, p, alpha, beta) - 2 / 3 * t_c) + t_net(min(LAST_BUCKET, size), p, alpha, beta)


print(f"nodes {speedup:g}x this machine's compute; local batch {LOCAL_BATCH}; ImageNet epoch\n")
print("| network | model | nodes | step (s) | epoch (min) | efficiency |")
print("|---|---|---:|---:|---:|---:|")
for net, (alpha, beta) in NETWORKS.items():
    for name, model in MODELS.items():
        one = t_step(model, 1, alpha, beta)
        for p in [8, 64, 512]:
            t = t_step(model, p, alpha, beta)
            steps = math.ceil(IMAGENET / (LOCAL_BATCH * p))
            print(f"| {net} | {name} | {p} | {t:.3f} | {steps * t / 60:.1f} | {one / t:.1%} |")
