//! A trainable YOLO detector: a small darknet-style network (3x3 convolutions with batch
//! norm and leaky ReLU, each halving the size by max pooling, down to the grid), the
//! notes' encoding and loss from `yolo`, checkpoints, detection and evaluation.

use super::map::{mean_average_precision, MapReport, Scored, Truth};
use super::nms::{nms, Detection, NmsOptions};
use super::yolo::{Object, YoloGrid};
use fovea::nn::init::Init;
use fovea::nn::{state_dict, Activation, BatchNorm, Conv, Module, Pool, Sequential};
use fovea::ops::{Padding, PoolOptions};
use fovea::{Error, Result, Rng, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Whether a `grid` x `grid` grid fits pictures of `input` x `input`: cells of 4, 8, 16,
/// 32 or 64 pixels, one halving of the network each. Returns the cell size.
pub fn check_grid(input: usize, grid: usize) -> Result<usize> {
    let ratio = input / grid.max(1);
    if grid == 0 || !input.is_multiple_of(grid) || !ratio.is_power_of_two() || !(4..=64).contains(&ratio) {
        return Err(Error::Invalid(format!(
            "a {grid}x{grid} grid does not divide {input}x{input} pictures into cells of 4, 8, 16, 32 or 64 pixels \
             (choose --grid and --input-size to fit)"
        )));
    }
    Ok(ratio)
}

/// The network for pictures of `input` x `input` and `grid`: one conv-BN-leaky-pool stage
/// per halving (16, 32, 64, ... channels), a 3x3 convolution, and a 1x1 convolution to
/// A (5 + C) outputs per cell, its objectness biases starting at -4 (pc about 2%, as most
/// cells hold nothing).
pub fn network(input: usize, grid: &YoloGrid, rng: &mut Rng) -> Result<Sequential> {
    let ratio = check_grid(input, grid.grid)?;
    let mut net = Sequential::new();
    let mut c = 3;
    for i in 0..ratio.trailing_zeros() as usize {
        let out = 16 << i;
        net = net
            .add(
                &format!("conv{}", i + 1),
                Conv::config(c, out, &[3, 3]).padding(Padding::Same).bias(false).init(Init::HeNormal).build(rng)?,
            )
            .add(&format!("bn{}", i + 1), BatchNorm::new(out))
            .add(&format!("act{}", i + 1), Activation::LeakyRelu(0.1))
            .add(&format!("pool{}", i + 1), Pool::max(PoolOptions::new(2)));
        c = out;
    }
    net = net
        .add(
            "conv_last",
            Conv::config(c, 2 * c, &[3, 3]).padding(Padding::Same).bias(false).init(Init::HeNormal).build(rng)?,
        )
        .add("bn_last", BatchNorm::new(2 * c))
        .add("act_last", Activation::LeakyRelu(0.1))
        .add("head", Conv::config(2 * c, grid.channels(), &[1, 1]).build(rng)?);
    let head_bias = state_dict(&net).into_iter().find(|(n, _)| n == "head.bias").expect("the head has a bias").1;
    let depth = grid.depth();
    head_bias.update(|b| {
        for k in 0..grid.anchors.len() {
            b.data_mut()[k * depth] = -4.0;
        }
    });
    Ok(net)
}

/// What a detector run was trained for and how it went; stored in its safetensors file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DetectorRun {
    /// side of the square input pictures, in pixels
    pub input: usize,
    /// cells per side (S)
    pub grid: usize,
    /// anchor shapes (width, height), relative to the picture
    pub anchors: Vec<(f32, f32)>,
    /// class names; index = class id
    pub classes: Vec<String>,
    /// Adam's learning rate
    pub lr: f32,
    /// pictures per batch
    pub batch_size: usize,
    /// the run's random seed (weights, data, batch order)
    pub seed: u64,
    /// one entry per finished epoch
    pub history: Vec<DetectorEpoch>,
}

/// One epoch of detector training.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DetectorEpoch {
    /// epoch number, from 1
    pub epoch: usize,
    /// mean YOLO loss over the epoch's training pictures
    pub loss: f32,
    /// VOC mAP@0.5 on the validation pictures
    pub val_map50: f64,
    /// time the epoch took, training and validation, in seconds
    pub seconds: f32,
}

