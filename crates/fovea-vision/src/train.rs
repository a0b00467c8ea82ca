//! Training and evaluating image classifiers, with checkpoints that resume exactly.
//!
//! A run folder holds `checkpoint.safetensors` (model tensors under their own names,
//! optimizer state under `optimizer.<param>.<slot>`, and the run's JSON metadata inside the
//! file, so the three can never disagree), a readable copy `checkpoint.json`, `metrics.csv`
//! and `plot.png`. Every file is written atomically.

use crate::augment::Augment;
use crate::data::{for_each_batch, Dataset};
use fovea::nn::{load_state_dict, trainable_parameters, Mode, Module};
use fovea::optim::{Optimizer, OptimizerConfig};
use fovea::{no_grad, ops, Error, Result, Rng, Tensor, Var};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One epoch's figures: a row of `metrics.csv`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochMetrics {
    /// epoch number, from 1
    pub epoch: usize,
    /// mean cross-entropy over the epoch's training pictures (auxiliary classifiers left out)
    pub train_loss: f32,
    /// share of training pictures classified right during the epoch, 0..1
    pub train_accuracy: f32,
    /// mean cross-entropy on the test pictures after the epoch
    pub test_loss: f32,
    /// share of test pictures classified right after the epoch, 0..1
    pub test_accuracy: f32,
    /// seconds the epoch took, training and testing
    pub seconds: f32,
    /// training pictures per second of training
    pub images_per_second: f32,
    /// The kernel level ([`fovea::runtime::Isa`]) and thread count the epoch ran with:
    /// results depend on both through rounding.
    #[serde(default)]
    pub isa: String,
    /// Threads the kernels ran on (see `isa`).
    #[serde(default)]
    pub threads: usize,
}

/// Everything needed to rebuild the model and continue the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunMeta {
    /// architecture, a name [`crate::models::build`] knows
    pub model: String,
    /// Input of one sample, `[C, H, W]`.
    #[serde(default = "fashion_input")]
    pub input: Vec<usize>,
    /// The image folder trained on; `None`: Fashion-MNIST.
    #[serde(default)]
    pub data: Option<String>,
    /// Only this many training images (`--train-size`); `None`: all.
    #[serde(default)]
    pub train_size: Option<usize>,
    /// number of classes
    pub classes: usize,
    /// class names; index = label
    pub class_names: Vec<String>,
    /// `sgd`, `adam` or `adamw`
    pub optimizer: String,
    /// learning rate
    pub lr: f32,
    /// SGD's momentum (Adam and AdamW do not use it)
    pub momentum: f32,
    /// weight decay
    pub weight_decay: f32,
    /// pictures per batch
    pub batch_size: usize,
    /// random seed: the initial weights and each epoch's order, dropout and augmentation
    pub seed: u64,
    /// The augmentation spec trained with (`Augment::spec`), if any.
    #[serde(default)]
    pub augment: Option<String>,
    /// The pretrained weights the run started from (transfer learning).
    #[serde(default)]
    pub init: Option<String>,
    /// Layers up to and including this one are frozen.
    #[serde(default)]
    pub freeze: Option<String>,
    /// The frozen layers' outputs are computed once and the rest trains on them.
    #[serde(default)]
    pub cache_features: bool,
    /// epochs to train in all
    pub epochs: usize,
    /// epochs completed
    pub epoch: usize,
    /// optimizer updates so far
    pub optimizer_steps: u64,
    /// one entry per completed epoch
    pub history: Vec<EpochMetrics>,
}

fn fashion_input() -> Vec<usize> {
    vec![1, 28, 28]
}

impl RunMeta {
    /// The input shape as `[C, H, W]`.
    pub fn input_shape(&self) -> Result<[usize; 3]> {
        self.input
            .as_slice()
            .try_into()
            .map_err(|_| Error::Invalid(format!("run input {:?} is not [C, H, W]", self.input)))
    }

