//! Reproducible experiments from the notes, each a comparison of training curves plotted
//! side by side, and the 1-D and 3-D examples:
//! - [`plain_vs_residual`]: the degradation problem. A plain deep network and the residual
//!   network of the same depth (He et al.'s CIFAR-style networks, whose shortcuts have no
//!   parameters) start from the same weights and train on the same Fashion-MNIST images in
//!   the same order.
//! - [`augment_comparison`]: the same network on a few pictures, with and without data
//!   augmentation.
//! - [`transfer_comparison`]: learning five new classes from a few pictures each, from
//!   scratch or from a network pretrained on the other five.
//! - [`Example`]: a 1-D CNN on generated ECG strips, a 3-D CNN on generated volumes.
//!
//! ```no_run
//! use fovea_vision::experiments::{augment_comparison, AugmentConfig};
//! let config = AugmentConfig { train_size: 500, epochs: 5, ..AugmentConfig::default() };
//! let report = augment_comparison(&config, "runs/augment".as_ref(), false, &mut ())?;
//! println!("{:.3} without, {:.3} with augmentation", report.plain_test_accuracy, report.augmented_test_accuracy);
//! # Ok::<(), fovea::Error>(())
//! ```

use crate::augment::Augment;
use crate::data::synthetic::{self, ECG_LENGTH, ECG_RATE, RHYTHMS, VOLUME_CLASSES};
use crate::data::{Dataset, FashionMnist, Split};
use crate::draw::Canvas;
use crate::plot::{chart, Series, BLUE, GREEN, ORANGE};
use crate::train::{self, Progress};
use crate::transfer::{self, Frozen};
use fovea::nn::Module;
use fovea::optim::{Optimizer, OptimizerConfig};
use fovea::{Error, Result, Rng, Tensor};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Training and test error per epoch of one network.
#[derive(Clone, Debug)]
pub struct Curve {
    /// the curve's name in the legend
    pub name: String,
    /// per epoch, 1 - the training accuracy during the epoch
    pub train_error: Vec<f32>,
    /// per epoch, 1 - the test accuracy after it
    pub test_error: Vec<f32>,
}

impl Curve {
    /// Test accuracy after the last epoch.
    pub fn final_accuracy(&self) -> f32 {
        1.0 - self.test_error.last().copied().unwrap_or(1.0)
    }
}

/// One epoch of one curve.
#[derive(Clone, Debug, Serialize)]
pub struct CurvePoint {
    /// the curve's name
    pub model: String,
    /// epoch number, from 1
    pub epoch: usize,
    /// epochs in all
    pub epochs: usize,
    /// 1 - the training accuracy during the epoch
    pub train_error: f32,
    /// 1 - the test accuracy after the epoch
    pub test_error: f32,
    /// seconds the epoch took, training and testing
    pub seconds: f32,
}

impl std::fmt::Display for CurvePoint {
    /// The epoch's figures, after `<model> epoch N/M: `.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training error {:.2}%, test error {:.2}% ({:.1} s)",
            100.0 * self.train_error,
            100.0 * self.test_error,
            self.seconds
        )
    }
}

/// Hears how the curves of an experiment go.
pub trait CurveObserver {
    /// The running totals of `model`'s `epoch` after each batch, of `total` pictures.
    fn batch(&mut self, _model: &str, _epoch: usize, _progress: &Progress, _total: usize) {}
    /// An epoch's errors.
    fn epoch(&mut self, _point: &CurvePoint) {}
}

impl CurveObserver for () {}

/// What every curve of an experiment shares.
#[derive(Clone, Copy)]
pub struct Plan<'a> {
    /// pictures trained on
    pub train_set: &'a Dataset,
    /// pictures measured after each epoch
    pub test_set: &'a Dataset,
    /// epochs per curve
    pub epochs: usize,
    /// pictures per batch
    pub batch_size: usize,
    /// seed of every epoch's batch order, dropout and augmentation
    pub seed: u64,
}

