//! `fovea summary`: a model's layers with output shapes, activation sizes, parameters and
//! multiply-adds, or the notes' conv-versus-dense comparison.

use anyhow::{bail, Context, Result};
use clap::Args;
use fovea::nn::summary::{compare_dense, fmt_dims, summarize, thousands};
use fovea::Rng;
use fovea_vision::models;
use serde_json::json;

#[derive(Args)]
pub struct SummaryArgs {
    /// Model name (lenet5, alexnet, vgg16, resnet50, googlenet, ...; an unknown name lists them)
    #[arg(required_unless_present = "compare_dense")]
    model: Option<String>,
    /// Input shape of one sample, channels first (default: the model's own, 1x28x28 or 3x224x224)
    #[arg(long, value_name = "CxHxW")]
    input: Option<String>,
    /// Number of classes of the classifier head (default: 10 for the Fashion-MNIST models, else 1000)
    #[arg(value_parser = crate::range::count, long)]
    classes: Option<usize>,
    /// Compare a conv layer with the dense layer it replaces: input HxWxC, filters, filter size
    #[arg(long, value_name = "HxWxC:FILTERS:F", conflicts_with_all = ["model", "input"])]
    compare_dense: Option<String>,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

/// `3x224x224` -> `[3, 224, 224]`.
fn parse_dims(s: &str) -> Result<Vec<usize>> {
    s.split('x')
        .map(|d| d.trim().parse::<usize>().with_context(|| format!("'{s}' is not a shape like 3x224x224")))
        .collect()
}

pub fn run(a: SummaryArgs) -> Result<()> {
    if let Some(spec) = &a.compare_dense {
        return dense(spec, a.json);
    }
    let name = a.model.as_deref().unwrap_or_default();
    let arch = models::architecture(name)?;
    let classes = a.classes.unwrap_or(arch.default_classes());
    let model =
        models::build(name, classes, &mut Rng::new(0)).with_context(|| format!("{name} with --classes {classes}"))?;
    let input = match &a.input {
        Some(s) => parse_dims(s)?,
        None => arch.input.to_vec(),
    };
    let s = summarize(model.as_ref(), &input)
        .with_context(|| format!("{name} does not take --input {}", fmt_dims(&input)))?;
    if a.json {
        let mut out = serde_json::to_value(&s)?;
        out["model"] = name.into();
        println!("{out}");
    } else {
        println!("{name}, input {} (shapes are channels x height x width)\n", fmt_dims(&input));
        print!("{}", s.table());
    }
    Ok(())
}

fn dense(spec: &str, json: bool) -> Result<()> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [input, filters, f] = parts[..] else { bail!("--compare-dense takes HxWxC:FILTERS:F, e.g. 39x39x3:10:3") };
    let dims = parse_dims(input)?;
    let [h, w, c] = dims[..] else { bail!("--compare-dense input '{input}' must be HxWxC") };
    let filters: usize = filters.parse().with_context(|| format!("'{filters}' is not a number of filters"))?;
    let f: usize = f.parse().with_context(|| format!("'{f}' is not a filter size"))?;
    let cmp = compare_dense(h, w, c, filters, f)?;
    let [oc, oh, ow] = cmp.output;
    if json {
        println!(
            "{}",
            json!({"input": [h, w, c], "output": [oh, ow, oc], "conv_params": cmp.conv_params,
                   "dense_weights": cmp.dense_weights})
        );
        return Ok(());
    }
    println!("input {h}x{w}x{c} -> {filters} filters of {f}x{f} (stride 1, no padding) -> {oh}x{ow}x{oc}");
    println!("  conv layer:  ({f}·{f}·{c} + 1)·{filters} = {} parameters", thousands(cmp.conv_params));
    println!(
        "  dense layer: {}·{} = {} weights (about {:.0} million)",
        thousands(h * w * c),
        thousands(oh * ow * oc),
        thousands(cmp.dense_weights),
        cmp.dense_weights as f64 / 1e6
    );
    println!("  parameter sharing and sparse connections: {}x fewer", thousands(cmp.dense_weights / cmp.conv_params));
    Ok(())
}
