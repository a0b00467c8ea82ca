//! VGG-11/13/16/19 (configurations A, B, D, E of Simonyan & Zisserman), with or without
//! batch norm, in torchvision's layout: `features` (3x3 'same' convolutions, 2x2 max
//! pools), adaptive pooling to 7x7, `classifier` (4096-4096-classes with dropout).

use fovea::nn::init::Init;
use fovea::nn::{Activation, AdaptiveAvgPool, BatchNorm, Conv, Dropout, Flatten, Linear, Pool, Sequential};
use fovea::ops::{ConvOptions, Padding, PoolOptions};
use fovea::{Error, Result, Rng};

/// Convolutions per stage; the stages have 64, 128, 256, 512, 512 channels.
fn stages(depth: usize) -> Result<[usize; 5]> {
    Ok(match depth {
        11 => [1, 1, 2, 2, 2],
        13 => [2, 2, 2, 2, 2],
        16 => [2, 2, 3, 3, 3],
        19 => [2, 2, 4, 4, 4],
        d => return Err(Error::Invalid(format!("VGG comes in depths 11, 13, 16 and 19, not {d}"))),
    })
}

pub fn vgg(depth: usize, batch_norm: bool, classes: usize, rng: &mut Rng) -> Result<Sequential> {
    let mut features = Sequential::new();
    let mut c_in = 3;
    for (convs, width) in stages(depth)?.into_iter().zip([64, 128, 256, 512, 512]) {
        for _ in 0..convs {
            let same = ConvOptions::default().padding(Padding::symmetric(1));
            features = features.push(Conv::new(c_in, width, &[3, 3], same, true, Init::HeNormalFanOut, rng)?);
            if batch_norm {
                features = features.push(BatchNorm::new(width));
            }
            features = features.push(Activation::Relu);
            c_in = width;
        }
        features = features.push(Pool::max(PoolOptions::new(2)));
    }
    let linear = |c_in, c_out, rng: &mut Rng| Linear::new(c_in, c_out, true, Init::Normal(0.01), rng);
    let classifier = Sequential::new()
        .push(linear(512 * 7 * 7, 4096, rng))
        .push(Activation::Relu)
        .push(Dropout::new(0.5)?)
        .push(linear(4096, 4096, rng))
        .push(Activation::Relu)
        .push(Dropout::new(0.5)?)
        .push(linear(4096, classes, rng));
    Ok(Sequential::new()
        .add("features", features)
        .add("avgpool", AdaptiveAvgPool(vec![7, 7]))
        .add("flatten", Flatten)
        .add("classifier", classifier))
}
