#!/usr/bin/env python3
"""Reference learning rates of PyTorch's schedulers, epoch by epoch, for
fovea::optim::LrSchedule: StepLR, CosineAnnealingLR and LinearLR (warm-up).

Writes crates/fovea/tests/fixtures/lr_schedules.json.

    pip install torch
    python3 tools/gen_lr_schedules.py
"""
import json
import os

import torch

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "crates", "fovea", "tests", "fixtures", "lr_schedules.json")
BASE, EPOCHS = 0.1, 12


def rates(make):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=BASE)
    sched = make(opt)
    out = []
    for _ in range(EPOCHS):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


cases = [
    {"kind": "step", "step_size": 3, "gamma": 0.5,
     "rates": rates(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5))},
    {"kind": "cosine", "t_max": 10, "eta_min": 0.001,
     "rates": rates(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001))},
    {"kind": "cosine", "t_max": 12, "eta_min": 0.0,
     "rates": rates(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=12))},
    {"kind": "linear", "start_factor": 0.25, "total_iters": 4,
     "rates": rates(lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.25, total_iters=4))},
]
with open(OUT, "w") as f:
    json.dump({"base": BASE, "epochs": EPOCHS, "torch": torch.__version__, "cases": cases}, f, indent=1)
print(f"wrote {OUT}")
