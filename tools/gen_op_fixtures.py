#!/usr/bin/env python3
"""Generates the PyTorch reference fixtures for fovea's ops.

For each case: random inputs (fixed seed), the op's output, a random upstream gradient
`gout`, and the gradient of sum(out * gout) with respect to every input and parameter.
Writes crates/fovea/tests/fixtures/ops.safetensors (tensors, named "<case>.<what>") and
ops.json (the case list with each op's options).

    pip install torch safetensors
    python3 tools/gen_op_fixtures.py
"""
import json
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(1234)
OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "fovea", "tests", "fixtures")
tensors = {}
cases = []


def case(name, op, inputs, fn, **opts):
    """inputs: dict name -> tensor (all get gradients); fn(**inputs) -> output."""
    leaves = {k: v.clone().double().requires_grad_(True) for k, v in inputs.items()}
    out = fn(**leaves)
    gout = torch.randn_like(out)
    (out * gout).sum().backward()
    for k, v in leaves.items():
        tensors[f"{name}.{k}"] = v.detach().float().contiguous()
        tensors[f"{name}.grad.{k}"] = v.grad.float().contiguous()
    tensors[f"{name}.out"] = out.detach().float().contiguous()
    tensors[f"{name}.gout"] = gout.float().contiguous()
    cases.append({"name": name, "op": op, "inputs": list(inputs.keys()), **opts})


def r(*shape):
    return torch.randn(*shape)