    /// Refuses values no run could have been saved with (a damaged or edited file).
    fn check(&self) -> Result<()> {
        self.optimizer_config()?;
        if self.input_shape()?.contains(&0) {
            return Err(Error::Invalid(format!("input {:?} has a zero size", self.input)));
        }
        let finite = [self.lr, self.momentum, self.weight_decay].iter().all(|v| v.is_finite());
        if !finite || self.lr <= 0.0 || self.momentum < 0.0 || self.weight_decay < 0.0 {
            return Err(Error::Invalid(format!(
                "lr {}, momentum {} and weight decay {} must be finite, the rate above 0",
                self.lr, self.momentum, self.weight_decay
            )));
        }
        if self.batch_size == 0
            || self.train_size == Some(0)
            || self.epoch > self.epochs
            || self.epoch != self.history.len()
        {
            return Err(Error::Invalid(format!(
                "batch size {}, train size {:?}, epoch {} of {} with {} epochs of history do not fit together",
                self.batch_size,
                self.train_size,
                self.epoch,
                self.epochs,
                self.history.len()
            )));
        }
        Ok(())
    }

    /// The optimizer the run trains with; refuses an unknown name.
    pub fn optimizer_config(&self) -> Result<OptimizerConfig> {
        Ok(match self.optimizer.as_str() {
            "sgd" => OptimizerConfig::sgd(self.lr, self.momentum, self.weight_decay),
            "adam" => OptimizerConfig::adam(self.lr, self.weight_decay),
            "adamw" => OptimizerConfig::adamw(self.lr, self.weight_decay),
            other => return Err(Error::Invalid(format!("unknown optimizer '{other}' (known: sgd, adam, adamw)"))),
        })
    }
}

