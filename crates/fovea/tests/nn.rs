//! Layers, containers, freezing, state dicts, dropout, optimizers' bookkeeping.

use fovea::nn::init::Init;
use fovea::nn::{
    load_state_dict, parameter_count, set_frozen, state_dict, trainable_parameters, Activation, BatchNorm, Conv,
    Dropout, Flatten, Linear, Mode, Module, Sequential,
};
use fovea::ops;
use fovea::optim::{Optimizer, OptimizerConfig};
use fovea::{Rng, Tensor, Var};
use std::collections::BTreeMap;

fn small_net(rng: &mut Rng) -> Sequential {
    Sequential::new()
        .add("conv", Conv::config(1, 2, &[3, 3]).init(Init::HeNormal).build(rng).unwrap())
        .add("bn", BatchNorm::new(2))
        .add("relu", Activation::Relu)
        .add("flatten", Flatten)
        .add("fc", Linear::config(2 * 4 * 4, 3).init(Init::XavierUniform).build(rng).unwrap())
}

#[test]
fn names_follow_pytorch_state_dict_keys() {
    let net = small_net(&mut Rng::new(0));
    let names: Vec<String> = state_dict(&net).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "conv.weight",
            "conv.bias",
            "bn.weight",
            "bn.bias",
            "bn.running_mean",
            "bn.running_var",
            "bn.num_batches_tracked",
            "fc.weight",
            "fc.bias"
        ]
    );
    assert_eq!(parameter_count(&net), 2 * 9 + 2 + 2 + 2 + 32 * 3 + 3);
}

#[test]
fn frozen_parameters_get_no_gradient_and_no_update() {
    let mut rng = Rng::new(1);
    let net = small_net(&mut rng);
    set_frozen(&net, &["conv"], true);
    let frozen_before = state_dict(&net)[0].1.tensor();
    let mut opt = Optimizer::new(OptimizerConfig::sgd(0.1, 0.9, 0.0), trainable_parameters(&net)).unwrap();
    assert_eq!(trainable_parameters(&net).len(), 4, "bn.weight, bn.bias, fc.weight, fc.bias");
    let x = Var::constant(Tensor::randn(&[4, 1, 6, 6], 1.0, &mut rng));
    let fc_before = state_dict(&net)[7].1.tensor();
    let loss = ops::cross_entropy(&net.forward(&x).unwrap(), &[0, 1, 2, 0]).unwrap();
    loss.backward().unwrap();
    opt.step().unwrap();
    let sd = state_dict(&net);
    assert!(sd[0].1.grad().is_none());
    assert_eq!(sd[0].1.tensor().data(), frozen_before.data());
    assert!(sd[7].1.tensor().max_abs_diff(&fc_before) > 0.0);
}

#[test]
fn a_checkpoint_that_does_not_fit_names_the_tensors() {
    let net = small_net(&mut Rng::new(2));
    let mut tensors: BTreeMap<String, Tensor> = state_dict(&net).into_iter().map(|(n, v)| (n, v.tensor())).collect();
    tensors.insert("fc.weight".into(), Tensor::zeros(&[4, 32]));
    tensors.remove("bn.running_var");
    tensors.insert("extra.weight".into(), Tensor::zeros(&[1]));
    let before = state_dict(&net)[0].1.tensor();
    let err = load_state_dict(&net, &tensors).unwrap_err().to_string();
    assert!(err.contains("missing (1): bn.running_var"), "{err}");
    assert!(err.contains("unexpected (1): extra.weight"), "{err}");
    assert!(err.contains("fc.weight is [4, 32] in the file but [3, 32] in the model"), "{err}");
    assert_eq!(state_dict(&net)[0].1.tensor().data(), before.data(), "nothing loaded on error");
}

