//! Loading hostile and broken ONNX models into inference graphs: every problem is a clear
//! error naming what is wrong, never a panic or an unbounded allocation; and ONNX files
//! written by fovea read back as they were.

use fovea::graph::{Graph, Value};
use fovea::io::onnx::{self, Attribute, AttributeValue, Dim, Model, Node, TensorData, ValueInfo};
use fovea::Tensor;
use std::path::Path;

fn node(op: &str, inputs: &[&str], outputs: &[&str], attributes: Vec<(&str, AttributeValue)>) -> Node {
    Node {
        name: outputs[0].to_string(),
        op_type: op.to_string(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        attributes: attributes.into_iter().map(|(name, value)| Attribute { name: name.into(), value }).collect(),
        ..Node::default()
    }
}

fn info(name: &str, dims: &[i64]) -> ValueInfo {
    ValueInfo { name: name.into(), elem_type: 1, dims: Some(dims.iter().map(|&d| Dim::Value(d)).collect()) }
}

fn model(nodes: Vec<Node>, initializers: Vec<TensorData>, inputs: Vec<ValueInfo>, outputs: &[&str]) -> Model {
    let mut m =
        Model { ir_version: 8, producer_name: "test".into(), opsets: vec![(String::new(), 17)], ..Model::default() };
    m.graph.nodes = nodes;
    m.graph.initializers = initializers;
    m.graph.inputs = inputs;
    m.graph.outputs = outputs.iter().map(|o| ValueInfo { name: o.to_string(), ..ValueInfo::default() }).collect();
    m
}

fn ints(name: &str, values: &[i64]) -> TensorData {
    TensorData::from_i64s(name, &[values.len()], values)
}

fn err(m: &Model) -> String {
    Graph::from_onnx(m, &[]).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn every_unsupported_operator_is_named_at_once() {
    let mut m = model(
        vec![
            node("Relu", &["x"], &["a"], vec![]),
            node("LSTM", &["a"], &["b"], vec![]),
            node("Foo", &["b"], &["c"], vec![]),
            Node { domain: "com.microsoft".into(), ..node("FusedConv", &["c"], &["y"], vec![]) },
        ],
        vec![],
        vec![info("x", &[1, 3])],
        &["y"],
    );
    m.opsets.push(("com.microsoft".into(), 1));
    let e = err(&m);
    for part in ["unsupported operators", "LSTM (opset 17)", "Foo (opset 17)", "com.microsoft.FusedConv (opset 1)"] {
        assert!(e.contains(part), "{e}");
    }
    assert!(!e.contains("Relu"), "{e}");
}

#[test]
fn broken_graphs_are_refused_with_the_node_named() {
    // a weight that is never given
    let m = model(vec![node("Conv", &["x", "w"], &["y"], vec![])], vec![], vec![info("x", &[1, 3, 8, 8])], &["y"]);
    let e = err(&m);
    assert!(e.contains("\"w\""), "{e}");
    // a cycle
    let m = model(
        vec![node("Relu", &["b"], &["a"], vec![]), node("Relu", &["a"], &["b"], vec![])],
        vec![],
        vec![info("x", &[1])],
        &["b"],
    );
    assert!(!err(&m).is_empty());
    // weights that do not fit the input
    let w = TensorData::from_tensor("w", &Tensor::zeros(&[4, 5, 3, 3]));
    let m = model(vec![node("Conv", &["x", "w"], &["y"], vec![])], vec![w], vec![info("x", &[1, 3, 8, 8])], &["y"]);
    let e = err(&m);
    assert!(e.contains("Conv node \"y\"") && e.contains("[4, 5, 3, 3]"), "{e}");
    // a kernel_shape the weights do not have
    let w = TensorData::from_tensor("w", &Tensor::zeros(&[4, 3, 1, 1]));
    let shape = vec![("kernel_shape", AttributeValue::Ints(vec![3, 3]))];
    let m = model(vec![node("Conv", &["x", "w"], &["y"], shape)], vec![w], vec![info("x", &[1, 3, 8, 8])], &["y"]);
    let e = err(&m);
    assert!(e.contains("kernel_shape") && e.contains("[4, 3, 1, 1]"), "{e}");
    // an attribute of the wrong type
    let m = model(
        vec![node("LeakyRelu", &["x"], &["y"], vec![("alpha", AttributeValue::String(b"high".to_vec()))])],
        vec![],
        vec![info("x", &[2])],
        &["y"],
    );
    assert!(err(&m).contains("alpha should be a float"), "{}", err(&m));
    // a reshape that cannot be
    let m = model(
        vec![node("Reshape", &["x", "s"], &["y"], vec![])],
        vec![ints("s", &[7, -1])],
        vec![info("x", &[2, 3])],
        &["y"],
    );
    let e = err(&m);
    assert!(e.contains("Reshape") && e.contains("[2, 3]"), "{e}");
}

#[test]
fn absurd_sizes_are_refused_before_allocating() {
    // a declared input of 10^18 values
    let m = model(
        vec![node("Relu", &["x"], &["y"], vec![])],
        vec![],
        vec![info("x", &[1_000_000_000, 1_000_000_000])],
        &["y"],
    );
    let e = err(&m);
    assert!(e.contains("memory") || e.contains("budget") || e.contains("bytes"), "{e}");
    // a constant shape of 10^18 values
    let m = model(
        vec![node("ConstantOfShape", &["s"], &["y"], vec![])],
        vec![ints("s", &[1_000_000, 1_000_000, 1_000_000])],
        vec![],
        &["y"],
    );
    let e = err(&m);
    assert!(e.contains("ConstantOfShape"), "{e}");
    // padding by 2^40
    let m = model(
        vec![node("Pad", &["x", "p"], &["y"], vec![])],
        vec![ints("p", &[0, 1 << 40, 0, 1 << 40])],
        vec![info("x", &[2, 2])],
        &["y"],
    );
    assert!(err(&m).contains("Pad"), "{}", err(&m));
    // a resize by a factor of 10^12
    let scales = TensorData::from_tensor("s", &Tensor::new(&[2], vec![1.0, 1e12]).unwrap());
    let m =
        model(vec![node("Resize", &["x", "", "s"], &["y"], vec![])], vec![scales], vec![info("x", &[2, 2])], &["y"]);
    assert!(err(&m).contains("Resize"), "{}", err(&m));
    // integers take 8 bytes each: an int64 constant whose values would fit the budget as
    // f32 but not as i64
    let n = (fovea::budget::limit().unwrap() / 6) as i64;
    let value = AttributeValue::Tensor(TensorData::from_i64s("v", &[1], &[7]));
    let m = model(
        vec![node("ConstantOfShape", &["s"], &["y"], vec![("value", value)])],
        vec![ints("s", &[n])],
        vec![],
        &["y"],
    );
    let e = err(&m);
    assert!(e.contains("ConstantOfShape") && e.contains("memory budget"), "{e}");
}

#[test]
fn run_time_inputs_are_checked() {
    let m = model(vec![node("Relu", &["x"], &["y"], vec![])], vec![], vec![info("x", &[1, 3])], &["y"]);
    let g = Graph::from_onnx(&m, &[]).unwrap();
    let e = g.run(vec![Value::float(Tensor::zeros(&[1, 4]))]).unwrap_err().to_string();
    assert!(e.contains("input \"x\"") && e.contains("[1, 3]"), "{e}");
    let e = g.run(vec![]).unwrap_err().to_string();
    assert!(e.contains("takes 1 inputs"), "{e}");
    // NaN goes through as NaN
    let y = g.run(vec![Value::float(Tensor::new(&[1, 3], vec![f32::NAN, -1.0, 2.0]).unwrap())]).unwrap();
    let y = y[0].tensor("y").unwrap().data().to_vec();
    assert!(y[0].is_nan() && y[1] == 0.0 && y[2] == 2.0);
    // a shape given at load that the file's declaration does not allow
    let e = Graph::from_onnx(&m, &[("x".into(), vec![2, 3])]).unwrap_err().to_string();
    assert!(e.contains("does not fit"), "{e}");
}

/// Models written by fovea read back as they were: every backend test case's model.
#[test]
fn written_models_read_back() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/node");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path().join("model.onnx");
        if !path.exists() {
            continue;
        }
        let m = onnx::load(&path).unwrap();
        assert_eq!(onnx::parse(&onnx::encode(&m)).unwrap(), m, "{}", path.display());
        count += 1;
    }
    assert!(count > 600, "{count} models");
    let m = onnx::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/parse.onnx")).unwrap();
    assert_eq!(onnx::parse(&onnx::encode(&m)).unwrap(), m);
}