# ---- convolutions: (name, dims, N, C, spatial, O, kernel, stride, padding, dilation, groups, bias)
# padding: "valid", "same", an int, or a list of (before, after) pairs per spatial dim
conv_cases = [
    ("conv2d_basic", 2, 2, 3, (7, 9), 4, (3, 3), 1, 0, 1, 1, True),
    ("conv2d_stride2_pad1", 2, 3, 2, (11, 8), 5, (3, 3), 2, 1, 1, 1, True),
    ("conv2d_rect_kernel_stride", 2, 2, 3, (10, 13), 4, (2, 5), (3, 2), 2, 1, 1, False),
    ("conv2d_dilation2", 2, 2, 3, (12, 11), 2, (3, 3), 1, 2, 2, 1, True),
    ("conv2d_groups2", 2, 2, 4, (9, 9), 6, (3, 3), 1, 1, 1, 2, True),
    ("conv2d_depthwise", 2, 2, 5, (8, 10), 5, (3, 3), 2, 1, 1, 5, True),
    ("conv2d_depthwise_mult2", 2, 1, 3, (7, 7), 6, (5, 5), 1, 2, 1, 3, False),
    ("conv2d_pointwise", 2, 3, 6, (5, 7), 4, (1, 1), 1, 0, 1, 1, True),
    ("conv2d_pointwise_stride2", 2, 2, 4, (7, 6), 3, (1, 1), 2, 0, 1, 1, True),
    ("conv2d_same_even_kernel", 2, 2, 2, (9, 8), 3, (4, 4), 1, "same", 1, 1, True),
    ("conv2d_same_dilated", 2, 2, 3, (10, 7), 2, (3, 3), 1, "same", 2, 1, True),
    ("conv2d_asymmetric_pad", 2, 2, 3, (8, 9), 3, (3, 3), 2, [(0, 2), (1, 0)], 1, 1, True),
    ("conv2d_lenet1", 2, 4, 1, (28, 28), 6, (5, 5), 1, 2, 1, 1, True),
    ("conv2d_lenet2", 2, 4, 6, (14, 14), 16, (5, 5), 1, 0, 1, 1, True),
    # large enough patch matrices to be built in several tiles (see kernels/conv.rs)
    ("conv2d_tiled", 2, 2, 48, (21, 23), 5, (3, 3), 1, 1, 1, 1, True),
    ("conv2d_tiled_strided_groups", 2, 1, 64, (31, 29), 6, (5, 5), 2, 2, 1, 2, True),
    # wide enough for the direct kernel with AVX-512 (256+ outputs, two channel blocks,
    # two tap chunks; the input gradient as the turned correlation: kernels/direct.rs)
    ("conv2d_direct_two_blocks", 2, 2, 20, (17, 19), 40, (3, 3), 1, 1, 1, 1, True),
    ("conv2d_direct_dilated_asym", 2, 1, 12, (20, 22), 33, (3, 5), 1, [(2, 1), (3, 4)], (2, 1), 1, False),
    ("conv1d_direct", 1, 3, 10, (120,), 24, (7,), 1, 3, 1, 1, True),
    ("conv1d_basic", 1, 3, 2, (14,), 4, (5,), 1, 0, 1, 1, True),
    ("conv1d_stride_dil_groups", 1, 2, 4, (23,), 6, (3,), 2, 2, 3, 2, True),
    ("conv1d_same", 1, 2, 3, (10,), 2, (4,), 1, "same", 1, 1, False),
    ("conv1d_depthwise_dilated", 1, 2, 3, (17,), 6, (3,), 2, 2, 2, 3, True),
    ("conv3d_depthwise", 3, 1, 2, (5, 6, 7), 2, (3, 3, 3), (1, 2, 1), 1, 1, 2, True),
    ("conv3d_basic", 3, 2, 2, (6, 7, 5), 3, (3, 3, 3), 1, 0, 1, 1, True),
    ("conv3d_stride_pad_groups", 3, 1, 4, (7, 6, 8), 4, (3, 2, 3), (2, 1, 2), 1, 1, 2, True),
    ("conv3d_dilated_asym", 3, 2, 1, (8, 7, 7), 2, (2, 3, 2), 1, [(1, 0), (0, 2), (1, 1)], (1, 2, 1), 1, True),
]
convs = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
for name, nd, n, c, sp, o, k, stride, pad, dil, groups, bias in conv_cases:
    inputs = {"x": r(n, c, *sp), "w": r(o, c // groups, *k) * 0.5}
    if bias:
        inputs["b"] = r(o)

    def fn(x, w, b=None, nd=nd, stride=stride, pad=pad, dil=dil, groups=groups):
        if isinstance(pad, list):
            flat = []
            for before, after in reversed(pad):
                flat += [before, after]
            x = F.pad(x, flat)
            pad = 0
        return convs[nd](x, w, b, stride=stride, padding=pad, dilation=dil, groups=groups)

    as_list = lambda v: list(v) if isinstance(v, tuple) else [v]
    padding = pad if isinstance(pad, str) else ([list(p) for p in pad] if isinstance(pad, list) else [[pad, pad]])
    case(name, "conv", inputs, fn, stride=as_list(stride), padding=padding, dilation=as_list(dil), groups=groups, flip=False)

# true convolution = cross-correlation with the kernel flipped along every spatial dimension
inputs = {"x": r(2, 3, 8, 7), "w": r(4, 3, 3, 2), "b": r(4)}
case("conv2d_flip", "conv", inputs, lambda x, w, b: F.conv2d(x, torch.flip(w, [2, 3]), b, padding=1),
     stride=[1], padding=[[1, 1]], dilation=[1], groups=1, flip=True)

# ---- pooling: (name, kind, shape, kernel, stride, padding, ceil_mode, count_include_pad)
pool_cases = [
    ("maxpool2d_2", "max", (2, 3, 8, 8), 2, None, 0, False, True),
    ("maxpool2d_3s2p1", "max", (2, 2, 9, 11), 3, 2, 1, False, True),
    ("maxpool2d_ceil", "max", (1, 3, 10, 7), 3, 2, 0, True, True),
    ("maxpool1d", "max", (2, 3, 13), 3, 2, 1, False, True),
    ("maxpool3d", "max", (1, 2, 6, 7, 5), 2, 2, 0, True, True),
    ("maxpool2d_2_ceil_odd", "max", (1, 2, 5, 7), 2, None, 0, True, True),
    ("maxpool3d_1x2x2", "max", (2, 2, 3, 4, 6), [1, 2, 2], [1, 2, 2], 0, False, True),
    ("avgpool2d_2", "avg", (2, 3, 8, 6), 2, None, 0, False, True),
    ("avgpool2d_pad_include", "avg", (2, 2, 7, 9), 3, 2, 1, False, True),
    ("avgpool2d_pad_exclude", "avg", (2, 2, 7, 9), 3, 2, 1, False, False),
    ("avgpool2d_ceil", "avg", (1, 2, 10, 11), 3, 2, 1, True, True),
    ("avgpool1d", "avg", (2, 2, 11), 4, 3, 2, False, True),
    ("avgpool3d", "avg", (1, 2, 5, 6, 7), 3, 2, 1, False, False),
]
max_fns = {3: F.max_pool1d, 4: F.max_pool2d, 5: F.max_pool3d}
avg_fns = {3: F.avg_pool1d, 4: F.avg_pool2d, 5: F.avg_pool3d}
for name, kind, shape, k, s, p, ceil, include in pool_cases:
    def fn(x, kind=kind, k=k, s=s, p=p, ceil=ceil, include=include):
        if kind == "max":
            return max_fns[x.dim()](x, tuple(k) if isinstance(k, list) else k, tuple(s) if isinstance(s, list) else s, p, ceil_mode=ceil)
        return avg_fns[x.dim()](x, k, s, p, ceil_mode=ceil, count_include_pad=include)
    case(name, kind + "_pool", {"x": r(*shape)}, fn, kernel=k, stride=s if s is not None else k, padding=p,
         ceil_mode=ceil, count_include_pad=include)

case("adaptive_avg2d", "adaptive_avg_pool", {"x": r(2, 3, 7, 11)}, lambda x: F.adaptive_avg_pool2d(x, (3, 5)), output=[3, 5])
case("adaptive_avg1d", "adaptive_avg_pool", {"x": r(2, 3, 10)}, lambda x: F.adaptive_avg_pool1d(x, 4), output=[4])
case("adaptive_avg3d", "adaptive_avg_pool", {"x": r(1, 2, 5, 6, 7)}, lambda x: F.adaptive_avg_pool3d(x, (2, 3, 4)), output=[2, 3, 4])
case("global_avg", "global_avg_pool", {"x": r(2, 4, 5, 6)}, lambda x: x.mean(dim=(2, 3)))

# ---- activations
for name, fn, extra, scale in [
    ("relu", F.relu, {}, 1.0),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.1), {"slope": 0.1}, 1.0),
    ("relu6", F.relu6, {}, 4.0),  # scaled so that both clamps are exercised
    ("sigmoid", torch.sigmoid, {}, 1.0),
    ("tanh", torch.tanh, {}, 1.0),
]:
    case(name, name, {"x": r(3, 4, 5) * scale}, lambda x, fn=fn: fn(x), **extra)
