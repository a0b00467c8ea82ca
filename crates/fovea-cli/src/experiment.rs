//! Reproducible experiments from the notes, each a comparison plotted side by side:
//! - `plain-vs-residual`: the degradation problem. A plain deep network and the residual
//!   network of the same depth (He et al.'s CIFAR-style networks, whose shortcuts have no
//!   parameters) start from the same weights and train on the same Fashion-MNIST images in
//!   the same order.
//! - `augment`: the same network on a few pictures, with and without data augmentation.
//! - `transfer`: learning five new classes from a few pictures each, from scratch or from a
//!   network pretrained on the other five.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use fovea::nn::Module;
use fovea::optim::{Optimizer, OptimizerConfig};
use fovea::Rng;
use fovea_vision::augment::Augment;
use fovea_vision::data::{Dataset, FashionMnist, Split};
use fovea_vision::draw::Canvas;
use fovea_vision::plot::{chart, Series, BLUE, GREEN, ORANGE};
use fovea_vision::train;
use fovea_vision::transfer::{self, Frozen};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

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

pub fn run(e: Experiment) -> Result<()> {
    match e {
        Experiment::PlainVsResidual(a) => plain_vs_residual(a),
        Experiment::Augment(a) => augment(a),
        Experiment::Transfer(a) => transfer(a),
    }
}

/// Training and test error per epoch of one network.
pub(crate) struct Curve {
    pub name: String,
    pub train_error: Vec<f32>,
    pub test_error: Vec<f32>,
}

/// What every experiment's training loop shares.
pub(crate) struct Plan<'a> {
    pub train_set: &'a Dataset,
    pub test_set: &'a Dataset,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub json: bool,
    /// no progress and no lines (a run that only repeats another)
    pub quiet: bool,
}

/// Trains `model` for the plan's epochs (batches drawn from (seed, epoch), so two models
/// see the same batches), reporting and recording the errors after each epoch.
pub(crate) fn train_curve(
    name: &str,
    model: &dyn Module,
    optimizer: &mut Optimizer,
    plan: &Plan,
    augment: Option<&Augment>,
) -> Result<Curve> {
    let mut curve = Curve { name: name.into(), train_error: vec![], test_error: vec![] };
    for epoch in 1..=plan.epochs {
        let mut rng = Rng::derive(plan.seed, epoch as u64);
        let bar = crate::progress_bar(
            plan.train_set.len(),
            plan.json || plan.quiet,
            format!("{name} epoch {epoch}/{}", plan.epochs),
        );
        let start = Instant::now();
        let p = train::train_epoch(model, optimizer, plan.train_set, plan.batch_size, &mut rng, augment, &mut |p| {
            bar.set_position(p.seen as u64);
            bar.set_message(format!("train error {:.3}", 1.0 - p.accuracy()));
        })?;
        bar.finish_and_clear();
        let (test, _) = train::evaluate_trained(model, plan.test_set, 500)?;
        curve.train_error.push(1.0 - p.accuracy());
        curve.test_error.push(1.0 - test.accuracy());
        let line = json!({"model": name, "epoch": epoch, "train_error": 1.0 - p.accuracy(),
                          "test_error": 1.0 - test.accuracy(), "seconds": start.elapsed().as_secs_f32()});
        if plan.quiet {
        } else if plan.json {
            println!("{line}");
        } else if epoch == plan.epochs || plan.epochs <= 10 || epoch % 10 == 0 {
            eprintln!(
                "{name} epoch {epoch}: training error {:.2}%, test error {:.2}% ({:.1} s)",
                100.0 * (1.0 - p.accuracy()),
                100.0 * (1.0 - test.accuracy()),
                start.elapsed().as_secs_f32()
            );
        }
    }
    Ok(curve)
}

/// Training and test error of each curve, side by side.
fn plot_curves(curves: &[Curve], png: &Path) -> Result<()> {
    let mut canvas = Canvas::new(960, 380, [255, 255, 255]);
    let series = |errors: fn(&Curve) -> &Vec<f32>| -> Vec<Series> {
        curves
            .iter()
            .zip([ORANGE, BLUE, GREEN])
            .map(|(c, color)| Series {
                name: &c.name,
                color,
                points: errors(c).iter().enumerate().map(|(i, &e)| ((i + 1) as f32, e)).collect(),
            })
            .collect()
    };
    chart(&mut canvas, (0, 0, 480, 380), "training error", "epoch", &series(|c| &c.train_error));
    chart(&mut canvas, (480, 0, 480, 380), "test error", "epoch", &series(|c| &c.test_error));
    canvas.save_png(png)?;
    Ok(())
}

