//! `fovea classify` and `fovea run`: the model zoo on real (torchvision) weights, or an
//! ONNX model.

use anyhow::{bail, Context, Result};
use clap::Args;
use fovea::graph::{Graph, Value};
use fovea::nn::summary::fmt_dims;
use fovea_vision::models::PretrainedNet;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ClassifyArgs {
    /// Architecture, by torchvision's name (resnet50, vgg16, googlenet, alexnet, ...)
    #[arg(long, required_unless_present = "onnx", requires = "weights")]
    arch: Option<String>,
    /// ImageNet weights: a torchvision state_dict saved as safetensors
    #[arg(long, requires = "arch")]
    weights: Option<PathBuf>,
    /// An ONNX classifier instead (one input, NCHW; ImageNet's normalisation is applied)
    #[arg(long, conflicts_with_all = ["arch", "weights"])]
    onnx: Option<PathBuf>,
    /// Class names, one per line, in the order of the model's outputs (default: ImageNet's)
    #[arg(long)]
    labels: Option<PathBuf>,
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
    let net = match (&a.onnx, &a.arch, &a.weights) {
        (Some(onnx), _, _) => PretrainedNet::load_onnx(onnx, &[1, 3, a.crop, a.crop])?,
        // torchvision's pretrained GoogLeNet expects its inputs re-scaled (transform_input)
        (None, Some(arch), Some(weights)) => PretrainedNet::load(arch, weights, arch == "googlenet")?,
        _ => bail!("give --arch and --weights, or --onnx"),
    };
    let net = match &a.labels {
        Some(path) => {
            let text = fovea::budget::read_text(path)?;
            net.with_labels(text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect())
        }
        None => net,
    };
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
    #[arg(long, required_unless_present = "onnx", requires = "weights")]
    arch: Option<String>,
    /// A torchvision state_dict saved as safetensors
    #[arg(long, requires = "arch")]
    weights: Option<PathBuf>,
    /// An ONNX model instead
    #[arg(long, conflicts_with_all = ["arch", "weights", "transform_input"])]
    onnx: Option<PathBuf>,
    /// Input as a .npy array (NCHW for the zoo). With --onnx, one per model input, in
    /// order or as NAME=FILE
    #[arg(long, required = true)]
    input: Vec<String>,
    /// Where to write the output (.npy). With --onnx, one per model output, in order or
    /// as NAME=FILE (default: the first output only)
    #[arg(long, required = true)]
    output: Vec<String>,
    /// GoogLeNet: re-scale ImageNet-normalised inputs as torchvision's pretrained weights expect
    #[arg(long)]
    transform_input: bool,
}

pub fn run(a: RunArgs) -> Result<()> {
    if let Some(onnx) = &a.onnx {
        return run_onnx(onnx, &a.input, &a.output);
    }
    let (Some(arch), Some(weights), [input], [output]) = (&a.arch, &a.weights, &a.input[..], &a.output[..]) else {
        bail!("the zoo takes --arch, --weights, one --input and one --output");
    };
    let net = PretrainedNet::load(arch, weights, a.transform_input)?;
    let input = PathBuf::from(input);
    let x = fovea::io::read_npy(&input)?;
    if x.ndim() != 4 {
        bail!("{} has shape {}; fovea run takes an NCHW batch", input.display(), fmt_dims(x.shape()));
    }
    let y = net.forward(x)?;
    write_output(Path::new(output), &y)
}

fn write_output(path: &Path, y: &fovea::Tensor) -> Result<()> {
    crate::warn_non_finite("the output", y.data());
    fovea::io::write_npy(path, y)?;
    eprintln!("wrote {} ({})", path.display(), fmt_dims(y.shape()));
    Ok(())
}

/// `NAME=FILE` pairs or plain files (in `names`' order) as (name, file).
fn assign(option: &str, given: &[String], names: &[&str]) -> Result<Vec<(String, PathBuf)>> {
    let named = given.iter().filter(|g| g.contains('=')).count();
    if named > 0 && named < given.len() {
        bail!("--{option}: give every one as NAME=FILE, or none");
    }
    if named == 0 {
        if given.len() > names.len() {
            bail!("--{option}: {} given, but the model has {} ({})", given.len(), names.len(), names.join(", "));
        }
        return Ok(names.iter().zip(given).map(|(n, g)| (n.to_string(), PathBuf::from(g))).collect());
    }
    given
        .iter()
        .map(|g| {
            let (name, file) = g.split_once('=').unwrap_or_default();
            if !names.contains(&name) {
                bail!("--{option} {g}: the model has no {option} {name:?} (it has {})", names.join(", "));
            }
            Ok((name.to_string(), PathBuf::from(file)))
        })
        .collect()
}

fn run_onnx(path: &Path, inputs: &[String], outputs: &[String]) -> Result<()> {
    let model = fovea::io::onnx::load(path)?;
    let input_names: Vec<&str> = model.graph.runtime_inputs().iter().map(|i| i.name.as_str()).collect();
    let given = assign("input", inputs, &input_names)?;
    if given.len() != input_names.len() {
        bail!(
            "{} takes {} inputs ({}); {} given",
            path.display(),
            input_names.len(),
            input_names.join(", "),
            given.len()
        );
    }
    // read every input, then build the graph for their shapes, so that the model's shape
    // arithmetic folds
    let mut arrays = Vec::new();
    for (name, file) in &given {
        arrays.push((name.clone(), fovea::io::read_npy(file)?));
    }
    let shapes: Vec<(String, Vec<usize>)> = arrays.iter().map(|(n, a)| (n.clone(), a.shape().to_vec())).collect();
    let graph = Graph::from_onnx(&model, &shapes).map_err(|e| e.in_file(path))?;
    let mut values = Vec::new();
    for input in graph.inputs() {
        let (_, array) = arrays.iter().find(|(n, _)| *n == input.name).context("every input is given")?;
        // .npy arrays are read as f32; an integer input takes them as whole numbers
        values.push(Value::float(array.clone()).cast(input.elem)?);
    }
    let results = graph.run(values)?;
    let output_names = graph.output_names();
    for (name, file) in assign("output", outputs, &output_names)? {
        let k = output_names.iter().position(|n| *n == name).context("a known output")?;
        let y = results[k].cast(fovea::io::onnx::data_type::FLOAT)?;
        write_output(&file, y.tensor("output")?)?;
    }
    Ok(())
}
