//! Object localization, the notes' first step: one object (or none) per picture, and a
//! network that outputs y = [pc, bx, by, bh, bw, c1 .. cC] with the box relative to the
//! picture.

use super::boxes::BBox;
use super::yolo::{Object, LAMBDA_COORD};
use fovea::nn::init::Init;
use fovea::nn::{Activation, BatchNorm, Conv, Flatten, Linear, Pool, Sequential};
use fovea::ops::{Padding, PoolOptions};
use fovea::{ops, Error, Result, Rng, Tensor, Var};

fn check(op: &'static str, pred: &Var, target: &Tensor) -> Result<(usize, usize)> {
    let shape = pred.shape();
    if shape.len() != 2 || shape[1] < 6 || target.shape() != shape {
        return Err(Error::shape(
            op,
            format!("prediction {shape:?} and target {:?} must both be [N, 5 + C]", target.shape()),
        ));
    }
    Ok((shape[0], shape[1]))
}

/// The notes' loss, averaged over the batch: the squared error of all 5 + C values where
/// the target has pc = 1, of pc alone where pc = 0.
pub fn localization_loss_squared(pred: &Var, target: &Tensor) -> Result<Var> {
    let (n, d) = check("localization_loss_squared", pred, target)?;
    let mask: Vec<f32> = target
        .data()
        .chunks(d)
        .flat_map(|y| (0..d).map(move |j| if y[0] == 1.0 || j == 0 { 1.0 } else { 0.0 }))
        .collect();
    let diff = ops::sub(pred, &Var::constant(target.clone()))?;
    let masked = ops::mul(&ops::pow_scalar(&diff, 2.0)?, &Var::constant(Tensor::new(&[n, d], mask)?))?;
    ops::mul_scalar(&ops::sum(&masked)?, 1.0 / n as f32)
}

/// The better variant the notes mention, averaged over the batch: the logistic loss of pc
/// (the prediction's first value is its logit) for every picture; where pc = 1, plus
/// λ_coord (5, YOLO's weight: box values in 0..1 give small squared errors) times the
/// squared error of the four box values, and the log loss of the class (softmax over the
/// class logits).
pub fn localization_loss(pred: &Var, target: &Tensor) -> Result<Var> {
    let (n, d) = check("localization_loss", pred, target)?;
    let y = target.data();
    let pc = Tensor::new(&[n, 1], y.chunks(d).map(|r| r[0]).collect())?;
    let mut total = ops::mul_scalar(&ops::bce_with_logits(&ops::narrow(pred, 1, 0, 1)?, &pc)?, n as f32)?;
    let objects: Vec<usize> = (0..n).filter(|&i| y[i * d] == 1.0).collect();
    if !objects.is_empty() {
        let m = objects.len();
        let picked = ops::index_select(pred, 0, &objects)?;
        let boxes = Tensor::new(&[m, 4], objects.iter().flat_map(|&i| y[i * d + 1..i * d + 5].to_vec()).collect())?;
        let classes: Vec<usize> =
            objects.iter().map(|&i| y[i * d + 5..(i + 1) * d].iter().position(|&c| c == 1.0).unwrap_or(0)).collect();
        let box_loss =
            ops::mul_scalar(&ops::mse_loss(&ops::narrow(&picked, 1, 1, 4)?, &boxes)?, LAMBDA_COORD * 4.0 * m as f32)?;
        let class_loss =
            ops::mul_scalar(&ops::cross_entropy(&ops::narrow(&picked, 1, 5, d - 5)?, &classes)?, m as f32)?;
        total = ops::add(&total, &ops::add(&box_loss, &class_loss)?)?;
    }
    ops::mul_scalar(&total, 1.0 / n as f32)
}

/// A small regression network for `size` x `size` pictures (a multiple of 16): four
/// conv-BN-ReLU-pool stages (16, 32, 64, 128 channels), then FC 256 and FC `outputs`.
/// The localizer's outputs are y (5 + C values); the landmark net's, 2K coordinates.
pub fn regressor(size: usize, outputs: usize, rng: &mut Rng) -> Result<Sequential> {
    if size < 16 || !size.is_multiple_of(16) {
        return Err(Error::Invalid(format!("pictures of {size}x{size}: the side must be a multiple of 16")));
    }
    let mut net = Sequential::new();
    let mut c = 3;
    for (i, out) in [16, 32, 64, 128].into_iter().enumerate() {
        net = net
            .add(
                &format!("conv{}", i + 1),
                Conv::config(c, out, &[3, 3]).padding(Padding::Same).bias(false).init(Init::HeNormal).build(rng)?,
            )
            .add(&format!("bn{}", i + 1), BatchNorm::new(out))
            .add(&format!("relu{}", i + 1), Activation::Relu)
            .add(&format!("pool{}", i + 1), Pool::max(PoolOptions::new(2)));
        c = out;
    }
    let cells = (size / 16) * (size / 16);
    Ok(net
        .add("flatten", Flatten)
        .add("fc1", Linear::config(128 * cells, 256).build(rng)?)
        .add("relu5", Activation::Relu)
        .add("fc2", Linear::config(256, outputs).build(rng)?))
}