case("softmax_dim1", "softmax", {"x": r(4, 7)}, lambda x: F.softmax(x, 1), dim=1)
case("softmax_dim0_3d", "softmax", {"x": r(3, 4, 5)}, lambda x: F.softmax(x, 0), dim=0)
case("log_softmax_dim1", "log_softmax", {"x": r(4, 7) * 3}, lambda x: F.log_softmax(x, 1), dim=1)
case("log_softmax_last", "log_softmax", {"x": r(2, 3, 6)}, lambda x: F.log_softmax(x, -1), dim=-1)

# ---- batch norm: training (batch statistics) and evaluation (running statistics)
for name, shape in [("bn2d_train", (4, 3, 5, 6)), ("bn1d_train", (8, 5)), ("bn3d_train", (2, 2, 3, 4, 5))]:
    c = shape[1]
    rm, rv = r(c) * 0.1, torch.rand(c) + 0.5
    new_rm, new_rv = rm.clone().double(), rv.clone().double()
    case(name, "batch_norm", {"x": r(*shape) * 2 + 1, "weight": r(c), "bias": r(c)},
         lambda x, weight, bias, new_rm=new_rm, new_rv=new_rv: F.batch_norm(x, new_rm, new_rv, weight, bias, True, 0.1, 1e-5),
         training=True, momentum=0.1, eps=1e-5)
    tensors[f"{name}.running_mean"] = rm
    tensors[f"{name}.running_var"] = rv
    tensors[f"{name}.new_running_mean"] = new_rm.float()
    tensors[f"{name}.new_running_var"] = new_rv.float()
rm, rv = r(3) * 0.1, torch.rand(3) + 0.5
case("bn2d_eval", "batch_norm", {"x": r(2, 3, 4, 4), "weight": r(3), "bias": r(3)},
     lambda x, weight, bias: F.batch_norm(x, rm.double(), rv.double(), weight, bias, False, 0.1, 1e-5),
     training=False, momentum=0.1, eps=1e-5)
tensors["bn2d_eval.running_mean"] = rm
tensors["bn2d_eval.running_var"] = rv

