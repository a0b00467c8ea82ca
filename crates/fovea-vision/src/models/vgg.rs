//! VGG-11/13/16/19 (configurations A, B, D, E of Simonyan & Zisserman), with or without
//! batch norm, in torchvision's layout: `features` (3x3 'same' convolutions, 2x2 max
//! pools), adaptive pooling to 7x7, `classifier` (4096-4096-classes with dropout).

use fovea::nn::init::Init;
use fovea::nn::{Activation, AdaptiveAvgPool, BatchNorm, Conv, Dropout, Flatten, Linear, Pool, Sequential};
use fovea::ops::{Padding, PoolOptions};
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

/// VGG-`depth` (11, 13, 16 or 19) with a `classes`-way classifier, freshly initialised;
/// with `batch_norm`, batch norm after every convolution (torchvision's `_bn` variants).
pub fn vgg(depth: usize, batch_norm: bool, classes: usize, rng: &mut Rng) -> Result<Sequential> {
    let features = vgg_features(depth, batch_norm, rng)?;
    let linear = |c_in, c_out, rng: &mut Rng| Linear::config(c_in, c_out).init(Init::Normal(0.01)).build(rng);
    let classifier = Sequential::new()
        .push(linear(512 * 7 * 7, 4096, rng)?)
        .push(Activation::Relu)
        .push(Dropout::new(0.5)?)
        .push(linear(4096, 4096, rng)?)
        .push(Activation::Relu)
        .push(Dropout::new(0.5)?)
        .push(linear(4096, classes, rng)?);
    Ok(Sequential::new()
        .add("features", features)
        .add("avgpool", AdaptiveAvgPool(vec![7, 7]))
        .add("flatten", Flatten)
        .add("classifier", classifier))
}

/// VGG's `features` part alone (torchvision's `vgg.features`: layers named 0, 1, ...).
pub fn vgg_features(depth: usize, batch_norm: bool, rng: &mut Rng) -> Result<Sequential> {
    let mut features = Sequential::new();
    let mut c_in = 3;
    for (convs, width) in stages(depth)?.into_iter().zip([64, 128, 256, 512, 512]) {
        for _ in 0..convs {
            features = features.push(
                Conv::config(c_in, width, &[3, 3])
                    .padding(Padding::symmetric(1))
                    .init(Init::HeNormalFanOut)
                    .build(rng)?,
            );
            if batch_norm {
                features = features.push(BatchNorm::new(width));
            }
            features = features.push(Activation::Relu);
            c_in = width;
        }
        features = features.push(Pool::max(PoolOptions::new(2)));
    }
    Ok(features)
}

/// The names Gatys et al. give VGG's layers, `conv<stage>_<n>`, with the position in
/// `features` (without batch norm) of each convolution's ReLU, whose output the name means.
pub fn vgg_layer_names(depth: usize) -> Result<Vec<(String, usize)>> {
    let mut out = Vec::new();
    let mut index = 0;
    for (stage, convs) in stages(depth)?.into_iter().enumerate() {
        for n in 1..=convs {
            out.push((format!("conv{}_{n}", stage + 1), index + 1));
            index += 2;
        }
        index += 1; // the pool
    }
    Ok(out)
}

/// The depth of a VGG (no batch norm) whose `features` hold a convolution at `last_conv`,
/// their last one: 18, 22, 28, 34 for VGG-11, 13, 16, 19.
pub fn vgg_depth_from_last_conv(last_conv: usize) -> Option<usize> {
    [11, 13, 16, 19]
        .into_iter()
        .find(|&d| vgg_layer_names(d).ok().and_then(|n| n.last().map(|l| l.1 - 1)) == Some(last_conv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gatys_layer_names_point_at_torchvision_relus() {
        // torchvision's vgg16.features: 19 is conv4_2, 20 its ReLU; 24 conv5_1, 25 its ReLU
        let names = vgg_layer_names(16).unwrap();
        assert_eq!(names.len(), 13);
        assert!(names.contains(&("conv4_2".to_string(), 20)));
        assert!(names.contains(&("conv5_1".to_string(), 25)));
        assert_eq!(names[0], ("conv1_1".to_string(), 1));
        for (last, depth) in [(18, 11), (22, 13), (28, 16), (34, 19)] {
            assert_eq!(vgg_depth_from_last_conv(last), Some(depth));
        }
        assert_eq!(vgg_depth_from_last_conv(30), None);
    }
}
