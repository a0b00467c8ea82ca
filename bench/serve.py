#!/usr/bin/env python3
"""`fovea serve` under load, beside the in-process chain and face-api's, in one run; writes
the section "fovea serve under load" of docs/benchmarks.md.

    python3 bench/serve.py [--threads 2] [--photo 1]

Starts the real server (a fresh database with two people enrolled), then fovea-bench's
load generator POSTs the sample photo to /v1/vision/face/recognize and /v1/vision/face/
from 1, 4 and 16 clients at once. Floors: the CLI's in-process chain (decode + networks,
`fovea-bench --faces-from-file`) and face-api's on TensorFlow.js (tools/faceapi/bench.js,
after `npm ci` there; skipped without it).
"""
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import urllib.request
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
args = sys.argv[1:]
threads = args[args.index("--threads") + 1] if "--threads" in args else str(os.cpu_count())
photo_n = args[args.index("--photo") + 1] if "--photo" in args else "1"
photo = os.path.join(ROOT, f"data/faces/sample{photo_n}.jpg")
bench = os.path.join(ROOT, "target/release/fovea-bench")

subprocess.run(["cargo", "build", "--release", "-p", "fovea-cli", "-p", "fovea-bench"], cwd=ROOT, check=True)
subprocess.run(["cargo", "build", "--release", "-p", "fovea-vision", "--example", "decode"], cwd=ROOT, check=True)


def register(url, userid, path):
    boundary = uuid.uuid4().hex
    with open(path, "rb") as f:
        data = f.read()
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"userid\"\r\n\r\n{userid}\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.jpg\"\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + "/v1/vision/face/register", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return json.load(urllib.request.urlopen(request))


def measure_chain():
    out = subprocess.run([bench, "--threads", threads, "--faces-from-file", photo_n], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["faces_from_file"]


# the in-process floor, measured before, between and after the loads (the machine is
# noisy): the median of the three
chains = [measure_chain()]
faceapi = None
if os.path.isdir(os.path.join(ROOT, "tools/faceapi/node_modules")):
    out = subprocess.run(["node", os.path.join(ROOT, "tools/faceapi/bench.js"), "--threads", threads], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    faceapi = json.loads(out)["photos"][f"sample{photo_n}"]

rows = []
with tempfile.TemporaryDirectory() as tmp:
    server = subprocess.Popen(
        [os.path.join(ROOT, "target/release/fovea"), "serve", "--port", "0", "--json", "--threads", threads, "--db", os.path.join(tmp, "people.db")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        url = json.loads(server.stdout.readline())["listening"]
        # two people: the first face of sample1 and of sample2
        register(url, "first", os.path.join(ROOT, "data/faces/sample1.jpg"))
        register(url, "second", os.path.join(ROOT, "data/faces/sample2.jpg"))
        for name, path in [("recognize", "/v1/vision/face/recognize"), ("detect", "/v1/vision/face/")]:
            for clients, requests in [(1, 40), (4, 40), (16, 64)]:
                out = subprocess.run([bench, "--load", url + path, photo, str(clients), str(requests)], check=True, capture_output=True, text=True).stdout
                rows.append(dict(json.loads(out), endpoint=name))
            chains.append(measure_chain())
    finally:
        server.terminate()
        server.wait()

chain = sorted(chains)[1]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
lines = [
    "### fovea serve under load",
    "",
    f"`python3 bench/serve.py --threads {threads}` on {cpu}, {datetime.date.today()}: the real server",
    f"(`fovea serve --threads {threads}`, default 2 workers and a queue of 64), sample{photo_n}.jpg (3 faces, 1920x1280",
    "JPEG) POSTed by fovea-bench's load generator from 1, 4 and 16 clients at once on the same machine",
    "(which takes some of the two cores). Floors, per request: the CLI's in-process chain",
    f"(decode + detector + landmarks + descriptors) {chain:.1f} ms (median of {', '.join(f'{c:.1f}' for c in chains)}, measured before, between and after)"
    + (f"; face-api 1.7.15 on TensorFlow.js wasm, from decoded pixels, {faceapi:.1f} ms." if faceapi else "; face-api's: not measured (run `npm ci` in tools/faceapi)."),
    "Goals (issue 18): recognize at p50 within the chain + 5 ms with one client; throughput at 16",
    "clients at least 90% of 1000 / chain ms; p99 at most 3x p50; no failed request below the queue limit.",
    "",
    "| endpoint | clients | requests | p50 (ms) | p99 (ms) | p99 / p50 | requests/s | failed |",
    "|---|---|---|---|---|---|---|---|",
]
for r in rows:
    lines.append(
        f"| {r['endpoint']} | {r['clients']} | {r['requests']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
        f"{r['p99_ms'] / r['p50_ms']:.2f} | {r['per_second']:.2f} | {len(r['failed'])} |"
    )
one = next(r for r in rows if r["endpoint"] == "recognize" and r["clients"] == 1)
many = next(r for r in rows if r["endpoint"] == "recognize" and r["clients"] == 16)
lines += [
    "",
    f"recognize, one client: p50 {one['p50_ms']:.1f} ms against the chain's {chain:.1f} ms "
    f"({one['p50_ms'] - chain:+.1f} ms; goal +5). 16 clients: {many['per_second']:.2f} requests/s against "
    f"1000 / chain = {1000 / chain:.2f} ({many['per_second'] * chain / 1000:.0%}; goal 90%).",
    "",
]
section = "\n".join(lines)
doc_path = os.path.join(ROOT, "docs/benchmarks.md")
doc = open(doc_path).read()
pattern = re.compile(r"### fovea serve under load\n.*?(?=\n## |\n### |\Z)", re.S)
doc = pattern.sub(lambda _: section.rstrip("\n") + "\n", doc) if pattern.search(doc) else doc.rstrip("\n") + "\n\n" + section
open(doc_path, "w").write(doc)
print(section)