# ---- losses
targets = torch.tensor([3, 0, 6, 6, 1])
tensors["cross_entropy.targets"] = targets.float()
case("cross_entropy", "cross_entropy", {"x": r(5, 7) * 2}, lambda x: F.cross_entropy(x, targets))
t = torch.rand(4, 3)
tensors["bce_with_logits.target"] = t
case("bce_with_logits", "bce_with_logits", {"x": r(4, 3) * 3}, lambda x: F.binary_cross_entropy_with_logits(x, t.double()))
t2 = r(3, 5)
tensors["mse.target"] = t2
case("mse", "mse", {"x": r(3, 5)}, lambda x: F.mse_loss(x, t2.double()))

# ---- linear algebra
case("linear", "linear", {"x": r(5, 7), "w": r(3, 7), "b": r(3)}, lambda x, w, b: F.linear(x, w, b))
case("linear_nobias", "linear", {"x": r(4, 6), "w": r(5, 6)}, lambda x, w: F.linear(x, w))
case("matmul2d", "matmul", {"a": r(4, 6), "b": r(6, 3)}, lambda a, b: a @ b)
case("matmul3d", "matmul", {"a": r(2, 4, 5), "b": r(2, 5, 3)}, lambda a, b: a @ b)

# ---- elementwise with broadcasting, reductions, shape ops
case("add_bcast", "add", {"a": r(2, 3, 4), "b": r(3, 1)}, lambda a, b: a + b)
case("sub_bcast", "sub", {"a": r(4, 1), "b": r(2, 1, 5)}, lambda a, b: a - b)
case("mul_bcast", "mul", {"a": r(2, 3, 4), "b": r(4)}, lambda a, b: a * b)
case("div_bcast", "div", {"a": r(3, 4), "b": torch.rand(1, 4) + 0.5}, lambda a, b: a / b)
case("exp", "exp", {"x": r(3, 4)}, lambda x: torch.exp(x))
case("log", "log", {"x": torch.rand(3, 4) + 0.1}, lambda x: torch.log(x))
case("sqrt", "sqrt", {"x": torch.rand(3, 4) + 0.1}, lambda x: torch.sqrt(x))
case("sum_dim1", "sum_dim", {"x": r(3, 4, 5)}, lambda x: x.sum(1), dim=1)
case("mean_all", "mean", {"x": r(3, 4)}, lambda x: x.mean())
case("permute", "permute", {"x": r(2, 3, 4, 5)}, lambda x: x.permute(0, 2, 3, 1), dims=[0, 2, 3, 1])
case("concat_dim1", "concat", {"a": r(2, 3, 4), "b": r(2, 5, 4)}, lambda a, b: torch.cat([a, b], 1), dim=1)
case("narrow", "narrow", {"x": r(3, 8, 2)}, lambda x: x.narrow(1, 2, 4), dim=1, start=2, len=4)
case("pad", "pad", {"x": r(2, 3, 4)}, lambda x: F.pad(x, (2, 1, 0, 3), value=0.5), pads=[[0, 3], [2, 1]], value=0.5)

idx = [2, 0, 2, 3]
tensors["index_select.indices"] = torch.tensor(idx).float()
case("index_select", "index_select", {"x": r(3, 4, 2)}, lambda x: x.index_select(1, torch.tensor(idx)), dim=1)
case("l2_normalize", "l2_normalize", {"x": r(5, 6)}, lambda x: F.normalize(x, dim=1, eps=1e-12), dim=1, eps=1e-12)


def triplet(a, p, n, margin=0.5):
    """The notes' triplet loss with squared distances (FaceNet's form)."""
    return F.relu(((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1) + margin).mean()


# scaled so that some triplets are inside the margin and some are not
case("triplet_loss", "triplet_loss", {"a": r(6, 4) * 0.5, "p": r(6, 4) * 0.5, "n": r(6, 4) * 0.5},
     lambda a, p, n: triplet(a, p, n), margin=0.5)

os.makedirs(OUT, exist_ok=True)
save_file(tensors, os.path.join(OUT, "ops.safetensors"))
with open(os.path.join(OUT, "ops.json"), "w") as f:
    json.dump({"generator": "tools/gen_op_fixtures.py", "torch": torch.__version__, "cases": cases}, f, indent=1)
print(f"{len(cases)} cases, {len(tensors)} tensors -> {OUT}")
