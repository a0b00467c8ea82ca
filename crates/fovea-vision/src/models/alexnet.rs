//! AlexNet in torchvision's variant (64-192-384-256-256 channels, after Krizhevsky's
//! "One weird trick"), with adaptive pooling to 6x6 before the classifier so that any
//! input of at least 63x63 works.

use fovea::nn::init::Init;
use fovea::nn::{Activation, AdaptiveAvgPool, Conv, Dropout, Flatten, Linear, Pool, Sequential};
use fovea::ops::{ConvOptions, Padding, PoolOptions};
use fovea::{Result, Rng};

/// AlexNet with a `classes`-way classifier, freshly initialised: torchvision's `features`,
/// `avgpool` (to 6x6) and `classifier`.
pub fn alexnet(classes: usize, rng: &mut Rng) -> Result<Sequential> {
    let init = Init::PytorchDefault;
    let mut conv = |c_in, c_out, k: usize, stride, pad| {
        let opts = ConvOptions::default().stride(stride).padding(Padding::symmetric(pad));
        Conv::config(c_in, c_out, &[k, k]).options(opts).init(init).build(rng)
    };
    let pool = || Pool::max(PoolOptions::new(3).stride(2));
    let features = Sequential::new()
        .push(conv(3, 64, 11, 4, 2)?)
        .push(Activation::Relu)
        .push(pool())
        .push(conv(64, 192, 5, 1, 2)?)
        .push(Activation::Relu)
        .push(pool())
        .push(conv(192, 384, 3, 1, 1)?)
        .push(Activation::Relu)
        .push(conv(384, 256, 3, 1, 1)?)
        .push(Activation::Relu)
        .push(conv(256, 256, 3, 1, 1)?)
        .push(Activation::Relu)
        .push(pool());
    let classifier = Sequential::new()
        .push(Dropout::new(0.5)?)
        .push(Linear::config(256 * 6 * 6, 4096).init(init).build(rng)?)
        .push(Activation::Relu)
        .push(Dropout::new(0.5)?)
        .push(Linear::config(4096, 4096).init(init).build(rng)?)
        .push(Activation::Relu)
        .push(Linear::config(4096, classes).init(init).build(rng)?);
    Ok(Sequential::new()
        .add("features", features)
        .add("avgpool", AdaptiveAvgPool(vec![6, 6]))
        .add("flatten", Flatten)
        .add("classifier", classifier))
}
