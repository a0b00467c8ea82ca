//! `fovea classify` and `fovea run`: the model zoo on real (torchvision) weights.

use anyhow::{bail, Context, Result};
use clap::Args;
use fovea::nn::summary::fmt_dims;
use fovea_vision::models::PretrainedNet;
use std::path::PathBuf;

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
    #[arg(value_parser = fovea_vision::cli::count, long, default_value_t = 5)]
    top: usize,
    /// Shorter side after resizing, before the centre crop (torchvision's IMAGENET1K_V1
    /// weights use 256; its V2 ResNet-50/101/152 weights 232)
    #[arg(long, default_value_t = 256)]
    resize: usize,
    /// Side of the centre crop the network sees
    #[arg(long, default_value_t = 224)]
    crop: usize,
}

pub fn classify(a: ClassifyArgs) -> Result<()> {
    if a.crop == 0 || a.crop > a.resize {
        bail!("--crop {} must be from 1 to --resize {}", a.crop, a.resize);
    }
    // torchvision's pretrained GoogLeNet expects its inputs re-scaled (transform_input)
    let net = PretrainedNet::load(&a.arch, &a.weights, a.arch == "googlenet")?;
    for path in &a.images {
        let top = net
            .classify(&fovea_vision::image::load_rgb(path)?, a.resize, a.crop, a.top)
            .with_context(|| format!("{} at --resize {} --crop {}", path.display(), a.resize, a.crop))?;
        crate::print_predictions(path, &top);
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
    let net = PretrainedNet::load(&a.arch, &a.weights, a.transform_input)?;
    let x = fovea::io::read_npy(&a.input)?;
    if x.ndim() != 4 {
        bail!("{} has shape {}; fovea run takes an NCHW batch", a.input.display(), fmt_dims(x.shape()));
    }
    let y = net.forward(x)?;
    crate::warn_non_finite("the output", y.data());
    fovea::io::write_npy(&a.output, &y)?;
    eprintln!("wrote {} ({})", a.output.display(), fmt_dims(y.shape()));
    Ok(())
}
