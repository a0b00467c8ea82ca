//! `fovea data shapes` (the synthetic detection dataset) and `fovea detect ...` (the
//! notes' detection chapter, from scratch).

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use fovea::optim::{LrSchedule, OptimizerConfig};
use fovea::{Rng, Tensor};
use fovea_vision::detect::dataset::{read_dataset, shapes_in_memory, write_shapes};
use fovea_vision::detect::localize::{self, localization_target};
use fovea_vision::detect::shapes::{ShapesConfig, CLASSES, LANDMARKS};
use fovea_vision::detect::sliding::{self, WINDOW};
use fovea_vision::detect::{kmeans_anchors, nms, NmsOptions};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

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
    fovea_vision::train::check_new_folder(&a.out, a.force)?;
    let train_set = sliding::window_crops(a.pictures, a.seed).with_context(|| format!("--pictures {}", a.pictures))?;
    let test_set = sliding::window_crops(500, a.seed.wrapping_add(1_000_003))?;
    let mut classes: Vec<String> = CLASSES.iter().map(|s| s.to_string()).collect();
    classes.push("background".into());
    let net = sliding::window_net(classes.len(), &mut Rng::new(a.seed))?;
    let mut optimizer = fovea_vision::train::make_optimizer(&net, OptimizerConfig::adam(0.001, 0.0))?;
    let mut accuracy = 0.0;
    for epoch in 1..=a.epochs {
        let mut rng = Rng::derive(a.seed, epoch as u64);
        let p = fovea_vision::train::train_epoch(&net, &mut optimizer, &train_set, 64, &mut rng, None, &mut |_| {})?;
        let (test, _) = fovea_vision::train::evaluate_trained(&net, &test_set, 500)?;
        accuracy = test.accuracy();
        if a.json {
            println!(
                "{}",
                json!({"epoch": epoch, "train_loss": p.loss(), "train_accuracy": p.accuracy(), "test_accuracy": accuracy})
            );
        } else {
            eprintln!(
                "epoch {epoch}/{}: {} windows, loss {:.4}, accuracy {:.2}% | {} test windows: {:.2}%",
                a.epochs,
                train_set.len(),
                p.loss(),
                100.0 * p.accuracy(),
                test_set.len(),
                100.0 * accuracy
            );
        }
    }
    sliding::save_window_classifier(&a.out, &net, &sliding::WindowRun { classes, test_accuracy: accuracy })?;
    if !a.json {
        println!("window classifier: {:.2}% on test windows; saved in {}", 100.0 * accuracy, a.out.display());
    }
    Ok(())
}