/// Malformed operators get errors, not panics: axes named twice, empty index tuples,
/// steps at the ends of i64, weights of the wrong rank.
#[test]
fn malformed_operators_get_errors() {
    let x = || vec![info("x", &[2, 3, 4])];
    // ReduceSum over axis 1 named twice: once
    let m = model(vec![node("ReduceSum", &["x", "a"], &["y"], vec![])], vec![ints("a", &[1, 1])], x(), &["y"]);
    let g = Graph::from_onnx(&m, &[]).unwrap();
    let y = g.run(vec![Value::float(Tensor::ones(&[2, 3, 4]))]).unwrap();
    assert_eq!(y[0].shape(), &[2, 1, 4]);
    assert!(y[0].to_f64s().iter().all(|&v| v == 3.0));
    let m = model(
        vec![node("GatherND", &["x", "i"], &["y"], vec![])],
        vec![TensorData::from_i64s("i", &[2, 0], &[])],
        x(),
        &["y"],
    );
    assert!(err(&m).contains("GatherND"), "{}", err(&m));
    let m = model(
        vec![node("Slice", &["x", "s", "e", "a", "t"], &["y"], vec![])],
        vec![ints("s", &[i64::MIN]), ints("e", &[i64::MAX]), ints("a", &[2]), ints("t", &[i64::MAX])],
        x(),
        &["y"],
    );
    let g = Graph::from_onnx(&m, &[]).unwrap();
    let y = g.run(vec![Value::float(Tensor::ones(&[2, 3, 4]))]).unwrap();
    assert_eq!(y[0].shape(), &[2, 3, 1]);
    let w = TensorData::from_tensor("w", &Tensor::scalar(1.0));
    let m = model(vec![node("Conv", &["x", "w"], &["y"], vec![])], vec![w], vec![info("x", &[1, 1, 4, 4])], &["y"]);
    assert!(err(&m).contains("Conv"), "{}", err(&m));
    let m = model(vec![node("Relu", &["x"], &["y"], vec![])], vec![], x(), &["y"]);
    let e = Graph::from_onnx(&m, &[("X".into(), vec![1])]).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("\"X\"") && e.contains("not an input"), "{e}");
}

