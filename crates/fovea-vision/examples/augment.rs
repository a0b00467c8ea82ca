//! Data augmentation through the library (what `fovea augment` and `fovea experiment augment`
//! do): random crops, rotations and warps of one picture, then LeNet-5 trained on a few
//! Fashion-MNIST pictures with and without them.
//!
//!     cargo run --release -p fovea-vision --example augment -- runs/augment-example

use fovea::{Rng, Tensor};
use fovea_vision::augment::Augment;
use fovea_vision::experiments::{augment_comparison, AugmentConfig};

fn main() -> fovea::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "runs/augment-example".into());
    // eight copies of one picture, each with its own draw of the transforms
    let picture = fovea_vision::image::resize_longer_side(
        &fovea_vision::image::load_rgb("data/images/chelsea.png".as_ref())?,
        96,
    )?;
    let (h, w) = (picture.shape()[1], picture.shape()[2]);
    let mut pipeline = Augment::parse("mirror,crop:0.8,rotate:15,color:0.1")?;
    pipeline.fit(&picture.reshape(&[1, 3, h, w])?)?;
    let copies = (0..8)
        .map(|i| Tensor::new(&[3, h, w], pipeline.draw(3, h, w, &mut Rng::new(i))?.apply(picture.data(), 3)))
        .collect::<fovea::Result<Vec<_>>>()?;
    std::fs::create_dir_all(&dir).map_err(|e| fovea::Error::io(&dir, e))?;
    fovea_vision::visualize::grid(&copies, 4, 1)?.save_png(&std::path::Path::new(&dir).join("copies.png"))?;

    let config = AugmentConfig { train_size: 500, epochs: 5, ..AugmentConfig::default() };
    let r = augment_comparison(&config, &std::path::Path::new(&dir).join("experiment"), false, &mut ())?;
    println!(
        "LeNet-5 on 500 pictures: test accuracy {:.3} without augmentation, {:.3} with {}",
        r.plain_test_accuracy, r.augmented_test_accuracy, r.augment
    );
    Ok(())
}
