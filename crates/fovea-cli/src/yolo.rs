//! `fovea yolo train|detect|eval`: the notes' YOLO with anchor boxes, trained from scratch.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use fovea::optim::OptimizerConfig;
use fovea::{Rng, Tensor};
use fovea_vision::augment::{self, Augment};
use fovea_vision::detect::dataset::{read_dataset, shapes_in_memory, DetectionSet};
use fovea_vision::detect::detector::{self, DetectorEpoch, DetectorRun};
use fovea_vision::detect::shapes::{ShapesConfig, CLASSES};
use fovea_vision::detect::yolo::{Object, YoloGrid};
use fovea_vision::detect::{kmeans_anchors, MapReport, NmsOptions};
use fovea_vision::draw::Canvas;
use fovea_vision::plot::{chart, Series, BLUE, ORANGE};
use serde_json::json;
use std::path::{Path, PathBuf};
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
    #[arg(long)]
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

/// Anchors for `--anchors auto`: k-means for k = 1, 2, ... until one more anchor would raise
/// the mean best IoU by less than 0.02 (diminishing returns, YOLOv2's reasoning for its 5),
/// at most 9.
fn auto_anchors(shapes: &[(f32, f32)], seed: u64) -> Result<fovea_vision::detect::Anchors> {
    let mut best = kmeans_anchors(shapes, 1, seed)?;
    for k in 2..=9 {
        let Ok(next) = kmeans_anchors(shapes, k, seed) else { break };
        if next.mean_iou - best.mean_iou < 0.02 {
            break;
        }
        best = next;
    }
    Ok(best)
}

/// Refuses `other` if it names its classes differently from `known` (a model's, or the
/// training data's): its labels would mean other things.
fn check_classes(other: &DetectionSet, path: &Path, known: &[String], what: &str) -> Result<()> {
    if other.classes.len() > known.len() {
        bail!(
            "{} has {} classes, but {what} {} ({})",
            path.display(),
            other.classes.len(),
            known.len(),
            known.join(", ")
        );
    }
    if other.named
        && known.iter().any(|k| k.parse::<usize>().is_err())
        && other.classes[..] != known[..other.classes.len()]
    {
        bail!("{} names its classes {:?}, but {what} {:?}", path.display(), other.classes, known);
    }
    Ok(())
}

fn split_every_tenth(t: &Tensor, objects: &[Vec<Object>]) -> Result<[(Tensor, Vec<Vec<Object>>); 2]> {
    let n = objects.len();
    let (val, train): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| i % 10 == 9);
    let pick = |idx: &[usize]| -> Result<(Tensor, Vec<Vec<Object>>)> {
        Ok((t.index_select(0, idx)?, idx.iter().map(|&i| objects[i].clone()).collect()))
    };
    Ok([pick(&train)?, pick(&val)?])
}

