//! `fovea experiment plain-vs-residual`: the notes' degradation problem, measured. A plain
//! deep network and the residual network of the same depth (He et al.'s CIFAR-style
//! networks, whose shortcuts have no parameters) start from the same weights and train on
//! the same Fashion-MNIST images in the same order; their training error per epoch is
//! plotted side by side.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use fovea::Rng;
use fovea_vision::data::{FashionMnist, Split};
use fovea_vision::draw::Canvas;
use fovea_vision::plot::{chart, Series, BLUE, ORANGE};
use fovea_vision::train;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand)]
pub enum Experiment {
    /// Train a plain deep network and a residual one of the same depth; plot their errors
    PlainVsResidual(PlainVsResidualArgs),
}

#[derive(Args)]
pub struct PlainVsResidualArgs {
    /// Layers with weights, 6n+2 (20, 32, 44, 56, ...)
    #[arg(long, default_value_t = 56)]
    depth: usize,
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Training images (the first N of Fashion-MNIST's 60,000)
    #[arg(long, default_value_t = 10_000)]
    train_size: usize,
    /// Test images the test error is measured on (the first N of 10,000)
    #[arg(long, default_value_t = 2_000)]
    test_size: usize,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// SGD learning rate (momentum 0.9, weight decay 1e-4, as He et al.)
    #[arg(long, default_value_t = 0.1)]
    lr: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the plot and the per-epoch figures
    #[arg(long, default_value = "runs/plain-vs-residual")]
    out: PathBuf,
    /// One JSON object per model and epoch
    #[arg(long)]
    json: bool,
}

pub fn run(e: Experiment) -> Result<()> {
    match e {
        Experiment::PlainVsResidual(a) => plain_vs_residual(a),
    }
}

/// Training and test error per epoch of one network.
struct Curve {
    name: String,
    train_error: Vec<f32>,
    test_error: Vec<f32>,
}

fn plain_vs_residual(a: PlainVsResidualArgs) -> Result<()> {
    if a.epochs == 0 || a.batch_size == 0 || a.train_size == 0 || a.test_size == 0 {
        bail!("--epochs, --batch-size, --train-size and --test-size must be at least 1");
    }
    let dir = FashionMnist::default_dir();
    let train_set = FashionMnist::load(&dir, Split::Train)?.take(a.train_size);
    let test_set = FashionMnist::load(&dir, Split::Test)?.take(a.test_size);
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut curves = Vec::new();
    for name in [format!("cifar-plain{}", a.depth), format!("cifar-resnet{}", a.depth)] {
        // the same initial draws, the same batches: only the shortcuts differ
        let model = fovea_vision::models::build(&name, 10, &mut Rng::new(a.seed))?;
        let mut optimizer = train::make_optimizer(model.as_ref(), fovea::optim::OptimizerConfig::sgd(a.lr, 0.9, 1e-4))?;
        let mut curve = Curve { name: name.clone(), train_error: vec![], test_error: vec![] };
        for epoch in 1..=a.epochs {
            let mut rng = Rng::derive(a.seed, epoch as u64);
            let bar = crate::progress_bar(train_set.len(), a.json, format!("{name} epoch {epoch}/{}", a.epochs));
            let start = Instant::now();
            let p = train::train_epoch(model.as_ref(), &mut optimizer, &train_set, a.batch_size, &mut rng, &mut |p| {
                bar.set_position(p.seen as u64);
                bar.set_message(format!("train error {:.3}", 1.0 - p.accuracy()));
            })?;
            bar.finish_and_clear();
            let (test, _) = train::evaluate(model.as_ref(), &test_set, 500)?;
            curve.train_error.push(1.0 - p.accuracy());
            curve.test_error.push(1.0 - test.accuracy());
            let line = json!({"model": name, "epoch": epoch, "train_error": 1.0 - p.accuracy(),
                              "test_error": 1.0 - test.accuracy(), "seconds": start.elapsed().as_secs_f32()});
            if a.json {
                println!("{line}");
            } else {
                eprintln!(
                    "{name} epoch {epoch}: training error {:.2}%, test error {:.2}% ({:.0} s)",
                    100.0 * (1.0 - p.accuracy()),
                    100.0 * (1.0 - test.accuracy()),
                    start.elapsed().as_secs_f32()
                );
            }
        }
        curves.push(curve);
    }
    let png = a.out.join("plain-vs-residual.png");
    let mut canvas = Canvas::new(960, 380, [255, 255, 255]);
    let series = |errors: fn(&Curve) -> &Vec<f32>| -> Vec<Series> {
        curves
            .iter()
            .zip([ORANGE, BLUE])
            .map(|(c, color)| Series {
                name: &c.name,
                color,
                points: errors(c).iter().enumerate().map(|(i, &e)| ((i + 1) as f32, e)).collect(),
            })
            .collect()
    };
    chart(&mut canvas, (0, 0, 480, 380), "training error", "epoch", &series(|c| &c.train_error));
    chart(&mut canvas, (480, 0, 480, 380), "test error", "epoch", &series(|c| &c.test_error));
    canvas.save_png(&png)?;
    if !a.json {
        eprintln!("plot in {}", png.display());
    }
    Ok(())
}
