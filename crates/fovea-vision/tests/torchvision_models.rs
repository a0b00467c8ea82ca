//! fovea's model zoo computes what torchvision's does (tools/gen_torchvision_models.py):
//! the same architecture names and state_dict keys, the same outputs on a fixed input.
//! The weights are a counter-based hash both sides compute, so the fixture holds only
//! names, shapes and outputs.

use fovea::nn::Module;
use fovea::{Tensor, Var};
use fovea_vision::models::{self, GoogLeNet};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

fn fixture_path(ext: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/torchvision_models.{ext}"))
}

fn outputs() -> BTreeMap<String, Tensor> {
    fovea::io::read_safetensors(&fixture_path("safetensors")).unwrap().0
}

fn meta() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_path("json")).unwrap()).unwrap()
}

/// `n` values in [-1, 1): splitmix64 of `(hash(name) << 32) + i`, as the tool script.
fn uniform(name: &str, n: usize) -> Vec<f64> {
    let seed: u64 = name.bytes().enumerate().map(|(k, b)| (k as u64 + 1) * b as u64).sum::<u64>() << 32;
    (0..n as u64)
        .into_par_iter()
        .map(|i| {
            let mut z = (i + seed).wrapping_add(0x9E3779B97F4A7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
            z ^= z >> 31;
            (z >> 40) as f64 * 2f64.powi(-23) - 1.0
        })
        .collect()
}

/// The tool script's weight for tensor `name` of `shape`.
fn pattern(name: &str, shape: &[usize]) -> Tensor {
    let u = uniform(name, shape.iter().product());
    let v: Vec<f32> = if name.ends_with("num_batches_tracked") {
        vec![0.0; u.len()]
    } else if name.ends_with("running_var") {
        u.iter().map(|u| (1.0 + 0.5 * u) as f32).collect()
    } else if name.ends_with("running_mean") {
        u.iter().map(|u| (0.1 * u) as f32).collect()
    } else if shape.len() == 1 && name.ends_with("weight") && name.starts_with("layer") {
        u.iter().map(|u| (0.5 + 0.1 * u) as f32).collect()
    } else if shape.len() == 1 && name.ends_with("weight") {
        u.iter().map(|u| (1.0 + 0.25 * u) as f32).collect()
    } else if shape.len() == 1 {
        u.iter().map(|u| (0.02 * u) as f32).collect()
    } else {
        let scale = (6.0 / shape[1..].iter().product::<usize>() as f64).sqrt();
        u.iter().map(|u| (u * scale) as f32).collect()
    };
    Tensor::new(shape, v).unwrap()
}

/// torchvision's state_dict for `arch`, filled with the pattern.
fn state_dict(meta: &serde_json::Value, arch: &str) -> BTreeMap<String, Tensor> {
    let entries = meta["state_dicts"][arch].as_array().unwrap();
    entries
        .iter()
        .map(|e| {
            let name = e[0].as_str().unwrap();
            let shape: Vec<usize> = e[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            (name.to_string(), pattern(name, &shape))
        })
        .collect()
}

fn input(meta: &serde_json::Value) -> Var {
    let shape: Vec<usize> =
        meta["input_shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let x = uniform("input", shape.iter().product()).into_iter().map(|v| v as f32).collect();
    Var::constant(Tensor::new(&shape, x).unwrap())
}

fn assert_close(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    let scale = want.data().iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = got.max_abs_diff(want) / scale;
    assert!(err < 1e-4, "{what}: max difference {err:e} of the largest output {scale}");
    // the two samples differ: the features, not just the biases, reach the output
    let n = want.shape()[1];
    let spread = want.data()[..n].iter().zip(&want.data()[n..]).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(spread > 0.05 * scale, "{what}: the fixture does not depend on its input");
}

fn check(arch: &str) {
    let (meta, outputs) = (meta(), outputs());
    let model = models::from_state_dict(arch, &state_dict(&meta, arch)).unwrap();
    model.set_training(false);
    let y = model.forward(&input(&meta)).unwrap();
    assert_close(arch, &y.value(), &outputs[arch]);
}

#[test]
fn alexnet_equals_torchvision() {
    check("alexnet");
}

#[test]
fn vggs_equal_torchvision() {
    for depth in [11, 13, 16, 19] {
        check(&format!("vgg{depth}"));
        check(&format!("vgg{depth}_bn"));
    }
}

#[test]
fn resnets_equal_torchvision() {
    for depth in [18, 34, 50, 101, 152] {
        check(&format!("resnet{depth}"));
    }
}

#[test]
fn googlenet_and_its_auxiliary_classifiers_equal_torchvision() {
    let (meta, outputs) = (meta(), outputs());
    let model = models::from_state_dict("googlenet", &state_dict(&meta, "googlenet")).unwrap();
    model.set_training(false);
    let x = input(&meta);
    let (y, aux) = model.forward_aux(&x).unwrap();
    assert_close("googlenet", &y.value(), &outputs["googlenet"]);
    assert_close("googlenet aux1", &aux[0].value(), &outputs["googlenet.aux1"]);
    assert_close("googlenet aux2", &aux[1].value(), &outputs["googlenet.aux2"]);

    let mut net = GoogLeNet::new(1000, true, 3, &mut fovea::Rng::new(0)).unwrap();
    fovea::nn::load_state_dict(&net, &state_dict(&meta, "googlenet")).unwrap();
    net.transform_input = true;
    net.set_training(false);
    assert_close("googlenet transform_input", &net.forward(&x).unwrap().value(), &outputs["googlenet.transform_input"]);
}

#[test]
fn weights_of_another_architecture_name_the_offending_tensors() {
    let meta = meta();
    let err = models::from_state_dict("resnet50", &state_dict(&meta, "resnet18")).err().unwrap().to_string();
    assert!(err.contains("missing (") && err.contains("layer1.0.conv3.weight"), "{err}");
    assert!(err.contains("wrong shape (24): layer1.0.conv1.weight is [64, 64, 3, 3] in the file"), "{err}");
    assert!(err.contains("and ") && err.contains(" more"), "{err}");
    let err = models::from_state_dict("resnet51", &BTreeMap::new()).err().unwrap().to_string();
    assert!(err.contains("unknown model 'resnet51'") && err.contains("resnet50"), "{err}");
    // GoogLeNet weights saved without the auxiliary classifiers (torchvision's pretrained
    // model drops them) load into a GoogLeNet without them
    let mut sd = state_dict(&meta, "googlenet");
    sd.retain(|k, _| !k.starts_with("aux"));
    let m = models::from_state_dict("googlenet", &sd).unwrap();
    assert_eq!(fovea::nn::parameter_count(m.as_ref()), 6_624_904);
}
