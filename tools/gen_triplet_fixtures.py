#!/usr/bin/env python3
"""Generates the PyTorch reference for fovea's mined triplet losses.

A batch of 26 raw embeddings (7 identities of 1 to 5 pictures), made unit-length as
F.normalize does, and for batch-hard and semi-hard mining the triplet loss (squared
distances, margin 0.2) and its gradient with respect to the raw embeddings. The mining
here is written from the papers' definitions, independently of fovea:
- batch-hard (Hermans et al. 2017): each anchor with its farthest positive and nearest
  negative;
- semi-hard (Schroff et al. 2015, as TensorFlow Addons' triplet_semihard_loss): each
  anchor-positive pair with the nearest negative farther than the positive, else the
  farthest negative.
Writes crates/fovea-vision/tests/fixtures/triplet.safetensors.

    pip install torch safetensors
    python3 tools/gen_triplet_fixtures.py
"""
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(7)
OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "fovea-vision", "tests", "fixtures")
MARGIN = 0.2

labels = torch.tensor([0] * 5 + [1] * 4 + [2] * 4 + [3] * 5 + [4] * 3 + [5] * 1 + [6] * 4)
labels = labels[torch.randperm(len(labels))]
raw = torch.randn(len(labels), 8, dtype=torch.float64)


def squared_distances(e):
    return ((e[:, None, :] - e[None, :, :]) ** 2).sum(-1)


def batch_hard(e):
    d = squared_distances(e)
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool)
    neg = ~same
    valid = pos.any(1) & neg.any(1)
    hardest_pos = torch.where(pos, d, torch.full_like(d, -float("inf"))).max(1).values
    hardest_neg = torch.where(neg, d, torch.full_like(d, float("inf"))).min(1).values
    return F.relu(hardest_pos - hardest_neg + MARGIN)[valid].mean()


def semi_hard(e):
    d = squared_distances(e)
    losses = []
    for a in range(len(labels)):
        negs = [n for n in range(len(labels)) if labels[n] != labels[a]]
        for p in range(len(labels)):
            if p == a or labels[p] != labels[a]:
                continue
            beyond = [n for n in negs if d[a, n] > d[a, p]]
            if beyond:
                n = min(beyond, key=lambda n: d[a, n].item())
            else:
                n = max(negs, key=lambda n: d[a, n].item())
            losses.append(F.relu(d[a, p] - d[a, n] + MARGIN))
    return torch.stack(losses).mean()


tensors = {"raw": raw.float(), "labels": labels.float(), "margin": torch.tensor([MARGIN])}
for name, fn in [("batch_hard", batch_hard), ("semi_hard", semi_hard)]:
    x = raw.clone().requires_grad_(True)
    loss = fn(F.normalize(x, dim=1))
    loss.backward()
    tensors[f"{name}.loss"] = loss.detach().float().reshape(1)
    tensors[f"{name}.grad"] = x.grad.float()
    print(name, loss.item())

os.makedirs(OUT, exist_ok=True)
save_file(tensors, os.path.join(OUT, "triplet.safetensors"), metadata={"generator": "tools/gen_triplet_fixtures.py", "torch": torch.__version__})
