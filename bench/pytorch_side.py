#!/usr/bin/env python3
"""PyTorch's side of the benchmarks (CPU, pre-loaded tensors): prints one JSON object of
median timings in seconds. Run through bench/run.py."""
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
from gen_lenet_steps import LeNet5, read_idx  # noqa: E402  (the same network as fovea's lenet5)

threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else os.cpu_count()
epochs = int(sys.argv[sys.argv.index("--epochs") + 1]) if "--epochs" in sys.argv else 3
torch.set_num_threads(threads)
ROOT = os.path.join(os.path.dirname(__file__), "..")

CONV_SHAPES = [
    ("8x3x224x224 -> 64 k7 s2 p3", 8, 3, 224, 224, 64, 7, 2, 3),
    ("8x64x56x56 -> 64 k3 p1", 8, 64, 56, 56, 64, 3, 1, 1),
    ("8x256x28x28 -> 512 k1", 8, 256, 28, 28, 512, 1, 1, 0),
    ("1x192x28x28 -> 32 k5 p2", 1, 192, 28, 28, 32, 5, 1, 2),
    ("64x1x28x28 -> 6 k5 p2", 64, 1, 28, 28, 6, 5, 1, 2),
    ("64x6x14x14 -> 16 k5", 64, 6, 14, 14, 16, 5, 1, 0),
]


def timeit(reps, f):
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def zoo():
    import torchvision
    rows = []
    for arch in ["resnet18", "resnet50", "vgg16", "googlenet", "alexnet"]:
        kwargs = {"init_weights": True} if arch == "googlenet" else {}
        m = getattr(torchvision.models, arch)(weights=None, **kwargs).eval()
        for batch in (1, 8):
            x = torch.randn(batch, 3, 224, 224)

            def run():
                with torch.no_grad():
                    m(x)

            rows.append({"arch": arch, "batch": batch, "seconds": timeit(11 if batch == 1 else 5, run)})
    m = torchvision.models.resnet18()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(8, 3, 224, 224), torch.arange(8)

    def step():
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return {"inference": rows, "resnet18_train_step_batch8": timeit(5, step)}



out = {"threads": threads, "torch": torch.__version__}
if "--nms" in sys.argv:
    # torchvision's batched (per-class) NMS on the same boxes, after the same score cut
    from torchvision.ops import batched_nms

    b = torch.from_numpy(np.load(sys.argv[sys.argv.index("--nms") + 1]))

    def run_nms():
        keep = b[:, 4] > 0.6
        c = b[keep]
        return batched_nms(c[:, :4], c[:, 4], c[:, 5].long(), 0.5)

    print(json.dumps({"nms": {"boxes": len(b), "kept": len(run_nms()), "seconds": timeit(21, run_nms)}}))
    sys.exit()
if "--stylize" in sys.argv:
    # the same loop on the same backbone shape: MobileNetV1 (TF "same" padding) up to
    # conv9, content at conv5, style at conv1/3/5/7/9; random weights (timing only)
    torch.manual_seed(0)
    widths = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    strides = {2, 4, 6, 12}
    w0 = torch.randn(32, 3, 3, 3) * 0.1
    dw = [torch.randn(widths[i - 1], 1, 3, 3) * 0.3 for i in range(1, 10)]
    pw = [torch.randn(widths[i], widths[i - 1], 1, 1) * (2 / widths[i - 1]) ** 0.5 for i in range(1, 10)]
    bias = [torch.zeros(widths[i]) for i in range(10)]
    dw_bias = [torch.zeros(widths[i - 1]) for i in range(1, 10)]  # batch norm folded in, as fovea does

    def same(x, stride):
        return F.pad(x, (0, 1, 0, 1)) if stride == 2 else x

    def features(x):
        x = x * 2 - 1
        h = F.relu6(F.conv2d(same(x, 2), w0, bias[0], stride=2))
        out = [h]
        for i in range(1, 10):
            s = 2 if i in strides else 1
            d = F.relu6(F.conv2d(same(h, s), dw[i - 1], dw_bias[i - 1], stride=s, padding=1 if s == 1 else 0, groups=h.shape[1]))
            h = F.relu6(F.conv2d(d, pw[i - 1], bias[i]))
            out.append(h)
        return out

    def gram(a):
        m = a.reshape(a.shape[1], -1)
        return m @ m.T

    content, style = torch.rand(1, 3, 170, 256), torch.rand(1, 3, 170, 256)
    with torch.no_grad():
        fc, fs = features(content), features(style)
        grams = {l: gram(fs[l]) for l in (1, 3, 5, 7, 9)}
    g = content.clone().requires_grad_(True)
    opt = torch.optim.Adam([g], lr=0.02)

    def step():
        f = features(g)
        jc = ((fc[5] - f[5]) ** 2).sum()
        js = sum(0.2 * ((grams[l] - gram(f[l])) ** 2).sum() / (2 * f[l].numel()) ** 2 for l in grams)
        j = 1e-3 * jc + 1e6 * js
        opt.zero_grad()
        j.backward()
        opt.step()
        with torch.no_grad():
            g.clamp_(0, 1)

    print(json.dumps({"stylize": {"width": 256, "height": 170, "seconds_per_step": timeit(21, step)}}))
    sys.exit()