fn plain_vs_residual(a: PlainVsResidualArgs) -> Result<()> {
    let dir = FashionMnist::default_dir();
    let train_set = FashionMnist::load(&dir, Split::Train)?.take(a.train_size);
    let test_set = FashionMnist::load(&dir, Split::Test)?.take(a.test_size);
    fovea_vision::train::check_new_folder(&a.out, a.force)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let plan = Plan {
        train_set: &train_set,
        test_set: &test_set,
        epochs: a.epochs,
        batch_size: a.batch_size,
        seed: a.seed,
        json: a.json,
        quiet: false,
    };
    let mut curves = Vec::new();
    for name in [format!("cifar-plain{}", a.depth), format!("cifar-resnet{}", a.depth)] {
        // the same initial draws, the same batches: only the shortcuts differ
        let model = fovea_vision::models::build(&name, 10, &mut Rng::new(a.seed))
            .with_context(|| format!("--depth {}", a.depth))?;
        let mut optimizer = train::make_optimizer(model.as_ref(), OptimizerConfig::sgd(a.lr, 0.9, 1e-4))?;
        curves.push(train_curve(&name, model.as_ref(), &mut optimizer, &plan, None)?);
    }
    let png = a.out.join("plain-vs-residual.png");
    plot_curves(&curves, &png)?;
    if !a.json {
        eprintln!("plot in {}", png.display());
    }
    Ok(())
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

/// The same network trained on the same few pictures, with and without augmentation; test
/// accuracy on all 10,000 test pictures.
fn augment(a: AugmentArgs) -> Result<()> {
    let mut pipeline = Augment::parse(&a.augment)?;
    let dir = FashionMnist::default_dir();
    let train_set = FashionMnist::load(&dir, Split::Train)?.take(a.train_size);
    let test_set = FashionMnist::load(&dir, Split::Test)?;
    pipeline.fit(&train_set.images)?;
    fovea_vision::train::check_new_folder(&a.out, a.force)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let plan = Plan {
        train_set: &train_set,
        test_set: &test_set,
        epochs: a.epochs,
        batch_size: a.batch_size,
        seed: a.seed,
        json: a.json,
        quiet: false,
    };
    let mut curves = Vec::new();
    for (name, augment) in [("plain", None), ("augmented", Some(&pipeline))] {
        let model = fovea_vision::models::build(&a.model, 10, &mut Rng::new(a.seed))?;
        let mut optimizer = train::make_optimizer(model.as_ref(), OptimizerConfig::adam(a.lr, 0.0))?;
        curves.push(train_curve(name, model.as_ref(), &mut optimizer, &plan, augment)?);
    }
    let png = a.out.join("augment.png");
    plot_curves(&curves, &png)?;
    let accuracy = |c: &Curve| 1.0 - c.test_error.last().copied().unwrap_or(1.0);
    let (plain, augmented) = (accuracy(&curves[0]), accuracy(&curves[1]));
    if a.json {
        println!(
            "{}",
            json!({"final": true, "augment": pipeline.spec(), "train_size": a.train_size, "epochs": a.epochs,
                   "plain_test_accuracy": plain, "augmented_test_accuracy": augmented, "plot": png.display().to_string()})
        );
    } else {
        eprintln!(
            "{} on {} pictures, {} epochs: test accuracy {:.2}% without augmentation, {:.2}% with {}; plot in {}",
            a.model,
            a.train_size,
            a.epochs,
            100.0 * plain,
            100.0 * augmented,
            pipeline.spec(),
            png.display()
        );
    }
    Ok(())
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

/// The pictures of classes `first..first + 5`, relabelled 0..5; at most `per_class` of each.
fn five_classes(data: &Dataset, first: usize, per_class: usize) -> Dataset {
    let mut taken = [0usize; 5];
    let indices: Vec<usize> = (0..data.len())
        .filter(|&i| {
            let c = data.labels[i].wrapping_sub(first);
            c < 5 && taken[c] < per_class && {
                taken[c] += 1;
                true
            }
        })
        .collect();
    let (images, labels) = data.batch(&indices);
    Dataset { images, labels: labels.into_iter().map(|l| l - first).collect() }
}

fn transfer(a: TransferArgs) -> Result<()> {
    let dir = FashionMnist::default_dir();
    let (train_all, test_all) = (FashionMnist::load(&dir, Split::Train)?, FashionMnist::load(&dir, Split::Test)?);
    let (source, source_test) = (five_classes(&train_all, 0, usize::MAX), five_classes(&test_all, 0, usize::MAX));
    let (target, target_test) = (five_classes(&train_all, 5, a.per_class), five_classes(&test_all, 5, usize::MAX));
    fovea_vision::train::check_new_folder(&a.out, a.force)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let adam = || OptimizerConfig::adam(a.lr, 0.0);

    // before minutes of pretraining: can this network be frozen up to that layer?
    Frozen::new(fovea_vision::models::build(&a.model, 5, &mut Rng::new(0))?.as_ref(), &a.freeze)?;

    // 1. pretraining on classes 0-4
    let pretrained = fovea_vision::models::build(&a.model, 5, &mut Rng::new(a.seed))?;
    let mut optimizer = train::make_optimizer(pretrained.as_ref(), adam())?;
    let plan = Plan {
        train_set: &source,
        test_set: &source_test,
        epochs: a.pretrain_epochs,
        batch_size: 64,
        seed: a.seed,
        json: a.json,
        quiet: false,
    };
    let curve = train_curve("pretraining on classes 0-4", pretrained.as_ref(), &mut optimizer, &plan, None)?;
    let weights: std::collections::BTreeMap<String, fovea::Tensor> =
        fovea::nn::state_dict(pretrained.as_ref()).into_iter().map(|(n, v)| (n, v.tensor())).collect();
    let pretrain_accuracy = 1.0 - curve.test_error.last().copied().unwrap_or(1.0);

    // 2. classes 5-9 from a few pictures, three ways; every new head starts from the same draw
    let plan = Plan {
        train_set: &target,
        test_set: &target_test,
        epochs: a.epochs,
        batch_size: a.batch_size,
        seed: a.seed,
        json: a.json,
        quiet: false,
    };
    let fresh = |pretrained: bool| -> Result<Box<dyn Module>> {
        let model = fovea_vision::models::build(&a.model, 5, &mut Rng::new(a.seed.wrapping_add(1)))?;
        if pretrained {
            transfer::load_pretrained(model.as_ref(), &weights)?;
        }
        Ok(model)
    };
    let mut curves = Vec::new();
    let scratch = fresh(false)?;
    curves.push(train_curve(
        "from scratch",
        scratch.as_ref(),
        &mut train::make_optimizer(scratch.as_ref(), adam())?,
        &plan,
        None,
    )?);

    // frozen backbone, trained twice: on the frozen layers' cached outputs, and through them
    let frozen_model = fresh(true)?;
    let frozen = Frozen::new(frozen_model.as_ref(), &a.freeze)?;
    let start = Instant::now();
    let features = Dataset { images: frozen.features_all(&target.images, 500)?, labels: target.labels.clone() };
    let test_features =
        Dataset { images: frozen.features_all(&target_test.images, 500)?, labels: target_test.labels.clone() };
    let cache_plan = Plan { train_set: &features, test_set: &test_features, ..plan };
    let tail = frozen.tail();
    let cached = train_curve("frozen backbone", &tail, &mut train::make_optimizer(&tail, adam())?, &cache_plan, None)?;
    let cached_seconds = start.elapsed().as_secs_f64();
    let live_model = fresh(true)?;
    let live = Frozen::new(live_model.as_ref(), &a.freeze)?;
    let start = Instant::now();
    let quiet = Plan { quiet: true, ..plan };
    let through =
        train_curve("frozen backbone (no cache)", &live, &mut train::make_optimizer(&live, adam())?, &quiet, None)?;
    let live_seconds = start.elapsed().as_secs_f64();
    curves.push(cached);

    let tuned = fresh(true)?;
    curves.push(train_curve(
        "fine-tuned",
        tuned.as_ref(),
        &mut train::make_optimizer(tuned.as_ref(), adam())?,
        &plan,
        None,
    )?);

    let png = a.out.join("transfer.png");
    plot_curves(&curves, &png)?;
    let accuracy = |c: &Curve| 1.0 - c.test_error.last().copied().unwrap_or(1.0);
    let (scratch_acc, frozen_acc, tuned_acc) = (accuracy(&curves[0]), accuracy(&curves[1]), accuracy(&curves[2]));
    let same = through.test_error == curves[1].test_error;
    if a.json {
        println!(
            "{}",
            json!({"final": true, "model": a.model, "per_class": a.per_class, "pretrain_test_accuracy": pretrain_accuracy,
                   "scratch_test_accuracy": scratch_acc, "frozen_test_accuracy": frozen_acc, "finetuned_test_accuracy": tuned_acc,
                   "frozen_cached_seconds": cached_seconds, "frozen_uncached_seconds": live_seconds,
                   "cache_gives_the_same_result": same, "plot": png.display().to_string()})
        );
    } else {
        eprintln!(
            "{} pretrained on classes 0-4: {:.2}% test accuracy. Classes 5-9 from {} pictures each, {} epochs, \
             test accuracy on their 5,000 test pictures: from scratch {:.2}%, frozen up to {} {:.2}%, fine-tuned {:.2}%. \
             The frozen variant took {:.1} s on cached features against {:.1} s through the frozen layers ({:.1}x), \
             with {} results; plot in {}",
            a.model,
            100.0 * pretrain_accuracy,
            a.per_class,
            a.epochs,
            100.0 * scratch_acc,
            a.freeze,
            100.0 * frozen_acc,
            100.0 * tuned_acc,
            cached_seconds,
            live_seconds,
            live_seconds / cached_seconds,
            if same { "the same" } else { "different" },
            png.display()
        );
    }
    Ok(())
}
