//! Small plain networks of conv / batch norm / ReLU / pool blocks ending in global average
//! pooling: for the notes' 1-D and 3-D generalisations, over a signal (`[N, 1, L]`) or a
//! volume (`[N, 1, D, H, W]`), and a five-layer one for pictures whose layers 1 to 5 show
//! what deeper units learn.

use fovea::nn::init::Init;
use fovea::nn::{Activation, AdaptiveAvgPool, BatchNorm, Conv, Flatten, Linear, Pool, Sequential};
use fovea::ops::{Padding, PoolOptions};
use fovea::{Result, Rng};

/// Conv blocks of `widths` channels with `kernel`-wide kernels over `dims` spatial axes, each
/// followed by batch norm, ReLU and max pooling by `pool` (none after the last), then global
/// average pooling and a linear classifier.
fn conv_net(
    dims: usize,
    widths: &[usize],
    kernel: usize,
    pool: usize,
    classes: usize,
    rng: &mut Rng,
) -> Result<Sequential> {
    let mut net = Sequential::new();
    let mut c_in = 1;
    for (i, &c) in widths.iter().enumerate() {
        let n = i + 1;
        net = net
            .add(
                &format!("conv{n}"),
                Conv::config(c_in, c, &vec![kernel; dims])
                    .padding(Padding::Same)
                    .bias(false)
                    .init(Init::HeNormal)
                    .build(rng)?,
            )
            .add(&format!("bn{n}"), BatchNorm::new(c))
            .add(&format!("relu{n}"), Activation::Relu);
        if n < widths.len() {
            let mut options = PoolOptions::new(pool);
            options.kernel = vec![pool; dims];
            net = net.add(&format!("pool{n}"), Pool::max(options));
        }
        c_in = c;
    }
    Ok(net
        .add("gap", AdaptiveAvgPool(vec![1; dims]))
        .add("flatten", Flatten)
        .add("fc", Linear::config(c_in, classes).build(rng)?))
}

/// A 1-D CNN for ECG strips: four blocks (16, 32, 64, 64 channels, kernel 7, pooling by 4),
/// whose receptive field spans about three seconds at 100 Hz, two to four heartbeats.
pub fn ecg_cnn(classes: usize, rng: &mut Rng) -> Result<Sequential> {
    conv_net(1, &[16, 32, 64, 64], 7, 4, classes, rng)
}

/// Five conv blocks for 28x28 pictures (32, 32, 64, 64, 128 channels, 3x3 kernels, pooling
/// by 2): the receptive fields grow from 3 pixels to the whole picture, as in the notes'
/// "what are deep ConvNets learning" figure, layers 1 to 5.
pub fn cnn5(classes: usize, rng: &mut Rng) -> Result<Sequential> {
    conv_net(2, &[32, 32, 64, 64, 128], 3, 2, classes, rng)
}

/// A 3-D CNN for volumes: three blocks (8, 16, 32 channels, 3x3x3 kernels, pooling by 2).
pub fn volume_cnn(classes: usize, rng: &mut Rng) -> Result<Sequential> {
    conv_net(3, &[8, 16, 32], 3, 2, classes, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea::{Tensor, Var};

    #[test]
    fn the_networks_take_signals_and_volumes() {
        let mut rng = Rng::new(0);
        let ecg = ecg_cnn(4, &mut rng).unwrap();
        let y = fovea::nn::Module::forward(&ecg, &Var::constant(Tensor::zeros(&[2, 1, 500]))).unwrap();
        assert_eq!(y.shape(), [2, 4]);
        let vol = volume_cnn(2, &mut rng).unwrap();
        let y = fovea::nn::Module::forward(&vol, &Var::constant(Tensor::zeros(&[3, 1, 16, 16, 16]))).unwrap();
        assert_eq!(y.shape(), [3, 2]);
    }
}