fn sliding_windows(a: SlidingWindowsArgs) -> Result<()> {
    let output = crate::drawing_path(a.output.as_deref(), &a.image, "windows", "--output")?;
    let (run, classifier) = sliding::load_window_classifier(&a.checkpoint)?;
    // the same weights, converted
    let converted = sliding::fc_to_conv(sliding::load_window_classifier(&a.checkpoint)?.1, [3, WINDOW, WINDOW])?;
    let rgb = fovea_vision::image::load_rgb(&a.image)?;
    let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
    let background = run.classes.len() - 1;
    let mut found = Vec::new();
    let mut per_window = Vec::new();
    let (mut naive_total, mut conv_total) = (0.0f64, 0.0f64);
    for &side in &a.windows {
        if side < WINDOW || side > h.min(w) {
            bail!("window {side} must be between {WINDOW} and the picture's shorter side ({})", h.min(w));
        }
        // scaled so that one window becomes the classifier's 14x14
        let scale = side as f32 / WINDOW as f32;
        let (sh, sw) = ((h as f32 / scale).round() as usize, (w as f32 / scale).round() as usize);
        let scaled = fovea_vision::image::resize_bilinear(&rgb, sh, sw).map_err(|e| e.in_file(&a.image))?;
        let t = Instant::now();
        let naive = sliding::naive_windows(&classifier, &scaled)?;
        let naive_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let conv = sliding::convolutional_windows(&converted, &scaled)?;
        let conv_s = t.elapsed().as_secs_f64();
        let difference = conv.max_abs_diff(&naive);
        naive_total += naive_s;
        conv_total += conv_s;
        let windows = conv.shape()[1] * conv.shape()[2];
        per_window.push(json!({"window": side, "windows": windows, "naive_seconds": naive_s,
            "convolutional_seconds": conv_s, "max_difference": difference}));
        if !a.json {
            println!(
                "{side}x{side} windows ({windows}, {:.1} px apart): naive {:.1} ms, convolutional {:.1} ms ({:.1}x), largest difference {difference:.1e}",
                sliding::WINDOW_STRIDE as f32 * scale,
                1e3 * naive_s,
                1e3 * conv_s,
                naive_s / conv_s.max(1e-9)
            );
        }
        found.extend(sliding::window_detections(
            &conv,
            background,
            a.min_score,
            (w as f32 / sw as f32, h as f32 / sh as f32),
        ));
    }
    // one object gets windows of several sizes and classes: suppress across classes
    let kept: Vec<_> =
        nms(&found, &NmsOptions { score_threshold: a.min_score, per_class: false, ..Default::default() })
            .into_iter()
            .map(|k| found[k])
            .collect();
    let mut canvas = fovea_vision::draw::Canvas::from_rgb(&rgb);
    let mut objects = Vec::new();
    for d in &kept {
        let c = d.bbox.corners();
        canvas.rect(c.x0 as i64, c.y0 as i64, (c.x1 - c.x0) as i64, (c.y1 - c.y0) as i64, 1, [255, 255, 0]);
        canvas.text(c.x0 as i64, (c.y0 as i64 - 8).max(0), &run.classes[d.class], 1, [255, 255, 0]);
        objects.push(json!({"class": run.classes[d.class], "score": d.score,
            "box": {"x": c.x0, "y": c.y0, "width": c.x1 - c.x0, "height": c.y1 - c.y0}}));
    }
    canvas.save_png(&output).with_context(|| format!("cannot write {}", output.display()))?;
    if a.json {
        println!(
            "{}",
            json!({"image": a.image.display().to_string(), "windows": per_window, "objects": objects,
            "naive_seconds": naive_total, "convolutional_seconds": conv_total})
        );
    } else {
        println!(
            "in all: naive {:.1} ms, convolutional {:.1} ms ({:.1}x faster); {} window(s) kept after NMS, drawn in {}",
            1e3 * naive_total,
            1e3 * conv_total,
            naive_total / conv_total.max(1e-9),
            kept.len(),
            output.display()
        );
    }
    Ok(())
}

/// The pictures and targets of a localizer (y per picture) or a landmark net (2K
/// coordinates relative to the picture) from synthetic pictures `first ..`.
fn regression_data(landmarks: bool, first: u64, count: usize, seed: u64, size: usize) -> Result<(Tensor, Tensor)> {
    // landmarks: one object per picture; the localizer: none or one, half and half
    let min_objects = usize::from(landmarks);
    let config = ShapesConfig { size, min_objects, max_objects: 1, min_scale: 0.2, max_scale: 0.6 };
    let set = shapes_in_memory(first, count, seed, &config)?;
    let mut y = Vec::new();
    for i in 0..count {
        if landmarks {
            y.extend(set.landmarks[i][0].iter().flat_map(|&(x, y)| [x, y]));
        } else {
            y.extend(localization_target(set.objects[i].first(), CLASSES.len()));
        }
    }
    let width = y.len() / count.max(1);
    Ok((set.pictures, Tensor::new(&[count, width], y)?))
}

