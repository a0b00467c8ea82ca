//! `fovea yolo train|detect|eval`: the notes' YOLO with anchor boxes, trained from scratch.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use fovea_vision::detect::detector::{self};
use fovea_vision::detect::{train_yolo, NmsOptions, YoloConfig};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand)]
pub enum Yolo {
    /// Train a YOLO detector (default: on synthetic pedestrians, cars and motorcycles)
    Train(TrainArgs),
    /// Boxes in pictures: an annotated PNG per picture, and JSON
    Detect(DetectArgs),
    /// mAP@0.5 (VOC), per-class AP, precision and recall on a labelled dataset
    Eval(EvalArgs),
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    config: YoloConfig,
    /// Run folder
    #[arg(long, default_value = "runs/yolo")]
    out: PathBuf,
    /// Write into --out even if it already holds files, replacing them
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct DetectArgs {
    #[arg(long)]
    checkpoint: PathBuf,
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    nms: NmsOptions,
    /// Folder for the annotated pictures (default: beside each picture, <name>-yolo.png)
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub struct EvalArgs {
    #[arg(long)]
    checkpoint: PathBuf,
    /// A labelled dataset in the darknet layout
    #[arg(long)]
    data: PathBuf,
}

pub fn run(y: Yolo) -> Result<()> {
    match y {
        Yolo::Train(a) => train(a),
        Yolo::Detect(a) => detect(a),
        Yolo::Eval(a) => eval(a),
    }
}

fn train(a: TrainArgs) -> Result<()> {
    let config = &a.config;
    let start = Instant::now();
    let mut printer = crate::console(config.epochs, 0);
    let run = train_yolo(config, &a.out, a.force, &mut printer).map_err(|e| match e {
        // the options that size the pictures held in memory
        fovea::Error::Budget { .. } => {
            let input = config.input_size.map(|s| format!(" at --input-size {s}")).unwrap_or_default();
            let pictures = match &config.data {
                None => format!("--train-size {}", config.train_size),
                Some(dir) => dir.display().to_string(),
            };
            anyhow::Error::new(e).context(format!("{pictures}{input}"))
        }
        e => e.into(),
    })?;
    let last = run.history.last().expect("one epoch ran");
    crate::finished(last, &a.out, serde_json::json!({}), || {
        let (map, seconds) = (last.val_map50, start.elapsed().as_secs_f32());
        format!(
            "validation mAP@0.5 {map:.4} ({seconds:.0}s in all); detector, metrics.csv and plot.png in {}",
            a.out.display()
        )
    })
}

fn detect(a: DetectArgs) -> Result<()> {
    let (run, net) = detector::load_detector(&a.checkpoint)?;
    if a.nms.iou_threshold == 0.0 {
        bail!("--iou must be above 0");
    }
    let outputs = fovea_vision::draw::drawing_paths(&a.images, a.out.as_deref(), "yolo")?;
    for (path, out) in a.images.iter().zip(&outputs) {
        let rgb = fovea_vision::image::load_rgb(path)?;
        let found = detector::detect_picture(&run, &net, &rgb, &a.nms)?;
        fovea_vision::detect::draw_objects(&rgb, &found).save_png(out)?;
        if crate::json() {
            let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
            println!("{}", json!({"image": path.display().to_string(), "width": w, "height": h, "objects": found}));
        } else {
            println!("{}: {} object(s), drawn in {}", path.display(), found.len(), out.display());
            for o in &found {
                println!("  {} {:.3} {}", o.class, o.score, serde_json::to_value(o.bbox)?);
            }
        }
    }
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    crate::report(&detector::evaluate_detector(&a.checkpoint, &a.data)?)
}