/// A convolution with a sum after it and a batch norm after that (a pre-activation
/// block): fused with the input shape known, unfused without; the two agree.
#[test]
fn fused_and_unfused_graphs_agree() {
    let w = TensorData::from_tensor(
        "w",
        &Tensor::new(&[2, 2, 3, 3], (0..36).map(|i| (i as f32 * 0.37).sin()).collect()).unwrap(),
    );
    let bn: Vec<TensorData> = [("s", [1.5, 0.5]), ("b", [0.1, -0.2]), ("m", [0.3, -0.1]), ("v", [2.0, 0.7])]
        .iter()
        .map(|(n, v)| TensorData::from_tensor(n, &Tensor::new(&[2], v.to_vec()).unwrap()))
        .collect();
    let mut inits = vec![w];
    inits.extend(bn);
    let nodes = vec![
        node("Conv", &["x", "w"], &["c"], vec![("pads", AttributeValue::Ints(vec![1, 1, 1, 1]))]),
        node("Add", &["c", "x"], &["a"], vec![]),
        node("BatchNormalization", &["a", "s", "b", "m", "v"], &["n"], vec![]),
        node("Relu", &["n"], &["y"], vec![]),
    ];
    let fixed = model(nodes.clone(), inits.clone(), vec![info("x", &[1, 2, 5, 5])], &["y"]);
    let free = model(nodes, inits, vec![ValueInfo { name: "x".into(), elem_type: 1, dims: None }], &["y"]);
    let (fused, plain) = (Graph::from_onnx(&fixed, &[]).unwrap(), Graph::from_onnx(&free, &[]).unwrap());
    assert!(fused.steps().len() < plain.steps().len(), "the sum fuses");
    let x = Tensor::new(&[1, 2, 5, 5], (0..50).map(|i| (i as f32 * 0.91).cos()).collect()).unwrap();
    let a = fused.run(vec![Value::float(x.clone())]).unwrap()[0].to_f64s();
    let b = plain.run(vec![Value::float(x)]).unwrap()[0].to_f64s();
    assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-5), "{a:?} vs {b:?}");
}