/// The checkpoint's file name in a run folder.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// Checks that a new run (or dataset) may be written to `dir`: a folder that already holds
/// files is refused, so that nothing saved is replaced, unless `force`.
pub fn check_new_folder(dir: &Path, force: bool) -> Result<()> {
    let holds_files = match std::fs::read_dir(dir) {
        // what a killed writer left is not a run: it goes
        Ok(entries) => entries.flatten().any(|e| {
            let orphan = e.file_name().to_str().is_some_and(fovea::io::is_orphaned_temporary);
            !(orphan && std::fs::remove_file(e.path()).is_ok())
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) if dir.is_dir() => return Err(Error::io(dir, e)),
        Err(_) => return Err(Error::setting("out", format!("{} is not a folder", dir.display()))),
    };
    if holds_files && !force {
        return Err(Error::FolderInUse { path: dir.to_path_buf() });
    }
    check_writable(dir)
}

/// The folders [`check_writable`] made in this process (see [`remove_empty_new_folders`]).
static MADE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Makes `dir` and checks that files can be written in it, so that a run into a folder it
/// cannot write fails now, not after its first epoch.
pub fn check_writable(dir: &Path) -> Result<()> {
    // the folders about to be made, outermost first
    let missing: Vec<PathBuf> =
        dir.ancestors().take_while(|a| !a.as_os_str().is_empty() && !a.exists()).map(Path::to_path_buf).collect();
    MADE.lock().unwrap_or_else(|e| e.into_inner()).extend(missing.into_iter().rev());
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let probe = dir.join(format!(".fovea-write-check.tmp{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| Error::Invalid(format!("cannot write in {}: {e}", dir.display())))?;
    std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))
}

/// Removes the folders [`check_writable`] made in this process that are still empty: what
/// a program calls when a run failed before writing anything, so that it leaves no empty
/// run folder behind. A folder holding anything stays.
pub fn remove_empty_new_folders() {
    for dir in MADE.lock().unwrap_or_else(|e| e.into_inner()).drain(..).rev() {
        let _ = std::fs::remove_dir(&dir);
    }
}

/// The key of a run's description in its checkpoint's metadata.
const META_KEY: &str = "fovea";

/// Writes the model, optimizer state and metadata to `dir/checkpoint.safetensors`
/// (atomically), then `checkpoint.json`.
pub fn save_checkpoint(dir: &Path, model: &dyn Module, optimizer: Option<&Optimizer>, meta: &RunMeta) -> Result<()> {
    fovea::io::save_checkpoint(&dir.join(CHECKPOINT_FILE), model, optimizer, META_KEY, meta)
}

/// A map for errors about what the run file `path/file` (or `path` itself) holds, so that
/// they name the file; errors that already name a file pass unchanged.
pub fn about_file(path: &Path, file: &str) -> impl Fn(Error) -> Error {
    let file = if path.is_dir() { path.join(file) } else { path.to_path_buf() };
    move |e| match e {
        Error::Format { .. } | Error::Io { .. } => e,
        e => Error::format(&file, e.to_string()),
    }
}

/// Reads the checkpoint `path/file` (or `path` itself, a file) that [`fovea::io::save_checkpoint`]
/// wrote with its description under `key`. `made_by` names the command that writes such
/// files, for the errors.
pub fn load_network<T: DeserializeOwned>(
    path: &Path,
    file: &str,
    key: &str,
    made_by: &str,
) -> Result<fovea::io::Checkpoint<T>> {
    let file = if path.is_dir() { path.join(file) } else { path.to_path_buf() };
    if !file.exists() {
        return Err(Error::format(&file, format!("not found (expected a run folder made by `{made_by}`)")));
    }
    fovea::io::load_checkpoint(&file, key).map_err(|e| match e {
        Error::Format { path, msg } if msg.starts_with("has no") => {
            Error::format(path, format!("{msg} (not made by `{made_by}`)"))
        }
        e => e,
    })
}

/// A run's checkpoint: its metadata, model tensors and optimizer state.
pub type Checkpoint = fovea::io::Checkpoint<RunMeta>;

/// Reads `DIR/checkpoint.safetensors` (or the file itself if a file is given).
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let ckpt: Checkpoint = load_network(path, CHECKPOINT_FILE, META_KEY, "fovea train")?;
    let (file, meta) = (&ckpt.file, &ckpt.meta);
    if meta.classes == 0 || meta.classes > 100_000 || meta.class_names.len() != meta.classes {
        return Err(Error::format(
            file,
            format!("metadata lists {} class names for {} classes", meta.class_names.len(), meta.classes),
        ));
    }
    meta.check().map_err(|e| Error::format(file, format!("bad metadata: {e}")))?;
    Ok(ckpt)
}

/// Rebuilds a model from a checkpoint and loads its weights.
pub fn model_from_checkpoint(ckpt: &Checkpoint) -> Result<Box<dyn Module>> {
    let in_file = about_file(&ckpt.file, CHECKPOINT_FILE);
    let model = crate::models::build(&ckpt.meta.model, ckpt.meta.classes, &mut Rng::new(0)).map_err(&in_file)?;
    load_state_dict(model.as_ref(), &ckpt.model).map_err(&in_file)?;
    // the metadata's input shape must be one the network takes
    let mut input = vec![1];
    input.extend(ckpt.meta.input_shape().map_err(&in_file)?);
    model.output_shape(&input).map_err(|e| {
        Error::format(&ckpt.file, format!("{} cannot take the input {input:?} it states ({e})", ckpt.meta.model))
    })?;
    Ok(model)
}

/// Creates the optimizer for a model's trainable parameters.
pub fn make_optimizer(model: &dyn Module, config: OptimizerConfig) -> Result<Optimizer> {
    Optimizer::new(config, trainable_parameters(model))
}

/// Running totals of an epoch, handed to the progress callback after each batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// pictures so far
    pub seen: usize,
    /// loss summed over the pictures so far
    pub loss_sum: f64,
    /// pictures classified right so far
    pub correct: usize,
}

impl Progress {
    /// Mean loss per picture so far.
    pub fn loss(&self) -> f32 {
        (self.loss_sum / self.seen.max(1) as f64) as f32
    }
    /// Share of the pictures classified right so far, 0..1.
    pub fn accuracy(&self) -> f32 {
        self.correct as f32 / self.seen.max(1) as f32
    }
}

