//! `fovea data shapes` (the synthetic detection dataset) and `fovea detect ...` (the
//! notes' detection chapter, from scratch).

use anyhow::Result;
use clap::{Args, Subcommand};
use fovea_vision::detect::dataset::write_shapes;
use fovea_vision::detect::localize::{self, RegressorConfig, RegressorTask};
use fovea_vision::detect::shapes::ShapesConfig;
use fovea_vision::detect::sliding;
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
    #[arg(value_parser = fovea_vision::cli::count, long, default_value_t = 1000)]
    count: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    config: ShapesConfig,
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
    #[command(flatten)]
    config: RegressorConfig,
    /// Localizer: `logistic` (logistic pc, squared box error, log loss for the class: the
    /// better variant) or `squared` (the notes' squared error on all 8 values)
    #[arg(long, value_parser = ["logistic", "squared"], default_value = "logistic")]
    loss: String,
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
    #[arg(value_parser = fovea_vision::cli::count, long, default_value_t = 3000)]
    pictures: usize,
    #[arg(value_parser = fovea_vision::cli::count, long, default_value_t = 8)]
    epochs: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
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
    #[arg(value_parser = fovea_vision::cli::fraction::<f32>, long, default_value_t = 0.9)]
    min_score: f32,
    /// Where to draw the windows kept after NMS (default: <picture>-windows.png beside it)
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Args)]
pub struct AnchorsArgs {
    /// A dataset in the darknet layout (images/, labels/, classes.txt)
    #[arg(long)]
    data: PathBuf,
    /// Anchors to find; the mean best IoU is reported for every count from 1 to K
    #[arg(value_parser = fovea_vision::cli::count, short, default_value_t = 5)]
    k: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn data(d: Data) -> Result<()> {
    match d {
        Data::Shapes(a) => {
            a.config.check()?;
            fovea_vision::train::check_new_folder(&a.out, a.force)?;
            write_shapes(&a.out, a.count, a.seed, &a.config, a.force)?;
            let (size, out) = (a.config.size, a.out.display());
            let result = serde_json::json!({"pictures": a.count, "size": size, "out": a.out});
            crate::report_with(&result, serde_json::json!({}), || {
                format!("{} pictures of {size}x{size} in {out}", a.count)
            })?;
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
    crate::report(&fovea_vision::detect::anchor_report(&a.data, a.k, a.seed)?)
}

fn train_windows(a: TrainWindowsArgs) -> Result<()> {
    let mut bar = crate::console(a.epochs, 0);
    let run = sliding::train_window_classifier(a.pictures, a.epochs, a.seed, &a.out, a.force, &mut |e, _| {
        bar.end_epoch(e.epoch, e)
    })?;
    if !crate::json() {
        println!("window classifier: {:.2}% on test windows; saved in {}", 100.0 * run.test_accuracy, a.out.display());
    }
    Ok(())
}

fn sliding_windows(a: SlidingWindowsArgs) -> Result<()> {
    let output = fovea_vision::draw::drawing_path(a.output.as_deref(), &a.image, "windows", "output")?;
    let rgb = fovea_vision::image::load_rgb(&a.image)?;
    let found = sliding::find_objects(&a.checkpoint, &rgb, &a.windows, a.min_score).map_err(|e| e.in_file(&a.image))?;
    fovea_vision::detect::draw_objects(&rgb, &found.objects).save_png(&output)?;
    let drawn = output.display();
    crate::report_with(&found, serde_json::json!({"image": a.image, "drawing": output}), || {
        format!("{found}, drawn in {drawn}")
    })
}

fn train_regressor(a: RegressorArgs, landmarks: bool) -> Result<()> {
    let squared = a.loss == "squared";
    let task = if landmarks { RegressorTask::Landmarks } else { RegressorTask::Localizer { squared } };
    let config = RegressorConfig { task, ..a.config };
    let mut bar = crate::console(config.epochs, 0);
    let last = localize::train_regressor(&config, &a.out, a.force, &mut |e| bar.end_epoch(e.epoch, e))?;
    if !crate::json() {
        println!("on 1,000 test pictures: {last}; network in {}", a.out.display());
    }
    Ok(())
}
