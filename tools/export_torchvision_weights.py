#!/usr/bin/env python3
"""Saves a torchvision model's pretrained ImageNet weights as safetensors for fovea:
the state_dict as it is, keys unchanged (fovea's parameter names are torchvision's).

    pip install torch torchvision safetensors
    python3 tools/export_torchvision_weights.py resnet50 resnet50.safetensors
    fovea classify --arch resnet50 --weights resnet50.safetensors photo.jpg

Needs the internet once (torchvision downloads the weights). The IMAGENET1K_V1 weights
are used: their evaluation transform (resize 256, crop 224) is fovea classify's default.
(ResNet-50/101/152 also have V2 weights, trained with resize 232: pass `--weights V2`
here and `--resize 232` to fovea classify.) GoogLeNet's pretrained model has no
auxiliary classifiers, so none are saved; fovea builds it without them.
"""
import sys

import torchvision
from safetensors.torch import save_file


def main():
    args = sys.argv[1:]
    version = "IMAGENET1K_V1"
    if "--weights" in args:
        i = args.index("--weights")
        version = "IMAGENET1K_" + args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    arch, out = args
    model = torchvision.models.get_model(arch, weights=version).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
    print(f"wrote {out}: {sum(v.numel() for v in model.state_dict().values()):,} values")


if __name__ == "__main__":
    main()