/// The blocked plan (activations in blocks of 8 or 16 channels, made at load for the
/// level) agrees with the plain steps, run at the scalar level where there is no such
/// plan, on what it must tell apart: a sum of a convolution with its own plain input, a
/// sum that broadcasts (stays plain), pooling with padding, `ceil_mode` and
/// `count_include_pad`, a 1x1 convolution of blocked values, global pooling (and
/// ReduceMean and ReduceMax over the spatial axes, with and without keepdims; over other
/// axes they stay plain), Concat
/// along channels, an output read in the middle of the region, and 20 channels, which
/// do not fill their last block (an activation writes 0.5 past them, which pooling, a
/// convolution, global pooling and a Concat that cannot stay blocked must not read).
#[test]
fn blocked_plans_agree_with_the_plain_steps() {
    use fovea::graph::ops::blocked::Blocked;
    use fovea::kernels::{for_each_level, scoped, Isa};
    let wave = |name: &str, shape: &[usize], k: f32| {
        let n = shape.iter().product();
        TensorData::from_tensor(
            name,
            &Tensor::new(shape, (0..n).map(|i| (i as f32 * k).sin() * 0.3).collect()).unwrap(),
        )
    };
    let ints_attr = |v: &[i64]| AttributeValue::Ints(v.to_vec());
    let pads = |p: i64| ("pads", ints_attr(&[p; 4]));
    let inits = vec![
        wave("w3", &[16, 16, 3, 3], 0.37),
        wave("b3", &[16], 0.5),
        wave("w1", &[32, 16, 1, 1], 0.71),
        wave("w5", &[16, 32, 3, 3], 0.13),
        wave("w20", &[20, 16, 3, 3], 0.29),
        wave("w6", &[16, 20, 3, 3], 0.53),
        wave("wa", &[40, 16, 1, 1], 0.41),
        wave("wb", &[40, 40, 3, 3], 0.17),
        wave("bb", &[40], 0.23),
        ints("spatial", &[3, 2]),
    ];
    let nodes = vec![
        // x + conv(x), x the graph's input: the sum reads x blocked, the convolution too
        node("Conv", &["x", "w3", "b3"], &["c"], vec![pads(1)]),
        node("Add", &["c", "x"], &["a"], vec![]),
        node("Relu", &["a"], &["r"], vec![]),
        // sums with a: read again later, then for the last time (summed in place)
        node("Conv", &["r", "w3"], &["c4"], vec![pads(1)]),
        node("Add", &["c4", "a"], &["e"], vec![]),
        node("Conv", &["e", "w3"], &["c5"], vec![pads(1)]),
        node("Add", &["a", "c5"], &["f"], vec![]),
        // a sum that broadcasts a [1, 16, 1, 1] input: fused, but not blocked
        node("Conv", &["r", "w3"], &["c2"], vec![pads(1)]),
        node("Add", &["c2", "s"], &["a2"], vec![]),
        node(
            "MaxPool",
            &["a2"],
            &["m"],
            vec![("kernel_shape", ints_attr(&[3, 3])), ("strides", ints_attr(&[2, 2])), pads(1)],
        ),
        node("Conv", &["m", "w1"], &["p"], vec![]),
        node("Sigmoid", &["p"], &["q"], vec![]),
        node(
            "AveragePool",
            &["q"],
            &["v"],
            vec![
                ("kernel_shape", ints_attr(&[2, 2])),
                ("strides", ints_attr(&[2, 2])),
                ("ceil_mode", AttributeValue::Int(1)),
                ("count_include_pad", AttributeValue::Int(1)),
                pads(1),
            ],
        ),
        node("Conv", &["v", "w5"], &["u"], vec![pads(1)]),
        node("Concat", &["u", "u"], &["j"], vec![("axis", AttributeValue::Int(-3))]),
        node("GlobalAveragePool", &["j"], &["y"], vec![]),
        // 20 channels: a padded last block
        node("Conv", &["m", "w20"], &["t"], vec![pads(1)]),
        node("Sigmoid", &["t"], &["t2"], vec![]),
        node(
            "MaxPool",
            &["t2"],
            &["t3"],
            vec![("kernel_shape", ints_attr(&[3, 3])), ("strides", ints_attr(&[1, 1])), pads(1)],
        ),
        node("Conv", &["t3", "w6"], &["t4"], vec![pads(1)]),
        node("Add", &["t4", "m"], &["t5"], vec![]),
        node("Concat", &["t3", "t5"], &["k"], vec![("axis", AttributeValue::Int(1))]),
        node("GlobalAveragePool", &["t3"], &["z"], vec![]),
        // (axes as an input, as from opset 18; the reader takes either)
        node("ReduceMean", &["u", "spatial"], &["rm"], vec![]),
        node("ReduceMean", &["u"], &["rn"], vec![("axes", ints_attr(&[1, 2, 3]))]),
        node("ReduceMax", &["t2"], &["rx"], vec![("axes", ints_attr(&[-1, -2])), ("keepdims", AttributeValue::Int(0))]),
        // 3x3 layers with enough channels (40: a padded last block) take Winograd's
        // algorithm: unpadded, then padded with a residual sum and a ReLU
        node("Conv", &["r", "wa"], &["wx"], vec![]),
        node("Conv", &["wx", "wb", "bb"], &["wy"], vec![]),
        node("Conv", &["wx", "wb"], &["wz"], vec![pads(1)]),
        node("Add", &["wz", "wx"], &["wz2"], vec![]),
        node("Relu", &["wz2"], &["wr"], vec![]),
    ];
    let outputs = ["y", "m", "f", "k", "z", "rm", "rx", "rn", "wy", "wr"];
    let m = model(nodes, inits, vec![info("x", &[2, 16, 9, 9]), info("s", &[1, 16, 1, 1])], &outputs);
    let x = Tensor::new(&[2, 16, 9, 9], (0..2592).map(|i| (i as f32 * 0.91).cos()).collect()).unwrap();
    let s = Tensor::new(&[1, 16, 1, 1], (0..16).map(|i| i as f32 * 0.1 - 0.8).collect()).unwrap();
    let run = |g: &Graph| g.run(vec![Value::float(x.clone()), Value::float(s.clone())]).unwrap();
    let plain = scoped(Isa::Scalar, 1, || run(&Graph::from_onnx(&m, &[]).unwrap())).unwrap();
    for_each_level(&[1, 3], |level, _| {
        let graph = Graph::from_onnx(&m, &[]).unwrap();
        let reorders = graph.steps().iter().filter(|s| s.op_type == "Reorder").count();
        assert_eq!(reorders > 0, level >= Isa::Avx2, "a blocked plan at {level}");
        // (the 20-channel convolutions run blocked)
        let blocked = |name: &str| {
            let step = graph.steps().iter().find(|s| s.name.split('+').next() == Some(name)).expect("a step");
            matches!(step.op, fovea::graph::Op::Blocked(_))
        };
        assert_eq!(blocked("t") && blocked("t4"), level >= Isa::Avx2, "20 channels blocked at {level}");
        for r in ["rm", "rx"] {
            assert_eq!(blocked(r), level >= Isa::Avx2, "{r} blocked at {level}");
        }
        assert!(!blocked("rn"), "a reduction over channels stays plain");
        for name in ["wy", "wz"] {
            let step = graph.steps().iter().find(|s| s.name.split('+').next() == Some(name)).expect("a step");
            let winograd = matches!(&step.op, fovea::graph::Op::Blocked(Blocked::Conv { winograd: Some(_), .. }));
            assert_eq!(winograd, level >= Isa::Avx2, "{name} by Winograd's algorithm at {level}");
        }
        for (got, want) in run(&graph).iter().zip(&plain) {
            assert_eq!(got.shape(), want.shape());
            let (got, want) = (got.to_f64s(), want.to_f64s());
            let largest = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-5 * largest, "{a} vs {b} at {level}");
            }
        }
    });
}