fn count_correct(logits: &Tensor, labels: &[usize]) -> usize {
    logits.argmax_rows().expect("logits are [N, C]").iter().zip(labels).filter(|(p, l)| p == l).count()
}

/// Weight of each auxiliary classifier's loss (GoogLeNet's), as torchvision's reference
/// training and the paper.
const AUX_LOSS_WEIGHT: f32 = 0.3;

/// One pass over `data` in training mode, in an order drawn from `rng`: forward,
/// cross-entropy (plus 0.3 times that of each auxiliary classifier), backward, optimizer step
/// per batch. Dropout masks and, with `augment`, the transforms of every picture (made on
/// the loader thread) are seeded from `rng` too. Stops with an error naming the batch if the
/// loss is not finite.
///
/// Run by several processes ([`fovea::dist`]), each takes its shard of every batch of
/// `batch_size` and the gradients are summed over them while backward runs: the batches,
/// dropout masks and transforms are those of one process, and so are the updates, up to the
/// order of the sums. Batch norm differs unless synchronised
/// ([`fovea::dist::World::sync_batch_norm`]): each process normalises its shard with the
/// shard's statistics, and rank 0's running statistics are every rank's. The progress is
/// the whole batch's on every rank.
pub fn train_epoch(
    model: &dyn Module,
    optimizer: &mut Optimizer,
    data: &Dataset,
    batch_size: usize,
    rng: &mut Rng,
    augment: Option<&Augment>,
    on_batch: &mut dyn FnMut(&Progress),
) -> Result<Progress> {
    let world = fovea::dist::world();
    let dropout_seed = rng.next_u64();
    let mut p = Progress::default();
    let batches = data.batch_indices(batch_size, Some(rng));
    check_sync_batch_norm(data.len(), batch_size)?;
    let shards: Vec<Vec<usize>> = batches.iter().map(|b| b[world.shard(b.len())].to_vec()).collect();
    // each picture's transforms drawn from (this seed, its index): batches do not depend
    // on the loader's timing
    let augment_seed = augment.map(|_| rng.next_u64());
    let make = |indices: &[usize]| match (augment, augment_seed) {
        (Some(pipeline), Some(seed)) => pipeline.batch(data, indices, seed),
        _ => Ok(data.batch(indices)),
    };
    let params = trainable_parameters(model).into_iter().map(|(_, v)| v).collect();
    let gradients = fovea::dist::GradientSync::new(params, fovea::dist::BUCKET_FLOATS);
    let replicas = Replicas::of(model);
    let mut b = 0;
    for_each_batch(&shards, make, |x, y| {
        let global = batches[b].len();
        let first_row = world.shard(global).start as u64;
        let mode = Mode::train_shard(Rng::derive(dropout_seed, b as u64).next_u64(), first_row);
        b += 1;
        // this shard's loss (None for an empty shard); the loss reported, the total loss and
        // the pictures classified right, summed over the ranks
        let shard_step = || -> Result<(Option<Var>, [f64; 3])> {
            if y.is_empty() {
                return Ok((None, [0.0; 3]));
            }
            let (logits, aux) = model.forward_aux(&Var::constant(x), mode)?;
            let mut loss = ops::cross_entropy(&logits, &y)?;
            // the main classifier's loss is the one reported
            let lv = loss.value().item()?;
            for a in &aux {
                loss = ops::add(&loss, &ops::mul_scalar(&ops::cross_entropy(a, &y)?, AUX_LOSS_WEIGHT)?)?;
            }
            let total = loss.value().item()?;
            let n = y.len() as f64;
            let correct = count_correct(&logits.value(), &y) as f64;
            Ok((Some(loss), [lv as f64 * n, total as f64 * n, correct]))
        };
        let step = shard_step();
        let mut sums = step.as_ref().map_or([0.0; 3], |(_, sums)| *sums);
        let step = world.sum_agreed(step.map(|(loss, _)| loss), &mut sums, "the losses' allreduce")?;
        let total = (sums[1] / global as f64) as f32;
        if !total.is_finite() {
            return Err(non_finite_loss("the loss", total, &format!("batch {b} (of {batch_size} images)"), optimizer));
        }
        optimizer.zero_grad();
        gradients.backward(step.as_ref(), y.len() as f32 / global as f32)?;
        optimizer.step()?;
        replicas.after_step()?;
        p.correct += sums[2] as usize;
        p.seen += global;
        p.loss_sum += sums[0];
        on_batch(&p);
        Ok(())
    })?;
    Ok(p)
}

