//! `fovea train`, `fovea eval`, `fovea predict`: Fashion-MNIST classifiers.

use anyhow::{bail, Result};
use clap::Args;
use fovea_vision::run::{ResumeChanges, Run, RunConfig};
use fovea_vision::train::{self};
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    config: RunConfig,
    /// Run folder (default: runs/<model>-<unix time>)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its last completed epoch (up to --epochs in all),
    /// with the run's own data, model and optimizer settings (a new --lr may be given)
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Write into --out even if it already holds files, replacing them
    #[arg(long, conflicts_with = "resume")]
    force: bool,
}

/// Starts the run the options describe, in `--out` or a new timestamped folder.
fn new_run(a: &TrainArgs) -> Result<Run> {
    let c = &a.config;
    let dir = a.out.clone().unwrap_or_else(|| crate::default_run_folder(&c.model));
    if dir.join(train::CHECKPOINT_FILE).exists() && !a.force {
        bail!(
            "{} already holds a run; continue it with --resume {0}, choose another --out, or give --force to replace it",
            dir.display()
        );
    }
    Ok(Run::start(c, &dir, a.force, &mut crate::console(0, 0))?)
}

/// `fovea train`; `matches` tell which options were given (a resumed run keeps the rest).
pub fn train(a: TrainArgs, matches: &clap::ArgMatches) -> Result<()> {
    let given = |id: &str| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
    let mut run = match &a.resume {
        Some(dir) => {
            let c = &a.config;
            let changes = ResumeChanges { lr: c.lr, epochs: given("epochs").then_some(c.epochs), data: c.data.clone() };
            let checkpoint = train::load_checkpoint(dir).and_then(|mut checkpoint| {
                fovea_vision::run::check_resume(&mut checkpoint, c, &given)?;
                Ok(checkpoint)
            });
            // on several processes, every rank reads the checkpoint: all go on or none
            let checkpoint = fovea::dist::world().agree(checkpoint, "reading the checkpoint")?;
            Run::resume(dir, checkpoint, &changes)?
        }
        None => new_run(&a)?,
    };
    crate::note(&run);
    let train_size = run.sizes().0;
    run.fit(&mut crate::console(run.meta.epochs, train_size))?;
    let last = run.meta.history.last().expect("at least one epoch ran");
    crate::finished(last, &run.dir, json!({}), || {
        let accuracy = 100.0 * last.test_accuracy;
        format!("done: test accuracy {accuracy:.2}%; checkpoint, metrics.csv and plot.png in {}", run.dir.display())
    })
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
    if crate::json() {
        let mut line = serde_json::to_value(&e)?;
        let per_class = e.class_names.iter().zip(&e.per_class_accuracy);
        line["per_class_accuracy"] = per_class.map(|(n, a)| json!({"class": n, "accuracy": a})).collect();
        line["png"] = json!(png.display().to_string());
        println!("{line}");
    } else {
        println!("{e}\n\nconfusion matrix picture: {}", png.display());
    }
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
    #[arg(value_parser = fovea_vision::cli::count, long, default_value_t = 3)]
    top: usize,
}

pub fn predict(a: PredictArgs) -> Result<()> {
    let classifier = fovea_vision::run::Classifier::load(&a.checkpoint)?;
    for path in &a.images {
        crate::print_predictions(path, &classifier.classify_file(path, a.top)?);
    }
    Ok(())
}
