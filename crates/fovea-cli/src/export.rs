//! `fovea export`: a trained network (or a zoo architecture) as an ONNX model for other
//! runtimes.

use anyhow::{Context, Result};
use clap::Args;
use fovea::nn::summary::{fmt_dims, parse_dims, thousands};
use fovea::Rng;
use fovea_vision::models;
use std::path::PathBuf;

#[derive(Args)]
pub struct ExportArgs {
    /// Run folder (or its .safetensors file) written by `fovea train`, `fovea yolo train`
    /// or `fovea faces train-embedding`
    #[arg(long, required_unless_present = "model")]
    checkpoint: Option<PathBuf>,
    /// Or a zoo architecture with freshly drawn weights (lenet5, cnn-bn, resnet18, ...)
    #[arg(long, conflicts_with = "checkpoint")]
    model: Option<String>,
    /// With --model: the number of classes (default: the architecture's)
    #[arg(value_parser = fovea_vision::cli::count, long, requires = "model")]
    classes: Option<usize>,
    /// With --model: the input shape of one sample (default: the architecture's)
    #[arg(long, value_name = "CxHxW", requires = "model")]
    input: Option<String>,
    /// With --model: the seed of the weights
    #[arg(long, default_value_t = 0, requires = "model")]
    seed: u64,
    /// The ONNX file to write
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: ExportArgs) -> Result<()> {
    let model = match (&a.checkpoint, &a.model) {
        (Some(run), _) => {
            // which kind of run: by the file it holds
            let holds = |file: &str| if run.is_dir() { run.join(file).exists() } else { run.ends_with(file) };
            if holds("embedding.safetensors") {
                fovea_vision::face::triplet::embedding_to_onnx(run)?
            } else if holds("detector.safetensors") {
                fovea_vision::detect::detector::detector_to_onnx(run)?
            } else {
                fovea_vision::run::Classifier::load(run)?.to_onnx()?
            }
        }
        (None, Some(name)) => {
            let arch = models::architecture(name)?;
            let classes = a.classes.unwrap_or(arch.default_classes());
            let net = models::build(name, classes, &mut Rng::new(a.seed))
                .with_context(|| format!("{name} with --classes {classes}"))?;
            let input = match &a.input {
                Some(s) => parse_dims(s).with_context(|| format!("--input {s}"))?,
                None => arch.input.to_vec(),
            };
            fovea::graph::export::export(net.as_ref(), &input, "fovea")
                .with_context(|| format!("{name} at input {}", fmt_dims(&input)))?
        }
        (None, None) => anyhow::bail!("give --checkpoint or --model"),
    };
    fovea::io::check_not_input(&a.out)?;
    fovea::io::onnx::save(&a.out, &model)?;
    let params: usize = model.graph.initializers.iter().map(|t| t.len().unwrap_or(0)).sum();
    eprintln!(
        "wrote {} ({} nodes, {} parameters, opset {})",
        a.out.display(),
        model.graph.nodes.len(),
        thousands(params),
        fovea::graph::export::OPSET
    );
    Ok(())
}
