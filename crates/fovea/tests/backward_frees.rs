//! `backward()` consumes the graph as it goes, as PyTorch's does: the activations and
//! saved tensors are freed by the time it returns, even while the caller still holds the
//! loss, so the optimizer updates the weights in place. Its own test binary: the memory
//! count is process-wide.

use fovea::budget::in_use;
use fovea::nn::init::Init;
use fovea::nn::{trainable_parameters, Activation, Conv, Flatten, Linear, Mode, Module, Sequential};
use fovea::ops::{self, Padding};
use fovea::optim::{Optimizer, OptimizerConfig};
use fovea::{Rng, Tensor, Var};

#[test]
fn backward_frees_the_graph_and_the_step_updates_in_place() {
    let rng = &mut Rng::new(1);
    let net = Sequential::new()
        .add("conv", Conv::config(3, 16, &[3, 3]).padding(Padding::Same).init(Init::HeNormal).build(rng).unwrap())
        .add("relu", Activation::Relu)
        .add("flatten", Flatten)
        .add("fc", Linear::config(16 * 32 * 32, 10).init(Init::HeNormal).build(rng).unwrap());
    let mut optimizer = Optimizer::new(OptimizerConfig::sgd(0.1, 0.0, 0.0), trainable_parameters(&net)).unwrap();
    let x = Var::constant(Tensor::rand_uniform(&[32, 3, 32, 32], 0.0, 1.0, rng));
    let labels: Vec<usize> = (0..32).map(|i| i % 10).collect();

    let before = in_use();
    let loss = ops::cross_entropy(&net.forward_mode(&x, Mode::train(0)).unwrap(), &labels).unwrap();
    let with_graph = in_use() - before;
    loss.backward().unwrap();
    // left: one gradient per parameter and the loss's value (the activations, 2 MB here, are gone)
    let grads: u64 = trainable_parameters(&net).iter().map(|(_, p)| 4 * p.value().numel() as u64).sum();
    let after = in_use() - before;
    assert!(with_graph > 4 * 32 * 16 * 32 * 32, "the forward pass held its activations ({with_graph} bytes)");
    assert!(after <= grads + 64, "{after} bytes still held after backward, {grads} of them gradients");

    // the loss is still held, yet nothing shares the weights' buffers: updated in place
    let weights =
        |net: &Sequential| trainable_parameters(net).iter().map(|(_, p)| p.value().data().as_ptr()).collect::<Vec<_>>();
    let places = weights(&net);
    optimizer.step().unwrap();
    assert_eq!(weights(&net), places, "the optimizer copied a weight");

    // the graph is gone: a second backward is an error, not a silent no-op
    let err = loss.backward().unwrap_err().to_string();
    assert!(err.contains("already used by a backward pass"), "{err}");
}