impl DetectorRun {
    /// The grid, anchors and class count the detector was trained with.
    pub fn yolo_grid(&self) -> Result<YoloGrid> {
        YoloGrid::new(self.grid, self.anchors.clone(), self.classes.len())
    }
}

const DETECTOR_FILE: &str = "detector.safetensors";
const DETECTOR_KEY: &str = "fovea-detector";

/// Writes the network and the run's description to `dir/detector.safetensors` and
/// `dir/detector.json`.
pub fn save_detector(dir: &Path, net: &dyn Module, run: &DetectorRun) -> Result<()> {
    fovea::io::save_checkpoint(&dir.join(DETECTOR_FILE), net, None, DETECTOR_KEY, run)
}

/// Reads a run folder written by [`save_detector`] (or the file) and rebuilds the network.
pub fn load_detector(path: &Path) -> Result<(DetectorRun, Sequential)> {
    let fovea::io::Checkpoint { meta: run, model: tensors, .. }: fovea::io::Checkpoint<DetectorRun> =
        crate::train::load_network(path, DETECTOR_FILE, DETECTOR_KEY, "fovea yolo train")?;
    let named = crate::train::about_file(path, DETECTOR_FILE);
    let net = network(run.input, &run.yolo_grid().map_err(&named)?, &mut Rng::new(0)).map_err(&named)?;
    fovea::nn::load_state_dict(&net, &tensors).map_err(&named)?;
    Ok((run, net))
}

/// The detector of the run at `path` as an ONNX model ([`fovea::graph::export`]): RGB
/// pictures in (values 0..1, the run's input size), the raw grid of predictions out, to be
/// decoded as [`DetectorRun::yolo_grid`] decodes it.
pub fn detector_to_onnx(path: &Path) -> Result<fovea::io::onnx::Model> {
    let (run, net) = load_detector(path)?;
    fovea::graph::export::export(&net, &[3, run.input, run.input], "fovea")
}

/// The targets `[N, S, S, A, 5 + C]` of pictures' objects, and how many objects shared a
/// cell and anchor with another and were left out.
pub fn encode_all(grid: &YoloGrid, objects: &[Vec<Object>]) -> Result<(Tensor, usize)> {
    let mut data = Vec::new();
    let mut dropped = 0;
    for o in objects {
        let (y, d) = grid.encode(o)?;
        data.extend_from_slice(y.data());
        dropped += d;
    }
    let (s, a) = (grid.grid, grid.anchors.len());
    Ok((Tensor::new(&[objects.len(), s, s, a, grid.depth()], data)?, dropped))
}

/// Detections per picture of `pictures` `[N, 3, H, W]`: decoded, then NMS (boxes relative
/// to the picture).
pub fn detect(
    net: &dyn Module,
    grid: &YoloGrid,
    pictures: &Tensor,
    options: &NmsOptions,
) -> Result<Vec<Vec<Detection>>> {
    let y = crate::train::predict_all(net, pictures, 64)?;
    let per = grid.channels() * grid.grid * grid.grid;
    y.data()
        .chunks(per)
        .map(|raw| {
            let all = grid.decode(&Tensor::new(&[grid.channels(), grid.grid, grid.grid], raw.to_vec())?)?;
            Ok(nms(&all, options).into_iter().map(|k| all[k]).collect())
        })
        .collect()
}

/// The objects in a picture `rgb` (`[3, H, W]` in 0..1, any size): resized to the
/// detector's input, detected, suppressed with `options`, boxes in the picture's pixels.
pub fn detect_picture(
    run: &DetectorRun,
    net: &dyn Module,
    rgb: &Tensor,
    options: &NmsOptions,
) -> Result<Vec<super::FoundObject>> {
    let grid = run.yolo_grid()?;
    let (h, w) = (rgb.shape()[1] as f32, rgb.shape()[2] as f32);
    let x = crate::image::resize_bilinear(rgb, run.input, run.input)?.reshape(&[1, 3, run.input, run.input])?;
    let found = detect(net, &grid, &x, options)?.remove(0);
    Ok(found.iter().map(|d| Detection { bbox: d.bbox.scale(w, h), ..*d }.found(&run.classes, w, h)).collect())
}

