//! `fovea visualize patches|filters|activations`: what a trained network's units respond to.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use fovea::nn::Sequential;
use fovea_vision::data::{self, Split};
use fovea_vision::train::{self, Checkpoint};
use fovea_vision::visualize as vis;
use std::path::PathBuf;

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
    #[arg(value_parser = crate::range::count, long, default_value_t = 8)]
    units: usize,
    #[arg(value_parser = crate::range::count, long, default_value_t = 9)]
    top: usize,
    /// Pictures to search (default: the run's data, test split)
    #[arg(long)]
    data: Option<PathBuf>,
    /// Search only the first N pictures
    #[arg(value_parser = crate::range::count, long, default_value_t = 10_000)]
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

/// The run's network, which must be sequential, and its checkpoint.
fn load(path: &std::path::Path) -> Result<(Checkpoint, Box<dyn fovea::nn::Module>)> {
    let ckpt = train::load_checkpoint(path)?;
    let model = train::model_from_checkpoint(&ckpt)?;
    if model.as_any().and_then(|a| a.downcast_ref::<Sequential>()).is_none() {
        bail!("{} is not a sequential network; visualize works on lenet5, cnn-bn and the like", ckpt.meta.model);
    }
    Ok((ckpt, model))
}

fn sequential(model: &dyn fovea::nn::Module) -> &Sequential {
    model.as_any().and_then(|a| a.downcast_ref::<Sequential>()).expect("checked by load")
}

fn patches(a: PatchesArgs) -> Result<()> {
    let (ckpt, model) = load(&a.checkpoint)?;
    let shape = ckpt.meta.input_shape()?;
    let dir =
        a.data.clone().or(ckpt.meta.data.as_ref().map(PathBuf::from)).unwrap_or_else(data::FashionMnist::default_dir);
    let (set, _) = data::load(&dir, Split::Test, shape, Some(a.limit))?;
    // no more pictures a unit than there are
    let top = a.top.min(set.len());
    let (field, per_unit) = vis::top_patches(sequential(model.as_ref()), &set, &a.layer, a.units, top)?;
    let mut tiles = Vec::new();
    for hits in &per_unit {
        tiles.extend(hits.iter().map(|(_, patch)| patch.clone()));
        // short rows (fewer pictures than --top) are padded with blanks
        for _ in hits.len()..top {
            tiles.push(fovea::Tensor::full(&[shape[0], field.size, field.size], 1.0));
        }
    }
    let zoom = (96 / field.size).clamp(1, 8);
    vis::grid(&tiles, top, zoom)?.save_png(&a.out)?;
    println!(
        "{} units of {} (receptive field {}x{} pixels, {} apart), top {} of {} pictures each: {}",
        per_unit.len(),
        a.layer,
        field.size,
        field.size,
        field.jump,
        top,
        set.len(),
        a.out.display()
    );
    Ok(())
}

fn filters(a: FiltersArgs) -> Result<()> {
    let (_, model) = load(&a.checkpoint)?;
    let (name, s, tiles) = vis::filter_pictures(sequential(model.as_ref()), a.layer.as_deref())?;
    vis::grid(&tiles, 8.min(tiles.len()), (48 / s[2]).max(1))?.save_png(&a.out)?;
    println!("{} filters of {name} ({}x{}x{}): {}", s[0], s[1], s[2], s[3], a.out.display());
    Ok(())
}

fn activations(a: ActivationsArgs) -> Result<()> {
    let (ckpt, model) = load(&a.checkpoint)?;
    let net = sequential(model.as_ref());
    let shape = ckpt.meta.input_shape()?;
    let x = if shape == [1, 28, 28] {
        fovea_vision::image::load_fashion_input(&a.image)?
    } else {
        let rgb = fovea_vision::image::load_rgb(&a.image)?;
        let t = data::image_folder::fit_image(&rgb, shape)?;
        t.reshape(&[1, shape[0], shape[1], shape[2]])?
    };
    let maps = vis::activations(net, &x, &a.layer)?;
    if maps.ndim() != 4 {
        bail!("{} gives {:?}, not feature maps", a.layer, maps.shape());
    }
    let planes = vis::normalized_planes(&maps.reshape(&maps.shape()[1..])?);
    let zoom = (96 / maps.shape()[2]).max(1);
    vis::grid(&planes, 8.min(planes.len()), zoom)?.save_png(&a.out)?;
    println!(
        "{} feature maps of {} ({}x{}): {}",
        planes.len(),
        a.layer,
        maps.shape()[2],
        maps.shape()[3],
        a.out.display()
    );
    Ok(())
}
