//! Training the YOLO detector from scratch, what `fovea yolo train` does: data (the
//! synthetic shapes, made fresh every epoch, or a darknet-layout folder), anchors by
//! k-means, the grid's targets, optional augmentation with the boxes moved along, and
//! epochs that save the detector, `metrics.csv` and `plot.png`, validated by mAP@0.5.

use super::dataset::{read_dataset, shapes_in_memory, DetectionSet};
use super::detector::{self, DetectorEpoch, DetectorRun};
use super::shapes::{ShapesConfig, CLASSES};
use super::yolo::{Object, YoloGrid};
use super::{kmeans_anchors, Anchors};
use crate::augment::{self, Augment};
use crate::draw::Canvas;
use crate::plot::{chart, Series, BLUE, ORANGE};
use fovea::optim::OptimizerConfig;
use fovea::{Error, Result, Rng, Tensor};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to train a detector. The default is `fovea yolo train`'s: 6,000 synthetic pictures
/// of 128x128 a epoch, 5 anchors, 12 epochs of batches of 32, Adam at 0.002.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct YoloConfig {
    /// A dataset in the darknet layout (images/, labels/, classes.txt); without it, synthetic
    /// shapes drawn in memory (--train-size pictures, and 500 others to validate on)
    #[cfg_attr(feature = "cli", arg(long))]
    pub data: Option<PathBuf>,
    /// Validation dataset (default: every 10th picture of --data)
    #[cfg_attr(feature = "cli", arg(long, requires = "data"))]
    pub val: Option<PathBuf>,
    /// Side of the square network input (default: 128; with --data, the first picture's longer
    /// side rounded down to a multiple of 32, within 64..416)
    #[cfg_attr(feature = "cli", arg(long))]
    pub input_size: Option<usize>,
    /// Cells per side (default: input size / 16)
    #[cfg_attr(feature = "cli", arg(long))]
    pub grid: Option<usize>,
    /// Anchor boxes per cell, found by k-means on the training boxes (1 - IoU); `auto` adds
    /// anchors while each raises the mean best IoU by 0.02 or more
    #[cfg_attr(feature = "cli", arg(long, default_value_t = YoloConfig::default().anchors))]
    pub anchors: AnchorCount,
    /// passes over the training data
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = YoloConfig::default().epochs))]
    pub epochs: usize,
    /// pictures per batch
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = YoloConfig::default().batch_size))]
    pub batch_size: usize,
    /// Adam's learning rate
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::positive::<f32>, long, default_value_t = YoloConfig::default().lr))]
    pub lr: f32,
    /// random seed: weights, anchors, synthetic pictures, batch order
    #[cfg_attr(feature = "cli", arg(long, default_value_t = YoloConfig::default().seed))]
    pub seed: u64,
    /// Synthetic training pictures per epoch, new ones every epoch (without --data)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = YoloConfig::default().train_size))]
    pub train_size: usize,
    /// Augment the training pictures every epoch, boxes moved with them (see `fovea train
    /// --augment`; e.g. mirror,crop:0.7,color)
    #[cfg_attr(feature = "cli", arg(long))]
    pub augment: Option<String>,
}

impl Default for YoloConfig {
    fn default() -> Self {
        YoloConfig {
            data: None,
            val: None,
            input_size: None,
            grid: None,
            anchors: AnchorCount::Fixed(5),
            epochs: 12,
            batch_size: 32,
            lr: 0.002,
            seed: 0,
            train_size: 6000,
            augment: None,
        }
    }
}

/// What the training data came to, before the first epoch.
#[derive(Clone, Debug)]
pub struct YoloData {
    /// training pictures (per epoch, on synthetic data)
    pub train_pictures: usize,
    /// labelled boxes in the training pictures (the first epoch's, on synthetic data)
    pub boxes: usize,
    /// Boxes left out because they share a cell and anchor with another.
    pub dropped: usize,
    /// validation pictures
    pub val_pictures: usize,
    /// side of the square network input, in pixels
    pub input: usize,
    /// cells per side (S)
    pub grid: usize,
    /// the anchors k-means found
    pub anchors: Anchors,
    /// time taken to prepare the data, anchors and network, in seconds
    pub seconds: f32,
}

/// What detector training reports; every method does nothing by default.
pub trait YoloObserver {
    /// The data is ready.
    fn ready(&mut self, _data: &YoloData) {}
    /// Pictures seen so far in `epoch` and their mean loss.
    fn batch(&mut self, _epoch: usize, _seen: usize, _loss: f32) {}
    /// An epoch's figures, once the detector is saved.
    fn epoch(&mut self, _epoch: &DetectorEpoch) {}
}

impl YoloObserver for () {}

/// How many anchor boxes a detector gets: a count from 1 to 20, or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnchorCount {
    /// This many, by k-means.
    Fixed(usize),
    /// As many as raise the mean best IoU by 0.02 each, at most 9 ([`auto_anchors`]).
    Auto,
}