#[test]
fn dropout_zeroes_and_rescales_in_training_only() {
    let d = Dropout::new(0.25).unwrap();
    let x = Var::constant(Tensor::ones(&[100_000]));
    let y = d.forward_mode(&x, Mode::train(3)).unwrap().tensor();
    let zeros = y.data().iter().filter(|&&v| v == 0.0).count() as f32 / 100_000.0;
    assert!((zeros - 0.25).abs() < 0.01, "dropped {zeros}");
    assert!(y.data().iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
    assert!((y.mean_all() - 1.0).abs() < 0.02);
    assert_eq!(d.forward(&x).unwrap().tensor().data(), x.tensor().data());
    // the same seed, the same mask; another seed, another
    assert_eq!(d.forward_mode(&x, Mode::train(3)).unwrap().tensor().data(), y.data());
    assert_ne!(d.forward_mode(&x, Mode::train(4)).unwrap().tensor().data(), y.data());
    assert!(Dropout::new(1.0).is_err());
}

#[test]
fn initialisers_have_the_expected_spread() {
    let mut rng = Rng::new(4);
    let shape = [64, 32, 3, 3]; // fan_in 288, fan_out 576
    let std = |t: &Tensor| (t.data().iter().map(|v| v * v).sum::<f32>() / t.numel() as f32).sqrt();
    let he = Init::HeNormal.weight(&shape, &mut rng).unwrap();
    assert!((std(&he) - (2.0f32 / 288.0).sqrt()).abs() < 0.005);
    let xu = Init::XavierUniform.weight(&shape, &mut rng).unwrap();
    let bound = (6.0f32 / (288.0 + 576.0)).sqrt();
    assert!(xu.data().iter().all(|v| v.abs() <= bound));
    assert!((std(&xu) - bound / 3f32.sqrt()).abs() < 0.005);
    let pd = Init::PytorchDefault.weight(&shape, &mut rng).unwrap();
    assert!(pd.data().iter().all(|v| v.abs() <= 1.0 / 288f32.sqrt()));
}

#[test]
fn batch_norm_running_statistics_drive_evaluation() {
    let bn = BatchNorm::new(1);
    let x = Var::constant(Tensor::new(&[4, 1], vec![1., 2., 3., 4.]).unwrap());
    bn.forward_mode(&x, Mode::train(0)).unwrap();
    assert!((bn.running_mean.tensor().data()[0] - 0.25).abs() < 1e-6);
    // unbiased variance 5/3, momentum 0.1: 0.9 * 1 + 0.1 * 5/3
    assert!((bn.running_var.tensor().data()[0] - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-6);
    assert_eq!(bn.num_batches_tracked.tensor().data()[0], 1.0);
    let y = bn.forward(&x).unwrap().tensor();
    let expect = (1.0 - 0.25) / (0.9f32 + 0.1 * 5.0 / 3.0 + 1e-5).sqrt();
    assert!((y.data()[0] - expect).abs() < 1e-5);
}

#[test]
fn adam_counts_steps_per_parameter_like_pytorch() {
    // b receives gradients only in the last two of four steps: its bias correction must be
    // that of a parameter updated twice
    let a = Var::param(Tensor::new(&[2], vec![1.0, -1.0]).unwrap());
    let b = Var::param(Tensor::new(&[2], vec![0.5, 2.0]).unwrap());
    let mut opt =
        Optimizer::new(OptimizerConfig::adam(0.1, 0.0), vec![("a".into(), a.clone()), ("b".into(), b.clone())])
            .unwrap();
    for step in 0..4 {
        opt.zero_grad();
        let loss = if step < 2 {
            ops::sum(&a).unwrap()
        } else {
            ops::add(&ops::sum(&a).unwrap(), &ops::sum(&ops::mul(&b, &b).unwrap()).unwrap()).unwrap()
        };
        loss.backward().unwrap();
        opt.step().unwrap();
    }
    let fresh = Var::param(Tensor::new(&[2], vec![0.5, 2.0]).unwrap());
    let mut alone = Optimizer::new(OptimizerConfig::adam(0.1, 0.0), vec![("b".into(), fresh.clone())]).unwrap();
    for _ in 0..2 {
        alone.zero_grad();
        ops::sum(&ops::mul(&fresh, &fresh).unwrap()).unwrap().backward().unwrap();
        alone.step().unwrap();
    }
    assert_eq!(b.tensor().data(), fresh.tensor().data());
}

#[test]
fn optimizer_rejects_bad_hyperparameters() {
    let p = vec![("w".to_string(), Var::param(Tensor::zeros(&[1])))];
    assert!(Optimizer::new(OptimizerConfig::sgd(0.1, f32::NAN, 0.0), p.clone()).is_err());
    assert!(Optimizer::new(OptimizerConfig::sgd(0.1, 0.9, -1.0), p.clone()).is_err());
    assert!(Optimizer::new(OptimizerConfig::adam(0.0, 0.0), p.clone()).is_err());
    assert!(Optimizer::new(OptimizerConfig::adamw(1e-3, f32::INFINITY), p).is_err());
}
