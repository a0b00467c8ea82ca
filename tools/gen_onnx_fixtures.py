#!/usr/bin/env python3
"""Fixtures for fovea's ONNX reader: a small model written by the `onnx` package, which
uses every protobuf field the reader decodes (attributes of every kind, a nested graph,
tensors in raw_data, float_data, int64_data, int32_data and double_data, one in an
external data file, symbolic dimensions), and what `onnx` itself reads back from it, as
JSON. The reference is the onnx package's own parser, never fovea.

    pip install onnx==1.23.2 && python3 tools/gen_onnx_fixtures.py

Writes crates/fovea/tests/fixtures/onnx/{parse.onnx, parse.weights, parse.json}.
"""
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import convert_model_to_external_data

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "fovea", "tests", "fixtures", "onnx")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(0)

w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")  # raw_data
b = helper.make_tensor("b", TensorProto.FLOAT, [4], rng.standard_normal(4).astype(np.float32).tolist())  # float_data
shape = helper.make_tensor("shape", TensorProto.INT64, [2], [1, -1])  # int64_data
steps = helper.make_tensor("steps", TensorProto.INT32, [3], [1, -2, 3])  # int32_data
scale = helper.make_tensor("scale", TensorProto.DOUBLE, [2], [0.5, -1.25])  # double_data
big = numpy_helper.from_array(rng.standard_normal((16, 16)).astype(np.float32), "big")  # to external data

nodes = [
    helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1], group=1, auto_pad="NOTSET"),
    helper.make_node("LeakyRelu", ["c"], ["r"], name="leaky", alpha=0.1),
    helper.make_node("Reshape", ["r", "shape"], ["flat"], name="reshape"),
    helper.make_node("Constant", [], ["k"], name="const", value=helper.make_tensor("kv", TensorProto.FLOAT, [2], [1.5, -2.0])),
    helper.make_node("Resize", ["flat", "", "scale"], ["big_out"], name="resize", mode="linear", coordinate_transformation_mode="half_pixel"),
    helper.make_node("CustomFloats", ["k"], ["cf"], name="floats", domain="com.example", values=[0.25, -1.0], names=["a", "b"]),
]
then_graph = helper.make_graph([helper.make_node("Identity", ["k"], ["t"], name="then_id")], "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2])])
else_graph = helper.make_graph([helper.make_node("Neg", ["k"], ["e"], name="else_neg")], "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2])])
nodes.append(helper.make_node("If", ["cond"], ["chosen"], name="if", then_branch=then_graph, else_branch=else_graph))

graph = helper.make_graph(
    nodes,
    "parse-test",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8]), helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
    [helper.make_tensor_value_info("flat", TensorProto.FLOAT, ["N", 256]), helper.make_tensor_value_info("chosen", TensorProto.FLOAT, [2])],
    initializer=[w, b, shape, steps, scale, big],
)
model = helper.make_model(graph, producer_name="fovea-fixtures", opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
model.ir_version = 8
convert_model_to_external_data(model, all_tensors_to_one_file=True, location="parse.weights", size_threshold=1000)
onnx.save(model, os.path.join(OUT, "parse.onnx"))

# what onnx reads back from the files
loaded = onnx.load(os.path.join(OUT, "parse.onnx"), load_external_data=False)
onnx.load_external_data_for_model(loaded, OUT)


def attr(a):
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return {"s": v.decode()}
    if isinstance(v, onnx.TensorProto):
        return {"t": tensor(v)}
    if isinstance(v, onnx.GraphProto):
        return {"g": graph_json(v)}
    if isinstance(v, list):
        return {"list": [x.decode() if isinstance(x, bytes) else x for x in v]}
    return {"f" if isinstance(v, float) else "i": v}


def tensor(t):
    return {"name": t.name, "dims": list(t.dims), "data_type": t.data_type, "values": numpy_helper.to_array(t).astype(np.float64).ravel().tolist()}


def value_info(v):
    dims = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in v.type.tensor_type.shape.dim]
    return {"name": v.name, "elem_type": v.type.tensor_type.elem_type, "dims": dims}


def graph_json(g):
    return {
        "name": g.name,
        "nodes": [{"name": n.name, "op_type": n.op_type, "domain": n.domain, "inputs": list(n.input), "outputs": list(n.output), "attributes": {a.name: attr(a) for a in n.attribute}} for n in g.node],
        "initializers": [tensor(t) for t in g.initializer],
        "inputs": [value_info(v) for v in g.input],
        "outputs": [value_info(v) for v in g.output],
    }


doc = {
    "ir_version": loaded.ir_version,
    "producer_name": loaded.producer_name,
    "opsets": [[o.domain, o.version] for o in loaded.opset_import],
    "graph": graph_json(loaded.graph),
}
with open(os.path.join(OUT, "parse.json"), "w") as f:
    json.dump(doc, f, indent=1)
print("wrote", OUT)