/// Trains `model` for the plan's epochs (batches drawn from (seed, epoch), so two models
/// see the same batches), recording the errors after each epoch.
pub fn train_curve(
    name: &str,
    model: &dyn Module,
    optimizer: &mut Optimizer,
    plan: &Plan,
    augment: Option<&Augment>,
    observer: &mut dyn CurveObserver,
) -> Result<Curve> {
    let mut curve = Curve { name: name.into(), train_error: vec![], test_error: vec![] };
    for epoch in 1..=plan.epochs {
        let mut rng = Rng::derive(plan.seed, epoch as u64);
        let start = Instant::now();
        let p = train::train_epoch(model, optimizer, plan.train_set, plan.batch_size, &mut rng, augment, &mut |p| {
            observer.batch(name, epoch, p, plan.train_set.len())
        })?;
        let test = train::evaluate_trained(model, plan.test_set, 500)?;
        curve.train_error.push(1.0 - p.accuracy());
        curve.test_error.push(1.0 - test.accuracy());
        observer.epoch(&CurvePoint {
            model: name.into(),
            epoch,
            epochs: plan.epochs,
            train_error: 1.0 - p.accuracy(),
            test_error: 1.0 - test.accuracy(),
            seconds: start.elapsed().as_secs_f32(),
        });
    }
    Ok(curve)
}

/// Training and test error of each curve (up to three), side by side, as a PNG.
pub fn plot_curves(curves: &[Curve], png: &Path) -> Result<()> {
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
    canvas.save_png(png)
}

/// Checks that the experiment's folder `out` may be written (see
/// [`train::check_new_folder`]) and makes it.
fn experiment_folder(out: &Path, force: bool) -> Result<()> {
    train::check_new_folder(out, force)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))
}

/// The plain and residual networks of one depth, on the first Fashion-MNIST pictures.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct PlainVsResidualConfig {
    /// Layers with weights, 6n+2 (20, 32, 44, 56, ...)
    #[cfg_attr(feature = "cli", arg(long, default_value_t = PlainVsResidualConfig::default().depth))]
    pub depth: usize,
    /// epochs per network
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = PlainVsResidualConfig::default().epochs))]
    pub epochs: usize,
    /// Training images (the first N of Fashion-MNIST's 60,000)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = PlainVsResidualConfig::default().train_size))]
    pub train_size: usize,
    /// Test images the test error is measured on (the first N of 10,000)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = PlainVsResidualConfig::default().test_size))]
    pub test_size: usize,
    /// pictures per batch
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = PlainVsResidualConfig::default().batch_size))]
    pub batch_size: usize,
    /// SGD learning rate (momentum 0.9, weight decay 1e-4, as He et al.)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::positive::<f32>, long, default_value_t = PlainVsResidualConfig::default().lr))]
    pub lr: f32,
    /// random seed: the shared initial draws and the batches
    #[cfg_attr(feature = "cli", arg(long, default_value_t = PlainVsResidualConfig::default().seed))]
    pub seed: u64,
}

impl Default for PlainVsResidualConfig {
    fn default() -> Self {
        PlainVsResidualConfig {
            depth: 56,
            epochs: 5,
            train_size: 10_000,
            test_size: 2_000,
            batch_size: 128,
            lr: 0.1,
            seed: 0,
        }
    }
}

/// Trains `cifar-plainN` and `cifar-resnetN` from the same initial draws on the same batches;
/// plots their errors in `out/plain-vs-residual.png`. Returns the two curves and the plot.
pub fn plain_vs_residual(
    config: &PlainVsResidualConfig,
    out: &Path,
    force: bool,
    observer: &mut dyn CurveObserver,
) -> Result<(Vec<Curve>, PathBuf)> {
    let dir = FashionMnist::default_dir();
    let train_set = FashionMnist::load(&dir, Split::Train)?.take(config.train_size);
    let test_set = FashionMnist::load(&dir, Split::Test)?.take(config.test_size);
    experiment_folder(out, force)?;
    let plan = Plan {
        train_set: &train_set,
        test_set: &test_set,
        epochs: config.epochs,
        batch_size: config.batch_size,
        seed: config.seed,
    };
    let mut curves = Vec::new();
    for name in [format!("cifar-plain{}", config.depth), format!("cifar-resnet{}", config.depth)] {
        // the same initial draws, the same batches: only the shortcuts differ
        let model = crate::models::build(&name, 10, &mut Rng::new(config.seed))
            .map_err(|e| Error::setting("depth", e.to_string()))?;
        let mut optimizer = train::make_optimizer(model.as_ref(), OptimizerConfig::sgd(config.lr, 0.9, 1e-4))?;
        curves.push(train_curve(&name, model.as_ref(), &mut optimizer, &plan, None, observer)?);
    }
    let png = out.join("plain-vs-residual.png");
    plot_curves(&curves, &png)?;
    Ok((curves, png))
}

