//! `fovea visualize patches|filters|activations`: what a trained network's units respond to.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use fovea::nn::Sequential;
use fovea_vision::data::{self, Split};
use fovea_vision::train::{self, Checkpoint};
use fovea_vision::visualize::{self as vis, TopK};
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
    let net = sequential(model.as_ref());
    let shape = ckpt.meta.input_shape()?;
    let fields = vis::receptive_fields(net, shape)?;
    let field = fields.iter().find(|(n, _)| *n == a.layer).map(|(_, f)| *f).with_context(|| {
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        format!("no convolutional layer '{}' (the layers with a receptive field: {})", a.layer, names.join(", "))
    })?;
    let dir =
        a.data.clone().or(ckpt.meta.data.as_ref().map(PathBuf::from)).unwrap_or_else(data::FashionMnist::default_dir);
    let (set, _) = data::load(&dir, Split::Test, shape, Some(a.limit))?;
    // no more pictures a unit than there are, no more units than the layer has
    let top = a.top.min(set.len());
    let mut tops: Vec<TopK> = Vec::new();
    let mut channels = 0;
    for start in (0..set.len()).step_by(500) {
        let idx: Vec<usize> = (start..(start + 500).min(set.len())).collect();
        let (x, _) = set.batch(&idx);
        let maps = vis::activations(net, &x, &a.layer)?;
        channels = maps.shape()[1];
        if tops.is_empty() {
            tops = (0..a.units.min(channels)).map(|_| TopK::new(top)).collect();
        }
        vis::collect_hits(&maps, start, &mut tops);
    }
    let units = a.units.min(channels);
    let mut tiles = Vec::new();
    for unit in tops.into_iter().take(units) {
        let hits = unit.into_sorted();
        for h in &hits {
            let (picture, _) = set.batch(&[h.image]);
            let picture = picture.reshape(&shape)?;
            tiles.push(vis::patch(&picture, &field, h.y, h.x));
        }
        // short rows (fewer pictures than --top) are padded with blanks
        for _ in hits.len()..top {
            tiles.push(fovea::Tensor::full(&[shape[0], field.size, field.size], 1.0));
        }
    }
    let zoom = (96 / field.size).clamp(1, 8);
    vis::grid(&tiles, top, zoom)?.save_png(&a.out)?;
    println!(
        "{units} units of {} (receptive field {}x{} pixels, {} apart), top {} of {} pictures each: {}",
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
    let net = sequential(model.as_ref());
    let conv = vis::leaves(net)
        .into_iter()
        .filter(|(n, _)| a.layer.as_ref().is_none_or(|l| l == n))
        .find_map(|(n, l)| l.as_any().and_then(|x| x.downcast_ref::<fovea::nn::Conv>()).map(|c| (n, c)));
    let Some((name, conv)) = conv else {
        bail!("no convolution {}", a.layer.as_deref().map_or("in the network".into(), |l| format!("named '{l}'")));
    };
    let w = conv.weight.tensor();
    let s = w.shape().to_vec();
    if s.len() != 4 {
        bail!("{name} is not a 2-D convolution");
    }
    // each filter as a picture: its input channels as colours (1 or 3), or its first one
    let channels = if s[1] == 3 { 3 } else { 1 };
    let tiles: Vec<fovea::Tensor> = (0..s[0])
        .map(|o| {
            let f = w.narrow(0, o, 1)?.narrow(1, 0, channels)?.reshape(&[channels, s[2], s[3]])?;
            let (lo, hi) = f.data().iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, u), &v| (l.min(v), u.max(v)));
            Ok(f.map(|v| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 }))
        })
        .collect::<Result<_>>()?;
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
