//! `fovea visualize patches|filters|activations`: what a trained network's units respond to.

use anyhow::Result;
use clap::{Args, Subcommand};
use fovea_vision::visualize::{Drawing, TrainedNet};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum Visualize {
    /// For N units of a layer, the input patches (their receptive fields) that excite them most
    Patches(PatchesArgs),
    /// The first convolution's filters as pictures
    Filters(FiltersArgs),
    /// The feature maps of one picture at a layer
    Activations(ActivationsArgs),
}

#[derive(Args)]
pub struct PatchesArgs {
    /// A run folder of `fovea train` (a sequential network: lenet5, cnn-bn, ...)
    #[arg(long)]
    checkpoint: PathBuf,
    /// A layer name (conv1, relu2, pool2, ...)
    #[arg(long)]
    layer: String,
    #[arg(value_parser = fovea_vision::cli::count, long, default_value_t = 8)]
    units: usize,
    #[arg(value_parser = fovea_vision::cli::count, long, default_value_t = 9)]
    top: usize,
    /// Pictures to search (default: the run's data, test split)
    #[arg(long)]
    data: Option<PathBuf>,
    /// Search only the first N pictures
    #[arg(value_parser = fovea_vision::cli::count, long, default_value_t = 10_000)]
    limit: usize,
    /// The grid PNG (one row per unit)
    #[arg(long, default_value = "patches.png")]
    out: PathBuf,
}

#[derive(Args)]
pub struct FiltersArgs {
    #[arg(long)]
    checkpoint: PathBuf,
    /// The convolution to draw (default: the first)
    #[arg(long)]
    layer: Option<String>,
    #[arg(long, default_value = "filters.png")]
    out: PathBuf,
}

#[derive(Args)]
pub struct ActivationsArgs {
    #[arg(long)]
    checkpoint: PathBuf,
    image: PathBuf,
    #[arg(long)]
    layer: String,
    #[arg(long, default_value = "activations.png")]
    out: PathBuf,
}

pub fn run(v: Visualize) -> Result<()> {
    match v {
        Visualize::Patches(a) => patches(a),
        Visualize::Filters(a) => filters(a),
        Visualize::Activations(a) => activations(a),
    }
}

fn patches(a: PatchesArgs) -> Result<()> {
    let net = TrainedNet::load(&a.checkpoint)?;
    save(net.patches(a.data.as_deref(), &a.layer, a.units, a.top, a.limit)?, &a.out)
}

fn filters(a: FiltersArgs) -> Result<()> {
    save(TrainedNet::load(&a.checkpoint)?.filters(a.layer.as_deref())?, &a.out)
}

fn activations(a: ActivationsArgs) -> Result<()> {
    save(TrainedNet::load(&a.checkpoint)?.activations(&a.image, &a.layer)?, &a.out)
}

fn save(d: Drawing, out: &Path) -> Result<()> {
    d.canvas.save_png(out)?;
    let result = serde_json::json!({"caption": d.caption, "out": out});
    crate::report_with(&result, serde_json::json!({}), || format!("{}: {}", d.caption, out.display()))?;
    Ok(())
}
