#!/usr/bin/env python3
"""Generates the reference fixtures for fovea's detection building blocks.

- IoU matrix: torchvision.ops.box_iou on random boxes (corner form).
- Non-max suppression: torchvision.ops.batched_nms (once per class) on 3,000 random boxes
  of 3 classes, after dropping scores <= 0.6 as the notes do.
Writes crates/fovea-vision/tests/fixtures/detect.safetensors.

    pip install torch torchvision safetensors
    python3 tools/gen_detect_fixtures.py
"""
import os

import torch
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

os.makedirs(OUT, exist_ok=True)
save_file(t, os.path.join(OUT, "detect.safetensors"),
          metadata={"generator": "tools/gen_detect_fixtures.py", "torch": torch.__version__})
print({k: tuple(v.shape) for k, v in t.items()})