/// One network on a few Fashion-MNIST pictures, with and without augmentation.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct AugmentConfig {
    /// The augmentations (see `fovea train --augment`)
    #[cfg_attr(feature = "cli", arg(long, default_value_t = AugmentConfig::default().augment))]
    pub augment: String,
    /// Architecture: lenet5, cnn-bn, or any of the model zoo (`models::ZOO`)
    #[cfg_attr(feature = "cli", arg(long, default_value_t = AugmentConfig::default().model))]
    pub model: String,
    /// Training images (the first N of Fashion-MNIST's 60,000)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = AugmentConfig::default().train_size))]
    pub train_size: usize,
    /// epochs per network
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = AugmentConfig::default().epochs))]
    pub epochs: usize,
    /// pictures per batch
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = AugmentConfig::default().batch_size))]
    pub batch_size: usize,
    /// Adam's learning rate
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::positive::<f32>, long, default_value_t = AugmentConfig::default().lr))]
    pub lr: f32,
    /// random seed: the shared initial weights, the batches and the augmentations
    #[cfg_attr(feature = "cli", arg(long, default_value_t = AugmentConfig::default().seed))]
    pub seed: u64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            augment: "crop:0.85,rotate:8,warp:0.05".into(),
            model: "lenet5".into(),
            train_size: 2_000,
            epochs: 40,
            batch_size: 64,
            lr: 0.001,
            seed: 0,
        }
    }
}

/// What augmentation changed.
#[derive(Clone, Debug, Serialize)]
pub struct AugmentReport {
    /// The network.
    pub model: String,
    /// Training pictures.
    pub train_size: usize,
    /// Epochs per network.
    pub epochs: usize,
    /// The augmentations, fully spelt out.
    pub augment: String,
    /// test accuracy without augmentation
    pub plain_test_accuracy: f32,
    /// test accuracy with it
    pub augmented_test_accuracy: f32,
    /// the curves' PNG
    pub plot: PathBuf,
}

impl std::fmt::Display for AugmentReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} on {} pictures, {} epochs: test accuracy {:.2}% without augmentation, {:.2}% with {}; plot in {}",
            self.model,
            self.train_size,
            self.epochs,
            100.0 * self.plain_test_accuracy,
            100.0 * self.augmented_test_accuracy,
            self.augment,
            self.plot.display()
        )
    }
}

/// The same network trained on the same few pictures, with and without augmentation; test
/// accuracy on all 10,000 test pictures; the curves plotted in `out/augment.png`.
pub fn augment_comparison(
    config: &AugmentConfig,
    out: &Path,
    force: bool,
    observer: &mut dyn CurveObserver,
) -> Result<AugmentReport> {
    let mut pipeline = Augment::parse(&config.augment)?;
    let dir = FashionMnist::default_dir();
    let train_set = FashionMnist::load(&dir, Split::Train)?.take(config.train_size);
    let test_set = FashionMnist::load(&dir, Split::Test)?;
    pipeline.fit(&train_set.images)?;
    experiment_folder(out, force)?;
    let plan = Plan {
        train_set: &train_set,
        test_set: &test_set,
        epochs: config.epochs,
        batch_size: config.batch_size,
        seed: config.seed,
    };
    let mut curves = Vec::new();
    for (name, augment) in [("plain", None), ("augmented", Some(&pipeline))] {
        let model = crate::models::build(&config.model, 10, &mut Rng::new(config.seed))?;
        let mut optimizer = train::make_optimizer(model.as_ref(), OptimizerConfig::adam(config.lr, 0.0))?;
        curves.push(train_curve(name, model.as_ref(), &mut optimizer, &plan, augment, observer)?);
    }
    let plot = out.join("augment.png");
    plot_curves(&curves, &plot)?;
    Ok(AugmentReport {
        model: config.model.clone(),
        train_size: config.train_size,
        epochs: config.epochs,
        augment: pipeline.spec(),
        plain_test_accuracy: curves[0].final_accuracy(),
        augmented_test_accuracy: curves[1].final_accuracy(),
        plot,
    })
}

