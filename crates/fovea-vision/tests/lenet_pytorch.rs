//! A short LeNet-5 training run equals PyTorch's step by step (tools/gen_lenet_steps.py):
//! same initial weights, same batches of real Fashion-MNIST images, 10 optimizer steps; at
//! every kernel level this CPU runs, with 1 and 3 threads.

use fovea::nn::{load_state_dict, state_dict, trainable_parameters, Module};
use fovea::optim::{Optimizer, OptimizerConfig};
use fovea::{ops, Rng, Tensor, Var};
use fovea_vision::data::{Dataset, FashionMnist, Split};
use fovea_vision::models::lenet5;
use std::collections::BTreeMap;
use std::path::Path;

fn fixtures() -> BTreeMap<String, Tensor> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lenet_steps.safetensors");
    fovea::io::read_safetensors(&path).unwrap().0
}

fn with_prefix(f: &BTreeMap<String, Tensor>, prefix: &str) -> BTreeMap<String, Tensor> {
    f.iter().filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone()))).collect()
}

fn check(name: &str, config: OptimizerConfig) {
    let f = fixtures();
    let data = FashionMnist::load(&FashionMnist::default_dir(), Split::Train).unwrap().take(160);
    fovea::kernels::for_each_level(&[1, 3], |_, _| train_and_compare(&f, &data, name, config.clone()));
}

fn train_and_compare(f: &BTreeMap<String, Tensor>, data: &Dataset, name: &str, config: OptimizerConfig) {
    let model = lenet5(10, &mut Rng::new(99)).unwrap();
    load_state_dict(&model, &with_prefix(f, "init.")).unwrap();
    let mut opt = Optimizer::new(config, trainable_parameters(&model)).unwrap();
    let want = &f[&format!("{name}.losses")];
    for step in 0..10 {
        let idx: Vec<usize> = (step * 16..(step + 1) * 16).collect();
        let (x, y) = data.batch(&idx);
        let loss = ops::cross_entropy(&model.forward(&Var::constant(x)).unwrap(), &y).unwrap();
        let got = loss.value().item().unwrap();
        let expected = want.data()[step];
        assert!(
            (got - expected).abs() <= 1e-4 * expected.abs().max(1.0),
            "{name} step {step}: loss {got} vs PyTorch {expected}"
        );
        opt.zero_grad();
        loss.backward().unwrap();
        opt.step().unwrap();
    }
    for (k, v) in state_dict(&model) {
        let want = &f[&format!("{name}.final.{k}")];
        let scale = want.data().iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let got = v.tensor();
        let err = got.max_abs_diff(want) / scale;
        // Adam divides by √v, which magnifies rounding in near-zero gradients: a handful of
        // elements may differ by ~1e-4 while the rest agree to ~1e-6.
        let mean_err =
            got.data().iter().zip(want.data()).map(|(a, b)| (a - b).abs()).sum::<f32>() / got.numel() as f32 / scale;
        assert!(
            err < 1e-3 && mean_err < 1e-6,
            "{name}: final {k} differs from PyTorch by {err:e} (max), {mean_err:e} (mean), relative"
        );
    }
}

#[test]
fn sgd_momentum_weight_decay_matches_pytorch() {
    check("sgd", OptimizerConfig::sgd(0.05, 0.9, 1e-4));
}

#[test]
fn sgd_nesterov_matches_pytorch() {
    check(
        "sgd_nesterov",
        OptimizerConfig::Sgd { lr: 0.05, momentum: 0.9, dampening: 0.0, nesterov: true, weight_decay: 0.0 },
    );
}

#[test]
fn adam_matches_pytorch() {
    check("adam", OptimizerConfig::adam(2e-3, 1e-4));
}

#[test]
fn adamw_matches_pytorch() {
    check("adamw", OptimizerConfig::adamw(2e-3, 0.05));
}
