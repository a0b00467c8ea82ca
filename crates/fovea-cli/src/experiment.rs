//! `fovea experiment`: the notes' experiments (see `fovea_vision::experiments`), each a
//! comparison of training curves plotted side by side.

use anyhow::Result;
use clap::{Args, Subcommand};
use fovea_vision::experiments::{
    self, AugmentConfig, CurveObserver, CurvePoint, PlainVsResidualConfig, TransferConfig,
};
use fovea_vision::train::Progress;
use serde_json::json;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Experiment {
    /// Train a plain deep network and a residual one of the same depth; plot their errors
    PlainVsResidual(PlainVsResidualArgs),
    /// Train on a few pictures with and without augmentation; compare test accuracy
    Augment(AugmentArgs),
    /// Pretrain on Fashion-MNIST's classes 0-4, then learn 5-9 from a few pictures: from
    /// scratch, with the pretrained layers frozen, and fine-tuning all of them
    Transfer(TransferArgs),
}

#[derive(Args)]
pub struct PlainVsResidualArgs {
    /// Layers with weights, 6n+2 (20, 32, 44, 56, ...)
    #[arg(long, default_value_t = 56)]
    depth: usize,
    #[arg(value_parser = crate::range::count, long, default_value_t = 5)]
    epochs: usize,
    /// Training images (the first N of Fashion-MNIST's 60,000)
    #[arg(value_parser = crate::range::count, long, default_value_t = 10_000)]
    train_size: usize,
    /// Test images the test error is measured on (the first N of 10,000)
    #[arg(value_parser = crate::range::count, long, default_value_t = 2_000)]
    test_size: usize,
    #[arg(value_parser = crate::range::count, long, default_value_t = 128)]
    batch_size: usize,
    /// SGD learning rate (momentum 0.9, weight decay 1e-4, as He et al.)
    #[arg(value_parser = crate::range::positive::<f32>, long, default_value_t = 0.1)]
    lr: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the plot and the per-epoch figures
    #[arg(long, default_value = "runs/plain-vs-residual")]
    out: PathBuf,
    /// One JSON object per model and epoch
    #[arg(long)]
    json: bool,
    /// Write into --out even if it already holds files, replacing them
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct AugmentArgs {
    /// The augmentations (see `fovea train --augment`)
    #[arg(long, default_value = "crop:0.85,rotate:8,warp:0.05")]
    augment: String,
    #[arg(long, default_value = "lenet5")]
    model: String,
    /// Training images (the first N of Fashion-MNIST's 60,000)
    #[arg(value_parser = crate::range::count, long, default_value_t = 2_000)]
    train_size: usize,
    #[arg(value_parser = crate::range::count, long, default_value_t = 40)]
    epochs: usize,
    #[arg(value_parser = crate::range::count, long, default_value_t = 64)]
    batch_size: usize,
    /// Adam's learning rate
    #[arg(value_parser = crate::range::positive::<f32>, long, default_value_t = 0.001)]
    lr: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the plot
    #[arg(long, default_value = "runs/augment")]
    out: PathBuf,
    /// One JSON object per model and epoch, and a summary
    #[arg(long)]
    json: bool,
    /// Write into --out even if it already holds files, replacing them
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct TransferArgs {
    #[arg(long, default_value = "lenet5")]
    model: String,
    /// Labelled pictures per new class (classes 5-9: Sandal, Shirt, Sneaker, Bag, Ankle boot)
    #[arg(value_parser = crate::range::count, long, default_value_t = 50)]
    per_class: usize,
    /// Epochs of pretraining on classes 0-4 (30,000 pictures)
    #[arg(value_parser = crate::range::count, long, default_value_t = 5)]
    pretrain_epochs: usize,
    /// Epochs on the few new pictures
    #[arg(value_parser = crate::range::count, long, default_value_t = 40)]
    epochs: usize,
    /// The last frozen layer of the frozen-backbone variant
    #[arg(long, default_value = "pool2")]
    freeze: String,
    #[arg(value_parser = crate::range::count, long, default_value_t = 25)]
    batch_size: usize,
    /// Adam's learning rate
    #[arg(value_parser = crate::range::positive::<f32>, long, default_value_t = 0.001)]
    lr: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the plot
    #[arg(long, default_value = "runs/transfer")]
    out: PathBuf,
    /// One JSON object per model and epoch, and a summary
    #[arg(long)]
    json: bool,
    /// Write into --out even if it already holds files, replacing them
    #[arg(long)]
    force: bool,
}

/// Prints each curve's progress and epochs (JSON lines with `--json`).
pub(crate) struct CurvePrinter {
    json: bool,
    bar: Option<((String, usize), indicatif::ProgressBar)>,
}

impl CurvePrinter {
    pub(crate) fn new(json: bool) -> CurvePrinter {
        CurvePrinter { json, bar: None }
    }
}

impl CurveObserver for CurvePrinter {
    fn batch(&mut self, model: &str, epoch: usize, p: &Progress, total: usize) {
        let key = (model.to_string(), epoch);
        if self.bar.as_ref().is_none_or(|(k, _)| *k != key) {
            self.bar = Some((key, crate::progress_bar(total, self.json, format!("{model} epoch {epoch}"))));
        }
        let (_, bar) = self.bar.as_ref().expect("made above");
        bar.set_position(p.seen as u64);
        bar.set_message(format!("train error {:.3}", 1.0 - p.accuracy()));
    }
    fn epoch(&mut self, c: &CurvePoint) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.json {
            println!("{}", serde_json::to_string(c).expect("points serialise"));
        } else if c.epoch == c.epochs || c.epochs <= 10 || c.epoch.is_multiple_of(10) {
            eprintln!(
                "{} epoch {}: training error {:.2}%, test error {:.2}% ({:.1} s)",
                c.model,
                c.epoch,
                100.0 * c.train_error,
                100.0 * c.test_error,
                c.seconds
            );
        }
    }
}

pub fn run(e: Experiment) -> Result<()> {
    match e {
        Experiment::PlainVsResidual(a) => plain_vs_residual(a),
        Experiment::Augment(a) => augment(a),
        Experiment::Transfer(a) => transfer(a),
    }
}

fn plain_vs_residual(a: PlainVsResidualArgs) -> Result<()> {
    let config = PlainVsResidualConfig {
        depth: a.depth,
        epochs: a.epochs,
        train_size: a.train_size,
        test_size: a.test_size,
        batch_size: a.batch_size,
        lr: a.lr,
        seed: a.seed,
    };
    let (_, png) = experiments::plain_vs_residual(&config, &a.out, a.force, &mut CurvePrinter::new(a.json))?;
    if !a.json {
        eprintln!("plot in {}", png.display());
    }
    Ok(())
}

fn augment(a: AugmentArgs) -> Result<()> {
    let config = AugmentConfig {
        augment: a.augment,
        model: a.model.clone(),
        train_size: a.train_size,
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        seed: a.seed,
    };
    let r = experiments::augment_comparison(&config, &a.out, a.force, &mut CurvePrinter::new(a.json))?;
    if a.json {
        let mut line = serde_json::to_value(&r)?;
        line["final"] = json!(true);
        line["train_size"] = json!(a.train_size);
        line["epochs"] = json!(a.epochs);
        println!("{line}");
    } else {
        eprintln!(
            "{} on {} pictures, {} epochs: test accuracy {:.2}% without augmentation, {:.2}% with {}; plot in {}",
            a.model,
            a.train_size,
            a.epochs,
            100.0 * r.plain_test_accuracy,
            100.0 * r.augmented_test_accuracy,
            r.augment,
            r.plot.display()
        );
    }
    Ok(())
}

fn transfer(a: TransferArgs) -> Result<()> {
    let config = TransferConfig {
        model: a.model.clone(),
        per_class: a.per_class,
        pretrain_epochs: a.pretrain_epochs,
        epochs: a.epochs,
        freeze: a.freeze.clone(),
        batch_size: a.batch_size,
        lr: a.lr,
        seed: a.seed,
    };
    let r = experiments::transfer_comparison(&config, &a.out, a.force, &mut CurvePrinter::new(a.json))?;
    if a.json {
        let mut line = serde_json::to_value(&r)?;
        line["final"] = json!(true);
        line["model"] = json!(a.model);
        line["per_class"] = json!(a.per_class);
        println!("{line}");
        return Ok(());
    }
    eprintln!(
        "{} pretrained on classes 0-4: {:.2}% test accuracy. Classes 5-9 from {} pictures each, {} epochs, \
         test accuracy on their 5,000 test pictures: from scratch {:.2}%, frozen up to {} {:.2}%, fine-tuned {:.2}%. \
         The frozen variant took {:.1} s on cached features against {:.1} s through the frozen layers ({:.1}x), \
         with {} results; plot in {}",
        a.model,
        100.0 * r.pretrain_test_accuracy,
        a.per_class,
        a.epochs,
        100.0 * r.scratch_test_accuracy,
        a.freeze,
        100.0 * r.frozen_test_accuracy,
        100.0 * r.finetuned_test_accuracy,
        r.frozen_cached_seconds,
        r.frozen_uncached_seconds,
        r.frozen_uncached_seconds / r.frozen_cached_seconds,
        if r.cache_gives_the_same_result { "the same" } else { "different" },
        r.plot.display()
    );
    Ok(())
}