/// Refuses synchronised batch norm ([`fovea::dist::World::sync_batch_norm`]) on batches that
/// leave a process without a picture: every rank takes part in each batch norm's sums.
pub fn check_sync_batch_norm(pictures: usize, batch_size: usize) -> Result<()> {
    let world = fovea::dist::world();
    let smallest = match pictures % batch_size.max(1) {
        0 => batch_size.min(pictures),
        last => last,
    };
    if world.size() > 1 && world.syncs_batch_norm() && smallest < world.size() {
        return Err(Error::setting(
            "sync_bn",
            format!(
                "needs every batch to hold a picture for each of the {} processes, but one holds {smallest} ({pictures} \
                 pictures in batches of {batch_size}); choose a batch size or training size that leaves more",
                world.size()
            ),
        ));
    }
    Ok(())
}

/// What keeps the ranks' models equal between training steps ([`fovea::dist`]).
pub(crate) struct Replicas {
    state: Vec<(String, Var)>,
    buffers: Vec<(String, Var)>,
    /// `FOVEA_CHECK_REPLICAS=1`: compare the ranks' models after every step (the tests do).
    check: bool,
}

impl Replicas {
    pub(crate) fn of(model: &dyn Module) -> Replicas {
        Replicas {
            state: fovea::nn::state_dict(model),
            buffers: fovea::nn::buffers(model),
            check: std::env::var("FOVEA_CHECK_REPLICAS").is_ok_and(|v| v == "1"),
        }
    }

    /// After an update: unless batch norm is synchronised, each rank updated the running
    /// statistics from its own shard, and all take rank 0's.
    pub(crate) fn after_step(&self) -> Result<()> {
        let world = fovea::dist::world();
        if !world.syncs_batch_norm() {
            world.broadcast_tensors(&self.buffers)?;
        }
        if self.check {
            world.check_replicas(&self.state)?;
        }
        Ok(())
    }
}

/// The error for a training loss that is not finite: before the optimizer's first update
/// the starting weights (or the data) are the cause, after it the updates diverged.
pub fn non_finite_loss(what: &str, loss: f32, at: &str, optimizer: &Optimizer) -> Error {
    if optimizer.steps == 0 {
        Error::Invalid(format!(
            "{what} is {loss} at {at}, before any update: the starting weights (or the data) give outputs that \
             are not finite"
        ))
    } else {
        Error::Invalid(format!("{what} became {loss} at {at}: training diverged; lower the learning rate"))
    }
}