/// Pretraining on Fashion-MNIST's classes 0-4, then learning 5-9 from a few pictures.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct TransferConfig {
    /// Architecture: lenet5, cnn-bn, or any of the model zoo (`models::ZOO`)
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TransferConfig::default().model))]
    pub model: String,
    /// Labelled pictures per new class (classes 5-9: Sandal, Shirt, Sneaker, Bag, Ankle boot)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = TransferConfig::default().per_class))]
    pub per_class: usize,
    /// Epochs of pretraining on classes 0-4 (30,000 pictures)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = TransferConfig::default().pretrain_epochs))]
    pub pretrain_epochs: usize,
    /// Epochs on the few new pictures
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = TransferConfig::default().epochs))]
    pub epochs: usize,
    /// The last frozen layer of the frozen-backbone variant
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TransferConfig::default().freeze))]
    pub freeze: String,
    /// pictures per batch on the new classes (pretraining uses 64)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = TransferConfig::default().batch_size))]
    pub batch_size: usize,
    /// Adam's learning rate
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::positive::<f32>, long, default_value_t = TransferConfig::default().lr))]
    pub lr: f32,
    /// random seed: the initial weights (the new heads share one draw) and the batches
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TransferConfig::default().seed))]
    pub seed: u64,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            model: "lenet5".into(),
            per_class: 50,
            pretrain_epochs: 5,
            epochs: 40,
            freeze: "pool2".into(),
            batch_size: 25,
            lr: 0.001,
            seed: 0,
        }
    }
}

