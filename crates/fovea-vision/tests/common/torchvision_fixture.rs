//! The fixture of tools/gen_torchvision_models.py and the weights it describes: shared by
//! fovea-vision's and fovea-cli's tests (included with `#[path]`).
#![allow(dead_code)]

use fovea::{Tensor, Var};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn fixture_path(ext: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../fovea-vision/tests/fixtures/torchvision_models.{ext}"))
}

pub fn outputs() -> BTreeMap<String, Tensor> {
    fovea::io::read_safetensors(&fixture_path("safetensors")).unwrap().0
}

pub fn meta() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_path("json")).unwrap()).unwrap()
}

/// `n` values in [-1, 1): splitmix64 of `(hash(name) << 32) + i`, as the tool script.
pub fn uniform(name: &str, n: usize) -> Vec<f64> {
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
pub fn pattern(name: &str, shape: &[usize]) -> Tensor {
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
pub fn state_dict(meta: &serde_json::Value, arch: &str) -> BTreeMap<String, Tensor> {
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

pub fn input(meta: &serde_json::Value) -> Var {
    let shape: Vec<usize> =
        meta["input_shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let x = uniform("input", shape.iter().product()).into_iter().map(|v| v as f32).collect();
    Var::constant(Tensor::new(&shape, x).unwrap())
}

/// `got` equals `want` (same shape) to `tolerance` relative to `want`'s largest value.
pub fn assert_close_to_largest(what: &str, got: &Tensor, want: &Tensor, tolerance: f32) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    let scale = want.data().iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = got.max_abs_diff(want) / scale;
    assert!(err < tolerance, "{what}: max difference {err:e} of the largest output {scale}");
}
