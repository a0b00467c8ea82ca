#!/usr/bin/env python3
"""Reference outputs of torchvision's model zoo, for fovea's models to match.

The weights are not torch's random draws but a counter-based hash (below) that fovea's
test computes too, so the fixture holds only each model's state_dict names and shapes and its
outputs, not hundreds of megabytes of weights. Each model runs in evaluation mode on a
fixed 2x3x64x64 input; GoogLeNet's auxiliary classifiers are run (in evaluation mode) on
the outputs of inception 4a and 4d, and GoogLeNet runs once more with transform_input.

Resizing: torch's antialiased bilinear interpolation of a small image, enlarged and shrunk.

ImageNet inference: torchvision's evaluation transform (ResNet18_Weights.IMAGENET1K_V1's:
resize 256 antialiased, centre crop 224, normalise) on the sample photos in data/images,
as float tensors (every 37th value kept), and resnet18's logits on them.

Writes crates/fovea-vision/tests/fixtures/torchvision_models.{json,safetensors}.

    pip install torch torchvision safetensors numpy pillow
    python3 tools/gen_torchvision_models.py
"""
import json
import math
import os

import numpy as np
import PIL.Image
import torch
import torchvision
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "crates", "fovea-vision", "tests", "fixtures")
ARCHS = ["alexnet"] + [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")] + \
    [f"resnet{d}" for d in (18, 34, 50, 101, 152)] + ["googlenet"]
INPUT_SHAPE = (2, 3, 64, 64)
PHOTOS = ["chelsea", "coffee"]
SUBSAMPLE = 37


def uniform(name, n):
    """n values in [-1, 1) from splitmix64 of (hash(name) << 32) + i: exact integer
    arithmetic, so fovea's test draws the same numbers."""
    seed = sum((k + 1) * b for k, b in enumerate(name.encode())) << 32
    z = np.arange(n, dtype=np.uint64) + np.uint64(seed) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) * 2.0 ** -23 - 1.0


def pattern(name, shape):
    """The weights, by the tensor's role (fovea's test: same formula)."""
    n = int(np.prod(shape, dtype=np.int64))
    u = uniform(name, n)
    if name.endswith("num_batches_tracked"):
        v = np.zeros(n)
    elif name.endswith("running_var"):
        v = 1.0 + 0.5 * u
    elif name.endswith("running_mean"):
        v = 0.1 * u
    elif len(shape) == 1 and name.endswith("weight") and name.startswith("layer"):
        v = 0.5 + 0.1 * u  # batch norm scale in ResNet blocks: small, lest 50 residual sums explode
    elif len(shape) == 1 and name.endswith("weight"):  # other batch norm scales
        v = 1.0 + 0.25 * u
    elif len(shape) == 1:  # biases: small, so that the input still shows after many layers
        v = 0.02 * u
    else:  # He: variance 2 / fan_in (u has variance 1/3)
        v = u * math.sqrt(6.0 / int(np.prod(shape[1:])))
    return v.astype(np.float32).reshape(shape)


def main():
    x = torch.from_numpy(uniform("input", int(np.prod(INPUT_SHAPE))).astype(np.float32).reshape(INPUT_SHAPE))
    outputs, models = {}, {}
    for arch in ARCHS:
        kwargs = {"aux_logits": True, "init_weights": False} if arch == "googlenet" else {}
        m = getattr(torchvision.models, arch)(weights=None, **kwargs).eval()
        sd = m.state_dict()
        m.load_state_dict({k: torch.from_numpy(pattern(k, tuple(v.shape))).to(v.dtype) for k, v in sd.items()})
        models[arch] = [[k, list(v.shape)] for k, v in sd.items()]
        with torch.no_grad():
            if arch == "googlenet":
                seen = {}
                m.inception4a.register_forward_hook(lambda _m, _i, o: seen.__setitem__("4a", o))
                m.inception4d.register_forward_hook(lambda _m, _i, o: seen.__setitem__("4d", o))
                outputs[arch] = m(x)
                outputs["googlenet.aux1"] = m.aux1(seen["4a"])
                outputs["googlenet.aux2"] = m.aux2(seen["4d"])
                m.transform_input = True
                outputs["googlenet.transform_input"] = m(x)
            else:
                outputs[arch] = m(x)
        print(arch, tuple(outputs[arch].shape), float(outputs[arch].abs().max()))
        if arch == "resnet18":
            transform = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.transforms()
            for photo in PHOTOS:
                img = PIL.Image.open(os.path.join(ROOT, "data", "images", photo + ".png")).convert("RGB")
                rgb = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255.0
                x_photo = transform(rgb)
                outputs[f"{photo}.preprocessed"] = x_photo.flatten()[::SUBSAMPLE].contiguous()
                with torch.no_grad():
                    outputs[f"{photo}.resnet18"] = m(x_photo[None])
    # antialiased bilinear resizing on its own, enlarging and shrinking a 3x5x7 image
    small = torch.from_numpy(uniform("resize", 3 * 5 * 7).astype(np.float32).reshape(1, 3, 5, 7))
    for name, size in [("resize.up", (9, 12)), ("resize.down", (3, 4))]:
        outputs[name] = torch.nn.functional.interpolate(small, size=size, mode="bilinear", antialias=True,
                                                        align_corners=False)[0]
    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.contiguous() for k, v in outputs.items()}, os.path.join(OUT, "torchvision_models.safetensors"))
    meta = {"torch": torch.__version__, "torchvision": torchvision.__version__, "input_shape": list(INPUT_SHAPE),
            "photos": PHOTOS, "subsample": SUBSAMPLE, "state_dicts": models}
    with open(os.path.join(OUT, "torchvision_models.json"), "w") as f:
        json.dump(meta, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