/// What pretraining gave the five new classes.
#[derive(Clone, Debug, Serialize)]
pub struct TransferReport {
    /// The network.
    pub model: String,
    /// Labelled pictures per new class.
    pub per_class: usize,
    /// Epochs on the new classes.
    pub epochs: usize,
    /// The last frozen layer of the frozen variant.
    pub freeze: String,
    /// on classes 0-4's test pictures, after pretraining
    pub pretrain_test_accuracy: f32,
    /// on classes 5-9's test pictures, trained from scratch
    pub scratch_test_accuracy: f32,
    /// the same, with the pretrained layers up to `freeze` frozen
    pub frozen_test_accuracy: f32,
    /// the same, with every pretrained layer fine-tuned
    pub finetuned_test_accuracy: f32,
    /// The frozen variant trained on the frozen layers' cached outputs, and through them.
    pub frozen_cached_seconds: f64,
    /// seconds of the frozen variant trained through the frozen layers
    pub frozen_uncached_seconds: f64,
    /// whether both frozen runs gave the same test errors, epoch by epoch
    pub cache_gives_the_same_result: bool,
    /// the three curves' PNG
    pub plot: PathBuf,
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

/// Pretrains on classes 0-4, then learns 5-9 from `per_class` pictures each three ways
/// (from scratch, frozen up to `freeze`, fine-tuned); the frozen variant is trained twice,
/// on cached features and through the frozen layers, to time the cache. Plots the three
/// curves in `out/transfer.png`.
pub fn transfer_comparison(
    config: &TransferConfig,
    out: &Path,
    force: bool,
    observer: &mut dyn CurveObserver,
) -> Result<TransferReport> {
    let dir = FashionMnist::default_dir();
    let (train_all, test_all) = (FashionMnist::load(&dir, Split::Train)?, FashionMnist::load(&dir, Split::Test)?);
    let (source, source_test) = (five_classes(&train_all, 0, usize::MAX), five_classes(&test_all, 0, usize::MAX));
    let (target, target_test) = (five_classes(&train_all, 5, config.per_class), five_classes(&test_all, 5, usize::MAX));
    experiment_folder(out, force)?;
    let adam = || OptimizerConfig::adam(config.lr, 0.0);
    // before minutes of pretraining: can this network be frozen up to that layer?
    Frozen::new(crate::models::build(&config.model, 5, &mut Rng::new(0))?.as_ref(), &config.freeze)?;

    // 1. pretraining on classes 0-4
    let pretrained = crate::models::build(&config.model, 5, &mut Rng::new(config.seed))?;
    let plan = Plan {
        train_set: &source,
        test_set: &source_test,
        epochs: config.pretrain_epochs,
        batch_size: 64,
        seed: config.seed,
    };
    let mut optimizer = train::make_optimizer(pretrained.as_ref(), adam())?;
    let curve = train_curve("pretraining on classes 0-4", pretrained.as_ref(), &mut optimizer, &plan, None, observer)?;
    let weights: BTreeMap<String, Tensor> =
        fovea::nn::state_dict(pretrained.as_ref()).into_iter().map(|(n, v)| (n, v.tensor())).collect();

    // 2. classes 5-9 from a few pictures, three ways; every new head starts from the same draw
    let plan = Plan { train_set: &target, test_set: &target_test, epochs: config.epochs, ..plan };
    let plan = Plan { batch_size: config.batch_size, ..plan };
    let fresh = |pretrained: bool| -> Result<Box<dyn Module>> {
        let model = crate::models::build(&config.model, 5, &mut Rng::new(config.seed.wrapping_add(1)))?;
        if pretrained {
            transfer::load_pretrained(model.as_ref(), &weights)?;
        }
        Ok(model)
    };
    let train_one = |name: &str, model: &dyn Module, plan: &Plan, observer: &mut dyn CurveObserver| {
        train_curve(name, model, &mut train::make_optimizer(model, adam())?, plan, None, observer)
    };
    let scratch = fresh(false)?;
    let scratch = train_one("from scratch", scratch.as_ref(), &plan, observer)?;

    // frozen backbone, trained twice: on the frozen layers' cached outputs, and through them
    let frozen_model = fresh(true)?;
    let frozen = Frozen::new(frozen_model.as_ref(), &config.freeze)?;
    let start = Instant::now();
    let features = Dataset { images: frozen.features_all(&target.images, 500)?, labels: target.labels.clone() };
    let test_features =
        Dataset { images: frozen.features_all(&target_test.images, 500)?, labels: target_test.labels.clone() };
    let cache_plan = Plan { train_set: &features, test_set: &test_features, ..plan };
    let cached = train_one("frozen backbone", &frozen.tail(), &cache_plan, observer)?;
    let frozen_cached_seconds = start.elapsed().as_secs_f64();
    let live_model = fresh(true)?;
    let live = Frozen::new(live_model.as_ref(), &config.freeze)?;
    let start = Instant::now();
    let through = train_one("frozen backbone (no cache)", &live, &plan, &mut ())?;
    let frozen_uncached_seconds = start.elapsed().as_secs_f64();

    let tuned = fresh(true)?;
    let tuned = train_one("fine-tuned", tuned.as_ref(), &plan, observer)?;
    let plot = out.join("transfer.png");
    let curves = [scratch, cached, tuned];
    plot_curves(&curves, &plot)?;
    Ok(TransferReport {
        model: config.model.clone(),
        per_class: config.per_class,
        epochs: config.epochs,
        freeze: config.freeze.clone(),
        pretrain_test_accuracy: curve.final_accuracy(),
        scratch_test_accuracy: curves[0].final_accuracy(),
        frozen_test_accuracy: curves[1].final_accuracy(),
        finetuned_test_accuracy: curves[2].final_accuracy(),
        frozen_cached_seconds,
        frozen_uncached_seconds,
        cache_gives_the_same_result: through.test_error == curves[1].test_error,
        plot,
    })
}

impl std::fmt::Display for TransferReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pretrained on classes 0-4: {:.2}% test accuracy. Classes 5-9 from {} pictures each, {} epochs, \
             test accuracy on their 5,000 test pictures: from scratch {:.2}%, frozen up to {} {:.2}%, fine-tuned {:.2}%. \
             The frozen variant took {:.1} s on cached features against {:.1} s through the frozen layers ({:.1}x), \
             with {} results; plot in {}",
            self.model,
            100.0 * self.pretrain_test_accuracy,
            self.per_class,
            self.epochs,
            100.0 * self.scratch_test_accuracy,
            self.freeze,
            100.0 * self.frozen_test_accuracy,
            100.0 * self.finetuned_test_accuracy,
            self.frozen_cached_seconds,
            self.frozen_uncached_seconds,
            self.frozen_uncached_seconds / self.frozen_cached_seconds,
            if self.cache_gives_the_same_result { "the same" } else { "different" },
            self.plot.display()
        )
    }
}