impl std::str::FromStr for AnchorCount {
    type Err = Error;
    fn from_str(s: &str) -> Result<AnchorCount> {
        match s.trim() {
            "auto" => Ok(AnchorCount::Auto),
            k => k
                .parse::<usize>()
                .ok()
                .filter(|k| (1..=20).contains(k))
                .map(AnchorCount::Fixed)
                .ok_or_else(|| Error::Invalid(format!("must be a count from 1 to 20, or auto; got '{k}'"))),
        }
    }
}

impl std::fmt::Display for AnchorCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnchorCount::Fixed(k) => write!(f, "{k}"),
            AnchorCount::Auto => f.write_str("auto"),
        }
    }
}

/// Anchors for [`AnchorCount::Auto`]: k-means for k = 1, 2, ... until one more anchor would raise
/// the mean best IoU by less than 0.02 (diminishing returns, YOLOv2's reasoning for its 5),
/// at most 9.
pub fn auto_anchors(shapes: &[(f32, f32)], seed: u64) -> Result<Anchors> {
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

/// Refuses `other` (read from `path`) if it names its classes differently from `known` (a
/// model's, or the training data's: `what` says which): its labels would mean other things.
pub fn check_classes(other: &DetectionSet, path: &Path, known: &[String], what: &str) -> Result<()> {
    if other.classes.len() > known.len() {
        return Err(Error::Invalid(format!(
            "{} has {} classes, but {what} {} ({})",
            path.display(),
            other.classes.len(),
            known.len(),
            known.join(", ")
        )));
    }
    if other.named
        && known.iter().any(|k| k.parse::<usize>().is_err())
        && other.classes[..] != known[..other.classes.len()]
    {
        return Err(Error::Invalid(format!(
            "{} names its classes {:?}, but {what} {:?}",
            path.display(),
            other.classes,
            known
        )));
    }
    Ok(())
}

type Pictures = (Tensor, Vec<Vec<Object>>);

fn split_every_tenth(t: &Tensor, objects: &[Vec<Object>]) -> Result<[Pictures; 2]> {
    let n = objects.len();
    let (val, train): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| i % 10 == 9);
    let pick = |idx: &[usize]| -> Result<Pictures> {
        Ok((t.index_select(0, idx)?, idx.iter().map(|&i| objects[i].clone()).collect()))
    };
    Ok([pick(&train)?, pick(&val)?])
}

/// Training and validation pictures with their objects, the class names and the input size.
fn load_data(config: &YoloConfig) -> Result<(Pictures, Pictures, Vec<String>, usize)> {
    let Some(dir) = &config.data else {
        let input = config.input_size.unwrap_or(128);
        detector::check_grid(input, config.grid.unwrap_or(input / 16))?;
        let shapes = ShapesConfig { size: input, ..Default::default() };
        // the validation pictures come from another seed: none is a training picture
        let train = shapes_in_memory(0, config.train_size, config.seed, &shapes)?;
        let val = shapes_in_memory(0, 500, config.seed.wrapping_add(1_000_003), &shapes)?;
        let classes = CLASSES.iter().map(|s| s.to_string()).collect();
        return Ok(((train.pictures, train.objects), (val.pictures, val.objects), classes, input));
    };
    let set = read_dataset(dir)?;
    let input = match config.input_size {
        Some(s) => s,
        None => {
            let first = crate::image::load_rgb(&set.images[0])?;
            (first.shape()[1].max(first.shape()[2]) / 32 * 32).clamp(64, 416)
        }
    };
    // before any picture is loaded
    detector::check_grid(input, config.grid.unwrap_or(input / 16))?;
    let all = (set.load_pictures(input)?, set.objects.clone());
    let (train, val) = match &config.val {
        Some(v) => {
            let vset = read_dataset(v)?;
            check_classes(&vset, v, &set.classes, "the training data has")?;
            (all, (vset.load_pictures(input)?, vset.objects.clone()))
        }
        None => {
            let [t, v] = split_every_tenth(&all.0, &all.1)?;
            (t, v)
        }
    };
    if val.1.is_empty() {
        return Err(Error::setting(
            "val",
            format!(
                "not given, and {} has {} picture(s): too few to hold every 10th out for validation",
                dir.display(),
                set.len()
            ),
        ));
    }
    Ok((train, val, set.classes.clone(), input))
}

