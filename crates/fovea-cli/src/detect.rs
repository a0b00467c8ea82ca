//! `fovea data shapes` (the synthetic detection dataset) and `fovea detect ...` (the
//! notes' detection chapter, from scratch).

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use fovea_vision::detect::dataset::{read_dataset, write_shapes};
use fovea_vision::detect::kmeans_anchors;
use fovea_vision::detect::localize::{self, RegressorConfig, RegressorScore, RegressorTask};
use fovea_vision::detect::shapes::ShapesConfig;
use fovea_vision::detect::sliding;
use serde_json::json;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Data {
    /// Draw a synthetic detection dataset (pedestrians, cars, motorcycles) in the darknet layout
    Shapes(ShapesArgs),
}

#[derive(Args)]
pub struct ShapesArgs {
    /// Folder to write images/, labels/, landmarks/ and classes.txt into
    #[arg(long)]
    out: PathBuf,
    #[arg(value_parser = crate::range::count, long, default_value_t = 1000)]
    count: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Side of the square pictures in pixels
    #[arg(value_parser = crate::range::whole(32, 1024), long, default_value_t = 128)]
    size: usize,
    #[arg(value_parser = crate::range::whole(0, 20), long, default_value_t = 0)]
    min_objects: usize,
    #[arg(value_parser = crate::range::whole(0, 20), long, default_value_t = 4)]
    max_objects: usize,
    /// Write into --out even if it already holds a dataset, replacing its pictures and labels
    /// (files it did not write are never removed: they are refused)
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand)]
pub enum Detect {
    /// Anchor boxes by k-means on the dataset's box shapes (distance 1 - IoU)
    Anchors(AnchorsArgs),
    /// Object localization: one network outputs [pc, bx, by, bh, bw, c1, c2, c3] per picture
    TrainLocalizer(RegressorArgs),
    /// Landmark detection: one network outputs (x, y) for each of an object's 4 landmarks
    TrainLandmarks(RegressorArgs),
    /// Train the notes' 14x14 window classifier on windows cut from synthetic pictures
    TrainWindows(TrainWindowsArgs),
    /// Run a window classifier over a picture, naively and as a convolution, and time both
    SlidingWindows(SlidingWindowsArgs),
}

