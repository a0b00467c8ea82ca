#!/usr/bin/env python3
"""Generates the PyTorch / numpy reference for fovea's augmentation geometry: pictures
resampled through affine maps (rotation, shear, crop-and-resize, mirror) by
torch.nn.functional.grid_sample (bilinear, zero padding, align_corners=False), and the
eigen-decomposition of a channel covariance by numpy.linalg.eigh.
Writes crates/fovea-vision/tests/fixtures/augment.safetensors.

    pip install torch safetensors numpy
    python3 tools/gen_augment_fixtures.py
"""
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(5)
OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "fovea-vision", "tests", "fixtures")


def about(cx, cy, m):
    """The 2x3 map m about (cx, cy), in pixel coordinates (pixel centres at +0.5)."""
    a, b, c, d = m
    return np.array([[a, b, cx - a * cx - b * cy], [c, d, cy - c * cx - d * cy]])


def theta_for(to_source, h, w):
    """grid_sample's theta (output -> input in [-1, 1] coordinates) for a pixel-space map."""
    n = np.array([[2 / w, 0, -1], [0, 2 / h, -1], [0, 0, 1]])
    m = np.vstack([to_source, [0, 0, 1]])
    return (n @ m @ np.linalg.inv(n))[:2]


t = {}
h, w = 13, 17
picture = torch.rand(3, h, w)
t["picture"] = picture
a = math.radians(23)
maps = {
    "rotate": about(w / 2, h / 2, [math.cos(a), -math.sin(a), math.sin(a), math.cos(a)]),
    "shear": about(w / 2, h / 2, [1, 0.3, 0, 1]),
    # output (u, v) takes input (3 + u * 0.6, 2 + v * 0.7): a crop resized back
    "crop": np.array([[0.6, 0, 3], [0, 0.7, 2]]),
    "mirror": np.array([[-1, 0, w], [0, 1, 0]]),
}
for name, m in maps.items():
    theta = torch.tensor(theta_for(m, h, w), dtype=torch.float32).unsqueeze(0)
    grid = F.affine_grid(theta, [1, 3, h, w], align_corners=False)
    out = F.grid_sample(picture.unsqueeze(0), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    t[f"{name}_map"] = torch.tensor(m.reshape(-1), dtype=torch.float32)
    t[f"{name}_out"] = out[0]

pixels = np.random.default_rng(5).random((3, 400)) * np.array([[1.0], [0.6], [0.3]])
pixels[1] += 0.5 * pixels[0]
cov = np.cov(pixels, bias=True)
values, vectors = np.linalg.eigh(cov)
order = np.argsort(values)[::-1]
t["pca_pixels"] = torch.tensor(pixels.reshape(3, 20, 20), dtype=torch.float32).unsqueeze(0)
t["pca_std"] = torch.tensor(np.sqrt(values[order]), dtype=torch.float32)
t["pca_axes"] = torch.tensor(vectors[:, order].T.copy(), dtype=torch.float32)
os.makedirs(OUT, exist_ok=True)
save_file({k: v.contiguous() for k, v in t.items()}, os.path.join(OUT, "augment.safetensors"),
          metadata={"generator": "tools/gen_augment_fixtures.py", "torch": torch.__version__})
print({k: tuple(v.shape) for k, v in t.items()})
