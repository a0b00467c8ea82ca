#!/usr/bin/env python3
"""Reference for a short LeNet-5 training run: fixed initial weights, 10 optimizer steps on
fixed batches of real Fashion-MNIST images; records the loss of every step and the final
weights, for SGD (momentum, weight decay, Nesterov) and for Adam and AdamW.

Writes crates/fovea-vision/tests/fixtures/lenet_steps.safetensors.

    pip install torch safetensors numpy
    python3 tools/gen_lenet_steps.py
"""
import gzip
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "crates", "fovea-vision", "tests", "fixtures")
STEPS, BATCH = 10, 16


def read_idx(path):
    with gzip.open(path) as f:
        data = f.read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


class LeNet5(nn.Module):
    """fovea's lenet5: conv 5x5 same (6), ReLU, max pool 2, conv 5x5 (16), ReLU, max pool 2,
    FC 120, ReLU, FC 84, ReLU, FC 10; parameter names equal fovea's."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc3 = nn.Linear(400, 120)
        self.fc4 = nn.Linear(120, 84)
        self.fc5 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.flatten(1)
        return self.fc5(F.relu(self.fc4(F.relu(self.fc3(x)))))


def main():
    images = read_idx(os.path.join(ROOT, "data/fashion-mnist/train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(ROOT, "data/fashion-mnist/train-labels-idx1-ubyte.gz"))
    x_all = torch.tensor(images[: STEPS * BATCH], dtype=torch.float32).unsqueeze(1) / 255.0
    y_all = torch.tensor(labels[: STEPS * BATCH], dtype=torch.long)

    torch.manual_seed(0)
    initial = {k: v.clone() for k, v in LeNet5().state_dict().items()}
    out = {f"init.{k}": v for k, v in initial.items()}

    optimizers = {
        "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-4),
        "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
        "adam": lambda p: torch.optim.Adam(p, lr=2e-3, weight_decay=1e-4),
        "adamw": lambda p: torch.optim.AdamW(p, lr=2e-3, weight_decay=0.05),
    }
    for name, make in optimizers.items():
        model = LeNet5()
        model.load_state_dict(initial)
        opt = make(model.parameters())
        losses = []
        for step in range(STEPS):
            x = x_all[step * BATCH:(step + 1) * BATCH]
            y = y_all[step * BATCH:(step + 1) * BATCH]
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        out[f"{name}.losses"] = torch.tensor(losses)
        for k, v in model.state_dict().items():
            out[f"{name}.final.{k}"] = v.clone()
        print(name, " ".join(f"{l:.5f}" for l in losses))

    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(OUT, "lenet_steps.safetensors"))


if __name__ == "__main__":
    main()
