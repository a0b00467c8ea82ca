//! `fovea classify` and `fovea run`: the model zoo on real (torchvision) weights.

use anyhow::{bail, Context, Result};
use clap::Args;
use fovea::nn::summary::fmt_dims;
use fovea::nn::Module;
use fovea::{Tensor, Var};
use fovea_vision::data::imagenet;
use fovea_vision::models;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Reads a torchvision `state_dict` saved as safetensors and builds `arch` around it,
/// in evaluation mode.
fn load(arch: &str, weights: &Path, transform_input: bool) -> Result<Box<dyn Module>> {
    models::architecture(arch)?;
    let (tensors, _) = fovea::io::read_safetensors(weights)?;
    let model = models::from_state_dict(arch, &tensors, transform_input)
        .with_context(|| format!("{} does not hold {arch} weights", weights.display()))?;
    Ok(model)
}

/// `forward`, with the expected input named when the shape does not fit.
fn forward(model: &dyn Module, arch: &str, x: Tensor) -> Result<Tensor> {
    let shape = x.shape().to_vec();
    let designed = models::architecture(arch)?.input;
    let y = fovea::no_grad(|| model.forward(&Var::constant(x))).with_context(|| {
        format!(
            "{arch} cannot take an input of shape {} (it is designed for Nx{})",
            fmt_dims(&shape),
            fmt_dims(&designed)
        )
    })?;
    Ok(y.tensor())
}

#[derive(Args)]
pub struct ClassifyArgs {
    /// Architecture, by torchvision's name (resnet50, vgg16, googlenet, alexnet, ...)
    #[arg(long)]
    arch: String,
    /// ImageNet weights: a torchvision state_dict saved as safetensors
    #[arg(long)]
    weights: PathBuf,
    /// Pictures (PNG or JPEG)
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// How many of the most likely classes to show
    #[arg(value_parser = crate::range::count, long, default_value_t = 5)]
    top: usize,
    /// Shorter side after resizing, before the centre crop (torchvision's IMAGENET1K_V1
    /// weights use 256; its V2 ResNet-50/101/152 weights 232)
    #[arg(long, default_value_t = 256)]
    resize: usize,
    /// Side of the centre crop the network sees
    #[arg(long, default_value_t = 224)]
    crop: usize,
    /// One JSON object per image
    #[arg(long)]
    json: bool,
}

pub fn classify(a: ClassifyArgs) -> Result<()> {
    if a.crop == 0 || a.crop > a.resize {
        bail!("--crop {} must be from 1 to --resize {}", a.crop, a.resize);
    }
    // torchvision's pretrained GoogLeNet expects its inputs re-scaled (transform_input)
    let model = load(&a.arch, &a.weights, a.arch == "googlenet")?;
    let names = imagenet::class_names();
    for path in &a.images {
        let rgb = fovea_vision::image::load_rgb(path)?;
        let x = imagenet::preprocess(&rgb, a.resize, a.crop)
            .with_context(|| format!("{} at --resize {} --crop {}", path.display(), a.resize, a.crop))?
            .reshape(&[1, 3, a.crop, a.crop])?;
        let logits = forward(model.as_ref(), &a.arch, x)?;
        let classes = logits.shape()[1];
        let top = fovea_vision::train::top_k(&Var::constant(logits), a.top.min(classes))?.remove(0);
        let name = |i: usize| if classes == names.len() { names[i].to_string() } else { format!("class {i}") };
        if a.json {
            let top: Vec<_> =
                top.iter().map(|&(i, p)| json!({"class": i, "name": name(i), "probability": p})).collect();
            println!("{}", json!({"image": path.display().to_string(), "top": top}));
        } else {
            println!("{}", path.display());
            for (rank, &(i, p)) in top.iter().enumerate() {
                println!("  {}. {:<30} {:>4}  {:6.2}%", rank + 1, name(i), i, 100.0 * p);
            }
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct RunArgs {
    /// Architecture, by torchvision's name (resnet50, vgg16, googlenet, alexnet, ...)
    #[arg(long)]
    arch: String,
    /// A torchvision state_dict saved as safetensors
    #[arg(long)]
    weights: PathBuf,
    /// Input batch, NCHW, as a .npy array
    #[arg(long)]
    input: PathBuf,
    /// Where to write the output (.npy)
    #[arg(long)]
    output: PathBuf,
    /// GoogLeNet: re-scale ImageNet-normalised inputs as torchvision's pretrained weights expect
    #[arg(long)]
    transform_input: bool,
}

pub fn run(a: RunArgs) -> Result<()> {
    let model = load(&a.arch, &a.weights, a.transform_input)?;
    let x = fovea::io::read_npy(&a.input)?;
    if x.ndim() != 4 {
        bail!("{} has shape {}; fovea run takes an NCHW batch", a.input.display(), fmt_dims(x.shape()));
    }
    let y = forward(model.as_ref(), &a.arch, x)?;
    crate::warn_non_finite("the output", y.data());
    fovea::io::write_npy(&a.output, &y)?;
    eprintln!("wrote {} ({})", a.output.display(), fmt_dims(y.shape()));
    Ok(())
}
