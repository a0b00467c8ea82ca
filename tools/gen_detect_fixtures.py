#!/usr/bin/env python3
"""Generates the reference fixtures for fovea's detection building blocks.

- IoU matrix: torchvision.ops.box_iou on random boxes (corner form).
- Non-max suppression: torchvision.ops.batched_nms (once per class) on 3,000 random boxes
  of 3 classes, after dropping scores <= 0.6 as the notes do.
- YOLO: the notes' target encoding and the YOLO loss (YOLOv2's parametrisation, YOLOv1's
  weights), written here from their definitions, with the loss's gradient by autograd.
Writes crates/fovea-vision/tests/fixtures/detect.safetensors.

    pip install torch torchvision safetensors
    python3 tools/gen_detect_fixtures.py
"""
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torchvision.ops import batched_nms, box_iou

torch.manual_seed(11)
OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "fovea-vision", "tests", "fixtures")


def random_boxes(n, size=100.0):
    """Corner-form boxes inside a size x size picture, 2 to 40 wide and high."""
    xy = torch.rand(n, 2) * size
    wh = torch.rand(n, 2) * 38 + 2
    return torch.cat([xy, xy + wh], 1)


t = {}
a, b = random_boxes(50), random_boxes(40)
t["iou.a"], t["iou.b"], t["iou.out"] = a, b, box_iou(a.double(), b.double()).float()

boxes = random_boxes(3000)
scores = torch.rand(3000)
classes = torch.randint(0, 3, (3000,))
keep_mask = scores > 0.6
idx = torch.nonzero(keep_mask).flatten()
kept = batched_nms(boxes[idx].double(), scores[idx].double(), classes[idx], 0.5)
t["nms.boxes"], t["nms.scores"], t["nms.classes"] = boxes, scores, classes.float()
t["nms.keep"] = idx[kept].float()

# ---- YOLO: S = 4, three anchors, three classes, two pictures
S, ANCHORS, C = 4, [(0.1, 0.1), (0.15, 0.4), (0.5, 0.2)], 3
D = 5 + C


def shape_iou(w0, h0, w1, h1):
    inter = min(w0, w1) * min(h0, h1)
    return inter / (w0 * h0 + w1 * h1 - inter)


def encode(objects):
    """objects: (cx, cy, w, h, class) picture-relative; y[S, S, A, 5 + C] as the notes."""
    y = torch.zeros(S, S, len(ANCHORS), D, dtype=torch.float64)
    for cx, cy, w, h, c in objects:
        col, row = int(cx * S), int(cy * S)
        k = max(range(len(ANCHORS)), key=lambda k: (shape_iou(w, h, *ANCHORS[k]), -k))
        if y[row, col, k, 0] == 1:
            continue  # the cell's anchor is taken: the first object keeps it
        y[row, col, k, :5] = torch.tensor([1, cx * S - col, cy * S - row, h * S, w * S])
        y[row, col, k, 5 + c] = 1
    return y


pictures = [
    # two objects in one cell with different shapes, a third colliding with the first
    [(0.30, 0.30, 0.12, 0.35, 0), (0.32, 0.28, 0.45, 0.2, 1), (0.27, 0.33, 0.14, 0.38, 2), (0.8, 0.6, 0.09, 0.11, 2)],
    [(0.55, 0.9, 0.6, 0.25, 1), (0.1, 0.1, 0.05, 0.07, 0)],
]
objects = torch.tensor([[*o, i] for i, p in enumerate(pictures) for o in p], dtype=torch.float32)
target = torch.stack([encode(p) for p in pictures])
output = (torch.randn(2, len(ANCHORS) * D, S, S, dtype=torch.float64) * 0.5).requires_grad_(True)


def yolo_loss(out, y):
    n = out.shape[0]
    rows = out.reshape(n, len(ANCHORS), D, S, S).permute(0, 3, 4, 1, 2)  # [N, S, S, A, D]
    total = 0
    for idx in torch.cartesian_prod(*[torch.arange(k) for k in (n, S, S, len(ANCHORS))]):
        b, r, c, k = idx.tolist()
        t, v = rows[b, r, c, k], y[b, r, c, k]
        if v[0] == 1:
            aw, ah = ANCHORS[k]
            total = total + F.binary_cross_entropy_with_logits(t[0], v[0])
            total = total + 5.0 * ((torch.sigmoid(t[1]) - v[1]) ** 2 + (torch.sigmoid(t[2]) - v[2]) ** 2)
            total = total + 5.0 * ((t[3] - torch.log(v[3] / (ah * S))) ** 2 + (t[4] - torch.log(v[4] / (aw * S))) ** 2)
            total = total + F.cross_entropy(t[5:][None], v[5:].argmax()[None])
        else:
            total = total + 0.5 * F.binary_cross_entropy_with_logits(t[0], v[0])
    return total / n


loss = yolo_loss(output, target)
loss.backward()
t["yolo.anchors"] = torch.tensor(ANCHORS)
t["yolo.objects"] = objects
t["yolo.target"] = target.float()
t["yolo.output"] = output.detach().float()
t["yolo.loss"] = loss.detach().float().reshape(1)
t["yolo.grad"] = output.grad.float()

os.makedirs(OUT, exist_ok=True)
save_file(t, os.path.join(OUT, "detect.safetensors"),
          metadata={"generator": "tools/gen_detect_fixtures.py", "torch": torch.__version__})
print({k: tuple(v.shape) for k, v in t.items()})
