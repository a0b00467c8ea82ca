//! `fovea train`, `fovea eval`, `fovea predict`: Fashion-MNIST classifiers.

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use fovea::nn::parameter_count;
use fovea_vision::augment::Augment;
use fovea_vision::run::{ResumeChanges, Run, RunConfig, RunObserver};
use fovea_vision::train::{self, EpochMetrics, Progress};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, ValueEnum)]
pub enum OptimizerName {
    Sgd,
    Adam,
    Adamw,
}

#[derive(Args)]
pub struct TrainArgs {
    /// Architecture: lenet5 (the default), cnn-bn, or any of the zoo (resnet18, vgg11_bn, googlenet, ...)
    #[arg(long)]
    model: Option<String>,
    /// Side of the square images the model is trained on (default: 28 for lenet5 and cnn-bn;
    /// for the ImageNet architectures 32 on Fashion-MNIST, 64 for alexnet, 224 on image folders)
    #[arg(value_parser = crate::range::whole(8, 1024), long)]
    image_size: Option<usize>,
    /// Epochs in all (default 10; with --resume, the run's own plan)
    #[arg(value_parser = crate::range::count, long)]
    epochs: Option<usize>,
    /// Pictures per batch [default: 64]
    #[arg(value_parser = crate::range::count, long)]
    batch_size: Option<usize>,
    /// [default: adam]
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerName>,
    /// Learning rate (default: 0.001 for Adam/AdamW, 0.01 for SGD; with --resume, overrides the run's)
    #[arg(value_parser = crate::range::positive::<f32>, long)]
    lr: Option<f32>,
    /// SGD momentum [default: 0.9]
    #[arg(value_parser = crate::range::fraction::<f32>, long)]
    momentum: Option<f32>,
    /// [default: 0]
    #[arg(value_parser = crate::range::non_negative::<f32>, long)]
    weight_decay: Option<f32>,
    /// [default: 0]
    #[arg(long)]
    seed: Option<u64>,
    /// Run folder (default: runs/<model>-<unix time>)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its last completed epoch (up to --epochs in all),
    /// with the run's own data, model and optimizer settings (a new --lr may be given)
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Use only N training images (Fashion-MNIST's first N; an image folder's from each class in turn)
    #[arg(value_parser = crate::range::count, long)]
    train_size: Option<usize>,
    /// Fashion-MNIST's IDX files (default: the repository's data/fashion-mnist), or an image
    /// folder with one sub-folder per class (optionally split into train/ and val/)
    #[arg(long)]
    data: Option<PathBuf>,
    /// Augment the training pictures on the loader thread: a comma-separated list of
    /// mirror, crop[:MIN_AREA], color[:SHIFT], pca[:SIGMA], rotate[:DEGREES], shear[:FACTOR],
    /// warp[:STRENGTH], e.g. mirror,crop,color,rotate:15,shear:0.2,warp
    #[arg(long)]
    augment: Option<String>,
    /// Start from pretrained weights (a run folder or a safetensors file with the model's
    /// tensor names); every layer but the classifier head is copied, the head is new
    #[arg(long)]
    init: Option<PathBuf>,
    /// Freeze the layers up to and including this one (no gradient, no update, evaluation
    /// mode); `none` fine-tunes everything
    #[arg(long)]
    freeze: Option<String>,
    /// The classes of the new head; must match the classes in --data
    #[arg(value_parser = crate::range::count, long)]
    num_classes: Option<usize>,
    /// With --freeze: compute the frozen layers' outputs once (kept in the run folder as
    /// features.safetensors) and train the rest on them
    #[arg(long)]
    cache_features: bool,
    /// Print one JSON object per epoch instead of a progress bar
    #[arg(long)]
    json: bool,
    /// Write into --out even if it already holds files, replacing them
    #[arg(long, conflicts_with = "resume")]
    force: bool,
}

/// Refuses an option given with `--resume` whose value differs from the run's own.
fn keeps<T: PartialEq + std::fmt::Display>(option: &str, given: Option<T>, run: T) -> Result<()> {
    match given {
        Some(v) if v != run => {
            bail!("--{option} {v} differs from the run's {run}; a resumed run keeps its own (start a new run to change it)")
        }
        _ => Ok(()),
    }
}

/// Prints a run's progress: a bar per epoch and a line per epoch, or JSON lines.
struct Printer(crate::EpochBar);