/// The notes' 1-D and 3-D generalisations of convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExampleKind {
    /// A 1-D CNN classifies generated ECG strips: normal, atrial fibrillation, premature
    /// beats, tachycardia.
    Ecg1d,
    /// A 3-D CNN finds which generated volumes hold a small sphere among boxes.
    Volume3d,
}

impl ExampleKind {
    /// The example's name: `ecg1d` or `volume3d`.
    pub fn name(self) -> &'static str {
        match self {
            ExampleKind::Ecg1d => "ecg1d",
            ExampleKind::Volume3d => "volume3d",
        }
    }
    /// The class names.
    pub fn classes(self) -> &'static [&'static str] {
        match self {
            ExampleKind::Ecg1d => &RHYTHMS,
            ExampleKind::Volume3d => &VOLUME_CLASSES,
        }
    }
}

/// How an example trains.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ExampleConfig {
    /// Generated training samples
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = ExampleConfig::default().train_size))]
    pub train_size: usize,
    /// Generated test samples (another seed)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = ExampleConfig::default().test_size))]
    pub test_size: usize,
    /// passes over the training samples
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = ExampleConfig::default().epochs))]
    pub epochs: usize,
    /// samples per batch
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = ExampleConfig::default().batch_size))]
    pub batch_size: usize,
    /// Adam's learning rate
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::positive::<f32>, long, default_value_t = ExampleConfig::default().lr))]
    pub lr: f32,
    /// random seed: the data, the initial weights and the batches
    #[cfg_attr(feature = "cli", arg(long, default_value_t = ExampleConfig::default().seed))]
    pub seed: u64,
}

impl Default for ExampleConfig {
    fn default() -> Self {
        ExampleConfig { train_size: 4000, test_size: 1000, epochs: 8, batch_size: 32, lr: 0.001, seed: 0 }
    }
}

/// The most samples an example generates for either set.
pub const MAX_EXAMPLE_SAMPLES: usize = 200_000;

/// An example's data and untrained network.
pub struct Example {
    /// which example
    pub kind: ExampleKind,
    /// generated training samples
    pub train_set: Dataset,
    /// generated test samples
    pub test_set: Dataset,
    /// the network, untrained until [`Example::train`]
    pub model: Box<dyn Module>,
}

/// What an example learnt.
#[derive(Clone, Debug, Serialize)]
pub struct ExampleReport {
    /// The example's name.
    pub example: &'static str,
    /// share of test samples classified right, 0..1
    pub test_accuracy: f32,
    /// One over the number of classes.
    pub chance: f32,
    /// Test accuracy on each class's samples, by class name.
    pub per_class_accuracy: BTreeMap<String, f32>,
    /// test error after each epoch
    pub curve_test_error: Vec<f32>,
}

impl std::fmt::Display for Example {
    /// The network and data, before training.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: a CNN of {} parameters on {} generated samples of shape {:?}, tested on {}",
            self.kind.name(),
            fovea::nn::parameter_count(self.model.as_ref()),
            self.train_set.len(),
            &self.train_set.images.shape()[1..],
            self.test_set.len()
        )
    }
}

