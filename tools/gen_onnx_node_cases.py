#!/usr/bin/env python3
"""The onnx package's own backend node test cases for the operators fovea supports (issue
19), copied into fixtures: each case's model.onnx and test_data_set_*/{input,output}_*.pb,
as `onnx.backend.test.cmd_tools generate-data` would write them (the wheel ships the case
definitions, not the data), plus cases.json: for every tensor file, what onnx reads from
it (name, dims, element type, element count, sum, first values) so that fovea's reader is
checked against onnx's own.

    pip install onnx==1.23.2 && python3 tools/gen_onnx_node_cases.py

Writes crates/fovea/tests/fixtures/onnx/node/.
"""
import json
import os
import shutil

import numpy as np
from onnx import TensorProto, numpy_helper
from onnx.backend.test.case import node

OPS = """Conv ConvTranspose BatchNormalization Relu LeakyRelu PRelu Elu Sigmoid Tanh HardSigmoid
HardSwish Clip Softmax LogSoftmax Add Sub Mul Div Pow Sqrt Exp Log MatMul Gemm MaxPool AveragePool
GlobalAveragePool GlobalMaxPool Flatten Reshape Transpose Concat Split Slice Squeeze Unsqueeze Shape
Gather Constant ConstantOfShape Pad Resize Upsample ReduceMean ReduceMax ReduceSum Identity Dropout
Cast CastLike Neg Abs Floor Ceil Sign Max Min Equal Greater GreaterOrEqual Less LessOrEqual Where Range
GatherND Expand""".split()
OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "fovea", "tests", "fixtures", "onnx", "node")
if os.path.exists(OUT):
    shutil.rmtree(OUT)
os.makedirs(OUT)

summary = {}
for case in node.collect_testcases(None):
    ops = sorted({n.op_type for n in case.model.graph.node})
    # cases of one supported operator, on tensors (not sequences, maps or optionals)
    if len(ops) != 1 or ops[0] not in OPS:
        continue
    if not all(i.type.HasField("tensor_type") for i in list(case.model.graph.input) + list(case.model.graph.output)):
        continue
    directory = os.path.join(OUT, case.name)
    os.makedirs(directory)
    with open(os.path.join(directory, "model.onnx"), "wb") as f:
        f.write(case.model.SerializeToString())
    files = {}
    for d, (inputs, outputs) in enumerate(case.data_sets):
        os.makedirs(os.path.join(directory, f"test_data_set_{d}"))
        for kind, values, infos in (("input", inputs, case.model.graph.input), ("output", outputs, case.model.graph.output)):
            for j, value in enumerate(values):
                tensor = value if isinstance(value, TensorProto) else numpy_helper.from_array(np.asarray(value), infos[j].name)
                rel = f"test_data_set_{d}/{kind}_{j}.pb"
                with open(os.path.join(directory, rel), "wb") as f:
                    f.write(tensor.SerializeToString())
                array = numpy_helper.to_array(tensor)
                # the element types fovea reads: all but strings
                numeric = tensor.data_type != TensorProto.STRING
                flat = array.astype(np.float64).ravel() if numeric else np.zeros(0)
                files[rel] = {
                    "name": tensor.name,
                    "dims": list(tensor.dims),
                    "data_type": tensor.data_type,
                    "count": int(array.size),
                    "numeric": bool(numeric),
                    "sum": float(np.nansum(flat[np.isfinite(flat)])) if numeric else 0.0,
                    # (JSON has no NaN or infinity: those are null)
                    "first": [float(v) if np.isfinite(v) else None for v in flat[:4]] if numeric else [],
                }
    summary[case.name] = {"op": ops[0], "opset": max(o.version for o in case.model.opset_import if o.domain in ("", "ai.onnx")), "files": files}

with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump(summary, f, indent=0, sort_keys=True)
print(len(summary), "cases of", len({c["op"] for c in summary.values()}), "operators in", OUT)
