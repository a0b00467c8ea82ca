#!/usr/bin/env python3
"""Generates the reference fixtures for fovea's detection building blocks.

- IoU matrix: torchvision.ops.box_iou on random boxes (corner form).
- Non-max suppression: torchvision.ops.batched_nms (once per class) on 3,000 random boxes
  of 3 classes, after dropping scores <= 0.6 as the notes do.
- Localization: the notes' squared-error loss (all 8 terms when pc = 1, pc alone when
  pc = 0) and the better variant (logistic pc, 5 x squared box error, log loss for the
  class).
- mAP@0.5: PASCAL VOC's voc_eval matching and voc_ap (all-point interpolation), as in the
  devkit's Python port (py-faster-rcnn; without its +1 on pixel widths, as coordinates
  here are continuous), on random detections of 20 pictures.
- YOLO: the notes' target encoding and the YOLO loss (YOLOv2's parametrisation, YOLOv1's
  weights), written here from their definitions, with the loss's gradient by autograd.
Writes crates/fovea-vision/tests/fixtures/detect.safetensors.

    pip install torch torchvision safetensors
    python3 tools/gen_detect_fixtures.py
"""
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torchvision.ops import batched_nms, box_iou

torch.manual_seed(11)
np.random.seed(11)
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

# ---- localization: 6 pictures, 3 classes, two of them without an object
loc_target = torch.zeros(6, 8, dtype=torch.float64)
for i, (has, c) in enumerate([(1, 0), (0, 0), (1, 2), (1, 1), (0, 0), (1, 2)]):
    if has:
        loc_target[i, 0] = 1
        loc_target[i, 1:5] = torch.rand(4, dtype=torch.float64)
        loc_target[i, 5 + c] = 1
loc_pred = torch.randn(6, 8, dtype=torch.float64).requires_grad_(True)
mask = torch.where(loc_target[:, :1] == 1, torch.ones(6, 8, dtype=torch.float64),
                   torch.cat([torch.ones(6, 1), torch.zeros(6, 7)], 1).double())
squared = (((loc_pred - loc_target) ** 2) * mask).sum() / 6
squared.backward()
t["loc.target"], t["loc.pred"] = loc_target.float(), loc_pred.detach().float()
t["loc.squared"], t["loc.squared_grad"] = squared.detach().float().reshape(1), loc_pred.grad.float()
loc_pred.grad = None
obj = loc_target[:, 0] == 1
better = (F.binary_cross_entropy_with_logits(loc_pred[:, 0], loc_target[:, 0], reduction="sum")
          + 5.0 * ((loc_pred[obj, 1:5] - loc_target[obj, 1:5]) ** 2).sum()
          + F.cross_entropy(loc_pred[obj, 5:], loc_target[obj, 5:].argmax(1), reduction="sum")) / 6
better.backward()
t["loc.better"], t["loc.better_grad"] = better.detach().float().reshape(1), loc_pred.grad.float()


# ---- mAP@0.5, VOC style
def voc_ap(rec, prec):
    """py-faster-rcnn's voc_ap(rec, prec, use_07_metric=False)."""
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def voc_eval(dets, gts, cls, thresh=0.5):
    """py-faster-rcnn's voc_eval matching for one class (no 'difficult' boxes).
    dets, gts: rows (image, x0, y0, x1, y1, class[, score])."""
    R = {}
    for g in gts[gts[:, 5] == cls]:
        R.setdefault(int(g[0]), []).append(g[1:5])
    R = {k: {"bbox": np.array(v), "det": [False] * len(v)} for k, v in R.items()}
    npos = sum(len(v["det"]) for v in R.values())
    d = dets[dets[:, 5] == cls]
    d = d[np.argsort(-d[:, 6], kind="stable")]
    tp, fp = np.zeros(len(d)), np.zeros(len(d))
    for k, row in enumerate(d):
        r = R.get(int(row[0]))
        bb = row[1:5]
        ovmax = -np.inf
        if r is not None:
            BBGT = r["bbox"]
            ixmin, iymin = np.maximum(BBGT[:, 0], bb[0]), np.maximum(BBGT[:, 1], bb[1])
            ixmax, iymax = np.minimum(BBGT[:, 2], bb[2]), np.minimum(BBGT[:, 3], bb[3])
            iw, ih = np.maximum(ixmax - ixmin, 0.0), np.maximum(iymax - iymin, 0.0)
            inters = iw * ih
            uni = (bb[2] - bb[0]) * (bb[3] - bb[1]) + (BBGT[:, 2] - BBGT[:, 0]) * (BBGT[:, 3] - BBGT[:, 1]) - inters
            overlaps = inters / uni
            ovmax, jmax = np.max(overlaps), np.argmax(overlaps)
        if ovmax > thresh and not r["det"][jmax]:
            tp[k] = 1
            r["det"][jmax] = True
        else:
            fp[k] = 1
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return voc_ap(rec, prec)


gts, dets = [], []
for image in range(20):
    for _ in range(np.random.randint(0, 5)):
        x0, y0 = np.random.rand(2) * 80
        w, h = np.random.rand(2) * 30 + 5
        c = np.random.randint(0, 3)
        gts.append([image, x0, y0, x0 + w, y0 + h, c])
        # a detection near most objects, sometimes two
        for _ in range(np.random.choice([0, 1, 1, 2])):
            jx, jy = np.random.randn(2) * 3
            dets.append([image, x0 + jx, y0 + jy, x0 + w + jx, y0 + h + jy, c, np.random.rand()])
    for _ in range(np.random.randint(0, 3)):  # false alarms
        x0, y0 = np.random.rand(2) * 80
        dets.append([image, x0, y0, x0 + 20, y0 + 20, np.random.randint(0, 3), np.random.rand()])
gts, dets = np.array(gts, dtype=np.float32).astype(np.float64), np.array(dets, dtype=np.float32).astype(np.float64)
t["map.truths"], t["map.detections"] = torch.tensor(gts).float(), torch.tensor(dets).float()
t["map.ap"] = torch.tensor([voc_eval(dets, gts, c) for c in range(3)]).float()

os.makedirs(OUT, exist_ok=True)
save_file(t, os.path.join(OUT, "detect.safetensors"),
          metadata={"generator": "tools/gen_detect_fixtures.py", "torch": torch.__version__})
print({k: tuple(v.shape) for k, v in t.items()})
