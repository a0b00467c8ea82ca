//! Every op, forward and backward, against PyTorch (fixtures from tools/gen_op_fixtures.py),
//! and against central finite differences.

use fovea::autograd::gradcheck;
use fovea::ops::{self, ConvOptions, Padding, PoolOptions};
use fovea::{Result, Tensor, Var};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

struct Fixtures {
    cases: Vec<Value>,
    tensors: BTreeMap<String, Tensor>,
}

fn load() -> Fixtures {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let (tensors, _) = fovea::io::read_safetensors(&dir.join("ops.safetensors")).expect("fixtures");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("ops.json")).unwrap()).unwrap();
    Fixtures { cases: json["cases"].as_array().unwrap().clone(), tensors }
}

fn usizes(v: &Value) -> Vec<usize> {
    match v {
        Value::Array(a) => a.iter().map(|x| x.as_u64().unwrap() as usize).collect(),
        x => vec![x.as_u64().unwrap() as usize],
    }
}

/// Runs case `c` on `inputs` (in the order of the case's "inputs" list).
/// With `check_buffers`, also compares batch norm's updated running statistics.
fn run(c: &Value, x: &[Var], fx: &BTreeMap<String, Tensor>, check_buffers: bool) -> Result<Var> {
    let name = c["name"].as_str().unwrap();
    let get = |k: &str| fx[&format!("{name}.{k}")].clone();
    let op = c["op"].as_str().unwrap();
    match op {
        "conv" => {
            let padding = match &c["padding"] {
                Value::String(s) if s == "same" => Padding::Same,
                Value::String(_) => Padding::Valid,
                Value::Array(pairs) => Padding::Explicit(
                    pairs.iter().map(|p| (p[0].as_u64().unwrap() as usize, p[1].as_u64().unwrap() as usize)).collect(),
                ),
                other => panic!("bad padding {other}"),
            };
            let opts = ConvOptions {
                stride: usizes(&c["stride"]),
                padding,
                dilation: usizes(&c["dilation"]),
                groups: c["groups"].as_u64().unwrap() as usize,
                flip: c["flip"].as_bool().unwrap(),
            };
            ops::conv(&x[0], &x[1], x.get(2), &opts)
        }
        "max_pool" | "avg_pool" => {
            let opts = PoolOptions {
                kernel: usizes(&c["kernel"]),
                stride: Some(usizes(&c["stride"])),
                padding: usizes(&c["padding"]),
                ceil_mode: c["ceil_mode"].as_bool().unwrap(),
                count_include_pad: c["count_include_pad"].as_bool().unwrap(),
            };
            if op == "max_pool" {
                ops::max_pool(&x[0], &opts)
            } else {
                ops::avg_pool(&x[0], &opts)
            }
        }
        "adaptive_avg_pool" => ops::adaptive_avg_pool(&x[0], &usizes(&c["output"])),
        "global_avg_pool" => ops::global_avg_pool(&x[0]),
        "relu" => Ok(ops::relu(&x[0])),
        "leaky_relu" => Ok(ops::leaky_relu(&x[0], c["slope"].as_f64().unwrap() as f32)),
        "relu6" => Ok(ops::relu6(&x[0])),
        "sigmoid" => Ok(ops::sigmoid(&x[0])),
        "tanh" => Ok(ops::tanh(&x[0])),
        "softmax" => ops::softmax(&x[0], c["dim"].as_i64().unwrap() as isize),
        "log_softmax" => ops::log_softmax(&x[0], c["dim"].as_i64().unwrap() as isize),
        "batch_norm" => {
            let training = c["training"].as_bool().unwrap();
            let rm = Var::constant(get("running_mean"));
            let rv = Var::constant(get("running_var"));
            let momentum = c["momentum"].as_f64().unwrap() as f32;
            let eps = c["eps"].as_f64().unwrap() as f32;
            let y = ops::batch_norm(&x[0], Some(&x[1]), Some(&x[2]), Some(&rm), Some(&rv), training, momentum, eps)?;
            if training && check_buffers {
                assert_close(&format!("{name} running_mean"), &rm.tensor(), &get("new_running_mean"), 1e-5);
                assert_close(&format!("{name} running_var"), &rv.tensor(), &get("new_running_var"), 1e-5);
            }
            Ok(y)
        }
        "cross_entropy" => {
            let t: Vec<usize> = get("targets").data().iter().map(|&v| v as usize).collect();
            ops::cross_entropy(&x[0], &t)
        }
        "bce_with_logits" => ops::bce_with_logits(&x[0], &get("target")),
        "mse" => ops::mse_loss(&x[0], &get("target")),
        "linear" => ops::linear(&x[0], &x[1], x.get(2)),
        "matmul" => ops::matmul(&x[0], &x[1]),
        "add" => ops::add(&x[0], &x[1]),
        "sub" => ops::sub(&x[0], &x[1]),
        "mul" => ops::mul(&x[0], &x[1]),
        "div" => ops::div(&x[0], &x[1]),
        "exp" => Ok(ops::exp(&x[0])),
        "log" => Ok(ops::log(&x[0])),
        "sqrt" => Ok(ops::sqrt(&x[0])),
        "sum_dim" => ops::sum_dim(&x[0], c["dim"].as_i64().unwrap() as isize, false),
        "mean" => Ok(ops::mean(&x[0])),
        "permute" => ops::permute(&x[0], &usizes(&c["dims"])),
        "concat" => ops::concat(&[&x[0], &x[1]], c["dim"].as_i64().unwrap() as isize),
        "narrow" => ops::narrow(
            &x[0],
            c["dim"].as_i64().unwrap() as isize,
            c["start"].as_u64().unwrap() as usize,
            c["len"].as_u64().unwrap() as usize,
        ),
        "pad" => {
            let pads: Vec<(usize, usize)> = c["pads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_u64().unwrap() as usize, p[1].as_u64().unwrap() as usize))
                .collect();
            ops::pad(&x[0], &pads, c["value"].as_f64().unwrap() as f32)
        }
        "index_select" => {
            let idx: Vec<usize> = get("indices").data().iter().map(|&v| v as usize).collect();
            ops::index_select(&x[0], c["dim"].as_i64().unwrap() as isize, &idx)
        }
        "l2_normalize" => {
            ops::l2_normalize(&x[0], c["dim"].as_i64().unwrap() as isize, c["eps"].as_f64().unwrap() as f32)
        }
        "triplet_loss" => ops::triplet_loss(&x[0], &x[1], &x[2], c["margin"].as_f64().unwrap() as f32),
        other => panic!("no runner for op {other}"),
    }
}

/// Relative error max|a - b| / max|b|, which must be below `tol`.
fn assert_close(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let scale = want.data().iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    let err = got.max_abs_diff(want) / scale;
    assert!(err <= tol, "{what}: relative error {err:e} > {tol:e}");
}

#[test]
fn every_op_matches_pytorch_forward_and_backward() {
    // Two threads, as on the 2-core CI machine: which convolution kernel runs depends on
    // the thread count (kernels/direct.rs), and the `*_direct*` cases are meant for the
    // direct one.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    pool.install(every_op_matches_pytorch);
}

fn every_op_matches_pytorch() {
    let f = load();
    assert!(f.cases.len() >= 60, "fixtures list {} cases", f.cases.len());
    for c in &f.cases {
        let name = c["name"].as_str().unwrap();
        let names: Vec<&str> = c["inputs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let inputs: Vec<Var> = names.iter().map(|k| Var::param(f.tensors[&format!("{name}.{k}")].clone())).collect();
        let out = run(c, &inputs, &f.tensors, true).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_close(&format!("{name} forward"), &out.tensor(), &f.tensors[&format!("{name}.out")], 1e-5);
        out.backward_with(f.tensors[&format!("{name}.gout")].clone()).unwrap();
        for (k, v) in names.iter().zip(&inputs) {
            let want = &f.tensors[&format!("{name}.grad.{k}")];
            let got = v.grad().unwrap_or_else(|| panic!("{name}: no gradient for {k}"));
            assert_close(&format!("{name} d/d{k}"), &got, want, 1e-5);
        }
    }
}

#[test]
fn every_op_passes_a_numerical_gradient_check() {
    let f = load();
    for c in &f.cases {
        let name = c["name"].as_str().unwrap();
        let names: Vec<&str> = c["inputs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let inputs: Vec<Tensor> = names.iter().map(|k| f.tensors[&format!("{name}.{k}")].clone()).collect();
        let report = gradcheck(&inputs, |x| run(c, x, &f.tensors, false), 1e-2, 24).unwrap();
        assert!(report.max_error < 2e-2, "{name}: gradient check error {} at {:?}", report.max_error, report.worst_at);
        assert!(
            report.skipped * 10 <= report.checked,
            "{name}: {} of {} points not smooth",
            report.skipped,
            report.checked + report.skipped
        );
    }
}
