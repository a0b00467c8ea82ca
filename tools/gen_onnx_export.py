#!/usr/bin/env python3
"""fovea's ONNX export run by onnxruntime (issue 19): each network is exported by
`fovea export --model NAME --seed 0` (weights drawn from the seed, so the test can build
the same network), checked by onnx's checker, and run by onnxruntime on a fixed input (the
counter hash of tools/gen_torchvision_models.py, batch 2). The test exports the same
networks again, checks the bytes are the ones onnxruntime ran (length and CRC-32), and
compares fovea's own forward pass with onnxruntime's outputs.

Writes crates/fovea-vision/tests/fixtures/onnx_export/{outputs.safetensors, meta.json}.

    cargo build --release -p fovea-cli
    pip install onnx onnxruntime==1.31.1 safetensors numpy
    python3 tools/gen_onnx_export.py
"""
import json
import os
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(__file__))
from gen_torchvision_models import uniform  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "crates", "fovea-vision", "tests", "fixtures", "onnx_export")
# (model, input shape of one sample)
MODELS = [("lenet5", [1, 28, 28]), ("cnn-bn", [1, 28, 28]), ("cnn5", [1, 28, 28]), ("resnet18", [3, 64, 64]),
          ("vgg11_bn", [3, 32, 32]), ("googlenet", [3, 64, 64]), ("alexnet", [3, 64, 64])]


def main():
    os.makedirs(OUT, exist_ok=True)
    outputs, meta = {}, {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "batch": 2, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape in MODELS:
            path = os.path.join(tmp, name + ".onnx")
            subprocess.run([os.path.join(ROOT, "target", "release", "fovea"), "export", "--model", name, "--seed", "0",
                            "--input", "x".join(map(str, shape)), "--out", path], check=True)
            onnx.checker.check_model(onnx.load(path), full_check=True)
            data = open(path, "rb").read()
            x = uniform("input", 2 * int(np.prod(shape))).astype(np.float32).reshape([2] + shape)
            session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            outputs[name] = session.run(None, {"input": x})[0]
            meta["models"][name] = {"input": shape, "bytes": len(data), "crc32": zlib.crc32(data)}
            print(name, outputs[name].shape, float(np.abs(outputs[name]).max()), len(data), "bytes")
    save_file(outputs, os.path.join(OUT, "outputs.safetensors"))
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
