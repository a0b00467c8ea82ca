//! The single-process side of data-parallel training: the hook that tells when a
//! parameter's gradient is complete, and a world of one. (Several processes are tested by
//! `crates/fovea-cli/tests/distributed.rs` under `mpirun`.) Its own test binary: the world
//! is process-wide.

use fovea::nn::{trainable_parameters, Activation, Linear, Mode, Module, Sequential};
use fovea::{ops, Rng, Tensor, Var};

fn net() -> Sequential {
    let mut rng = Rng::new(7);
    Sequential::new()
        .add("fc1", Linear::config(6, 5).build(&mut rng).unwrap())
        .add("relu", Activation::Relu)
        .add("fc2", Linear::config(5, 4).build(&mut rng).unwrap())
        .add("relu2", Activation::Relu)
        .add("fc3", Linear::config(4, 3).build(&mut rng).unwrap())
}

#[test]
fn each_leaf_is_announced_once_its_gradient_is_complete_last_layers_first() {
    let net = net();
    let x = Var::constant(Tensor::rand_uniform(&[4, 6], -1.0, 1.0, &mut Rng::new(1)));
    let params = trainable_parameters(&net);
    // the reference: plain backward
    let loss = ops::cross_entropy(&net.forward_mode(&x, Mode::train(0)).unwrap(), &[0, 1, 2, 0]).unwrap();
    loss.backward().unwrap();
    let want: Vec<Tensor> = params.iter().map(|(_, p)| p.grad().unwrap()).collect();
    params.iter().for_each(|(_, p)| p.zero_grad());
    // with the hook: each parameter once, its gradient already whole when announced
    let loss = ops::cross_entropy(&net.forward_mode(&x, Mode::train(0)).unwrap(), &[0, 1, 2, 0]).unwrap();
    let mut announced = Vec::new();
    loss.backward_notify(Tensor::ones(&[]), &mut |leaf| {
        let i = params.iter().position(|(_, p)| p.same(leaf)).expect("a parameter");
        assert_eq!(leaf.grad().unwrap().data(), want[i].data(), "{} announced before it was whole", params[i].0);
        announced.push(params[i].0.clone());
    })
    .unwrap();
    assert_eq!(announced, ["fc3.weight", "fc3.bias", "fc2.weight", "fc2.bias", "fc1.weight", "fc1.bias"]);
}

#[test]
fn a_leaf_used_twice_is_announced_after_both_uses() {
    let w = Var::param(Tensor::new(&[2], vec![1.0, 2.0]).unwrap());
    let y = ops::sum(&ops::add(&ops::mul(&w, &w).unwrap(), &w).unwrap()).unwrap();
    let mut seen = Vec::new();
    y.backward_notify(Tensor::ones(&[]), &mut |leaf| seen.push(leaf.grad().unwrap())).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].data(), &[3.0, 5.0]); // 2w + 1
}

#[test]
fn a_world_of_one_process_trains_as_plain_backward() {
    let world = fovea::dist::init().unwrap();
    assert_eq!((world.rank(), world.size(), world.is_root()), (0, 1, true));
    assert_eq!(world.shard(10), 0..10);
    let mut sums = [1.5, 2.5];
    world.sum_f64(&mut sums, "a test").unwrap();
    assert_eq!(sums, [1.5, 2.5]);
    let net = net();
    let params: Vec<Var> = trainable_parameters(&net).into_iter().map(|(_, v)| v).collect();
    let sync = fovea::dist::GradientSync::new(params.clone(), 16);
    let x = Var::constant(Tensor::rand_uniform(&[4, 6], -1.0, 1.0, &mut Rng::new(2)));
    let loss = ops::cross_entropy(&net.forward(&x).unwrap(), &[1, 1, 0, 2]).unwrap();
    sync.backward(Some(&loss), 1.0).unwrap();
    let synced: Vec<Tensor> = params.iter().map(|p| p.grad().unwrap()).collect();
    params.iter().for_each(|p| p.zero_grad());
    ops::cross_entropy(&net.forward(&x).unwrap(), &[1, 1, 0, 2]).unwrap().backward().unwrap();
    for (p, g) in params.iter().zip(&synced) {
        assert_eq!(p.grad().unwrap().data(), g.data());
    }
}

/// A build without MPI refuses to run as one of several processes a launcher started,
/// rather than train unconnected copies into one folder.
#[cfg(not(feature = "mpi"))]
#[test]
fn a_build_without_mpi_refuses_a_launcher_of_several_processes() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "refuses_when_launched_child", "--nocapture", "--include-ignored"])
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("refused: started by an MPI launcher"), "{text}");
}

/// Run by the test above, in a process of its own with the launcher's variables.
#[cfg(not(feature = "mpi"))]
#[test]
#[ignore]
fn refuses_when_launched_child() {
    let e = fovea::dist::init().err().expect("refused");
    assert!(e.to_string().contains("built without MPI") && e.to_string().contains("--features mpi"), "{e}");
    println!("refused: {e}");
}