if "--train-steps" in sys.argv:
    # fovea-bench --train-steps: N steps of a zoo model (10 classes, Adam) on synthetic data,
    # timed after the first; with the process's peak resident memory
    import resource
    import torchvision
    i = sys.argv.index("--train-steps")
    arch, steps = sys.argv[i + 1], int(sys.argv[i + 2])
    batch = int(sys.argv[sys.argv.index("--batch") + 1]) if "--batch" in sys.argv else 64
    c, h, w = (int(v) for v in sys.argv[sys.argv.index("--size") + 1].split(","))
    m = getattr(torchvision.models, arch)(num_classes=10).train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x, y = torch.rand(batch, c, h, w), torch.arange(batch) % 10
    for step in range(steps + 1):
        if step == 1:
            started = time.perf_counter()
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    per_step = (time.perf_counter() - started) * 1e3 / max(steps, 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"{per_step:.1f} ms per step of {batch} after the first; peak resident memory {peak} kB")
    sys.exit()
if "--zoo-only" in sys.argv:
    print(json.dumps({"zoo": zoo()}))
    sys.exit(0)
convs = []
for name, n, c, h, w, o, k, s, p in CONV_SHAPES:
    x = torch.randn(n, c, h, w, requires_grad=True)
    wt = (torch.randn(o, c, k, k) * 0.1).requires_grad_()
    b = torch.zeros(o, requires_grad=True)
    reps = 15 if n * c * h * w > 1_000_000 else 20

    def fwd():
        with torch.no_grad():
            F.conv2d(x, wt, b, stride=s, padding=p)

    def fwd_bwd():
        y = F.conv2d(x, wt, b, stride=s, padding=p)
        y.backward(torch.ones_like(y))

    tf, tfb = timeit(reps, fwd), timeit(reps, fwd_bwd)
    oh = (h + 2 * p - k) // s + 1
    convs.append({"shape": name, "forward": tf, "forward_backward": tfb, "gflops_forward": 2 * n * o * oh * oh * c * k * k / tf / 1e9})
out["conv2d"] = convs


out["zoo"] = zoo()

a = np.random.randn(2048, 2048).astype(np.float32)
bm = np.random.randn(2048, 2048).astype(np.float32)
t = timeit(5, lambda: a @ bm)
out["numpy_matmul_2048"] = {"seconds": t, "gflops": 2 * 2048 ** 3 / t / 1e9}

xs = torch.tensor(read_idx(os.path.join(ROOT, "data/fashion-mnist/train-images-idx3-ubyte.gz")), dtype=torch.float32).unsqueeze(1) / 255
ys = torch.tensor(read_idx(os.path.join(ROOT, "data/fashion-mnist/train-labels-idx1-ubyte.gz")), dtype=torch.long)
xt = torch.tensor(read_idx(os.path.join(ROOT, "data/fashion-mnist/t10k-images-idx3-ubyte.gz")), dtype=torch.float32).unsqueeze(1) / 255
model = LeNet5()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
times = []
for e in range(epochs):
    perm = torch.randperm(len(xs))
    t0 = time.perf_counter()
    for i in range(0, len(xs), 64):
        idx = perm[i:i + 64]
        loss = F.cross_entropy(model(xs[idx]), ys[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    times.append(time.perf_counter() - t0)
out["lenet_epoch"] = float(np.median(times))


def evaluate():
    with torch.no_grad():
        for i in range(0, len(xt), 1000):
            model(xt[i:i + 1000])


out["lenet_eval"] = timeit(5, evaluate)
print(json.dumps(out))