impl RunObserver for Printer {
    fn note(&mut self, line: &str) {
        if !self.0.hidden {
            eprintln!("{line}");
        }
    }
    fn batch(&mut self, epoch: usize, p: &Progress) {
        self.0.update(epoch, p.seen, format!("loss {:.4} acc {:.4}", p.loss(), p.accuracy()));
    }
    fn epoch(&mut self, m: &EpochMetrics) {
        let epochs = self.0.epochs;
        self.0.end_epoch(m, || {
            format!(
                "epoch {}/{epochs}: train loss {:.4} acc {:.2}% | test loss {:.4} acc {:.2}% | {:.1}s, {:.0} img/s",
                m.epoch,
                m.train_loss,
                100.0 * m.train_accuracy,
                m.test_loss,
                100.0 * m.test_accuracy,
                m.seconds,
                m.images_per_second
            )
        });
    }
}

fn optimizer_name(o: OptimizerName) -> &'static str {
    match o {
        OptimizerName::Sgd => "sgd",
        OptimizerName::Adam => "adam",
        OptimizerName::Adamw => "adamw",
    }
}

/// The checkpoint to resume, refusing options that would change what the run is.
fn checkpoint_to_resume(a: &TrainArgs, path: &Path) -> Result<train::Checkpoint> {
    if a.init.is_some() || a.freeze.is_some() || a.cache_features {
        bail!("--init, --freeze and --cache-features start a run; a resumed run keeps its own");
    }
    let mut ckpt = train::load_checkpoint(path)?;
    let run = &ckpt.meta;
    keeps("batch-size", a.batch_size, run.batch_size)?;
    keeps("optimizer", a.optimizer.map(optimizer_name), run.optimizer.as_str())?;
    keeps("momentum", a.momentum, run.momentum)?;
    keeps("weight-decay", a.weight_decay, run.weight_decay)?;
    keeps("seed", a.seed, run.seed)?;
    keeps("num-classes", a.num_classes, run.classes)?;
    match run.train_size {
        Some(n) => keeps("train-size", a.train_size, n)?,
        // runs made before the size was recorded take it from the option, as they did then
        None => ckpt.meta.train_size = a.train_size,
    }
    let run = &ckpt.meta;
    if let Some(m) = a.model.as_ref().filter(|m| **m != run.model) {
        bail!("the run to resume trains {}; it cannot continue as --model {m}", run.model);
    }
    let shape = run.input_shape()?;
    if a.image_size.is_some_and(|s| s != shape[1]) {
        bail!("the run to resume trains on {}x{} images; --image-size cannot change that", shape[1], shape[2]);
    }
    let asked = a.augment.as_deref().map(Augment::parse).transpose()?.map(|p| p.spec());
    if asked.is_some() && asked != run.augment {
        bail!(
            "the run to resume trains with --augment {:?}; it cannot change",
            run.augment.as_deref().unwrap_or("(none)")
        );
    }
    Ok(ckpt)
}

/// The configuration and folder of a new run from the options.
fn new_run(a: &TrainArgs) -> Result<(RunConfig, PathBuf)> {
    if a.cache_features && a.freeze.as_deref().is_none_or(|f| f == "none") {
        bail!("--cache-features needs --freeze LAYER: only frozen layers' outputs can be cached");
    }
    if a.cache_features && a.augment.is_some() {
        bail!("--cache-features cannot go with --augment: the cache holds the pictures' features unaugmented");
    }
    let model = a.model.clone().unwrap_or_else(|| "lenet5".into());
    let dir = a.out.clone().unwrap_or_else(|| crate::default_run_folder(&model));
    if dir.join(train::CHECKPOINT_FILE).exists() && !a.force {
        bail!(
            "{} already holds a run; continue it with --resume {0}, choose another --out, or give --force to replace it",
            dir.display()
        );
    }
    let d = RunConfig::default();
    let config = RunConfig {
        model,
        data: a.data.clone(),
        image_size: a.image_size,
        train_size: a.train_size,
        num_classes: a.num_classes,
        optimizer: a.optimizer.map_or(d.optimizer, |o| optimizer_name(o).into()),
        lr: a.lr,
        momentum: a.momentum.unwrap_or(d.momentum),
        weight_decay: a.weight_decay.unwrap_or(d.weight_decay),
        batch_size: a.batch_size.unwrap_or(d.batch_size),
        seed: a.seed.unwrap_or(d.seed),
        augment: a.augment.clone(),
        init: a.init.clone(),
        freeze: a.freeze.clone(),
        cache_features: a.cache_features,
        epochs: a.epochs.unwrap_or(d.epochs),
    };
    Ok((config, dir))
}

