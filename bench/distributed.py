#!/usr/bin/env python3
"""Data-parallel training on MPI against one process, on this machine, and the cost of the
allreduce; prints the figures docs/distributed.md quotes (a JSON object).

    python3 bench/distributed.py [--rounds 5]

Needs Open MPI (`mpirun`) and builds fovea with the `mpi` feature. Compares, alternating
the two in every round and quoting medians (the machine is shared and noisy):

- 1 process x 2 threads against 2 processes x 1 thread (`mpirun -np 2`), for a LeNet-5
  epoch on Fashion-MNIST (`fovea train`, training pictures per second) and for ResNet-18
  training steps on synthetic pictures (`fovea-bench --train-steps`, ms per step);
- the allreduce of 1 float (the latency, alpha) and of 60 K to 25 M floats on 2
  processes, through fovea's MPI thread as training uses it (beta, the least-squares slope
  in seconds per byte).
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
args = sys.argv[1:]
rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else 5
subprocess.run(["cargo", "build", "--release", "-p", "fovea-cli", "-p", "fovea-bench", "--features", "fovea/mpi"],
               cwd=ROOT, check=True)
FOVEA = os.path.join(ROOT, "target/release/fovea")
BENCH = os.path.join(ROOT, "target/release/fovea-bench")
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "-x", "FOVEA_THREADS=1"]


def run(cmd, threads):
    env = dict(os.environ, FOVEA_THREADS=str(threads))
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, env=env).stdout


def lenet_epoch(ranks):
    with tempfile.TemporaryDirectory() as d:
        cmd = [FOVEA, "train", "--epochs", "1", "--out", os.path.join(d, "run"), "--json"]
        out = run(MPIRUN + cmd if ranks == 2 else cmd, 1 if ranks == 2 else 2)
    return json.loads(out.splitlines()[0])["images_per_second"]


def resnet_steps(ranks, size, batch, steps):
    cmd = [BENCH, "--train-steps", "resnet18", str(steps), "--size", size, "--batch", str(batch)]
    out = run(MPIRUN + cmd if ranks == 2 else cmd, 1 if ranks == 2 else 2)
    return float(re.search(r"\(median ([\d.]+) ms\)", out).group(1))


results = {"rounds": rounds, "cpu": subprocess.run(["lscpu"], capture_output=True, text=True).stdout.split("Model name:")[1].splitlines()[0].strip()}
cases = {
    "lenet5_epoch_images_per_second": lambda r: lenet_epoch(r),
    "resnet18_3x64x64_batch32_ms_per_step": lambda r: resnet_steps(r, "3,64,64", 32, 5),
    "resnet18_3x224x224_batch16_ms_per_step": lambda r: resnet_steps(r, "3,224,224", 16, 3),
}
for name, case in cases.items():
    one, two = [], []
    for _ in range(rounds):
        one.append(case(1))
        two.append(case(2))
    results[name] = {"1x2": statistics.median(one), "2x1": statistics.median(two), "1x2_all": one, "2x1_all": two}
    print(name, results[name], file=sys.stderr)

sweeps = [json.loads(run(MPIRUN + [BENCH, "--allreduce"], 1))["allreduce"] for _ in range(rounds)]
rows = [{"bytes": r["bytes"], "seconds": statistics.median(s[i]["seconds"] for s in sweeps)} for i, r in enumerate(sweeps[0])]
# alpha: the latency (one float); beta: least squares of seconds = a + beta * bytes over 60 K floats on
alpha = rows[0]["seconds"]
rows_fit = rows[1:]
n = len(rows_fit)
mx = sum(r["bytes"] for r in rows_fit) / n
my = sum(r["seconds"] for r in rows_fit) / n
beta = sum((r["bytes"] - mx) * (r["seconds"] - my) for r in rows_fit) / sum((r["bytes"] - mx) ** 2 for r in rows_fit)
results["allreduce_2_ranks"] = {"rows": rows, "alpha_seconds": alpha, "beta_seconds_per_byte": beta}
print(json.dumps(results, indent=1))
