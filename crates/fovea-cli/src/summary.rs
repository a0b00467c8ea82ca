//! `fovea summary`: a model's layers with output shapes, activation sizes, parameters and
//! multiply-adds, or the notes' conv-versus-dense comparison.

use anyhow::{bail, Context, Result};
use clap::Args;
use fovea::nn::summary::{compare_dense, fmt_dims, parse_dims, summarize};
use fovea::Rng;
use fovea_vision::models;

#[derive(Args)]
pub struct SummaryArgs {
    /// Model name (lenet5, alexnet, vgg16, resnet50, googlenet, ...; an unknown name lists
    /// them), or an ONNX file (model.onnx)
    #[arg(required_unless_present = "compare_dense")]
    model: Option<String>,
    /// Input shape of one sample, channels first (default: the model's own, 1x28x28 or 3x224x224)
    #[arg(long, value_name = "CxHxW")]
    input: Option<String>,
    /// Number of classes of the classifier head (default: 10 for the Fashion-MNIST models, else 1000)
    #[arg(value_parser = fovea_vision::cli::count, long)]
    classes: Option<usize>,
    /// Compare a conv layer with the dense layer it replaces: input HxWxC, filters, filter size
    #[arg(long, value_name = "HxWxC:FILTERS:F", conflicts_with_all = ["model", "input"])]
    compare_dense: Option<String>,
}

pub fn run(a: SummaryArgs) -> Result<()> {
    if let Some(spec) = &a.compare_dense {
        return dense(spec);
    }
    let name = a.model.as_deref().unwrap_or_default();
    if name.ends_with(".onnx") {
        return onnx(name, a.input.as_deref());
    }
    let arch = models::architecture(name)?;
    let classes = a.classes.unwrap_or(arch.default_classes());
    let model =
        models::build(name, classes, &mut Rng::new(0)).with_context(|| format!("{name} with --classes {classes}"))?;
    let input = match &a.input {
        Some(s) => parse_dims(s).with_context(|| format!("--input {s}"))?,
        None => arch.input.to_vec(),
    };
    let s = summarize(model.as_ref(), &input)
        .with_context(|| format!("{name} does not take --input {}", fmt_dims(&input)))?;
    if crate::json() {
        let mut out = serde_json::to_value(&s)?;
        out["model"] = name.into();
        println!("{out}");
    } else {
        println!("{name}, input {} (shapes are channels x height x width)\n", fmt_dims(&input));
        print!("{}", s.table());
    }
    Ok(())
}

/// The summary of an ONNX model for one sample of `input` (else its declared shape, a free
/// batch taken as 1).
fn onnx(path: &str, input: Option<&str>) -> Result<()> {
    let path = std::path::Path::new(path);
    let model = fovea::io::onnx::load(path)?;
    let inputs = model.graph.runtime_inputs();
    let first = inputs.first().with_context(|| format!("{} has no inputs", path.display()))?;
    let shape: Vec<usize> = match (input, &first.dims) {
        (Some(s), _) => std::iter::once(1).chain(parse_dims(s).with_context(|| format!("--input {s}"))?).collect(),
        // a free batch is 1; any other free dimension must be given
        (None, Some(dims)) => dims
            .iter()
            .enumerate()
            .map(|(i, d)| match d {
                fovea::io::onnx::Dim::Value(v) if *v > 0 => *v as usize,
                _ if i == 0 => 1,
                _ => 0,
            })
            .collect(),
        (None, None) => bail!("{} does not declare its input shape; give --input", path.display()),
    };
    if shape.contains(&0) {
        bail!("{}'s input {:?} has free dimensions; give --input", path.display(), first.name);
    }
    let graph = fovea::graph::Graph::from_onnx(&model, &[(first.name.clone(), shape.clone())])
        .map_err(|e| e.in_file(path))
        .with_context(|| format!("with input {}", fmt_dims(&shape[1..])))?;
    let s = graph.summary()?;
    if crate::json() {
        let mut out = serde_json::to_value(&s)?;
        out["model"] = path.display().to_string().into();
        println!("{out}");
    } else {
        println!("{}, input {} (one sample)\n", path.display(), fmt_dims(&shape[1..]));
        print!("{}", s.table());
    }
    Ok(())
}

fn dense(spec: &str) -> Result<()> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [input, filters, f] = parts[..] else { bail!("--compare-dense takes HxWxC:FILTERS:F, e.g. 39x39x3:10:3") };
    let dims = parse_dims(input).with_context(|| format!("--compare-dense {spec}"))?;
    let [h, w, c] = dims[..] else { bail!("--compare-dense input '{input}' must be HxWxC") };
    let filters: usize = filters.parse().with_context(|| format!("'{filters}' is not a number of filters"))?;
    let f: usize = f.parse().with_context(|| format!("'{f}' is not a filter size"))?;
    crate::report(&compare_dense(h, w, c, filters, f)?)
}
