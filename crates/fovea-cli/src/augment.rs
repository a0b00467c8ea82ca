//! `fovea augment`: a grid of augmented copies of one picture, to see what a pipeline does.

use anyhow::{Context, Result};
use clap::Args;
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
    #[arg(value_parser = fovea_vision::cli::whole(1, 1024), long, default_value_t = 15)]
    count: usize,
    #[arg(value_parser = fovea_vision::cli::count, long, default_value_t = 4)]
    columns: usize,
    /// Longer side of each copy in pixels
    #[arg(value_parser = fovea_vision::cli::whole(8, 1024), long, default_value_t = 128)]
    size: usize,
    /// The grid (PNG)
    #[arg(long, default_value = "augmented.png")]
    out: PathBuf,
}

pub fn run(a: AugmentArgs) -> Result<()> {
    let mut pipeline = Augment::parse(&a.ops)?;
    let rgb = fovea_vision::image::load_rgb(&a.image).with_context(|| format!("picture {}", a.image.display()))?;
    let picture = fovea_vision::image::resize_longer_side(&rgb, a.size)?;
    fovea_vision::augment::preview(&mut pipeline, &picture, a.count, a.columns, a.seed)?.save_png(&a.out)?;
    let (spec, out) = (pipeline.spec(), a.out.display());
    let result = serde_json::json!({"copies": a.count, "augment": spec, "out": a.out});
    crate::report_with(&result, serde_json::json!({}), || {
        format!("{} augmented copies ({spec}) written to {out}", a.count)
    })?;
    Ok(())
}