fn train_regressor(a: RegressorArgs, landmarks: bool) -> Result<()> {
    fovea_vision::train::check_new_folder(&a.out, a.force)?;
    let squared = match a.loss.as_str() {
        "logistic" => false,
        "squared" => true,
        other => bail!("unknown --loss '{other}' (logistic, squared)"),
    };
    let outputs = if landmarks { 2 * LANDMARKS } else { 5 + CLASSES.len() };
    let net =
        localize::regressor(a.size, outputs, &mut Rng::new(a.seed)).with_context(|| format!("--size {}", a.size))?;
    let mut optimizer = fovea_vision::train::make_optimizer(&net, OptimizerConfig::adam(a.lr, 0.0))?;
    let (test_x, test_y) = regression_data(landmarks, 0, 1000, a.seed.wrapping_add(1_000_003), a.size)?;
    let loss = |out: &fovea::Var, t: &Tensor| -> fovea::Result<fovea::Var> {
        match (landmarks, squared) {
            (true, _) => fovea::ops::mse_loss(out, t),
            (false, true) => localize::localization_loss_squared(out, t),
            (false, false) => localize::localization_loss(out, t),
        }
    };
    let mut result = json!({});
    for epoch in 1..=a.epochs {
        // cosine decay: big steps first, small ones to settle
        optimizer.set_lr(LrSchedule::Cosine { t_max: a.epochs, eta_min: 0.0 }.rate(a.lr, epoch - 1));
        let first = ((epoch - 1) * a.train_size) as u64;
        let (x, y) = regression_data(landmarks, first, a.train_size, a.seed, a.size)
            .with_context(|| format!("--train-size {} at --size {}", a.train_size, a.size))?;
        let mut rng = Rng::derive(a.seed, epoch as u64);
        let train_loss =
            fovea_vision::train::fit_epoch(&net, &mut optimizer, (&x, &y), 32, &mut rng, &loss, &mut |_, _| {})?;
        let pred = fovea_vision::train::predict_all(&net, &test_x, 250)?;
        result = if landmarks {
            // mean distance between predicted and true points, in pixels
            let d: f64 = pred
                .data()
                .chunks(2)
                .zip(test_y.data().chunks(2))
                .map(|(p, t)| (((p[0] - t[0]).powi(2) + (p[1] - t[1]).powi(2)).sqrt() * a.size as f32) as f64)
                .sum::<f64>()
                / (test_y.numel() / 2) as f64;
            json!({"epoch": epoch, "train_loss": train_loss, "mean_pixel_error": d})
        } else {
            let s = localize::score_localization(&pred, &test_y, squared);
            json!({"epoch": epoch, "train_loss": train_loss, "object_accuracy": s.object_accuracy,
                   "class_accuracy": s.class_accuracy, "mean_iou": s.mean_iou})
        };
        if a.json {
            println!("{result}");
        } else if landmarks {
            eprintln!(
                "epoch {epoch}/{}: loss {train_loss:.5} | mean landmark error {:.2} px ({}x{} pictures)",
                a.epochs,
                result["mean_pixel_error"].as_f64().unwrap_or(0.0),
                a.size,
                a.size
            );
        } else {
            eprintln!(
                "epoch {epoch}/{}: loss {train_loss:.4} | object or not {:.2}%, class {:.2}%, mean IoU {:.3}",
                a.epochs,
                100.0 * result["object_accuracy"].as_f64().unwrap_or(0.0),
                100.0 * result["class_accuracy"].as_f64().unwrap_or(0.0),
                result["mean_iou"].as_f64().unwrap_or(0.0)
            );
        }
    }
    let meta = json!({"task": if landmarks { "landmarks" } else { "localizer" }, "size": a.size, "outputs": outputs,
                      "loss": a.loss, "result": result});
    fovea_vision::train::save_network(&a.out, "regressor.safetensors", "fovea-regressor", &net, &meta)?;
    if !a.json {
        println!("on 1,000 test pictures: {result}; network in {}", a.out.display());
    }
    Ok(())
}
