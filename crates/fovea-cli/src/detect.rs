//! `fovea data shapes` (the synthetic detection dataset) and `fovea detect ...` (the
//! notes' detection chapter, from scratch).

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use fovea_vision::detect::dataset::{read_dataset, write_shapes};
use fovea_vision::detect::kmeans_anchors;
use fovea_vision::detect::shapes::ShapesConfig;
use serde_json::json;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Data {
    /// Draw a synthetic detection dataset (pedestrians, cars, motorcycles) in the darknet layout
    Shapes(ShapesArgs),
}

#[derive(Args)]
pub struct ShapesArgs {
    /// Folder to write images/, labels/, landmarks/ and classes.txt into
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1000)]
    count: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Side of the square pictures in pixels
    #[arg(long, default_value_t = 128)]
    size: usize,
    #[arg(long, default_value_t = 0)]
    min_objects: usize,
    #[arg(long, default_value_t = 4)]
    max_objects: usize,
}

#[derive(Subcommand)]
pub enum Detect {
    /// Anchor boxes by k-means on the dataset's box shapes (distance 1 - IoU)
    Anchors(AnchorsArgs),
}

#[derive(Args)]
pub struct AnchorsArgs {
    /// A dataset in the darknet layout (images/, labels/, classes.txt)
    #[arg(long)]
    data: PathBuf,
    /// Anchors to find; the mean best IoU is reported for every count from 1 to K
    #[arg(short, default_value_t = 5)]
    k: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

pub fn data(d: Data) -> Result<()> {
    match d {
        Data::Shapes(a) => {
            if !(32..=1024).contains(&a.size) || a.count == 0 || a.min_objects > a.max_objects || a.max_objects > 20 {
                bail!("--size must be 32..1024, --count at least 1, and 0 <= --min-objects <= --max-objects <= 20");
            }
            let config = ShapesConfig {
                size: a.size,
                min_objects: a.min_objects,
                max_objects: a.max_objects,
                ..Default::default()
            };
            write_shapes(&a.out, a.count, a.seed, &config)?;
            println!("{} pictures of {}x{} in {}", a.count, a.size, a.size, a.out.display());
            Ok(())
        }
    }
}

pub fn run(d: Detect) -> Result<()> {
    match d {
        Detect::Anchors(a) => anchors(a),
    }
}

fn anchors(a: AnchorsArgs) -> Result<()> {
    let set = read_dataset(&a.data)?;
    let shapes: Vec<(f32, f32)> = set.objects.iter().flatten().map(|o| (o.bbox.w, o.bbox.h)).collect();
    if a.k == 0 || a.k > shapes.len() {
        bail!("-k must be between 1 and the {} labelled boxes of {}", shapes.len(), a.data.display());
    }
    let mut per_k = Vec::new();
    for k in 1..=a.k {
        per_k.push(kmeans_anchors(&shapes, k, a.seed)?);
    }
    let last = per_k.last().expect("k >= 1");
    if a.json {
        let ious: Vec<f32> = per_k.iter().map(|r| r.mean_iou).collect();
        println!("{}", json!({"anchors": last.shapes, "mean_iou_per_k": ious, "boxes": shapes.len()}));
    } else {
        println!("{} boxes in {} pictures", shapes.len(), set.len());
        for (k, r) in per_k.iter().enumerate() {
            println!("k = {}: mean best IoU {:.4}", k + 1, r.mean_iou);
        }
        println!("anchors (width, height relative to the picture), smallest first:");
        for (w, h) in &last.shapes {
            println!("  {w:.4} {h:.4}");
        }
    }
    Ok(())
}
