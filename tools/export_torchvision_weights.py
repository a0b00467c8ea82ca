#!/usr/bin/env python3
"""Saves a torchvision model's pretrained ImageNet weights as safetensors for fovea:
the state_dict as it is, keys unchanged (fovea's parameter names are torchvision's).

    pip install torch torchvision safetensors
    python3 tools/export_torchvision_weights.py resnet50 resnet50.safetensors
    fovea classify --arch resnet50 --weights resnet50.safetensors photo.jpg

Needs the internet once (torchvision downloads the weights); the default weights of
each architecture (e.g. ResNet50_Weights.DEFAULT) are used. GoogLeNet's pretrained
model has no auxiliary classifiers, so none are saved; fovea builds it without them.
"""
import sys

import torchvision
from safetensors.torch import save_file


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    arch, out = sys.argv[1], sys.argv[2]
    model = torchvision.models.get_model(arch, weights="DEFAULT").eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
    print(f"wrote {out}: {sum(v.numel() for v in model.state_dict().values()):,} values")


if __name__ == "__main__":
    main()