/// The target y of a picture with at most one object (boxes relative to the picture).
pub fn localization_target(object: Option<&Object>, classes: usize) -> Vec<f32> {
    let mut y = vec![0.0; 5 + classes];
    if let Some(o) = object {
        let b = o.bbox;
        y[..5].copy_from_slice(&[1.0, b.cx, b.cy, b.h, b.w]);
        y[5 + o.class] = 1.0;
    }
    y
}

/// How well predictions `[N, 5 + C]` (pc as a logit, or as a value with `raw_pc`, from
/// the squared-error loss) match targets: whether there is an object (pc > 0.5), the class
/// and the mean IoU of the box where there is one.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct LocalizationScore {
    /// share of pictures where pc > 0.5 matches whether there is an object
    pub object_accuracy: f64,
    /// share of the pictures with an object whose class is right
    pub class_accuracy: f64,
    /// mean IoU of predicted and true box, over the pictures with an object
    pub mean_iou: f64,
}

/// How well `pred` matches `target`, both `[N, 5 + C]`; see [`LocalizationScore`].
pub fn score_localization(pred: &Tensor, target: &Tensor, raw_pc: bool) -> LocalizationScore {
    let d = pred.shape()[1];
    let (mut right, mut objects, mut class_right, mut iou) = (0usize, 0usize, 0usize, 0f64);
    for (p, y) in pred.data().chunks(d).zip(target.data().chunks(d)) {
        let pc = if raw_pc { p[0] } else { 1.0 / (1.0 + (-p[0]).exp()) };
        right += ((pc > 0.5) == (y[0] == 1.0)) as usize;
        if y[0] == 1.0 {
            objects += 1;
            let argmax = |v: &[f32]| (0..v.len()).fold(0, |m, j| if v[j] > v[m] { j } else { m });
            class_right += (argmax(&p[5..]) == argmax(&y[5..])) as usize;
            let bbox = |v: &[f32]| BBox::new(v[1], v[2], v[4], v[3]);
            iou += bbox(p).iou(&bbox(y)) as f64;
        }
    }
    let n = target.shape()[0].max(1) as f64;
    LocalizationScore {
        object_accuracy: right as f64 / n,
        class_accuracy: class_right as f64 / objects.max(1) as f64,
        mean_iou: iou / objects.max(1) as f64,
    }
}

/// What a regressor learns to output from synthetic single-object pictures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegressorTask {
    /// y = [pc, bx, by, bh, bw, c1 .. cC]: with `squared`, the notes' squared error on all
    /// values ([`localization_loss_squared`]), else logistic pc and log loss for the class
    /// ([`localization_loss`], the better variant).
    Localizer {
        /// the notes' squared error on all values
        squared: bool,
    },
    /// The object's landmarks, (x, y) relative to the picture, under the squared error.
    Landmarks,
}

/// A localizer or landmark network's training.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct RegressorConfig {
    /// what the network learns to output
    #[cfg_attr(feature = "cli", arg(skip = RegressorConfig::default().task))]
    pub task: RegressorTask,
    /// Side of the square pictures (a multiple of 16)
    #[cfg_attr(feature = "cli", arg(long, default_value_t = RegressorConfig::default().size))]
    pub size: usize,
    /// Epochs, each on --train-size new pictures
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = RegressorConfig::default().epochs))]
    pub epochs: usize,
    /// Synthetic single-object pictures to train on (new ones every epoch); 1,000 others test
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = RegressorConfig::default().train_size))]
    pub train_size: usize,
    /// Adam's learning rate at the start (it decays to 0 along a cosine)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::positive::<f32>, long, default_value_t = RegressorConfig::default().lr))]
    pub lr: f32,
    /// Random seed: weights, pictures, batch order
    #[cfg_attr(feature = "cli", arg(long, default_value_t = RegressorConfig::default().seed))]
    pub seed: u64,
}

impl Default for RegressorConfig {
    /// The better localizer: logistic pc and log loss, 64x64 pictures, 15 epochs of 4,000.
    fn default() -> Self {
        RegressorConfig {
            task: RegressorTask::Localizer { squared: false },
            size: 64,
            epochs: 15,
            train_size: 4000,
            lr: 0.001,
            seed: 0,
        }
    }
}

/// A regressor's figures after an epoch, on the 1,000 test pictures.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct RegressorEpoch {
    /// epoch number, from 1
    pub epoch: usize,
    /// mean training loss of the epoch
    pub train_loss: f32,
    /// figures on the test pictures
    #[serde(flatten)]
    pub score: RegressorScore,
}

/// How well a regressor does.
#[derive(Clone, Copy, Debug, serde::Serialize)]
#[serde(untagged)]
pub enum RegressorScore {
    /// A localizer's figures.
    Localizer(LocalizationScore),
    /// Mean distance between predicted and true landmarks, in pixels.
    Landmarks {
        /// over every landmark of the test pictures
        mean_pixel_error: f64,
    },
}

