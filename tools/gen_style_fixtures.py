#!/usr/bin/env python3
"""Generates the PyTorch reference for fovea's style-transfer costs (the notes' formulas,
Gatys et al. 2015): Gram matrices, the content cost ||a(C) - a(G)||^2, the per-layer style
cost ||G(S) - G(G)||_F^2 / (2 nH nW nC)^2 over two layers weighted by lambda, and
J = alpha J_content + beta J_style, with the gradient of J with respect to the generated
picture's activations. Writes crates/fovea-vision/tests/fixtures/style.safetensors.

    pip install torch safetensors
    python3 tools/gen_style_fixtures.py
"""
import os

import torch
from safetensors.torch import save_file

torch.manual_seed(3)
OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "fovea-vision", "tests", "fixtures")


def gram(a):
    m = a.reshape(a.shape[0], -1)
    return m @ m.T


def layer_style(s, g):
    c, h, w = g.shape
    return ((gram(s) - gram(g)) ** 2).sum() / (2 * h * w * c) ** 2


t = {}
shapes = [(6, 5, 7), (4, 3, 3)]
alpha, beta, lambdas = 10.0, 40.0, [0.7, 0.3]
generated = [torch.rand(*s, dtype=torch.float64).requires_grad_(True) for s in shapes]
styles = [torch.rand(*s, dtype=torch.float64) for s in shapes]
content = torch.rand(*shapes[0], dtype=torch.float64)
j_content = ((content - generated[0]) ** 2).sum()
j_style = sum(l * layer_style(s, g) for l, s, g in zip(lambdas, styles, generated))
total = alpha * j_content + beta * j_style
total.backward()
for i, (g, s) in enumerate(zip(generated, styles)):
    t[f"generated{i}"] = g.detach().float()
    t[f"style_gram{i}"] = gram(s).float()
    t[f"grad{i}"] = g.grad.float()
t["content"] = content.float()
t["j_content"] = j_content.detach().float().reshape(1)
t["j_style"] = j_style.detach().float().reshape(1)
t["total"] = total.detach().float().reshape(1)
t["weights"] = torch.tensor([alpha, beta, *lambdas])
os.makedirs(OUT, exist_ok=True)
save_file(t, os.path.join(OUT, "style.safetensors"), metadata={"generator": "tools/gen_style_fixtures.py", "torch": torch.__version__})
print({k: tuple(v.shape) for k, v in t.items()})
