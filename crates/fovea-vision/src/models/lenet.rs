//! LeNet-5 and a small batch-norm CNN for 28x28 grey images.

use fovea::nn::init::Init;
use fovea::nn::{Activation, BatchNorm, Conv, Dropout, Flatten, Linear, Pool, Sequential};
use fovea::ops::{Padding, PoolOptions};
use fovea::{Result, Rng};

/// LeNet-5 in the layout of the notes' table: 28x28x1 -> conv 5x5 same (6) -> pool 2 ->
/// conv 5x5 valid (16) -> pool 2 -> FC 120 -> FC 84 -> 10; 61,706 parameters.
/// Uses ReLU and max pooling, which the notes point out work better than the original's
/// sigmoid and average pooling.
pub fn lenet5(classes: usize, rng: &mut Rng) -> Result<Sequential> {
    let init = Init::PytorchDefault;
    Ok(Sequential::new()
        .add("conv1", Conv::config(1, 6, &[5, 5]).padding(Padding::Same).init(init).build(rng)?)
        .add("relu1", Activation::Relu)
        .add("pool1", Pool::max(PoolOptions::new(2)))
        .add("conv2", Conv::config(6, 16, &[5, 5]).init(init).build(rng)?)
        .add("relu2", Activation::Relu)
        .add("pool2", Pool::max(PoolOptions::new(2)))
        .add("flatten", Flatten)
        .add("fc3", Linear::config(400, 120).init(init).build(rng)?)
        .add("relu3", Activation::Relu)
        .add("fc4", Linear::config(120, 84).init(init).build(rng)?)
        .add("relu4", Activation::Relu)
        .add("fc5", Linear::config(84, classes).init(init).build(rng)?))
}

/// A stronger small CNN: two conv-BN-ReLU blocks of 32 and 64 channels, each followed by
/// max pooling, then FC 128 with dropout.
pub fn cnn_bn(classes: usize, rng: &mut Rng) -> Result<Sequential> {
    let init = Init::HeNormal;
    Ok(Sequential::new()
        .add("conv1", Conv::config(1, 32, &[3, 3]).padding(Padding::Same).bias(false).init(init).build(rng)?)
        .add("bn1", BatchNorm::new(32))
        .add("relu1", Activation::Relu)
        .add("conv2", Conv::config(32, 32, &[3, 3]).padding(Padding::Same).bias(false).init(init).build(rng)?)
        .add("bn2", BatchNorm::new(32))
        .add("relu2", Activation::Relu)
        .add("pool1", Pool::max(PoolOptions::new(2)))
        .add("conv3", Conv::config(32, 64, &[3, 3]).padding(Padding::Same).bias(false).init(init).build(rng)?)
        .add("bn3", BatchNorm::new(64))
        .add("relu3", Activation::Relu)
        .add("pool2", Pool::max(PoolOptions::new(2)))
        .add("flatten", Flatten)
        .add("dropout1", Dropout::new(0.25)?)
        .add("fc1", Linear::config(64 * 7 * 7, 128).build(rng)?)
        .add("relu4", Activation::Relu)
        .add("dropout2", Dropout::new(0.5)?)
        .add("fc2", Linear::config(128, classes).build(rng)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea::nn::parameter_count;

    #[test]
    fn lenet5_has_the_notes_parameter_count() {
        let m = lenet5(10, &mut Rng::new(0)).unwrap();
        assert_eq!(parameter_count(&m), 61_706);
    }

    #[test]
    fn lenet5_summary_is_the_notes_table() {
        // the notes' rows: shape (H, W, C), activation size, parameters
        let notes = [
            ("conv1", (28, 28, 6), 4704, 156),
            ("pool1", (14, 14, 6), 1176, 0),
            ("conv2", (10, 10, 16), 1600, 2416),
            ("pool2", (5, 5, 16), 400, 0),
            ("fc3", (120, 1, 1), 120, 48120),
            ("fc4", (84, 1, 1), 84, 10164),
            ("fc5", (10, 1, 1), 10, 850),
        ];
        let s = fovea::nn::summary::summarize(&lenet5(10, &mut Rng::new(0)).unwrap(), &[1, 28, 28]).unwrap();
        for (name, (h, w, c), size, params) in notes {
            let row = s.layers.iter().find(|l| l.name == name).unwrap_or_else(|| panic!("no row {name}"));
            // fovea's shapes are channels first, and a dense layer's output is a vector
            let shape = if name.starts_with("fc") { vec![h] } else { vec![c, h, w] };
            assert_eq!((&row.output_shape, row.activation_size, row.params), (&shape, size, params), "{name}");
        }
        assert_eq!(s.total_params, 61_706);
        assert_eq!(s.layers.iter().map(|l| l.params).sum::<usize>(), 61_706);
    }
}
