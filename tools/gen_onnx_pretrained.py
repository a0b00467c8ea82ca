#!/usr/bin/env python3
"""Real pretrained CNNs from PyPI run by onnxruntime, for fovea's ONNX runtime to match
(issue 19): PaddleOCR's PP-OCRv4 text detector (DBNet) and recogniser (SVTR-LCNet) and
its text direction classifier, as the package rapidocr-onnxruntime 1.4.4 ships them
(Apache License 2.0, like PaddleOCR's models).

The models are not committed: this script and .ci/run take them from the wheel into
target/onnx-models/ppocr/. The fixture holds the pictures the models see (a photograph
from data/images with a line of text drawn on it, as PNG, so that both sides decode the
same bytes) and onnxruntime's outputs on them, with the preprocessing of rapidocr
((pixel / 255 - 0.5) / 0.5, channels first).

Writes crates/fovea-vision/tests/fixtures/onnx_pretrained/{*.png, outputs.safetensors}.

    pip install onnxruntime==1.31.1 safetensors numpy pillow
    python3 tools/gen_onnx_pretrained.py
    python3 tools/gen_onnx_pretrained.py --fetch-only   # only the models (what .ci/run does)
"""
import glob
import os
import subprocess
import sys
import zipfile

ROOT = os.path.join(os.path.dirname(__file__), "..")
MODELS = os.path.join(ROOT, "target", "onnx-models", "ppocr")
OUT = os.path.join(ROOT, "crates", "fovea-vision", "tests", "fixtures", "onnx_pretrained")
WHEEL = "rapidocr-onnxruntime==1.4.4"


def fetch():
    """The three models, from the wheel on PyPI."""
    if len(glob.glob(os.path.join(MODELS, "*.onnx"))) == 3:
        return
    os.makedirs(MODELS, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-d", MODELS], check=True)
    wheel = glob.glob(os.path.join(MODELS, "*.whl"))[0]
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith(".onnx"):
                with open(os.path.join(MODELS, os.path.basename(name)), "wb") as f:
                    f.write(z.read(name))
    os.remove(wheel)


def tensor(picture):
    import numpy as np

    x = np.asarray(picture, dtype=np.float32)
    return ((x / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None].copy()


def main():
    import numpy as np
    import onnxruntime as ort
    import PIL.Image
    import PIL.ImageDraw
    import PIL.ImageFont
    from safetensors.numpy import save_file

    fetch()
    os.makedirs(OUT, exist_ok=True)
    photo = PIL.Image.open(os.path.join(ROOT, "data", "images", "coffee.png")).convert("RGB").resize((640, 480))
    draw = PIL.ImageDraw.Draw(photo)
    font = PIL.ImageFont.load_default(size=40)
    draw.rectangle((20, 20, 620, 90), fill=(255, 255, 255))
    draw.text((30, 30), "fovea reads 2026", fill=(0, 0, 0), font=font)
    line = photo.crop((20, 20, 620, 90)).resize((320, 48))
    pictures = {"det": photo, "rec": line, "cls": line.resize((192, 48))}
    files = {"det": "ch_PP-OCRv4_det_infer.onnx", "rec": "ch_PP-OCRv4_rec_infer.onnx", "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx"}
    outputs = {}
    for key, picture in pictures.items():
        picture.save(os.path.join(OUT, key + ".png"))
        # read back: the test decodes these very bytes
        x = tensor(PIL.Image.open(os.path.join(OUT, key + ".png")).convert("RGB"))
        session = ort.InferenceSession(os.path.join(MODELS, files[key]), providers=["CPUExecutionProvider"])
        y = session.run(None, {session.get_inputs()[0].name: x})[0].astype(np.float32)
        outputs[key] = y
        print(key, files[key], x.shape, "->", y.shape, float(np.abs(y).max()))
    alphabet_hint = outputs["rec"][0].argmax(axis=1)
    print("recogniser's best class per step:", alphabet_hint.tolist())
    save_file(outputs, os.path.join(OUT, "outputs.safetensors"))


if __name__ == "__main__":
    fetch() if "--fetch-only" in sys.argv else main()