pub fn train(a: TrainArgs) -> Result<()> {
    let mut run = match &a.resume {
        Some(dir) => {
            let changes = ResumeChanges { lr: a.lr, epochs: a.epochs, data: a.data.clone() };
            Run::resume(dir, checkpoint_to_resume(&a, dir)?, &changes)?
        }
        None => {
            let (config, dir) = new_run(&a)?;
            Run::start(&config, &dir, a.force, &mut Printer(crate::EpochBar::new(a.json, 0, 0)))?
        }
    };
    let (train_size, test_size) = run.sizes();
    if !a.json {
        eprintln!(
            "training {} ({} parameters) on {train_size} images, testing on {test_size}, {} threads, {} kernels; run folder {}",
            run.meta.model,
            parameter_count(run.model.as_ref()),
            fovea::runtime::num_threads(),
            fovea::runtime::current_isa(),
            run.dir.display()
        );
    }
    run.fit(&mut Printer(crate::EpochBar::new(a.json, run.meta.epochs, train_size)))?;
    let last = run.meta.history.last().expect("at least one epoch ran");
    if a.json {
        let mut summary = serde_json::to_value(last)?;
        summary["run"] = json!(run.dir.display().to_string());
        summary["final"] = json!(true);
        println!("{summary}");
    } else {
        eprintln!(
            "done: test accuracy {:.2}%; checkpoint, metrics.csv and plot.png in {}",
            100.0 * last.test_accuracy,
            run.dir.display()
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct EvalArgs {
    /// Run folder (or checkpoint.safetensors) written by `fovea train`
    #[arg(long)]
    checkpoint: PathBuf,
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where to write the confusion matrix picture (default: <run>/confusion.png)
    #[arg(long)]
    png: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let e = fovea_vision::run::evaluate_run(&a.checkpoint, a.data.as_deref())?;
    let png = a.png.clone().unwrap_or_else(|| {
        if a.checkpoint.is_dir() {
            a.checkpoint.join("confusion.png")
        } else {
            PathBuf::from("confusion.png")
        }
    });
    fovea_vision::plot::confusion_picture(&e.confusion_matrix, &e.class_names).save_png(&png)?;
    let names = &e.class_names;
    if a.json {
        let per_class: Vec<_> =
            names.iter().zip(&e.per_class_accuracy).map(|(n, a)| json!({"class": n, "accuracy": a})).collect();
        println!(
            "{}",
            json!({"accuracy": e.accuracy, "loss": e.loss, "per_class_accuracy": per_class,
                   "confusion_matrix": e.confusion_matrix, "png": png.display().to_string()})
        );
        return Ok(());
    }
    println!("accuracy {:.2}% (loss {:.4}) on {} test images", 100.0 * e.accuracy, e.loss, e.test_images);
    println!("\nper-class accuracy:");
    for (n, acc) in names.iter().zip(&e.per_class_accuracy) {
        println!("  {n:<12} {:6.2}%", 100.0 * acc);
    }
    println!("\nconfusion matrix (rows: true class, columns: predicted):");
    print!("{:>12}", "");
    for i in 0..names.len() {
        print!("{i:>6}");
    }
    println!();
    for (i, row) in e.confusion_matrix.iter().enumerate() {
        print!("{:>9} {i:>2}", names[i].chars().take(9).collect::<String>());
        for v in row {
            print!("{v:>6}");
        }
        println!();
    }
    println!("\nconfusion matrix picture: {}", png.display());
    Ok(())
}

#[derive(Args)]
pub struct PredictArgs {
    /// Run folder (or checkpoint.safetensors) written by `fovea train`
    #[arg(long)]
    checkpoint: PathBuf,
    /// PNG or JPEG pictures, prepared as the run's training images were (for Fashion-MNIST
    /// runs: grey, light on dark, 28x28, then the run's input size)
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[arg(value_parser = crate::range::count, long, default_value_t = 3)]
    top: usize,
    #[arg(long)]
    json: bool,
}

pub fn predict(a: PredictArgs) -> Result<()> {
    let classifier = fovea_vision::run::Classifier::load(&a.checkpoint)?;
    let names = &classifier.meta.class_names;
    for path in &a.images {
        let top = classifier.classify_file(path, a.top)?;
        if a.json {
            let preds: Vec<_> =
                top.iter().map(|&(c, p)| json!({"class": c, "name": names[c], "probability": p})).collect();
            println!("{}", json!({"image": path.display().to_string(), "top": preds}));
        } else {
            println!("{}", path.display());
            for &(c, p) in &top {
                println!("  {:<12} {:6.2}%", names[c], 100.0 * p);
            }
        }
    }
    Ok(())
}