impl std::fmt::Display for ExampleReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per: Vec<String> = self.per_class_accuracy.iter().map(|(c, p)| format!("{c} {:.1}%", 100.0 * p)).collect();
        write!(
            f,
            "{}: test accuracy {:.2}% (chance {:.0}%): {}",
            self.example,
            100.0 * self.test_accuracy,
            100.0 * self.chance,
            per.join(", ")
        )
    }
}

impl Example {
    /// Generates the example's data (the test set from another seed: no sample is seen
    /// twice) and its network.
    pub fn new(kind: ExampleKind, config: &ExampleConfig) -> Result<Example> {
        for (name, size) in [("train_size", config.train_size), ("test_size", config.test_size)] {
            if size > MAX_EXAMPLE_SAMPLES {
                return Err(Error::setting(
                    name,
                    format!("{size} is more than the {MAX_EXAMPLE_SAMPLES} generated samples a set may have"),
                ));
            }
        }
        let test_seed = config.seed ^ 0x7e57;
        let mut rng = Rng::new(config.seed);
        Ok(match kind {
            ExampleKind::Ecg1d => Example {
                kind,
                train_set: synthetic::ecg_signals(config.train_size, config.seed)?,
                test_set: synthetic::ecg_signals(config.test_size, test_seed)?,
                model: Box::new(crate::models::ecg_cnn(RHYTHMS.len(), &mut rng)?),
            },
            ExampleKind::Volume3d => Example {
                kind,
                train_set: synthetic::volumes(config.train_size, 16, config.seed)?,
                test_set: synthetic::volumes(config.test_size, 16, test_seed)?,
                model: Box::new(crate::models::volume_cnn(VOLUME_CLASSES.len(), &mut rng)?),
            },
        })
    }

    /// Trains the network and measures it on the test set, per class.
    pub fn train(&self, config: &ExampleConfig, observer: &mut dyn CurveObserver) -> Result<ExampleReport> {
        let mut optimizer = train::make_optimizer(self.model.as_ref(), OptimizerConfig::adam(config.lr, 0.0))?;
        let plan = Plan {
            train_set: &self.train_set,
            test_set: &self.test_set,
            epochs: config.epochs,
            batch_size: config.batch_size,
            seed: config.seed,
        };
        let curve = train_curve(self.kind.name(), self.model.as_ref(), &mut optimizer, &plan, None, observer)?;
        let (test, predictions) = train::evaluate_or(self.model.as_ref(), &self.test_set, 500, train::DIVERGED)?;
        let labels = &self.test_set.labels;
        let classes = self.kind.classes();
        let per_class_accuracy = (0..classes.len())
            .map(|c| {
                let of_class: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
                let right = of_class.iter().filter(|&&i| predictions[i] == c).count();
                (classes[c].to_string(), right as f32 / of_class.len().max(1) as f32)
            })
            .collect();
        let classes = classes.len();
        Ok(ExampleReport {
            example: self.kind.name(),
            test_accuracy: test.accuracy(),
            chance: 1.0 / classes as f32,
            per_class_accuracy,
            curve_test_error: curve.test_error,
        })
    }

    /// A picture of test samples of each class: the first ECG strip of each rhythm, or
    /// maximum-intensity projections (along depth) of four volumes of each class.
    pub fn picture(&self) -> Result<Canvas> {
        let set = &self.test_set;
        match self.kind {
            ExampleKind::Ecg1d => {
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
            ExampleKind::Volume3d => {
                let side = set.images.shape()[2];
                let plane = side * side;
                let mut tiles = Vec::new();
                for c in 0..VOLUME_CLASSES.len() {
                    for i in (0..set.len()).filter(|&i| set.labels[i] == c).take(4) {
                        let volume = &set.images.data()[i * side * plane..(i + 1) * side * plane];
                        let mip = (0..plane)
                            .map(|p| (0..side).map(|z| volume[z * plane + p]).fold(0f32, f32::max).clamp(0.0, 1.0))
                            .collect();
                        tiles.push(Tensor::new(&[1, side, side], mip)?);
                    }
                }
                crate::visualize::grid(&tiles, 4, 8)
            }
        }
    }
}