#[derive(Args)]
pub struct RegressorArgs {
    /// Run folder
    #[arg(long)]
    out: PathBuf,
    /// Synthetic single-object pictures to train on (new ones every epoch); 1,000 others test
    #[arg(value_parser = crate::range::count, long, default_value_t = 4000)]
    train_size: usize,
    #[arg(value_parser = crate::range::count, long, default_value_t = 15)]
    epochs: usize,
    /// Side of the square pictures (a multiple of 16)
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Localizer: `logistic` (logistic pc, squared box error, log loss for the class: the
    /// better variant) or `squared` (the notes' squared error on all 8 values)
    #[arg(long, default_value = "logistic")]
    loss: String,
    /// Adam's learning rate at the start (it decays to 0 along a cosine)
    #[arg(value_parser = crate::range::positive::<f32>, long, default_value_t = 0.001)]
    lr: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    json: bool,
    /// Write into --out even if it already holds files, replacing them
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct TrainWindowsArgs {
    /// Run folder
    #[arg(long, default_value = "runs/windows")]
    out: PathBuf,
    /// Synthetic pictures to cut training windows from (500 others give the test windows)
    #[arg(value_parser = crate::range::count, long, default_value_t = 3000)]
    pictures: usize,
    #[arg(value_parser = crate::range::count, long, default_value_t = 8)]
    epochs: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    json: bool,
    /// Write into --out even if it already holds files, replacing them
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct SlidingWindowsArgs {
    /// A run folder of `fovea detect train-windows`
    #[arg(long)]
    checkpoint: PathBuf,
    image: PathBuf,
    /// Window sides in the picture's pixels; each is scaled to the classifier's 14x14
    #[arg(long, value_delimiter = ',', default_value = "24,36,48")]
    windows: Vec<usize>,
    /// Keep windows whose object class is more likely than this
    #[arg(value_parser = crate::range::fraction::<f32>, long, default_value_t = 0.9)]
    min_score: f32,
    /// Where to draw the windows kept after NMS (default: <picture>-windows.png beside it)
    #[arg(long)]
    output: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct AnchorsArgs {
    /// A dataset in the darknet layout (images/, labels/, classes.txt)
    #[arg(long)]
    data: PathBuf,
    /// Anchors to find; the mean best IoU is reported for every count from 1 to K
    #[arg(value_parser = crate::range::count, short, default_value_t = 5)]
    k: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

pub fn data(d: Data) -> Result<()> {
    match d {
        Data::Shapes(a) => {
            if a.min_objects > a.max_objects {
                bail!("--min-objects {} is more than --max-objects {}", a.min_objects, a.max_objects);
            }
            let config = ShapesConfig {
                size: a.size,
                min_objects: a.min_objects,
                max_objects: a.max_objects,
                ..Default::default()
            };
            fovea_vision::train::check_new_folder(&a.out, a.force)?;
            write_shapes(&a.out, a.count, a.seed, &config, a.force)?;
            println!("{} pictures of {}x{} in {}", a.count, a.size, a.size, a.out.display());
            Ok(())
        }
    }
}

pub fn run(d: Detect) -> Result<()> {
    match d {
        Detect::Anchors(a) => anchors(a),
        Detect::TrainLocalizer(a) => train_regressor(a, false),
        Detect::TrainLandmarks(a) => train_regressor(a, true),
        Detect::TrainWindows(a) => train_windows(a),
        Detect::SlidingWindows(a) => sliding_windows(a),
    }
}

fn anchors(a: AnchorsArgs) -> Result<()> {
    let set = read_dataset(&a.data)?;
    let shapes: Vec<(f32, f32)> = set.objects.iter().flatten().map(|o| (o.bbox.w, o.bbox.h)).collect();
    if a.k > shapes.len() {
        bail!("-k must be at most the {} labelled boxes of {}", shapes.len(), a.data.display());
    }
    let mut per_k = Vec::new();
    for k in 1..=a.k {
        per_k.push(kmeans_anchors(&shapes, k, a.seed)?);
    }
    let last = per_k.last().expect("k >= 1");
    if a.json {
        let ious: Vec<f32> = per_k.iter().map(|r| r.mean_iou).collect();
        println!("{}", json!({"anchors": last.shapes, "mean_iou_per_k": ious, "boxes": shapes.len()}));
    } else {
        println!("{} boxes in {} pictures", shapes.len(), set.len());
        for (k, r) in per_k.iter().enumerate() {
            println!("k = {}: mean best IoU {:.4}", k + 1, r.mean_iou);
        }
        println!("anchors (width, height relative to the picture), smallest first:");
        for (w, h) in &last.shapes {
            println!("  {w:.4} {h:.4}");
        }
    }
    Ok(())
}

fn train_windows(a: TrainWindowsArgs) -> Result<()> {
    let run = sliding::train_window_classifier(a.pictures, a.epochs, a.seed, &a.out, a.force, &mut |e, (n, tests)| {
        if a.json {
            println!("{}", serde_json::to_string(e).expect("epochs serialise"));
        } else {
            eprintln!(
                "epoch {}/{}: {n} windows, loss {:.4}, accuracy {:.2}% | {tests} test windows: {:.2}%",
                e.epoch,
                a.epochs,
                e.train_loss,
                100.0 * e.train_accuracy,
                100.0 * e.test_accuracy
            );
        }
    })?;
    if !a.json {
        println!("window classifier: {:.2}% on test windows; saved in {}", 100.0 * run.test_accuracy, a.out.display());
    }
    Ok(())
}

fn sliding_windows(a: SlidingWindowsArgs) -> Result<()> {
    let output = fovea_vision::draw::drawing_path(a.output.as_deref(), &a.image, "windows", "output")?;
    let rgb = fovea_vision::image::load_rgb(&a.image)?;
    let (run, searches, kept) =
        sliding::find_objects(&a.checkpoint, &rgb, &a.windows, a.min_score).map_err(|e| e.in_file(&a.image))?;
    let (h, w) = (rgb.shape()[1] as f32, rgb.shape()[2] as f32);
    let objects: Vec<_> = kept.iter().map(|d| d.found(&run.classes, w, h)).collect();
    fovea_vision::detect::draw_objects(&rgb, &objects).save_png(&output)?;
    let naive_total: f64 = searches.iter().map(|s| s.naive_seconds).sum();
    let conv_total: f64 = searches.iter().map(|s| s.convolutional_seconds).sum();
    if a.json {
        println!(
            "{}",
            json!({"image": a.image.display().to_string(), "windows": searches, "objects": objects,
            "naive_seconds": naive_total, "convolutional_seconds": conv_total})
        );
        return Ok(());
    }
    for s in &searches {
        println!(
            "{0}x{0} windows ({1}, {2:.1} px apart): naive {3:.1} ms, convolutional {4:.1} ms ({5:.1}x), largest difference {6:.1e}",
            s.window,
            s.windows,
            s.stride,
            1e3 * s.naive_seconds,
            1e3 * s.convolutional_seconds,
            s.naive_seconds / s.convolutional_seconds.max(1e-9),
            s.max_difference
        );
    }
    println!(
        "in all: naive {:.1} ms, convolutional {:.1} ms ({:.1}x faster); {} window(s) kept after NMS, drawn in {}",
        1e3 * naive_total,
        1e3 * conv_total,
        naive_total / conv_total.max(1e-9),
        kept.len(),
        output.display()
    );
    Ok(())
}

fn train_regressor(a: RegressorArgs, landmarks: bool) -> Result<()> {
    let squared = match a.loss.as_str() {
        "logistic" => false,
        "squared" => true,
        other => bail!("unknown --loss '{other}' (logistic, squared)"),
    };
    let task = if landmarks { RegressorTask::Landmarks } else { RegressorTask::Localizer { squared } };
    let config =
        RegressorConfig { task, size: a.size, epochs: a.epochs, train_size: a.train_size, lr: a.lr, seed: a.seed };
    let last = localize::train_regressor(&config, &a.out, a.force, &mut |e| {
        if a.json {
            println!("{}", serde_json::to_string(e).expect("epochs serialise"));
            return;
        }
        match e.score {
            RegressorScore::Landmarks { mean_pixel_error } => eprintln!(
                "epoch {}/{}: loss {:.5} | mean landmark error {mean_pixel_error:.2} px ({}x{} pictures)",
                e.epoch, a.epochs, e.train_loss, a.size, a.size
            ),
            RegressorScore::Localizer(s) => eprintln!(
                "epoch {}/{}: loss {:.4} | object or not {:.2}%, class {:.2}%, mean IoU {:.3}",
                e.epoch,
                a.epochs,
                e.train_loss,
                100.0 * s.object_accuracy,
                100.0 * s.class_accuracy,
                s.mean_iou
            ),
        }
    })?;
    if !a.json {
        println!("on 1,000 test pictures: {}; network in {}", serde_json::to_string(&last)?, a.out.display());
    }
    Ok(())
}
