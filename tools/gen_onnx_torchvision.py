#!/usr/bin/env python3
"""torchvision's 15 zoo architectures exported with torch.onnx.export, for fovea's ONNX
runtime to match torchvision's own outputs (issue 19).

Each model gets the counter-hash weights of tools/gen_torchvision_models.py (which
fovea's tests compute too), is exported with the default exporter (torch.export) and a
free batch dimension, with the exporter's graph optimizer off so that every weight keeps
its state_dict name (the optimizer folds batch norm into new, unnamed weights). The
weights are then taken out of the file (and the exporter's notes on each node), so the
fixture is only each graph; the test puts
them back from the hash. Every initializer is checked here to be exactly its state_dict
tensor; small constants the exporter made stay in the graph.

torchvision runs each model in evaluation mode on the 2x3x64x64 input of
gen_torchvision_models.py; its outputs are the reference.

Writes crates/fovea-vision/tests/fixtures/onnx_torchvision/{ARCH.onnx, outputs.safetensors,
meta.json}.

    pip install torch torchvision onnx onnxscript safetensors numpy
    python3 tools/gen_onnx_torchvision.py
"""
import json
import os
import sys

import numpy as np
import onnx
import torch
import torchvision
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from gen_torchvision_models import ARCHS, INPUT_SHAPE, pattern, uniform  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "fovea-vision", "tests", "fixtures", "onnx_torchvision")
SMALL = 4096  # constants the exporter made stay in the graph below this many values


def main():
    os.makedirs(OUT, exist_ok=True)
    x = torch.from_numpy(uniform("input", int(np.prod(INPUT_SHAPE))).astype(np.float32).reshape(INPUT_SHAPE))
    outputs, meta = {}, {"torch": torch.__version__, "torchvision": torchvision.__version__, "onnx": onnx.__version__,
                         "input_shape": list(INPUT_SHAPE), "models": {}}
    for arch in ARCHS:
        kwargs = {"aux_logits": False, "init_weights": False} if arch == "googlenet" else {}
        m = getattr(torchvision.models, arch)(weights=None, **kwargs).eval()
        sd = m.state_dict()
        weights = {k: torch.from_numpy(pattern(k, tuple(v.shape))).to(v.dtype) for k, v in sd.items()}
        m.load_state_dict(weights)
        with torch.no_grad():
            outputs[arch] = m(x).contiguous()
        path = os.path.join(OUT, arch + ".onnx")
        torch.onnx.export(m, (x,), path, input_names=["input"], output_names=["logits"],
                          dynamic_shapes=({0: torch.export.Dim("batch")},), optimize=False, external_data=False)
        model = onnx.load(path)
        kept, taken = [], []
        for t in model.graph.initializer:
            values = onnx.numpy_helper.to_array(t)
            if t.name in weights:
                if not np.array_equal(values, weights[t.name].numpy()):
                    raise SystemExit(f"{arch}: initializer {t.name} differs from its state_dict tensor")
                taken.append([t.name, list(t.dims)])
            elif values.size <= SMALL:
                kept.append(t)
            else:
                raise SystemExit(f"{arch}: initializer {t.name} ({values.size} values) is not a state_dict tensor")
        del model.graph.initializer[:]
        model.graph.initializer.extend(kept)
        # the exporter's notes on every node (source lines, stack traces) are most of the
        # file and nothing a runtime reads
        for item in list(model.graph.node) + list(model.graph.input) + list(model.graph.output):
            del item.metadata_props[:]
            item.doc_string = ""
        del model.graph.value_info[:]
        onnx.save(model, path)
        meta["models"][arch] = {"weights": taken, "operators": sorted({n.op_type for n in model.graph.node})}
        print(arch, tuple(outputs[arch].shape), len(taken), "weights taken out,", len(kept), "constants kept,",
              os.path.getsize(path), "bytes")
    save_file(outputs, os.path.join(OUT, "outputs.safetensors"))
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
