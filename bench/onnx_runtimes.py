#!/usr/bin/env python3
"""fovea's ONNX runtime against onnxruntime and tract on the zoo's ONNX exports: same
machine, same thread count, one run, medians (issue 19).

Each torchvision architecture (random weights; speed does not depend on them) is exported
with torch.onnx.export's defaults, at batch 1 and at batch 8, to a temporary folder, then
timed on 3x224x224 inputs by
- fovea: `fovea-bench --onnx MODEL BATCH REPS` (the graph built for the batch's shape);
- onnxruntime: its default CPU provider, intra-op threads = --threads, graph
  optimisations at their default (all);
- tract: its Python package, the model typed for the batch's shape and optimised
  (`into_model`), which runs on one thread.
Each export is flushed to disk before the timing starts (the kernel's writeback of a VGG
export, 500 MB, slowed whichever runtime ran first), then fovea and onnxruntime alternate
in three rounds of a few runs each, and each one's time is the median of its rounds'
medians, so that a burst of load from the machine's other tenants spoils one round, not
the entry; tract, never close, runs once.
Writes the table into docs/benchmarks.md (section "ONNX runtime").

    pip install torch torchvision onnx onnxscript onnxruntime tract
    python3 bench/onnx_runtimes.py [--threads 2] [--models resnet18,resnet50] [--reps 10]
"""
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch
import torchvision
import tract

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
args = sys.argv[1:]
threads = int(args[args.index("--threads") + 1]) if "--threads" in args else os.cpu_count()
reps = int(args[args.index("--reps") + 1]) if "--reps" in args else 10
ARCHS = ["alexnet"] + [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")] + \
    [f"resnet{d}" for d in (18, 34, 50, 101, 152)] + ["googlenet"]
models = args[args.index("--models") + 1].split(",") if "--models" in args else ARCHS
BATCHES = (1, 8)
ROUNDS = 3
runs = lambda batch: reps if batch == 1 else max(3, reps // 2)
torch.set_num_threads(threads)


def median_time(f, n):
    f()  # warm-up (and first allocations)
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def fovea(path, batch, n):
    out = subprocess.run([os.path.join(ROOT, "target/release/fovea-bench"), "--threads", str(threads), "--onnx", path,
                          str(batch), str(n)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["seconds"]


def onnxruntime(path, x):
    """A function that times n runs of the model (its median)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return lambda n: median_time(lambda: s.run(None, {name: x}), n)


def tract_time(path, x, n):
    m = tract.onnx().load(path)
    m.set_input_fact(0, f"{','.join(map(str, x.shape))},f32")
    r = m.into_model().into_runnable()
    return median_time(lambda: r.run([x]), n)


def main():
    subprocess.run(["cargo", "build", "--release", "-p", "fovea-bench"], cwd=ROOT, check=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in models:
            kwargs = {"aux_logits": False, "init_weights": True} if arch == "googlenet" else {}
            m = getattr(torchvision.models, arch)(weights=None, **kwargs).eval()
            for batch in BATCHES:
                # one export per batch size: tract does not take a model exported with a
                # free batch once the batch is fixed
                path = os.path.join(tmp, f"{arch}_{batch}.onnx")
                torch.onnx.export(m, (torch.rand(batch, 3, 224, 224),), path, input_names=["input"],
                                  output_names=["logits"], external_data=False)
                os.sync()
                x = np.random.default_rng(0).random((batch, 3, 224, 224), dtype=np.float32)
                n = runs(batch)
                ort_run, f, o = onnxruntime(path, x), [], []
                for _ in range(ROUNDS):
                    f.append(fovea(path, batch, max(3, n // ROUNDS)))
                    o.append(ort_run(max(3, n // ROUNDS)))
                t = {"fovea": statistics.median(f), "onnxruntime": statistics.median(o), "tract": tract_time(path, x, n)}
                rows.append((arch, batch, t))
                print(arch, batch, {k: round(v * 1e3, 1) for k, v in t.items()}, flush=True)
                os.remove(path)
            del m
    write(rows)


def write(rows):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    lines = [
        "## ONNX runtime",
        "",
        f"`python3 bench/onnx_runtimes.py --threads {threads}` on {datetime.date.today()}, {cpu}, {threads} threads "
        f"(tract: one); torch {torch.__version__}, onnxruntime {ort.__version__}, tract {tract.version()}. "
        f"The zoo exported by torch.onnx.export (defaults) at each batch size, 3x224x224 inputs; fovea and onnxruntime "
        f"in {ROUNDS} alternating rounds of {max(3, runs(1) // ROUNDS)} runs at batch 1 and {max(3, runs(8) // ROUNDS)} "
        f"at batch 8, the median of the rounds' medians; tract the median of {runs(1)} and {runs(8)} runs; "
        "milliseconds per batch. A ratio above 1 means fovea is faster. "
        "On a shared machine single entries move by 5-15% from run to run, the memory-bound ones most "
        "(AlexNet at batch 8 reads 230 MB of fully connected weights per batch). "
        "`python3 bench/onnx_steps.py MODEL.onnx --batch 8` shows where a model's time goes: fovea's steps "
        "beside onnxruntime's nodes, layer by layer.",
        "",
        "| model | batch | fovea ms | onnxruntime ms | tract ms | onnxruntime / fovea | tract / fovea |",
        "|---|---|---|---|---|---|---|",
    ]
    for arch, batch, t in rows:
        f = t["fovea"]
        lines.append(f"| {arch} | {batch} | {f * 1e3:.1f} | {t['onnxruntime'] * 1e3:.1f} | {t['tract'] * 1e3:.1f} | "
                     f"{t['onnxruntime'] / f:.2f} | {t['tract'] / f:.2f} |")
    section = "\n".join(lines) + "\n"
    path = os.path.join(ROOT, "docs", "benchmarks.md")
    text = open(path).read()
    pattern = re.compile(r"## ONNX runtime\n.*?(?=\n## |\Z)", re.S)
    text = pattern.sub(section.rstrip("\n"), text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
