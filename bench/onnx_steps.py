#!/usr/bin/env python3
"""fovea's steps beside onnxruntime's nodes for one ONNX model, in execution order: where
the time of `bench/onnx_runtimes.py`'s totals goes, layer by layer (issue 19).

fovea's per-step times come from `fovea-bench --onnx MODEL BATCH REPS --profile`,
onnxruntime's from its own profiler (intra-op threads = --threads); each is the median of
its repetitions, then the median over --rounds rounds that alternate the two. Rows pair
the two sides' layers by their place in execution order, reorders between layouts left
out (the totals count them). Both fuse batch norm and activations into convolutions, so
the rows mostly pair like with like; where one side orders or fuses differently
(onnxruntime runs a ResNet's downsampling convolution before the block's last one and
fuses the sum into that one), the rows pair different layers until the sides meet again:
read the names and shapes on each row before its difference.

    cargo build --release -p fovea-bench
    python3 bench/onnx_steps.py MODEL.onnx [--batch 8] [--threads N] [--rounds 3]

--batch applies where the model leaves its batch open; the other input sizes must be
fixed. Threads default to the CPU count, as in bench/onnx_runtimes.py.
"""
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
args = sys.argv[1:]
if not args or args[0].startswith("--"):
    sys.exit(__doc__)
model = args[0]
option = lambda name, default: int(args[args.index(name) + 1]) if name in args else default
threads, rounds = option("--threads", os.cpu_count()), option("--rounds", 3)
BENCH = os.path.join(ROOT, "target", "release", "fovea-bench")

# the input's shape: a batch the model fixes, else --batch; its other sizes must be fixed
dims = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).get_inputs()[0].shape
if not all(isinstance(d, int) for d in dims[1:]):
    sys.exit(f"{model}: input sizes {dims}: give a model whose sizes past the batch are fixed")
batch = dims[0] if isinstance(dims[0], int) else option("--batch", 1)
if "--batch" in args and option("--batch", batch) != batch:
    sys.exit(f"{model} takes batch {batch}, not --batch {option('--batch', batch)}")
shape = [batch] + dims[1:]
reps = 11 if batch == 1 else 5


def onnxruntime_nodes():
    """[(node, op, ms)] in execution order, reorders included."""
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.gettempdir(), "onnx_steps")
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    for _ in range(reps):
        session.run(None, {first.name: x})
    path = session.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.remove(path)
    times, ops, order = collections.defaultdict(list), {}, []
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            name = e["name"][: -len("_kernel_time")]
            if name not in ops:
                order.append(name)
                ops[name] = e["args"]["op_name"]
            times[name].append(e["dur"] / 1000)
    return [(n, ops[n], statistics.median(times[n])) for n in order]


def fovea_steps():
    """[(step, op and shape, ms)] in execution order, reorders included."""
    size = ",".join(map(str, shape[1:]))
    command = [BENCH, "--threads", str(threads), "--onnx", model, str(batch), str(reps), "--size", size, "--profile"]
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    steps = []
    for line in (run.stdout + run.stderr).splitlines():
        m = re.match(r"\s*([\d.]+) (\w+)\s+\[([\d, ]*)\] (\S+)", line)
        if m:
            steps.append((m.group(4), f"{m.group(2)} [{m.group(3)}]", float(m.group(1))))
    return steps


all_theirs, all_ours = [], []
for _ in range(rounds):
    all_theirs.append(onnxruntime_nodes())
    all_ours.append(fovea_steps())
total = lambda runs: statistics.median(sum(s[2] for s in r) for r in runs)
# the rows pair the layers; the reorders between layouts count in the totals only
theirs = [[n for n in r if not n[1].startswith("Reorder")] for r in all_theirs]
ours = [[s for s in r if not s[1].startswith("Reorder")] for r in all_ours]
median = lambda runs, i: statistics.median(r[i][2] for r in runs) if i < len(runs[0]) else 0.0
print(f"{'':3s} {'fovea ms':>9s} {'ort ms':>9s} {'diff':>8s}  {'fovea step':60s} onnxruntime node")
for i in range(max(len(ours[0]), len(theirs[0]))):
    f, o = median(ours, i), median(theirs, i)
    step = f"{ours[0][i][1]} {ours[0][i][0]}" if i < len(ours[0]) else ""
    node = f"{theirs[0][i][1]} {theirs[0][i][0]}" if i < len(theirs[0]) else ""
    print(f"{i:3d} {f:9.3f} {o:9.3f} {f - o:+8.3f}  {step[:60]:60s} {node}")
mine, other = total(all_ours), total(all_theirs)
print(f"total with reorders {mine:.2f} {other:.2f} ms, onnxruntime / fovea {other / mine:.2f}")
