#!/usr/bin/env python3
"""Peak resident memory of a training step, fovea against PyTorch, alternating runs.

    python3 bench/peak_memory.py [--arch resnet18] [--batch 8] [--size 3,224,224] [--rounds 3] [BIN ...]

Each run is its own process doing 3 steps (10 classes, Adam, synthetic data); the figure is
the kernel's high-water mark of its resident memory (VmHWM / ru_maxrss), so it includes
the program and its libraries. Extra arguments are further fovea-bench binaries to compare
(an older build, say). Prints a Markdown table of medians."""
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
args = sys.argv[1:]


def option(name, default):
    if name in args:
        i = args.index(name)
        value = args[i + 1]
        del args[i : i + 2]
        return value
    return default


arch, batch, size = option("--arch", "resnet18"), option("--batch", "8"), option("--size", "3,224,224")
rounds = int(option("--rounds", "3"))
threads = option("--threads", "2")
subprocess.run(["cargo", "build", "--release", "-p", "fovea-bench"], cwd=ROOT, check=True)
step = ["--train-steps", arch, "3", "--batch", batch, "--size", size]
sides = {"fovea": [os.path.join(ROOT, "target/release/fovea-bench"), "--threads", threads] + step}
for b in args:
    sides[f"fovea ({b})"] = [b, "--threads", threads] + step
sides["PyTorch"] = [sys.executable, os.path.join(ROOT, "bench/pytorch_side.py"), "--threads", threads] + step

results = {name: ([], []) for name in sides}
for _ in range(rounds):
    for name, cmd in sides.items():
        out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
        m = re.search(r"([\d.]+) ms per step.*peak resident memory (\d+) kB", out)
        results[name][0].append(float(m.group(1)))
        results[name][1].append(int(m.group(2)) / 1024)

print(f"{arch}, batch {batch}, {size.replace(',', 'x')}, {threads} threads, median of {rounds}\n")
print("| | ms per step | peak resident memory (MiB) |\n|---|---|---|")
for name, (ms, mib) in results.items():
    print(f"| {name} | {statistics.median(ms):.0f} | {statistics.median(mib):.0f} |")