fn train(a: TrainArgs) -> Result<()> {
    fovea_vision::train::check_new_folder(&a.out, a.force)?;
    let anchor_count = match a.anchors.as_str() {
        "auto" => None,
        k => Some(
            k.parse::<usize>()
                .ok()
                .filter(|&k| (1..=20).contains(&k))
                .with_context(|| format!("--anchors must be a count from 1 to 20, or auto; got '{k}'"))?,
        ),
    };
    let start = Instant::now();
    let ((train_x, train_o), (val_x, val_o), classes, input) = match &a.data {
        None => {
            let input = a.input_size.unwrap_or(128);
            detector::check_grid(input, a.grid.unwrap_or(input / 16))?;
            let config = ShapesConfig { size: input, ..Default::default() };
            // the validation pictures come from another seed: none is a training picture
            let context = || format!("--train-size {} at --input-size {input}", a.train_size);
            let train = shapes_in_memory(0, a.train_size, a.seed, &config).with_context(context)?;
            let val = shapes_in_memory(0, 500, a.seed.wrapping_add(1_000_003), &config).with_context(context)?;
            let (train, val) = ((train.pictures, train.objects), (val.pictures, val.objects));
            (train, val, CLASSES.iter().map(|s| s.to_string()).collect::<Vec<_>>(), input)
        }
        Some(dir) => {
            let set = read_dataset(dir)?;
            let input = match a.input_size {
                Some(s) => s,
                None => {
                    let first = fovea_vision::image::load_rgb(&set.images[0])?;
                    (first.shape()[1].max(first.shape()[2]) / 32 * 32).clamp(64, 416)
                }
            };
            // before any picture is loaded
            detector::check_grid(input, a.grid.unwrap_or(input / 16))?;
            let (x, o) =
                (set.load_pictures(input).with_context(|| format!("--input-size {input}"))?, set.objects.clone());
            let (train, val) = match &a.val {
                Some(v) => {
                    let vset = read_dataset(v)?;
                    check_classes(&vset, v, &set.classes, "the training data has")?;
                    ((x, o), (vset.load_pictures(input)?, vset.objects.clone()))
                }
                None => {
                    let [t, v] = split_every_tenth(&x, &o)?;
                    (t, v)
                }
            };
            if val.1.is_empty() {
                bail!("{} has {} pictures: too few to hold every 10th out; give --val DIR", dir.display(), set.len());
            }
            (train, val, set.classes.clone(), input)
        }
    };
    let shapes: Vec<(f32, f32)> = train_o.iter().flatten().map(|o| (o.bbox.w, o.bbox.h)).collect();
    let anchors = match anchor_count {
        Some(k) => kmeans_anchors(&shapes, k, a.seed)?,
        None => auto_anchors(&shapes, a.seed)?,
    };
    let grid = YoloGrid::new(a.grid.unwrap_or(input / 16), anchors.shapes.clone(), classes.len())?;
    let net = detector::network(input, &grid, &mut Rng::new(a.seed))?;
    let (mut targets, dropped) = detector::encode_all(&grid, &train_o)?;
    let mut pipeline = a.augment.as_deref().map(Augment::parse).transpose()?;
    if let Some(p) = &mut pipeline {
        p.fit(&train_x)?;
    }
    // the epoch's pictures and boxes before augmentation
    let (mut train_x, mut epoch_objects) = (train_x, train_o.clone());
    let mut optimizer = fovea_vision::train::make_optimizer(&net, OptimizerConfig::adam(a.lr, 0.0))?;
    if !a.json {
        eprintln!(
            "{} training pictures ({} boxes; {} share a cell and anchor with another and are left out), {} to validate on; \
             input {input}x{input}, grid {}x{}, {} anchors (mean best IoU {:.3}); data ready in {:.1}s",
            train_o.len(),
            shapes.len(),
            dropped,
            val_o.len(),
            grid.grid,
            grid.grid,
            grid.anchors.len(),
            anchors.mean_iou,
            start.elapsed().as_secs_f32()
        );
    }
    let mut run = DetectorRun {
        input,
        grid: grid.grid,
        anchors: grid.anchors.clone(),
        classes: classes.clone(),
        lr: a.lr,
        batch_size: a.batch_size,
        seed: a.seed,
        history: vec![],
    };
    for epoch in 1..=a.epochs {
        if a.data.is_none() && epoch > 1 {
            // synthetic data is free: every epoch sees new pictures, and nothing is memorised
            let first = ((epoch - 1) * a.train_size) as u64;
            let fresh =
                shapes_in_memory(first, a.train_size, a.seed, &ShapesConfig { size: input, ..Default::default() })?;
            train_x = fresh.pictures;
            targets = detector::encode_all(&grid, &fresh.objects)?.0;
            epoch_objects = fresh.objects;
        }
        let mut rng = Rng::derive(a.seed, epoch as u64);
        // distorted copies for this epoch, the boxes moved with them
        let augmented = match &pipeline {
            Some(p) => {
                let (x, moved) = augment::detection_set(p, &train_x, &epoch_objects, rng.next_u64())?;
                Some((x, detector::encode_all(&grid, &moved)?.0))
            }
            None => None,
        };
        let (epoch_x, epoch_targets) = augmented.as_ref().map_or((&train_x, &targets), |(x, t)| (x, t));
        let bar = crate::progress_bar(train_o.len(), a.json, format!("epoch {epoch}/{}", a.epochs));
        let t0 = Instant::now();
        let loss = fovea_vision::train::fit_epoch(
            &net,
            &mut optimizer,
            (epoch_x, epoch_targets),
            a.batch_size,
            &mut rng,
            &|out, target| grid.loss(out, target),
            &mut |seen, l| {
                bar.set_position(seen as u64);
                bar.set_message(format!("loss {l:.4}"));
            },
        );
        bar.finish_and_clear();
        let loss = loss.with_context(|| {
            format!("training stopped in epoch {epoch}; {} keeps the last good epoch", a.out.display())
        })?;
        let report = detector::evaluate(&net, &grid, &val_x, &val_o)?;
        let e = DetectorEpoch { epoch, loss, val_map50: report.map, seconds: t0.elapsed().as_secs_f32() };
        run.history.push(e.clone());
        detector::save_detector(&a.out, &net, &run)?;
        write_history(&a.out, &run.history)?;
        if a.json {
            println!("{}", serde_json::to_string(&e)?);
        } else {
            eprintln!(
                "epoch {epoch}/{}: loss {:.4} | validation mAP@0.5 {:.4} | {:.1}s",
                a.epochs, loss, report.map, e.seconds
            );
        }
    }
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

/// `metrics.csv` and `plot.png` (loss and validation mAP per epoch).
fn write_history(dir: &Path, history: &[DetectorEpoch]) -> Result<()> {
    let mut csv = String::from("epoch,loss,val_map50,seconds\n");
    for e in history {
        csv.push_str(&format!("{},{:.6},{:.6},{:.2}\n", e.epoch, e.loss, e.val_map50, e.seconds));
    }
    fovea::io::write_atomic(&dir.join("metrics.csv"), csv.as_bytes())?;
    let mut canvas = Canvas::new(960, 380, [255, 255, 255]);
    let pts = |f: fn(&DetectorEpoch) -> f32| history.iter().map(|e| (e.epoch as f32, f(e))).collect::<Vec<_>>();
    chart(
        &mut canvas,
        (0, 0, 480, 380),
        "YOLO loss",
        "epoch",
        &[Series { name: "train", color: BLUE, points: pts(|e| e.loss) }],
    );
    chart(
        &mut canvas,
        (480, 0, 480, 380),
        "mAP@0.5",
        "epoch",
        &[Series { name: "validation", color: ORANGE, points: pts(|e| e.val_map50 as f32) }],
    );
    Ok(canvas.save_png(&dir.join("plot.png"))?)
}

const CLASS_COLOURS: [[u8; 3]; 6] =
    [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180], [240, 50, 230]];

