//! One model, many threads: a loaded model sits in an `Arc` and serves concurrent forward
//! passes in evaluation mode with no lock around them, each equal to the sequential one.

use fovea::nn::{Mode, Module};
use fovea::{Rng, Tensor, Var};
use std::sync::Arc;

#[test]
fn one_model_serves_eight_threads_and_each_gets_the_sequential_answer() {
    // batch norm and dropout: the layers whose behaviour depends on the mode
    let model: Arc<dyn Module> = Arc::from(fovea_vision::models::build("resnet18", 10, &mut Rng::new(1)).unwrap());
    // give the running statistics something other than their initial values
    let warm = Var::constant(Tensor::rand_uniform(&[4, 3, 32, 32], 0.0, 1.0, &mut Rng::new(2)));
    model.forward_mode(&warm, Mode::train(0)).unwrap();

    let inputs: Vec<Tensor> =
        (0..8).map(|i| Tensor::rand_uniform(&[2, 3, 32, 32], 0.0, 1.0, &mut Rng::new(10 + i))).collect();
    let sequential: Vec<Tensor> =
        inputs.iter().map(|x| fovea::no_grad(|| model.forward(&Var::constant(x.clone())).unwrap().tensor())).collect();
    let parallel: Vec<Tensor> = std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .iter()
            .map(|x| {
                let model = Arc::clone(&model);
                s.spawn(move || {
                    // several passes each, so that the threads overlap
                    let mut last = None;
                    for _ in 0..3 {
                        last = Some(fovea::no_grad(|| model.forward(&Var::constant(x.clone())).unwrap().tensor()));
                    }
                    last.unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (p, q)) in parallel.iter().zip(&sequential).enumerate() {
        assert_eq!(p.data(), q.data(), "thread {i} differs from the sequential pass");
    }
    // evaluation changed nothing: the outputs are not those of the batch statistics
    let train = model.forward_mode(&Var::constant(inputs[0].clone()), Mode::train(0)).unwrap().tensor();
    assert!(train.max_abs_diff(&sequential[0]) > 1e-3);
}
