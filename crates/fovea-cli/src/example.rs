//! `fovea example ecg1d|volume3d`: the notes' 1-D and 3-D generalisations of convolution,
//! each a small CNN that learns a generated task: heart rhythms from ECG strips, and
//! whether a volume holds a small sphere.

use crate::experiment::CurvePrinter;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use fovea::nn::parameter_count;
use fovea_vision::experiments::{Example as Generated, ExampleConfig, ExampleKind};
use serde_json::json;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Example {
    /// A 1-D CNN classifies generated ECG strips: normal, atrial fibrillation, premature beats, tachycardia
    Ecg1d(ExampleArgs),
    /// A 3-D CNN finds which generated volumes hold a small sphere among boxes
    Volume3d(ExampleArgs),
}

#[derive(Args)]
pub struct ExampleArgs {
    /// Generated training samples
    #[arg(value_parser = crate::range::count, long, default_value_t = 4000)]
    train_size: usize,
    /// Generated test samples (another seed)
    #[arg(value_parser = crate::range::count, long, default_value_t = 1000)]
    test_size: usize,
    #[arg(value_parser = crate::range::count, long, default_value_t = 8)]
    epochs: usize,
    #[arg(value_parser = crate::range::count, long, default_value_t = 32)]
    batch_size: usize,
    /// Adam's learning rate
    #[arg(value_parser = crate::range::positive::<f32>, long, default_value_t = 0.001)]
    lr: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A picture of samples of each class (PNG)
    #[arg(long)]
    out: Option<PathBuf>,
    /// One JSON object per epoch, and a summary
    #[arg(long)]
    json: bool,
}

pub fn run(e: Example) -> Result<()> {
    let (a, kind) = match e {
        Example::Ecg1d(a) => (a, ExampleKind::Ecg1d),
        Example::Volume3d(a) => (a, ExampleKind::Volume3d),
    };
    let config = ExampleConfig {
        train_size: a.train_size,
        test_size: a.test_size,
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        seed: a.seed,
    };
    let example = Generated::new(kind, &config)?;
    let name = kind.name();
    if !a.json {
        eprintln!(
            "{name}: a CNN of {} parameters on {} generated samples of shape {:?}, tested on {}",
            parameter_count(example.model.as_ref()),
            example.train_set.len(),
            &example.train_set.images.shape()[1..],
            example.test_set.len()
        );
    }
    let r = example.train(&config, &mut CurvePrinter::new(a.json))?;
    if let Some(out) = &a.out {
        example.picture()?.save_png(out).with_context(|| format!("cannot write {}", out.display()))?;
    }
    let classes = kind.classes();
    if a.json {
        let per: serde_json::Map<String, serde_json::Value> =
            classes.iter().zip(&r.per_class_accuracy).map(|(c, &p)| (c.to_string(), json!(p))).collect();
        println!(
            "{}",
            json!({"final": true, "example": name, "test_accuracy": r.test_accuracy, "chance": r.chance,
                   "per_class_accuracy": per, "epochs": r.curve_test_error.len()})
        );
    } else {
        let per: Vec<String> =
            classes.iter().zip(&r.per_class_accuracy).map(|(c, p)| format!("{c} {:.1}%", 100.0 * p)).collect();
        eprintln!(
            "test accuracy {:.2}% (chance {:.0}%): {}",
            100.0 * r.test_accuracy,
            100.0 * r.chance,
            per.join(", ")
        );
    }
    Ok(())
}