/// The options evaluation uses: every box worth a point on the precision-recall curve
/// (score > 0.01), NMS at 0.5 per class, at most 100 per picture.
pub fn evaluation_nms() -> NmsOptions {
    NmsOptions { score_threshold: 0.01, iou_threshold: 0.5, max_detections: 100, per_class: true }
}

/// VOC mAP@0.5 of the detector on `pictures` with labelled `objects` (precision and recall
/// at the notes' score threshold, 0.6).
pub fn evaluate(net: &dyn Module, grid: &YoloGrid, pictures: &Tensor, objects: &[Vec<Object>]) -> Result<MapReport> {
    let found = detect(net, grid, pictures, &evaluation_nms())?;
    let detections: Vec<Scored> = found
        .iter()
        .enumerate()
        .flat_map(|(image, d)| d.iter().map(move |&detection| Scored { image, detection }))
        .collect();
    let truths: Vec<Truth> = objects
        .iter()
        .enumerate()
        .flat_map(|(image, o)| o.iter().map(move |o| Truth { image, bbox: o.bbox, class: o.class }))
        .collect();
    Ok(mean_average_precision(&detections, &truths, grid.classes, 0.5, NmsOptions::default().score_threshold))
}

/// A detector measured on a labelled dataset: VOC mAP@0.5 and each class's figures.
#[derive(Clone, Debug, Serialize)]
pub struct DetectorEvaluation {
    /// Pictures of the dataset.
    pub pictures: usize,
    /// VOC mAP@0.5 over the classes with labelled boxes.
    pub map50: f64,
    /// Each class's AP, precision, recall and labelled boxes.
    pub per_class: Vec<ClassEvaluation>,
}

/// One class's figures in a [`DetectorEvaluation`].
#[derive(Clone, Debug, Serialize)]
pub struct ClassEvaluation {
    /// The class's name.
    pub class: String,
    /// AP@0.5; `None` without labelled boxes.
    pub ap50: Option<f64>,
    /// Precision at the operating point.
    pub precision: f64,
    /// Recall at the operating point.
    pub recall: f64,
    /// Labelled boxes of the class.
    pub labelled: usize,
}

/// Measures the detector of the run folder `checkpoint` on the darknet-layout dataset
/// `data`, whose classes must be the detector's.
pub fn evaluate_detector(checkpoint: &Path, data: &Path) -> Result<DetectorEvaluation> {
    let (run, net) = load_detector(checkpoint)?;
    let set = super::read_dataset(data)?;
    super::training::check_classes(&set, data, &run.classes, "the detector was trained for")?;
    let x = set.load_pictures(run.input)?;
    let report = evaluate(&net, &run.yolo_grid()?, &x, &set.objects)?;
    let per_class = report
        .per_class
        .iter()
        .zip(&run.classes)
        .map(|(c, name)| ClassEvaluation {
            class: name.clone(),
            ap50: c.ap,
            precision: c.precision,
            recall: c.recall,
            labelled: c.labelled,
        })
        .collect();
    Ok(DetectorEvaluation { pictures: set.len(), map50: report.map, per_class })
}

impl std::fmt::Display for DetectorEvaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} pictures: mAP@0.5 {:.4}", self.pictures, self.map50)?;
        for c in &self.per_class {
            write!(
                f,
                "\n  {:<12} AP {}  precision {:.3}  recall {:.3}  ({} labelled)",
                c.class,
                c.ap50.map_or("  -   ".to_string(), |v| format!("{v:.4}")),
                c.precision,
                c.recall,
                c.labelled
            )?;
        }
        Ok(())
    }
}

impl std::fmt::Display for DetectorEpoch {
    /// The epoch's figures, after `epoch N/M: `.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "loss {:.4} | validation mAP@0.5 {:.4} | {:.1}s", self.loss, self.val_map50, self.seconds)
    }
}
