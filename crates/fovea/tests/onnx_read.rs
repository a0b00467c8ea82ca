//! fovea's ONNX reader against the `onnx` package's own reading of the same files
//! (tools/gen_onnx_fixtures.py), and against damaged and hostile files.

use fovea::io::onnx::{self, AttributeValue, Dim, Graph, TensorData};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx").join(name)
}

fn check_tensor(t: &TensorData, expected: &Value) {
    assert_eq!(t.name, expected["name"].as_str().unwrap());
    let dims: Vec<i64> = expected["dims"].as_array().unwrap().iter().map(|d| d.as_i64().unwrap()).collect();
    assert_eq!(t.dims, dims, "{}", t.name);
    assert_eq!(t.data_type as i64, expected["data_type"].as_i64().unwrap(), "{}", t.name);
    let values: Vec<f64> = expected["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    // every value exactly: both sides read the same bits
    assert_eq!(t.to_f64s().unwrap(), values, "{}", t.name);
}

fn check_graph(g: &Graph, expected: &Value) {
    assert_eq!(g.name, expected["name"].as_str().unwrap());
    let nodes = expected["nodes"].as_array().unwrap();
    assert_eq!(g.nodes.len(), nodes.len());
    for (n, e) in g.nodes.iter().zip(nodes) {
        assert_eq!(
            (n.name.as_str(), n.op_type.as_str(), n.domain.as_str()),
            (e["name"].as_str().unwrap(), e["op_type"].as_str().unwrap(), e["domain"].as_str().unwrap())
        );
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
        };
        assert_eq!(n.inputs, strings(&e["inputs"]), "{}", n.name);
        assert_eq!(n.outputs, strings(&e["outputs"]), "{}", n.name);
        let attributes = e["attributes"].as_object().unwrap();
        assert_eq!(n.attributes.len(), attributes.len(), "{}", n.name);
        for (name, value) in attributes {
            let ours = n.attribute(name).unwrap_or_else(|| panic!("{}: no attribute {name}", n.name));
            match ours {
                AttributeValue::Float(f) => assert_eq!(*f as f64, value["f"].as_f64().unwrap(), "{name}"),
                AttributeValue::Int(i) => assert_eq!(*i, value["i"].as_i64().unwrap(), "{name}"),
                AttributeValue::String(s) => assert_eq!(std::str::from_utf8(s).unwrap(), value["s"].as_str().unwrap()),
                AttributeValue::Tensor(t) => check_tensor(t, &value["t"]),
                AttributeValue::Graph(g) => check_graph(g, &value["g"]),
                AttributeValue::Floats(v) => {
                    let e: Vec<f64> = value["list"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
                    assert_eq!(v.iter().map(|&x| x as f64).collect::<Vec<_>>(), e, "{name}");
                }
                AttributeValue::Ints(v) => {
                    let e: Vec<i64> = value["list"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
                    assert_eq!(v, &e, "{name}");
                }
                AttributeValue::Strings(v) => {
                    let ours: Vec<&str> = v.iter().map(|s| std::str::from_utf8(s).unwrap()).collect();
                    let e: Vec<&str> = value["list"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
                    assert_eq!(ours, e, "{name}");
                }
                other => panic!("{name}: unexpected {other:?}"),
            }
        }
    }
    let initializers = expected["initializers"].as_array().unwrap();
    assert_eq!(g.initializers.len(), initializers.len());
    for (t, e) in g.initializers.iter().zip(initializers) {
        check_tensor(t, e);
    }
    for (ours, theirs) in [(&g.inputs, &expected["inputs"]), (&g.outputs, &expected["outputs"])] {
        let theirs = theirs.as_array().unwrap();
        assert_eq!(ours.len(), theirs.len());
        for (v, e) in ours.iter().zip(theirs) {
            assert_eq!(v.name, e["name"].as_str().unwrap());
            assert_eq!(v.elem_type as i64, e["elem_type"].as_i64().unwrap());
            let dims: Vec<Dim> = e["dims"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| match d.as_i64() {
                    Some(n) => Dim::Value(n),
                    None => Dim::Param(d.as_str().unwrap().to_string()),
                })
                .collect();
            assert_eq!(v.dims.as_ref().unwrap(), &dims, "{}", v.name);
        }
    }
}

#[test]
fn reads_what_the_onnx_package_reads() {
    let model = onnx::load(&fixture("parse.onnx")).unwrap();
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(fixture("parse.json")).unwrap()).unwrap();
    assert_eq!(model.ir_version, expected["ir_version"].as_i64().unwrap());
    assert_eq!(model.producer_name, expected["producer_name"].as_str().unwrap());
    let opsets: Vec<(String, i64)> = expected["opsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o[0].as_str().unwrap().to_string(), o[1].as_i64().unwrap()))
        .collect();
    assert_eq!(model.opsets, opsets);
    check_graph(&model.graph, &expected["graph"]);
    // the weights as a fovea tensor, and integers as integers
    let w = model.graph.initializers.iter().find(|t| t.name == "w").unwrap().to_tensor().unwrap();
    assert_eq!(w.shape(), [4, 3, 3, 3]);
    let shape = model.graph.initializers.iter().find(|t| t.name == "shape").unwrap();
    assert_eq!(shape.to_i64s().unwrap(), [1, -1]);
}

#[test]
fn damaged_and_hostile_files_get_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("parse.onnx")).unwrap();
    // cut off anywhere: an error naming the file, never a panic
    for cut in (1..bytes.len()).step_by(7) {
        let path = dir.path().join("cut.onnx");
        std::fs::write(&path, &bytes[..cut]).unwrap();
        std::fs::copy(fixture("parse.weights"), dir.path().join("parse.weights")).unwrap();
        if let Err(e) = onnx::load(&path) {
            assert!(e.to_string().contains("cut.onnx"), "{e}");
        }
    }
    // bytes changed at random: Ok or Err, never a panic or a huge allocation
    let mut rng = fovea::Rng::new(7);
    for _ in 0..2000 {
        let mut damaged = bytes.clone();
        for _ in 0..3 {
            let i = (rng.next_u64() as usize) % damaged.len();
            damaged[i] = rng.next_u64() as u8;
        }
        let _ = onnx::parse(&damaged);
    }
    // a length far past the end
    let err = onnx::parse(&[0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f]).unwrap_err();
    assert!(err.contains("cut off or damaged"), "{err}");
    // graphs nested a thousand deep (If inside If ...): refused at the limit
    let mut graph: Vec<u8> = Vec::new();
    for _ in 0..1000 {
        let mut attribute = vec![0x0a, 1, b'g', 0xa0, 0x01, 5]; // name "g", type GRAPH
        attribute.push(0x32);
        push_length(&mut attribute, graph.len());
        attribute.extend(&graph);
        let mut node = vec![0x2a];
        push_length(&mut node, attribute.len());
        node.extend(&attribute);
        graph = vec![0x0a];
        push_length(&mut graph, node.len());
        graph.extend(&node);
    }
    let mut model = vec![0x3a];
    push_length(&mut model, graph.len());
    model.extend(&graph);
    let err = onnx::parse(&model).unwrap_err();
    assert!(err.contains("nested more than 32 deep"), "{err}");
    // external data outside the model's folder, or missing
    let text = String::from_utf8_lossy(&bytes).to_string();
    assert!(text.contains("parse.weights"));
    let outside = replace(&bytes, b"parse.weights", b"../../passwd!");
    std::fs::write(dir.path().join("outside.onnx"), outside).unwrap();
    let err = onnx::load(&dir.path().join("outside.onnx")).unwrap_err().to_string();
    assert!(err.contains("outside the model's folder"), "{err}");
    let missing = replace(&bytes, b"parse.weights", b"gone.weights!");
    std::fs::write(dir.path().join("missing.onnx"), missing).unwrap();
    let err = onnx::load(&dir.path().join("missing.onnx")).unwrap_err().to_string();
    assert!(err.contains("gone.weights"), "{err}");
    // not an ONNX file at all
    std::fs::write(dir.path().join("text.onnx"), b"hello, I am not a model").unwrap();
    let err = onnx::load(&dir.path().join("text.onnx")).unwrap_err().to_string();
    assert!(err.contains("text.onnx") && err.contains("not a readable ONNX model"), "{err}");
}

fn push_length(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// `bytes` with `from` replaced by `to`, of the same length (the protobuf lengths stay right).
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    let mut out = bytes.to_vec();
    out[at..at + from.len()].copy_from_slice(to);
    out
}

/// The onnx package's backend node test cases for the operators fovea supports
/// (tools/gen_onnx_node_cases.py): every model reads, with its one operator, and every
/// input and output tensor file reads as onnx reads it (shape, element type, count, sum,
/// first values); tensors of element types fovea does not read say so.
#[test]
fn reads_the_onnx_backend_node_cases() {
    let dir = fixture("node");
    let cases: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let cases = cases.as_object().unwrap();
    assert!(cases.len() > 400, "{} cases", cases.len());
    let (mut read, mut unreadable_types) = (0, 0);
    for (name, case) in cases {
        let model = onnx::load(&dir.join(name).join("model.onnx")).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(model.graph.nodes.iter().all(|n| n.op_type == case["op"].as_str().unwrap()), "{name}");
        model.graph.check().unwrap_or_else(|e| panic!("{name}: {e}"));
        for (file, expected) in case["files"].as_object().unwrap() {
            let bytes = std::fs::read(dir.join(name).join(file)).unwrap();
            let t = onnx::parse_tensor(&bytes).unwrap_or_else(|e| panic!("{name}/{file}: {e}"));
            assert_eq!(t.name, expected["name"].as_str().unwrap(), "{name}/{file}");
            let dims: Vec<i64> = expected["dims"].as_array().unwrap().iter().map(|d| d.as_i64().unwrap()).collect();
            assert_eq!((t.dims.clone(), t.data_type as i64), (dims, expected["data_type"].as_i64().unwrap()));
            match t.to_f64s() {
                Ok(values) => {
                    assert!(expected["numeric"].as_bool().unwrap(), "{name}/{file}");
                    assert_eq!(values.len() as u64, expected["count"].as_u64().unwrap(), "{name}/{file}");
                    let sum: f64 = values.iter().filter(|v| v.is_finite()).sum();
                    let want = expected["sum"].as_f64().unwrap();
                    assert!((sum - want).abs() <= 1e-9 * want.abs().max(1.0), "{name}/{file}: sum {sum} vs {want}");
                    for (v, w) in values.iter().zip(expected["first"].as_array().unwrap()) {
                        match w.as_f64() {
                            Some(w) => assert_eq!(*v, w, "{name}/{file}"),
                            None => assert!(!v.is_finite(), "{name}/{file}: {v} where onnx reads NaN or infinity"),
                        }
                    }
                    read += 1;
                }
                Err(e) => {
                    assert!(e.to_string().contains("element type"), "{name}/{file}: {e}");
                    unreadable_types += 1;
                }
            }
        }
    }
    // most are float tensors; the rest are strings
    assert!(read > 5 * unreadable_types, "{read} read, {unreadable_types} of types fovea does not read");
}

#[test]
fn graphs_that_cannot_run_are_refused_with_every_problem_named() {
    let model = onnx::load(&fixture("parse.onnx")).unwrap();
    model.graph.check().unwrap();
    assert_eq!(model.opset(""), Some(17));
    assert_eq!(model.opset("ai.onnx"), Some(17));
    assert_eq!(model.opset("com.example"), Some(1));
    let ops: Vec<String> = model.operators().into_iter().map(|(d, o)| format!("{d}:{o}")).collect();
    // the If node's branches are counted too
    assert_eq!(
        ops,
        [
            ":Constant",
            ":Conv",
            ":Identity",
            ":If",
            ":LeakyRelu",
            ":Neg",
            ":Reshape",
            ":Resize",
            "com.example:CustomFloats"
        ]
    );
    let node = |name: &str, inputs: &[&str], outputs: &[&str]| onnx::Node {
        name: name.into(),
        op_type: "Relu".into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let value = |name: &str| onnx::ValueInfo { name: name.into(), ..Default::default() };
    // a cycle (a reads b, b reads a), a value from nowhere, a value made twice, an output never made
    let broken = Graph {
        name: "broken".into(),
        nodes: vec![node("a", &["x", "b"], &["a"]), node("b", &["a"], &["b"]), node("c", &["ghost"], &["a"])],
        inputs: vec![value("x")],
        outputs: vec![value("b"), value("missing")],
        ..Default::default()
    };
    let err = broken.check().unwrap_err();
    for expected in [
        "node 0 (Relu \"a\") reads \"b\", made only by node 1 after it (the nodes are out of order, or form a cycle)",
        "node 2 (Relu \"c\") reads \"ghost\", which is no input, initializer or node output",
        "node 2 (Relu \"c\") makes \"a\", which an earlier node already made",
        "graph \"broken\" has output \"missing\", which nothing makes",
    ] {
        assert!(err.contains(expected), "{err}\nlacks: {expected}");
    }
}
