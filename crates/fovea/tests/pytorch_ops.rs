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
        "relu" => Ok(ops::relu(&x[0])?),
        "leaky_relu" => Ok(ops::leaky_relu(&x[0], c["slope"].as_f64().unwrap() as f32)?),
        "relu6" => Ok(ops::relu6(&x[0])?),
        "sigmoid" => Ok(ops::sigmoid(&x[0])?),
        "tanh" => Ok(ops::tanh(&x[0])?),
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
        "exp" => Ok(ops::exp(&x[0])?),
        "log" => Ok(ops::log(&x[0])?),
        "sqrt" => Ok(ops::sqrt(&x[0])?),
        "sum_dim" => ops::sum_dim(&x[0], c["dim"].as_i64().unwrap() as isize, false),
        "mean" => Ok(ops::mean(&x[0])?),
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

/// Relative error max|a - b| / max|b|, which must be below `tol`: for the ops that are not
/// long sums of products (elementwise, pooling, normalisation, losses).
fn assert_close(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let scale = want.data().iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    let err = got.max_abs_diff(want) / scale;
    assert!(err <= tol, "{what}: relative error {err:e} > {tol:e}");
}

/// For sums of products (convolution, linear, matmul): every value within the rounding
/// bound `n·ε·Σ|a·b|` of PyTorch's (each side's f32 sum of n products is within
/// `n·u·Σ|a·b|` of the exact one, u = ε/2; see tests/conv_naive.rs). `abs_sums` holds
/// Σ|a·b| of each value.
fn assert_within_rounding(what: &str, got: &Tensor, want: &Tensor, abs_sums: &Tensor, n: usize) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (i, ((g, w), s)) in got.data().iter().zip(want.data()).zip(abs_sums.data()).enumerate() {
        let bound = n as f32 * f32::EPSILON * s;
        assert!((g - w).abs() <= bound, "{what}[{i}]: {g} vs PyTorch's {w}, more than the rounding bound {bound:e}");
    }
}

/// For a case that is a sum of products: the most products in one sum of its output and of
/// each input's gradient (in the order of its "inputs").
fn product_terms(c: &Value, x: &[Tensor], out: &[usize]) -> Option<(usize, Vec<usize>)> {
    let numel = |s: &[usize]| s.iter().product::<usize>();
    match c["op"].as_str().unwrap() {
        "conv" => {
            // x [N, C, ...], w [O, C/g, k...], out [N, O, ...]
            let (w, groups) = (x[1].shape(), c["groups"].as_u64().unwrap() as usize);
            let (taps, positions) = (numel(&w[1..]), out[0] * numel(&out[2..]));
            let (fwd, dx) = (taps + 1, w[0] / groups * numel(&w[2..]));
            Some((fwd, [dx, positions, positions][..x.len()].to_vec()))
        }
        "linear" => {
            // x [B, in], w [out, in]
            let (b, w) = (x[0].shape()[0], x[1].shape());
            Some((w[1] + 1, [w[0], b, b][..x.len()].to_vec()))
        }
        "matmul" => {
            // a [..., m, k] · b [..., k, n]; a's gradient sums over n, b's over m, each also
            // over the batches it is broadcast across
            let (a, b) = (x[0].shape(), x[1].shape());
            let (m, k, n) = (a[a.len() - 2], a[a.len() - 1], b[b.len() - 1]);
            let batches = numel(out) / (m * n);
            Some((k, vec![n * batches / (numel(a) / (m * k)), m * batches / (numel(b) / (k * n))]))
        }
        _ => None,
    }
}

#[test]
fn every_op_matches_pytorch_forward_and_backward() {
    fovea::kernels::for_each_level(&fovea::kernels::TEST_THREADS, |_, _| every_op_matches_pytorch());
}

fn every_op_matches_pytorch() {
    let f = load();
    assert!(f.cases.len() >= 60, "fixtures list {} cases", f.cases.len());
    for c in &f.cases {
        let name = c["name"].as_str().unwrap();
        let names: Vec<&str> = c["inputs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let tensors: Vec<Tensor> = names.iter().map(|k| f.tensors[&format!("{name}.{k}")].clone()).collect();
        let inputs: Vec<Var> = tensors.iter().map(|t| Var::param(t.clone())).collect();
        let out = run(c, &inputs, &f.tensors, true).unwrap_or_else(|e| panic!("{name}: {e}"));
        let gout = &f.tensors[&format!("{name}.gout")];
        out.backward_with(gout.clone()).unwrap();
        let want_out = &f.tensors[&format!("{name}.out")];
        let grads: Vec<Tensor> = inputs
            .iter()
            .zip(&names)
            .map(|(v, k)| v.grad().unwrap_or_else(|| panic!("{name}: no gradient for {k}")))
            .collect();
        let want_grad = |k: &str| &f.tensors[&format!("{name}.grad.{k}")];
        if let Some((fwd_terms, grad_terms)) = product_terms(c, &tensors, out.tensor().shape()) {
            // Σ|a·b| of every value: the same op on the absolute values (and |gout|)
            let abs = |t: &Tensor| t.map(f32::abs);
            let abs_inputs: Vec<Var> = tensors.iter().map(|t| Var::param(abs(t))).collect();
            let abs_out = run(c, &abs_inputs, &f.tensors, false).unwrap();
            abs_out.backward_with(abs(gout)).unwrap();
            assert_within_rounding(&format!("{name} forward"), &out.tensor(), want_out, &abs_out.tensor(), fwd_terms);
            for (((k, got), v), n) in names.iter().zip(&grads).zip(&abs_inputs).zip(grad_terms) {
                assert_within_rounding(&format!("{name} d/d{k}"), got, want_grad(k), &v.grad().unwrap(), n);
            }
        } else {
            assert_close(&format!("{name} forward"), &out.tensor(), want_out, 1e-5);
            for (k, got) in names.iter().zip(&grads) {
                assert_close(&format!("{name} d/d{k}"), got, want_grad(k), 1e-5);
            }
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