fn detect(a: DetectArgs) -> Result<()> {
    let (run, net) = detector::load_detector(&a.checkpoint)?;
    let grid = run.yolo_grid()?;
    if !(a.iou > 0.0 && a.iou <= 1.0) {
        bail!("--iou must be in (0, 1], got {}", a.iou);
    }
    let options = NmsOptions { score_threshold: a.min_score, iou_threshold: a.iou, ..Default::default() };
    for path in &a.images {
        let rgb = fovea_vision::image::load_rgb(path)?;
        let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
        let x =
            fovea_vision::image::resize_bilinear(&rgb, run.input, run.input)?.reshape(&[1, 3, run.input, run.input])?;
        let found = detector::detect(&net, &grid, &x, &options)?.remove(0);
        // draw on the picture itself, boxes in its pixels
        let mut canvas = Canvas::from_rgb(&rgb);
        let mut faces = Vec::new();
        for d in &found {
            let b = d.bbox.scale(w as f32, h as f32).clip(w as f32, h as f32);
            let c = b.corners();
            let colour = CLASS_COLOURS[d.class % CLASS_COLOURS.len()];
            canvas.rect(c.x0 as i64, c.y0 as i64, (c.x1 - c.x0) as i64, (c.y1 - c.y0) as i64, 1, colour);
            canvas.text(
                c.x0 as i64,
                (c.y0 as i64 - 8).max(0),
                &format!("{} {:.2}", run.classes[d.class], d.score),
                1,
                colour,
            );
            faces.push(json!({"class": run.classes[d.class], "score": d.score,
                "box": {"x": c.x0, "y": c.y0, "width": c.x1 - c.x0, "height": c.y1 - c.y0}}));
        }
        let out = match &a.out {
            Some(dir) => {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                dir.join(format!("{}-yolo.png", path.file_stem().unwrap_or_default().to_string_lossy()))
            }
            None => path.with_file_name(format!("{}-yolo.png", path.file_stem().unwrap_or_default().to_string_lossy())),
        };
        canvas.save_png(&out)?;
        if a.json {
            println!("{}", json!({"image": path.display().to_string(), "width": w, "height": h, "objects": faces}));
        } else {
            println!("{}: {} object(s), drawn in {}", path.display(), found.len(), out.display());
            for f in &faces {
                println!("  {} {:.3} {}", f["class"].as_str().unwrap_or(""), f["score"], f["box"]);
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
