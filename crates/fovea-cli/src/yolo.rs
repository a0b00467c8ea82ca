//! `fovea yolo train|detect|eval`: the notes' YOLO with anchor boxes, trained from scratch.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use fovea_vision::detect::dataset::read_dataset;
use fovea_vision::detect::detector::{self, DetectorEpoch};
use fovea_vision::detect::training::check_classes;
use fovea_vision::detect::{train_yolo, MapReport, NmsOptions, YoloConfig, YoloData, YoloObserver};
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
    /// A dataset in the darknet layout (images/, labels/, classes.txt); without it, synthetic
    /// shapes drawn in memory (--train-size pictures, and 500 others to validate on)
    #[arg(long)]
    data: Option<PathBuf>,
    /// Validation dataset (default: every 10th picture of --data)
    #[arg(long, requires = "data")]
    val: Option<PathBuf>,
    /// Run folder
    #[arg(long, default_value = "runs/yolo")]
    out: PathBuf,
    /// Side of the square network input (default: 128; with --data, the first picture's longer
    /// side rounded down to a multiple of 32, within 64..416)
    #[arg(long)]
    input_size: Option<usize>,
    /// Cells per side (default: input size / 16)
    #[arg(long)]
    grid: Option<usize>,
    /// Anchor boxes per cell, found by k-means on the training boxes (1 - IoU); `auto` adds
    /// anchors while each raises the mean best IoU by 0.02 or more
    #[arg(long, default_value = "5")]
    anchors: String,
    #[arg(value_parser = crate::range::count, long, default_value_t = 12)]
    epochs: usize,
    #[arg(value_parser = crate::range::count, long, default_value_t = 32)]
    batch_size: usize,
    /// Adam's learning rate
    #[arg(value_parser = crate::range::positive::<f32>, long, default_value_t = 0.002)]
    lr: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Synthetic training pictures per epoch, new ones every epoch (without --data)
    #[arg(value_parser = crate::range::count, long, default_value_t = 6000)]
    train_size: usize,
    /// Augment the training pictures every epoch, boxes moved with them (see `fovea train
    /// --augment`; e.g. mirror,crop:0.7,color)
    #[arg(long)]
    augment: Option<String>,
    /// One JSON object per epoch
    #[arg(long)]
    json: bool,
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
    /// Drop boxes whose score (pc times the class probability) is at most this
    #[arg(value_parser = crate::range::fraction::<f32>, long, default_value_t = 0.6)]
    min_score: f32,
    /// Suppress boxes of a class overlapping a better one by at least this IoU
    #[arg(value_parser = crate::range::fraction::<f32>, long, default_value_t = 0.5)]
    iou: f32,
    /// Folder for the annotated pictures (default: beside each picture, <name>-yolo.png)
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct EvalArgs {
    #[arg(long)]
    checkpoint: PathBuf,
    /// A labelled dataset in the darknet layout
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run(y: Yolo) -> Result<()> {
    match y {
        Yolo::Train(a) => train(a),
        Yolo::Detect(a) => detect(a),
        Yolo::Eval(a) => eval(a),
    }
}

/// Prints detector training: a bar per epoch and a line per epoch, or JSON lines.
struct Printer(crate::EpochBar);

impl YoloObserver for Printer {
    fn ready(&mut self, d: &YoloData) {
        self.0.len = d.train_pictures;
        if !self.0.hidden {
            eprintln!(
                "{} training pictures ({} boxes; {} share a cell and anchor with another and are left out), {} to validate on; \
                 input {input}x{input}, grid {grid}x{grid}, {} anchors (mean best IoU {:.3}); data ready in {:.1}s",
                d.train_pictures,
                d.boxes,
                d.dropped,
                d.val_pictures,
                d.anchors.shapes.len(),
                d.anchors.mean_iou,
                d.seconds,
                input = d.input,
                grid = d.grid
            );
        }
    }
    fn batch(&mut self, epoch: usize, seen: usize, loss: f32) {
        self.0.update(epoch, seen, format!("loss {loss:.4}"));
    }
    fn epoch(&mut self, e: &DetectorEpoch) {
        let epochs = self.0.epochs;
        self.0.end_epoch(e, || {
            format!(
                "epoch {}/{epochs}: loss {:.4} | validation mAP@0.5 {:.4} | {:.1}s",
                e.epoch, e.loss, e.val_map50, e.seconds
            )
        });
    }
}

fn train(a: TrainArgs) -> Result<()> {
    let anchors = match a.anchors.as_str() {
        "auto" => None,
        k => Some(
            k.parse::<usize>()
                .ok()
                .filter(|&k| (1..=20).contains(&k))
                .with_context(|| format!("--anchors must be a count from 1 to 20, or auto; got '{k}'"))?,
        ),
    };
    let config = YoloConfig {
        data: a.data.clone(),
        val: a.val.clone(),
        input_size: a.input_size,
        grid: a.grid,
        anchors,
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        seed: a.seed,
        train_size: a.train_size,
        augment: a.augment.clone(),
    };
    let start = Instant::now();
    let mut printer = Printer(crate::EpochBar::new(a.json, a.epochs, 0));
    let run = train_yolo(&config, &a.out, a.force, &mut printer).map_err(|e| match e {
        // the options that size the pictures held in memory
        fovea::Error::Budget { .. } => {
            let input = a.input_size.map(|s| format!(" at --input-size {s}")).unwrap_or_default();
            let pictures = match &a.data {
                None => format!("--train-size {}", a.train_size),
                Some(dir) => dir.display().to_string(),
            };
            anyhow::Error::new(e).context(format!("{pictures}{input}"))
        }
        e => e.into(),
    })?;
    let last = run.history.last().expect("one epoch ran");
    if a.json {
        println!("{}", json!({"final": true, "map50": last.val_map50, "run": a.out.display().to_string()}));
    } else {
        println!(
            "validation mAP@0.5 {:.4} after {} epochs ({:.0}s in all); detector, metrics.csv and plot.png in {}",
            last.val_map50,
            a.epochs,
            start.elapsed().as_secs_f32(),
            a.out.display()
        );
    }
    Ok(())
}

fn detect(a: DetectArgs) -> Result<()> {
    let (run, net) = detector::load_detector(&a.checkpoint)?;
    if !(a.iou > 0.0 && a.iou <= 1.0) {
        bail!("--iou must be in (0, 1], got {}", a.iou);
    }
    let options = NmsOptions { score_threshold: a.min_score, iou_threshold: a.iou, ..Default::default() };
    let outputs = fovea_vision::draw::drawing_paths(&a.images, a.out.as_deref(), "yolo")?;
    for (path, out) in a.images.iter().zip(&outputs) {
        let rgb = fovea_vision::image::load_rgb(path)?;
        let found = detector::detect_picture(&run, &net, &rgb, &options)?;
        fovea_vision::detect::draw_objects(&rgb, &found).save_png(out)?;
        if a.json {
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
    let (run, net) = detector::load_detector(&a.checkpoint)?;
    let set = read_dataset(&a.data)?;
    check_classes(&set, &a.data, &run.classes, "the detector was trained for")?;
    let grid = run.yolo_grid()?;
    let (x, objects) = (set.load_pictures(run.input)?, set.objects.clone());
    let report: MapReport = detector::evaluate(&net, &grid, &x, &objects)?;
    let per_class: Vec<_> = report
        .per_class
        .iter()
        .zip(&run.classes)
        .map(|(c, name)| {
            json!({"class": name, "ap50": c.ap, "precision": c.precision, "recall": c.recall, "labelled": c.labelled})
        })
        .collect();
    if a.json {
        println!("{}", json!({"map50": report.map, "per_class": per_class, "pictures": set.len()}));
    } else {
        println!("{} pictures: mAP@0.5 {:.4}", set.len(), report.map);
        for (c, name) in report.per_class.iter().zip(&run.classes) {
            println!(
                "  {name:<12} AP {}  precision {:.3}  recall {:.3}  ({} labelled)",
                c.ap.map_or("  -   ".to_string(), |v| format!("{v:.4}")),
                c.precision,
                c.recall,
                c.labelled
            );
        }
    }
    Ok(())
}