/// The pictures and targets of a localizer (y per picture) or a landmark net (2K
/// coordinates relative to the picture) from synthetic pictures `first ..`.
fn regression_data(landmarks: bool, first: u64, count: usize, seed: u64, size: usize) -> Result<(Tensor, Tensor)> {
    use super::shapes::{ShapesConfig, CLASSES};
    // landmarks: one object per picture; the localizer: none or one, half and half
    let config =
        ShapesConfig { size, min_objects: usize::from(landmarks), max_objects: 1, min_scale: 0.2, max_scale: 0.6 };
    let set = super::dataset::shapes_in_memory(first, count, seed, &config)?;
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

/// Trains a localizer or landmark network as `config` says, reporting each epoch to
/// `on_epoch`, and saves it in the run folder `out` (refused if it holds files, unless
/// `force`) as `regressor.safetensors`. Returns the last epoch's figures.
pub fn train_regressor(
    config: &RegressorConfig,
    out: &std::path::Path,
    force: bool,
    on_epoch: &mut dyn FnMut(&RegressorEpoch),
) -> Result<RegressorEpoch> {
    use super::shapes::{CLASSES, LANDMARKS};
    crate::train::check_new_folder(out, force)?;
    let landmarks = config.task == RegressorTask::Landmarks;
    let outputs = if landmarks { 2 * LANDMARKS } else { 5 + CLASSES.len() };
    let net = regressor(config.size, outputs, &mut Rng::new(config.seed))
        .map_err(|e| Error::setting("size", e.to_string()))?;
    let mut optimizer = crate::train::make_optimizer(&net, fovea::optim::OptimizerConfig::adam(config.lr, 0.0))?;
    let (test_x, test_y) = regression_data(landmarks, 0, 1000, config.seed.wrapping_add(1_000_003), config.size)?;
    let loss = |out: &Var, t: &Tensor| -> Result<Var> {
        match config.task {
            RegressorTask::Landmarks => ops::mse_loss(out, t),
            RegressorTask::Localizer { squared: true } => localization_loss_squared(out, t),
            RegressorTask::Localizer { squared: false } => localization_loss(out, t),
        }
    };
    let mut last = None;
    for epoch in 1..=config.epochs {
        // cosine decay: big steps first, small ones to settle
        let schedule = fovea::optim::LrSchedule::Cosine { t_max: config.epochs, eta_min: 0.0 };
        optimizer.set_lr(schedule.rate(config.lr, epoch - 1));
        let first = ((epoch - 1) * config.train_size) as u64;
        let (x, y) = regression_data(landmarks, first, config.train_size, config.seed, config.size)
            .map_err(|e| Error::setting("train_size", e.to_string()))?;
        let mut rng = Rng::derive(config.seed, epoch as u64);
        let train_loss = crate::train::fit_epoch(&net, &mut optimizer, (&x, &y), 32, &mut rng, &loss, &mut |_, _| {})?;
        let pred = crate::train::predict_all(&net, &test_x, 250)?;
        if !pred.all_finite() {
            return Err(Error::Invalid(format!(
                "the network's outputs are not finite after epoch {epoch}: training diverged; lower the learning rate"
            )));
        }
        let score = match config.task {
            RegressorTask::Landmarks => {
                let px = config.size as f32;
                let sum: f64 = pred
                    .data()
                    .chunks(2)
                    .zip(test_y.data().chunks(2))
                    .map(|(p, t)| (((p[0] - t[0]).powi(2) + (p[1] - t[1]).powi(2)).sqrt() * px) as f64)
                    .sum();
                RegressorScore::Landmarks { mean_pixel_error: sum / (test_y.numel() / 2) as f64 }
            }
            RegressorTask::Localizer { squared } => {
                RegressorScore::Localizer(score_localization(&pred, &test_y, squared))
            }
        };
        let e = RegressorEpoch { epoch, train_loss, score };
        on_epoch(&e);
        last = Some(e);
    }
    let last = last.ok_or_else(|| Error::setting("epochs", "must be 1 or more"))?;
    let loss_name = match config.task {
        RegressorTask::Landmarks => "squared",
        RegressorTask::Localizer { squared: true } => "squared",
        RegressorTask::Localizer { squared: false } => "logistic",
    };
    let meta = serde_json::json!({"task": if landmarks { "landmarks" } else { "localizer" }, "size": config.size,
                                  "outputs": outputs, "loss": loss_name, "result": last});
    fovea::io::save_checkpoint(&out.join("regressor.safetensors"), &net, None, "fovea-regressor", &meta)?;
    Ok(last)
}

impl std::fmt::Display for RegressorEpoch {
    /// The epoch's figures, after `epoch N/M: `.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "loss {:.5} | {}", self.train_loss, self.score)
    }
}

impl std::fmt::Display for RegressorScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegressorScore::Landmarks { mean_pixel_error } => {
                write!(f, "mean landmark error {mean_pixel_error:.2} px")
            }
            RegressorScore::Localizer(s) => write!(
                f,
                "object or not {:.2}%, class {:.2}%, mean IoU {:.3}",
                100.0 * s.object_accuracy,
                100.0 * s.class_accuracy,
                s.mean_iou
            ),
        }
    }
}
