//! torchvision's zoo exported with `torch.onnx.export` and run by fovea's ONNX runtime
//! equals torchvision's own outputs (tools/gen_onnx_torchvision.py). The fixture holds
//! each exported graph without its weights; the weights are the counter-based hash of
//! tools/gen_torchvision_models.py, put back here under their state_dict names.

#[path = "common/torchvision_fixture.rs"]
mod fixture;

use fixture::{assert_close_to_largest, pattern, uniform};
use fovea::graph::{Graph, Value};
use fovea::io::onnx::{self, TensorData};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx_torchvision")
}

/// The exported model of `arch` with its weights put back.
fn model(arch: &str, meta: &serde_json::Value) -> onnx::Model {
    let mut model = onnx::load(&dir().join(format!("{arch}.onnx"))).unwrap();
    for w in meta["models"][arch]["weights"].as_array().unwrap() {
        let name = w[0].as_str().unwrap();
        let shape: Vec<usize> = w[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        model.graph.initializers.push(TensorData::from_tensor(name, &pattern(name, &shape)));
    }
    model
}

fn check(arch: &str) {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("meta.json")).unwrap()).unwrap();
    let outputs = fovea::io::read_safetensors(&dir().join("outputs.safetensors")).unwrap().0;
    let shape: Vec<usize> =
        meta["input_shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let x = fovea::Tensor::new(&shape, uniform("input", shape.iter().product()).iter().map(|&v| v as f32).collect())
        .unwrap();
    let model = model(arch, &meta);
    // the batch is free in the file: fixed here, so that the shape arithmetic folds
    let load = || Graph::from_onnx(&model, &[("input".to_string(), shape.clone())]).unwrap();
    let graph = load();
    let want = &outputs[arch];
    fovea::kernels::for_each_level(&[2], |_, _| {
        // loaded at the CPU's level (its plain steps run at the levels below it), and for
        // one of each kind of network at this one (with activations in blocks of this
        // level's vectors, where it has them)
        let here = ["alexnet", "vgg11_bn", "resnet50", "googlenet"].contains(&arch).then(load);
        for graph in std::iter::once(&graph).chain(&here) {
            let y = graph.run(vec![Value::float(x.clone())]).unwrap().remove(0);
            let y = y.tensor("output").unwrap();
            assert_close_to_largest(arch, y, want, 1e-4);
        }
    });
}

macro_rules! archs {
    ($($name:ident: $arch:literal),* $(,)?) => {
        $(#[test] fn $name() { check($arch) })*
    };
}

archs! {
    alexnet: "alexnet",
    vgg11: "vgg11",
    vgg11_bn: "vgg11_bn",
    vgg13: "vgg13",
    vgg13_bn: "vgg13_bn",
    vgg16: "vgg16",
    vgg16_bn: "vgg16_bn",
    vgg19: "vgg19",
    vgg19_bn: "vgg19_bn",
    resnet18: "resnet18",
    resnet34: "resnet34",
    resnet50: "resnet50",
    resnet101: "resnet101",
    resnet152: "resnet152",
    googlenet: "googlenet",
}

/// The shape arithmetic the exporter writes (Shape, Concat, Reshape on the batch size)
/// folds away once the input shape is given, and batch norm folds into the convolutions.
#[test]
fn exports_fold_at_load() {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("meta.json")).unwrap()).unwrap();
    let model = model("resnet18", &meta);
    let graph = Graph::from_onnx(&model, &[("input".to_string(), vec![1, 3, 64, 64])]).unwrap();
    let ops: Vec<&str> = graph.steps().iter().map(|s| s.op_type.as_str()).collect();
    assert!(
        !ops.iter().any(|o| ["Shape", "Concat", "BatchNormalization", "CastLike", "Expand"].contains(o)),
        "{ops:?}"
    );
    assert_eq!(ops.iter().filter(|&&o| o == "Conv").count(), 20, "{ops:?}");
    // without the input shape, the batch stays free and the shape arithmetic runs
    let free = Graph::from_onnx(&model, &[]).unwrap();
    assert!(free.steps().iter().any(|s| s.op_type == "Shape"));
}