/// Trains a detector into `out` (refused if it holds files, unless `force`) and returns
/// the run with its history. A failed epoch leaves the last saved one in place.
///
/// On several processes ([`fovea::dist`]) each trains on its shard of every batch
/// ([`crate::train::fit_epoch`]) and validates on the whole set; rank 0 alone writes and
/// tells `observer`.
pub fn train_yolo(
    config: &YoloConfig,
    out: &Path,
    force: bool,
    observer: &mut dyn YoloObserver,
) -> Result<DetectorRun> {
    let world = fovea::dist::world();
    let checked = if world.is_root() { crate::train::check_new_folder(out, force) } else { Ok(()) };
    world.agree(checked, "starting the run")?;
    let mut quiet = ();
    let observer: &mut dyn YoloObserver = if world.is_root() { observer } else { &mut quiet };
    let start = Instant::now();
    let ((mut train_x, train_o), (val_x, val_o), classes, input) =
        world.agree(load_data(config), "loading the data")?;
    let shapes: Vec<(f32, f32)> = train_o.iter().flatten().map(|o| (o.bbox.w, o.bbox.h)).collect();
    let anchors = match config.anchors {
        AnchorCount::Fixed(k) => kmeans_anchors(&shapes, k, config.seed)?,
        AnchorCount::Auto => auto_anchors(&shapes, config.seed)?,
    };
    let grid = YoloGrid::new(config.grid.unwrap_or(input / 16), anchors.shapes.clone(), classes.len())?;
    let net = detector::network(input, &grid, &mut Rng::new(config.seed))?;
    let (mut targets, dropped) = detector::encode_all(&grid, &train_o)?;
    let mut pipeline = config.augment.as_deref().map(Augment::parse).transpose()?;
    if let Some(p) = &mut pipeline {
        p.fit(&train_x)?;
    }
    let mut optimizer = crate::train::make_optimizer(&net, OptimizerConfig::adam(config.lr, 0.0))?;
    observer.ready(&YoloData {
        train_pictures: train_o.len(),
        boxes: shapes.len(),
        dropped,
        val_pictures: val_o.len(),
        input,
        grid: grid.grid,
        anchors,
        seconds: start.elapsed().as_secs_f32(),
    });
    let mut run = DetectorRun {
        input,
        grid: grid.grid,
        anchors: grid.anchors.clone(),
        classes,
        lr: config.lr,
        batch_size: config.batch_size,
        seed: config.seed,
        history: vec![],
    };
    // the epoch's pictures and boxes before augmentation
    let mut epoch_objects = train_o;
    for epoch in 1..=config.epochs {
        if config.data.is_none() && epoch > 1 {
            // synthetic data is free: every epoch sees new pictures, and nothing is memorised
            let first = ((epoch - 1) * config.train_size) as u64;
            let shapes = ShapesConfig { size: input, ..Default::default() };
            let fresh = shapes_in_memory(first, config.train_size, config.seed, &shapes)?;
            train_x = fresh.pictures;
            targets = detector::encode_all(&grid, &fresh.objects)?.0;
            epoch_objects = fresh.objects;
        }
        let mut rng = Rng::derive(config.seed, epoch as u64);
        // distorted copies for this epoch, the boxes moved with them
        let augmented = match &pipeline {
            Some(p) => {
                let (x, moved) = augment::detection_set(p, &train_x, &epoch_objects, rng.next_u64())?;
                Some((x, detector::encode_all(&grid, &moved)?.0))
            }
            None => None,
        };
        let (epoch_x, epoch_targets) = augmented.as_ref().map_or((&train_x, &targets), |(x, t)| (x, t));
        let t0 = Instant::now();
        let loss = crate::train::fit_epoch(
            &net,
            &mut optimizer,
            (epoch_x, epoch_targets),
            config.batch_size,
            &mut rng,
            &|out, target| grid.loss(out, target),
            &mut |seen, l| observer.batch(epoch, seen, l),
        )
        .map_err(|e| {
            Error::Invalid(format!(
                "training stopped in epoch {epoch}: {e}; {} keeps the last good epoch",
                out.display()
            ))
        })?;
        let report = detector::evaluate(&net, &grid, &val_x, &val_o)?;
        let e = DetectorEpoch { epoch, loss, val_map50: report.map, seconds: t0.elapsed().as_secs_f32() };
        run.history.push(e.clone());
        world.check_replicas(&fovea::nn::state_dict(&net))?;
        let saved = match world.is_root() {
            true => detector::save_detector(out, &net, &run).and_then(|_| write_history(out, &run.history)),
            false => Ok(()),
        };
        world.agree(saved, "saving the detector")?;
        observer.epoch(&e);
    }
    Ok(run)
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
    canvas.save_png(&dir.join("plot.png"))
}

impl std::fmt::Display for YoloData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} training pictures ({} boxes; {} share a cell and anchor with another and are left out), {} to \
             validate on; input {input}x{input}, grid {grid}x{grid}, {} anchors (mean best IoU {:.3}); data ready in \
             {:.1}s",
            self.train_pictures,
            self.boxes,
            self.dropped,
            self.val_pictures,
            self.anchors.shapes.len(),
            self.anchors.mean_iou,
            self.seconds,
            input = self.input,
            grid = self.grid
        )
    }
}
