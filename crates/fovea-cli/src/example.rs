//! `fovea example ecg1d|volume3d`: the notes' 1-D and 3-D generalisations of convolution,
//! each a small CNN that learns a generated task: heart rhythms from ECG strips, and
//! whether a volume holds a small sphere.

use crate::experiment::{train_curve, Plan};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use fovea::nn::{parameter_count, Module};
use fovea::optim::OptimizerConfig;
use fovea::{Rng, Tensor};
use fovea_vision::data::synthetic::{self, ECG_LENGTH, ECG_RATE, RHYTHMS, VOLUME_CLASSES};
use fovea_vision::data::Dataset;
use fovea_vision::draw::Canvas;
use fovea_vision::plot::{chart, Series, BLUE};
use fovea_vision::train;
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
    let (a, name) = match e {
        Example::Ecg1d(a) => (a, "ecg1d"),
        Example::Volume3d(a) => (a, "volume3d"),
    };
    if a.train_size.max(a.test_size) > 200_000 {
        bail!("--train-size and --test-size are at most 200,000 generated samples");
    }
    // the test set comes from another seed: no sample is seen twice
    let test_seed = a.seed ^ 0x7e57;
    let mut rng = Rng::new(a.seed);
    let (train_set, test_set, classes, model): (Dataset, Dataset, &[&str], Box<dyn Module>) = match name {
        "ecg1d" => (
            synthetic::ecg_signals(a.train_size, a.seed)?,
            synthetic::ecg_signals(a.test_size, test_seed)?,
            &RHYTHMS,
            Box::new(fovea_vision::models::ecg_cnn(RHYTHMS.len(), &mut rng)?),
        ),
        _ => (
            synthetic::volumes(a.train_size, 16, a.seed)?,
            synthetic::volumes(a.test_size, 16, test_seed)?,
            &VOLUME_CLASSES,
            Box::new(fovea_vision::models::volume_cnn(VOLUME_CLASSES.len(), &mut rng)?),
        ),
    };
    if !a.json {
        eprintln!(
            "{name}: a CNN of {} parameters on {} generated samples of shape {:?}, tested on {}",
            parameter_count(model.as_ref()),
            train_set.len(),
            &train_set.images.shape()[1..],
            test_set.len()
        );
    }
    let mut optimizer = train::make_optimizer(model.as_ref(), OptimizerConfig::adam(a.lr, 0.0))?;
    let plan = Plan {
        train_set: &train_set,
        test_set: &test_set,
        epochs: a.epochs,
        batch_size: a.batch_size,
        seed: a.seed,
        json: a.json,
        quiet: false,
    };
    let curve = train_curve(name, model.as_ref(), &mut optimizer, &plan, None)?;
    let (test, predictions) = train::evaluate_trained(model.as_ref(), &test_set, 500)?;
    let per_class: Vec<f32> = (0..classes.len())
        .map(|c| {
            let of_class: Vec<usize> = (0..test_set.len()).filter(|&i| test_set.labels[i] == c).collect();
            of_class.iter().filter(|&&i| predictions[i] == c).count() as f32 / of_class.len().max(1) as f32
        })
        .collect();
    if let Some(out) = &a.out {
        let picture = if name == "ecg1d" { ecg_picture(&test_set)? } else { volume_picture(&test_set)? };
        picture.save_png(out).with_context(|| format!("cannot write {}", out.display()))?;
    }
    let chance = 1.0 / classes.len() as f32;
    if a.json {
        let per: serde_json::Map<String, serde_json::Value> =
            classes.iter().zip(&per_class).map(|(c, &p)| (c.to_string(), json!(p))).collect();
        println!(
            "{}",
            json!({"final": true, "example": name, "test_accuracy": test.accuracy(), "chance": chance,
                   "per_class_accuracy": per, "epochs": curve.test_error.len()})
        );
    } else {
        let per: Vec<String> = classes.iter().zip(&per_class).map(|(c, p)| format!("{c} {:.1}%", 100.0 * p)).collect();
        eprintln!("test accuracy {:.2}% (chance {:.0}%): {}", 100.0 * test.accuracy(), 100.0 * chance, per.join(", "));
    }
    Ok(())
}

/// The first strip of each rhythm, one chart per rhythm.
fn ecg_picture(set: &Dataset) -> Result<Canvas> {
    let mut canvas = Canvas::new(900, 170 * RHYTHMS.len(), [255, 255, 255]);
    for (c, rhythm) in RHYTHMS.iter().enumerate() {
        let Some(i) = set.labels.iter().position(|&l| l == c) else { continue };
        let strip = &set.images.data()[i * ECG_LENGTH..(i + 1) * ECG_LENGTH];
        let points = strip.iter().enumerate().map(|(k, &v)| (k as f32 / ECG_RATE, v)).collect();
        let series = [Series { name: rhythm, color: BLUE, points }];
        chart(&mut canvas, (0, 170 * c as i64, 900, 170), rhythm, "seconds", &series);
    }
    Ok(canvas)
}

/// Maximum-intensity projections (along depth) of four volumes of each class, one row per class.
fn volume_picture(set: &Dataset) -> Result<Canvas> {
    let side = set.images.shape()[2];
    let plane = side * side;
    let mut tiles = Vec::new();
    for c in 0..VOLUME_CLASSES.len() {
        for &i in
            set.labels.iter().enumerate().filter(|(_, &l)| l == c).map(|(i, _)| i).collect::<Vec<_>>().iter().take(4)
        {
            let volume = &set.images.data()[i * side * plane..(i + 1) * side * plane];
            let mip: Vec<f32> =
                (0..plane).map(|p| (0..side).map(|z| volume[z * plane + p]).fold(0f32, f32::max)).collect();
            tiles.push(Tensor::new(&[1, side, side], mip.iter().map(|v| v.clamp(0.0, 1.0)).collect())?);
        }
    }
    Ok(fovea_vision::visualize::grid(&tiles, 4, 8)?)
}
