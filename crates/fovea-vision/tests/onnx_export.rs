//! fovea's ONNX export against onnxruntime (tools/gen_onnx_export.py): the networks the
//! tool exported with `fovea export --model NAME --seed 0` are exported again here (the
//! same bytes: length and CRC-32 match what onnxruntime ran), and fovea's own forward
//! pass equals onnxruntime's outputs to 1e-5.

#[path = "common/torchvision_fixture.rs"]
mod fixture;

use fovea::{Rng, Tensor, Var};
use fovea_vision::models;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx_export")
}

fn check(name: &str) {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("meta.json")).unwrap()).unwrap();
    let m = &meta["models"][name];
    let input: Vec<usize> = m["input"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let classes = models::architecture(name).unwrap().default_classes();
    let net = models::build(name, classes, &mut Rng::new(0)).unwrap();
    let bytes = fovea::io::onnx::encode(&fovea::graph::export::export(net.as_ref(), &input, "fovea").unwrap());
    assert_eq!(bytes.len() as u64, m["bytes"].as_u64().unwrap(), "{name}: not the file onnxruntime ran");
    assert_eq!(crc32fast::hash(&bytes) as u64, m["crc32"].as_u64().unwrap(), "{name}: not the file onnxruntime ran");
    let mut shape = vec![2];
    shape.extend(&input);
    let x = fixture::uniform("input", shape.iter().product()).into_iter().map(|v| v as f32).collect();
    let x = Tensor::new(&shape, x).unwrap();
    let want = &fovea::io::read_safetensors(&dir().join("outputs.safetensors")).unwrap().0[name];
    let y = net.forward(&Var::constant(x)).unwrap().tensor();
    fixture::assert_close_to_largest(name, &y, want, 1e-5);
}

#[test]
fn lenet5() {
    check("lenet5");
}

#[test]
fn cnn_bn() {
    check("cnn-bn");
}

#[test]
fn cnn5() {
    check("cnn5");
}

#[test]
fn resnet18() {
    check("resnet18");
}

#[test]
fn vgg11_bn() {
    check("vgg11_bn");
}

#[test]
fn googlenet() {
    check("googlenet");
}

#[test]
fn alexnet() {
    check("alexnet");
}