/// One epoch of `net` in training mode on inputs `x` and targets `y` (first dimensions
/// equal) under `loss`, in batches in an order drawn from `rng`; returns the mean loss. For
/// the networks whose targets are not class labels (detectors, regressors). Stops with an
/// error if the loss is not finite.
///
/// On several processes ([`fovea::dist`]) each takes its shard of every batch, as
/// [`train_epoch`] does; the updates are one process's when `loss` is a mean over the
/// batch's rows (as the YOLO and localisation losses are).
pub fn fit_epoch(
    net: &dyn Module,
    optimizer: &mut Optimizer,
    (x, y): (&Tensor, &Tensor),
    batch_size: usize,
    rng: &mut Rng,
    loss: &dyn Fn(&Var, &Tensor) -> Result<Var>,
    on_batch: &mut dyn FnMut(usize, f32),
) -> Result<f32> {
    let world = fovea::dist::world();
    let dropout_seed = rng.next_u64();
    let n = x.shape()[0];
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    check_sync_batch_norm(n, batch_size)?;
    let params = trainable_parameters(net).into_iter().map(|(_, v)| v).collect();
    let gradients = fovea::dist::GradientSync::new(params, fovea::dist::BUCKET_FLOATS);
    let replicas = Replicas::of(net);
    let (mut sum, mut seen) = (0.0f64, 0usize);
    for (b, batch) in order.chunks(batch_size.max(1)).enumerate() {
        let shard = world.shard(batch.len());
        let idx = &batch[shard.clone()];
        let mode = Mode::train_shard(Rng::derive(dropout_seed, b as u64).next_u64(), shard.start as u64);
        // this shard's loss, and its sum over the shard's rows summed over the ranks
        let shard_step = || -> Result<(Option<Var>, [f64; 1])> {
            if idx.is_empty() {
                return Ok((None, [0.0]));
            }
            let l = loss(&net.forward_mode(&Var::constant(x.index_select(0, idx)?), mode)?, &y.index_select(0, idx)?)?;
            let sum = l.value().item()? as f64 * idx.len() as f64;
            Ok((Some(l), [sum]))
        };
        let step = shard_step();
        let mut sums = step.as_ref().map_or([0.0], |(_, sums)| *sums);
        let step = world.sum_agreed(step.map(|(loss, _)| loss), &mut sums, "the losses' allreduce")?;
        let lv = (sums[0] / batch.len() as f64) as f32;
        if !lv.is_finite() {
            return Err(non_finite_loss("the loss", lv, &format!("batch {}", b + 1), optimizer));
        }
        optimizer.zero_grad();
        gradients.backward(step.as_ref(), idx.len() as f32 / batch.len() as f32)?;
        optimizer.step()?;
        replicas.after_step()?;
        seen += batch.len();
        sum += sums[0];
        on_batch(seen, (sum / seen as f64) as f32);
    }
    Ok((sum / n.max(1) as f64) as f32)
}

/// The outputs of `net` on every row of `x`, in evaluation mode, in batches of `batch_size`.
pub fn predict_all(net: &dyn Module, x: &Tensor, batch_size: usize) -> Result<Tensor> {
    let n = x.shape()[0];
    if n == 0 {
        return Tensor::new(&[0], vec![]);
    }
    let mut parts = Vec::new();
    no_grad(|| -> Result<()> {
        for start in (0..n).step_by(batch_size.max(1)) {
            let len = batch_size.min(n - start);
            parts.push(net.forward(&Var::constant(x.narrow(0, start, len)?))?.tensor());
        }
        Ok(())
    })?;
    Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)
}

/// Loss, accuracy and predicted classes over a dataset, in evaluation mode.
pub fn evaluate(model: &dyn Module, data: &Dataset, batch_size: usize) -> Result<(Progress, Vec<usize>)> {
    evaluate_or(model, data, batch_size, "the weights are not usable")
}

/// [`evaluate`] of a network just trained, without the predictions: a loss that is not
/// finite means the last updates diverged (the step before checks only that the weights
/// stay finite). On several processes ([`fovea::dist`]) each rank takes its shard of every
/// batch and the totals are summed: every rank gets the whole set's.
pub fn evaluate_trained(model: &dyn Module, data: &Dataset, batch_size: usize) -> Result<Progress> {
    let world = fovea::dist::world();
    // this rank's loss and right answers, summed
    let local = no_grad(|| -> Result<[f64; 2]> {
        let mut sums = [0.0f64; 2];
        for batch in data.batch_indices(batch_size, None) {
            let idx = &batch[world.shard(batch.len())];
            if idx.is_empty() {
                continue;
            }
            let (x, y) = data.batch(idx);
            let logits = model.forward(&Var::constant(x))?;
            sums[0] += ops::cross_entropy(&logits, &y)?.value().item()? as f64 * y.len() as f64;
            sums[1] += count_correct(&logits.value(), &y) as f64;
        }
        Ok(sums)
    });
    let mut sums = local.as_ref().map_or([0.0; 2], |sums| *sums);
    world.sum_agreed(local, &mut sums, "the test totals' allreduce")?;
    if !sums[0].is_finite() {
        return Err(Error::Invalid(format!("the evaluation loss is {}: {DIVERGED}", sums[0])));
    }
    Ok(Progress { seen: data.len(), loss_sum: sums[0], correct: sums[1] as usize })
}

