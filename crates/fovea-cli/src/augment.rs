//! `fovea augment`: a grid of augmented copies of one picture, to see what a pipeline does.

use anyhow::{Context, Result};
use clap::Args;
use fovea::{Rng, Tensor};
use fovea_vision::augment::Augment;
use std::path::PathBuf;

#[derive(Args)]
pub struct AugmentArgs {
    /// A PNG or JPEG picture
    image: PathBuf,
    /// Comma-separated transforms: mirror, crop[:MIN_AREA], color[:SHIFT], pca[:SIGMA],
    /// rotate[:DEGREES], shear[:FACTOR], warp[:STRENGTH]
    #[arg(long, default_value = "mirror,crop,color,rotate,shear,warp")]
    ops: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Augmented copies (the original comes first)
    #[arg(value_parser = crate::range::whole(1, 1024), long, default_value_t = 15)]
    count: usize,
    #[arg(value_parser = crate::range::count, long, default_value_t = 4)]
    columns: usize,
    /// Longer side of each copy in pixels
    #[arg(value_parser = crate::range::whole(8, 1024), long, default_value_t = 128)]
    size: usize,
    /// The grid (PNG)
    #[arg(long, default_value = "augmented.png")]
    out: PathBuf,
}

pub fn run(a: AugmentArgs) -> Result<()> {
    let mut pipeline = Augment::parse(&a.ops)?;
    let rgb = fovea_vision::image::load_rgb(&a.image).with_context(|| format!("picture {}", a.image.display()))?;
    let picture = fovea_vision::image::resize_longer_side(&rgb, a.size)?;
    let (h, w) = (picture.shape()[1], picture.shape()[2]);
    // PCA colour axes from the picture itself (training fits them on the training set)
    pipeline.fit(&picture.reshape(&[1, 3, h, w])?)?;
    let mut tiles = vec![picture.clone()];
    for i in 0..a.count {
        let draw = pipeline.draw(3, h, w, &mut Rng::derive(a.seed, i as u64))?;
        tiles.push(Tensor::new(&[3, h, w], draw.apply(picture.data(), 3))?);
    }
    // more columns than pictures would only add blank space
    let columns = a.columns.min(tiles.len());
    fovea_vision::visualize::grid(&tiles, columns, 1)
        .with_context(|| format!("--columns {columns}"))?
        .save_png(&a.out)?;
    println!("{} augmented copies ({}) written to {}", a.count, pipeline.spec(), a.out.display());
    Ok(())
}