/// What a loss that is not finite after training means.
pub(crate) const DIVERGED: &str = "training diverged; lower the learning rate";

/// [`evaluate`], with `non_finite` saying what a loss that is not finite means.
pub(crate) fn evaluate_or(
    model: &dyn Module,
    data: &Dataset,
    batch_size: usize,
    non_finite: &str,
) -> Result<(Progress, Vec<usize>)> {
    let mut p = Progress::default();
    let mut predictions = Vec::with_capacity(data.len());
    no_grad(|| -> Result<()> {
        for idx in data.batch_indices(batch_size, None) {
            let (x, y) = data.batch(&idx);
            let logits = model.forward(&Var::constant(x))?;
            let loss = ops::cross_entropy(&logits, &y)?.value().item()?;
            if !loss.is_finite() {
                return Err(Error::Invalid(format!("the evaluation loss is {loss}: {non_finite}")));
            }
            p.seen += y.len();
            p.loss_sum += loss as f64 * y.len() as f64;
            let pred = logits.value().argmax_rows()?;
            p.correct += pred.iter().zip(&y).filter(|(a, b)| a == b).count();
            predictions.extend(pred);
        }
        Ok(())
    })?;
    Ok((p, predictions))
}

/// Writes `metrics.csv` for the whole history.
pub fn write_metrics_csv(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut s =
        String::from("epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds,images_per_second,isa,threads\n");
    for m in history {
        s.push_str(&format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.3},{:.1},{},{}\n",
            m.epoch,
            m.train_loss,
            m.train_accuracy,
            m.test_loss,
            m.test_accuracy,
            m.seconds,
            m.images_per_second,
            m.isa,
            m.threads
        ));
    }
    fovea::io::write_atomic(path, s.as_bytes())
}

/// Confusion matrix `[true][predicted]`.
pub fn confusion_matrix(labels: &[usize], predictions: &[usize], classes: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0; classes]; classes];
    for (&t, &p) in labels.iter().zip(predictions) {
        if t < classes && p < classes {
            m[t][p] += 1;
        }
    }
    m
}

/// Softmax probabilities of one batch of logits, rows sorted into the top `k` (class, p).
pub fn top_k(logits: &Var, k: usize) -> Result<Vec<Vec<(usize, f32)>>> {
    if logits.value().data().iter().any(|v| !v.is_finite()) {
        return Err(Error::Invalid(
            "the network's outputs are NaN or infinite: its weights overflow (or are damaged) on this input".into(),
        ));
    }
    let probs = ops::softmax(logits, 1)?.tensor();
    let c = probs.shape()[1];
    Ok(probs
        .data()
        .chunks(c)
        .map(|row| {
            let mut idx: Vec<usize> = (0..c).collect();
            idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            idx.into_iter().take(k).map(|i| (i, row[i])).collect()
        })
        .collect())
}

impl std::fmt::Display for EpochMetrics {
    /// The epoch's figures, after `epoch N/M: `.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "train loss {:.4} acc {:.2}% | test loss {:.4} acc {:.2}% | {:.1}s, {:.0} img/s",
            self.train_loss,
            100.0 * self.train_accuracy,
            self.test_loss,
            100.0 * self.test_accuracy,
            self.seconds,
            self.images_per_second
        )
    }
}
