//! Classifier runs, what `fovea train` does: start a run (a new model, or one started from
//! pretrained weights with part of it frozen), resume one from its folder, and fit it epoch
//! by epoch, saving the checkpoint, `metrics.csv` and `plot.png` after each epoch and
//! reporting progress to a [`RunObserver`].
//!
//! ```no_run
//! use fovea_vision::run::{Run, RunConfig};
//! # fn main() -> fovea::Result<()> {
//! let config = RunConfig { epochs: 2, train_size: Some(5000), ..RunConfig::default() };
//! let mut run = Run::start(&config, "runs/lenet".as_ref(), false, &mut ())?;
//! run.fit(&mut ())?;
//! println!("test accuracy {}", run.meta.history.last().unwrap().test_accuracy);
//! # Ok(())
//! # }
//! ```

use crate::augment::Augment;
use crate::data::{self, Dataset, FashionMnist, Split};
use crate::train::{self, Checkpoint, EpochMetrics, Progress, RunMeta};
use crate::transfer::{self, Frozen};
use fovea::nn::Module;
use fovea::optim::Optimizer;
use fovea::{Error, Result, Rng, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A new run: the model, the data and how to train. The default is `fovea train`'s:
/// LeNet-5 on the repository's Fashion-MNIST, Adam, 10 epochs of batches of 64.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct RunConfig {
    /// Architecture: lenet5, cnn-bn, or any of the zoo (resnet18, vgg11_bn, googlenet, ...)
    #[cfg_attr(feature = "cli", arg(long, default_value_t = RunConfig::default().model))]
    pub model: String,
    /// Fashion-MNIST's IDX files (default: the repository's data/fashion-mnist), or an image
    /// folder with one sub-folder per class (optionally split into train/ and val/)
    #[cfg_attr(feature = "cli", arg(long))]
    pub data: Option<PathBuf>,
    /// Side of the square images the model is trained on (default: 28 for lenet5 and cnn-bn;
    /// for the ImageNet architectures 32 on Fashion-MNIST, 64 for alexnet, 224 on image folders)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::whole(8, 1024), long))]
    pub image_size: Option<usize>,
    /// Use only N training images (Fashion-MNIST's first N; an image folder's from each class in turn)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long))]
    pub train_size: Option<usize>,
    /// The classes of the new head; must match the classes in --data
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long))]
    pub num_classes: Option<usize>,
    /// sgd, adam or adamw
    #[cfg_attr(feature = "cli", arg(long, value_parser = ["sgd", "adam", "adamw"], default_value_t = RunConfig::default().optimizer))]
    pub optimizer: String,
    /// Learning rate (default: 0.001 for Adam/AdamW, 0.01 for SGD; with --resume, overrides the run's)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::positive::<f32>, long))]
    pub lr: Option<f32>,
    /// SGD's momentum (Adam and AdamW do not use it)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::fraction::<f32>, long, default_value_t = RunConfig::default().momentum))]
    pub momentum: f32,
    /// Weight decay
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::non_negative::<f32>, long, default_value_t = RunConfig::default().weight_decay))]
    pub weight_decay: f32,
    /// Pictures per batch
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = RunConfig::default().batch_size))]
    pub batch_size: usize,
    /// Random seed: the initial weights and each epoch's order, dropout and augmentation
    #[cfg_attr(feature = "cli", arg(long, default_value_t = RunConfig::default().seed))]
    pub seed: u64,
    /// Augment the training pictures on the loader thread: a comma-separated list of
    /// `mirror`, `crop[:MIN_AREA]`, `color[:SHIFT]`, `pca[:SIGMA]`, `rotate[:DEGREES]`,
    /// `shear[:FACTOR]`, `warp[:STRENGTH]`, e.g. `mirror,crop,color,rotate:15,shear:0.2,warp`
    #[cfg_attr(feature = "cli", arg(long))]
    pub augment: Option<String>,
    /// Start from pretrained weights (a run folder or a safetensors file with the model's
    /// tensor names); every layer but the classifier head is copied, the head is new
    #[cfg_attr(feature = "cli", arg(long))]
    pub init: Option<PathBuf>,
    /// Freeze the layers up to and including this one (no gradient, no update, evaluation
    /// mode); `none` fine-tunes everything
    #[cfg_attr(feature = "cli", arg(long))]
    pub freeze: Option<String>,
    /// With --freeze: compute the frozen layers' outputs once (kept in the run folder as
    /// features.safetensors) and train the rest on them
    #[cfg_attr(feature = "cli", arg(long))]
    pub cache_features: bool,
    /// Epochs in all (with --resume, the run's own plan unless given)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = RunConfig::default().epochs))]
    pub epochs: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            model: "lenet5".into(),
            data: None,
            image_size: None,
            train_size: None,
            num_classes: None,
            optimizer: "adam".into(),
            lr: None,
            momentum: 0.9,
            weight_decay: 0.0,
            batch_size: 64,
            seed: 0,
            augment: None,
            init: None,
            freeze: None,
            cache_features: false,
            epochs: 10,
        }
    }
}

/// What may change when a run is resumed; everything else comes from the run.
#[derive(Clone, Debug, Default)]
pub struct ResumeChanges {
    /// A new learning rate.
    pub lr: Option<f32>,
    /// A new number of epochs in all.
    pub epochs: Option<usize>,
    /// Where the run's image folder is now; refused while the recorded folder still exists
    /// and is another.
    pub data: Option<PathBuf>,
}

/// Refuses what a resumed run cannot do: settings of `asked` that `given` says were asked
/// for and that differ from the run's own (a resumed run keeps its data, model and
/// optimizer settings; only `lr`, `epochs` and `data` may change, see [`ResumeChanges`]), and
/// `init`, `freeze` and `cache_features`, which start a run. A run made before its training
/// size was recorded takes `asked.train_size`, as it did then.
pub fn check_resume(checkpoint: &mut Checkpoint, asked: &RunConfig, given: &dyn Fn(&str) -> bool) -> Result<()> {
    let starters =
        [("init", asked.init.is_some()), ("freeze", asked.freeze.is_some()), ("cache_features", asked.cache_features)];
    if let Some((name, _)) = starters.iter().find(|(_, given)| *given) {
        return Err(Error::setting(name, "starts a run; a resumed run keeps its own"));
    }
    fn keeps<T: PartialEq + std::fmt::Display>(name: &'static str, asked: Option<T>, run: T) -> Result<()> {
        match asked {
            Some(v) if v != run => Err(Error::setting(
                name,
                format!("{v} differs from the run's {run}; a resumed run keeps its own (start a new run to change it)"),
            )),
            _ => Ok(()),
        }
    }
    let run = &checkpoint.meta;
    if given("model") && asked.model != run.model {
        return Err(Error::setting(
            "model",
            format!("the run to resume trains {}; it cannot continue as {}", run.model, asked.model),
        ));
    }
    keeps("batch_size", given("batch_size").then_some(asked.batch_size), run.batch_size)?;
    keeps("optimizer", given("optimizer").then_some(asked.optimizer.as_str()), run.optimizer.as_str())?;
    keeps("momentum", given("momentum").then_some(asked.momentum), run.momentum)?;
    keeps("weight_decay", given("weight_decay").then_some(asked.weight_decay), run.weight_decay)?;
    keeps("seed", given("seed").then_some(asked.seed), run.seed)?;
    keeps("num_classes", asked.num_classes, run.classes)?;
    let shape = run.input_shape()?;
    if asked.image_size.is_some_and(|s| s != shape[1]) {
        let msg = format!("the run to resume trains on {}x{} pictures; it cannot change", shape[1], shape[2]);
        return Err(Error::setting("image_size", msg));
    }
    let augment = asked.augment.as_deref().map(Augment::parse).transpose()?.map(|p| p.spec());
    if augment.is_some() && augment != run.augment {
        let theirs = run.augment.as_deref().unwrap_or("(none)");
        return Err(Error::setting("augment", format!("the run to resume trains with {theirs:?}; it cannot change")));
    }
    match run.train_size {
        Some(n) => keeps("train_size", asked.train_size, n),
        None => {
            checkpoint.meta.train_size = asked.train_size;
            Ok(())
        }
    }
}

/// What a run reports while it starts and fits; every method does nothing by default, and
/// `()` is the observer that wants nothing.
pub trait RunObserver {
    /// A line about what the run does (tensors copied from pretrained weights, the frozen
    /// layers' outputs computed).
    fn note(&mut self, _line: &str) {}
    /// The running totals of `epoch` after each batch.
    fn batch(&mut self, _epoch: usize, _progress: &Progress) {}
    /// An epoch's figures, once its checkpoint is saved.
    fn epoch(&mut self, _metrics: &EpochMetrics) {}
}

impl RunObserver for () {}

impl std::fmt::Display for Run {
    /// What the run trains on what, and where.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training {} ({} parameters) on {} images, testing on {}, {} threads, {} kernels; run folder {}",
            self.meta.model,
            fovea::nn::parameter_count(self.model.as_ref()),
            self.train_set.len(),
            self.test_set.len(),
            fovea::runtime::num_threads(),
            fovea::runtime::current_isa(),
            self.dir.display()
        )
    }
}

/// A classifier run: its folder, its metadata (with the history of its epochs), the model,
/// the optimizer and the data.
pub struct Run {
    /// The run folder.
    pub dir: PathBuf,
    /// the run's metadata, with the history of its epochs
    pub meta: RunMeta,
    /// the network
    pub model: Box<dyn Module>,
    optimizer: Optimizer,
    train_set: Dataset,
    test_set: Dataset,
    augment: Option<Augment>,
}

/// The input `[C, H, W]` a new run of `model` trains on.
pub fn training_input(model: &str, fashion: bool, image_size: Option<usize>) -> Result<[usize; 3]> {
    let [c, h, _] = crate::models::architecture(model).map_err(|e| Error::setting("model", e.to_string()))?.input;
    let size = image_size.unwrap_or(match (fashion, c, model) {
        (false, _, _) | (true, 1, _) => h,
        (true, _, "alexnet") => 64,
        (true, _, _) => 32,
    });
    if !(8..=1024).contains(&size) {
        return Err(Error::setting("image_size", format!("must be between 8 and 1024, got {size}")));
    }
    Ok([c, size, size])
}

/// Refuses an input the network cannot take, and a batch whose activations would not fit
/// the memory budget: a training step holds every layer's output and its gradient, so the
/// estimate is twice the outputs' size, checked before any picture is loaded.
fn check_activations(model: &dyn Module, name: &str, shape: [usize; 3], batch_size: usize) -> Result<()> {
    let summary = fovea::nn::summary::summarize(model, &shape).map_err(|e| {
        Error::setting("image_size", format!("{name} cannot take {}x{} images ({e})", shape[1], shape[2]))
    })?;
    let per_picture: u64 = summary.layers.iter().map(|l| l.activation_size as u64).sum();
    let bytes = per_picture.saturating_mul(batch_size as u64).saturating_mul(2 * 4);
    fovea::budget::check(
        &format!(
            "training {name} on {}x{} pictures in batches of {batch_size} (its activations; a smaller picture \
             size or batch takes less)",
            shape[1], shape[2]
        ),
        bytes,
    )
}

/// The model tensors of a run folder or checkpoint (its optimizer state left out), or of
/// any safetensors file.
pub fn pretrained_tensors(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    let file = if path.is_dir() { path.join(train::CHECKPOINT_FILE) } else { path.to_path_buf() };
    let (tensors, _) = fovea::io::read_safetensors(&file)?;
    Ok(tensors.into_iter().filter(|(name, _)| !name.starts_with("optimizer.")).collect())
}

/// The training and test sets of `dir` at `shape`, refusing sets of one class.
fn load_data(dir: &Path, shape: [usize; 3], train_size: Option<usize>) -> Result<(Dataset, Dataset, Vec<String>)> {
    let (train_set, names) = data::load(dir, Split::Train, shape, train_size)?;
    if names.len() < 2 {
        return Err(Error::Invalid(format!(
            "{} holds one class ({}); a classifier needs two or more",
            dir.display(),
            names.join("")
        )));
    }
    let (test_set, _) = data::load(dir, Split::Test, shape, None)?;
    Ok((train_set, test_set, names))
}

/// The recorded form of a data folder: absolute, so that eval and resume work from any
/// folder; `None` for the repository's Fashion-MNIST (found wherever the repository is).
fn recorded_data(dir: &Path) -> Option<String> {
    let canonical = std::fs::canonicalize(dir).unwrap_or(dir.to_path_buf());
    (std::fs::canonicalize(FashionMnist::default_dir()).ok() != Some(canonical.clone()))
        .then(|| canonical.display().to_string())
}

/// The augmentation pipeline of `spec`, fitted to the training pictures (PCA colour).
fn fitted_augment(spec: Option<&str>, train_set: &Dataset) -> Result<Option<Augment>> {
    spec.map(|spec| {
        let mut pipeline = Augment::parse(spec)?;
        pipeline.fit(&train_set.images)?;
        Ok(pipeline)
    })
    .transpose()
}

impl Run {
    /// Starts a run in `dir`, which must not hold files unless `force` and must be
    /// writable (it is made now): loads the data, builds the model (copying pretrained
    /// weights into all but its head when `config.init` is given, freezing what
    /// `config.freeze` names) and the optimizer. The run's files are written by
    /// [`Run::fit`], after each epoch.
    ///
    /// Started on several processes ([`fovea::dist`]), each builds the same run and rank 0
    /// alone checks and makes the folder; if any rank fails, all return an error.
    pub fn start(config: &RunConfig, dir: &Path, force: bool, observer: &mut dyn RunObserver) -> Result<Run> {
        let world = fovea::dist::world();
        world.agree(Run::start_here(config, dir, force, observer), "starting the run")
    }

    fn start_here(config: &RunConfig, dir: &Path, force: bool, observer: &mut dyn RunObserver) -> Result<Run> {
        let freezes = config.freeze.as_deref().is_some_and(|f| f != "none");
        if config.cache_features && !freezes {
            return Err(Error::setting(
                "cache_features",
                "needs freeze LAYER: only frozen layers' outputs can be cached",
            ));
        }
        if config.cache_features && config.augment.is_some() {
            return Err(Error::setting(
                "cache_features",
                "cannot go with augment: the cache holds the pictures' features unaugmented",
            ));
        }
        // a folder with files, a run's among them, only with force
        if fovea::dist::world().is_root() {
            train::check_new_folder(dir, force)?;
        }
        let data_dir = config.data.clone().unwrap_or_else(FashionMnist::default_dir);
        let shape = training_input(&config.model, data::is_fashion_mnist(&data_dir), config.image_size)?;
        // before any data is loaded: does the network take this input at all, and do its
        // activations fit?
        let probe = crate::models::build(&config.model, 2, &mut Rng::new(0))?;
        // a batch is never larger than the training set
        let batch = config.train_size.map_or(config.batch_size, |n| config.batch_size.min(n.max(1)));
        check_activations(probe.as_ref(), &config.model, shape, batch)?;
        let (train_set, test_set, class_names) = load_data(&data_dir, shape, config.train_size)?;
        if let Some(k) = config.num_classes.filter(|&k| k != class_names.len()) {
            return Err(Error::setting(
                "num_classes",
                format!(
                    "{k} classes asked for, but {} holds {} classes ({})",
                    data_dir.display(),
                    class_names.len(),
                    class_names.join(", ")
                ),
            ));
        }
        let augment = config.augment.as_deref().map(Augment::parse).transpose()?.map(|p| p.spec());
        let lr = config.lr.unwrap_or(if config.optimizer == "sgd" { 0.01 } else { 0.001 });
        let meta = RunMeta {
            model: config.model.clone(),
            input: shape.to_vec(),
            data: recorded_data(&data_dir),
            train_size: Some(train_set.len()),
            classes: class_names.len(),
            class_names,
            optimizer: config.optimizer.clone(),
            lr,
            momentum: config.momentum,
            weight_decay: config.weight_decay,
            batch_size: config.batch_size,
            seed: config.seed,
            augment,
            init: config.init.as_ref().map(|p| p.display().to_string()),
            freeze: config.freeze.clone().filter(|f| f != "none"),
            cache_features: config.cache_features,
            epochs: config.epochs,
            epoch: 0,
            optimizer_steps: 0,
            history: vec![],
        };
        let model = crate::models::build(&meta.model, meta.classes, &mut Rng::derive(meta.seed, u64::MAX))?;
        if let Some(init) = &config.init {
            let (copied, head) = pretrained_tensors(init)
                .and_then(|tensors| transfer::load_pretrained(model.as_ref(), &tensors))
                .map_err(|e| match e {
                    // these name the file already
                    Error::Format { .. } | Error::Io { .. } => Error::setting("init", e.to_string()),
                    e => Error::setting("init", format!("the pretrained weights {}: {e}", init.display())),
                })?;
            if fovea::dist::world().is_root() {
                observer.note(&format!(
                    "{copied} tensors from {}; a new head {head} for {} classes",
                    init.display(),
                    meta.classes
                ));
            }
        }
        if let Some(layer) = &meta.freeze {
            Frozen::new(model.as_ref(), layer)?;
        }
        let optimizer = train::make_optimizer(model.as_ref(), meta.optimizer_config()?)?;
        let augment = fitted_augment(meta.augment.as_deref(), &train_set)?;
        Ok(Run { dir: dir.to_path_buf(), meta, model, optimizer, train_set, test_set, augment })
    }

    /// Continues the run of `checkpoint` (read from the folder `dir`) from its last
    /// completed epoch, with its own data, model and optimizer, and the given changes;
    /// refused when it has no epoch left to train.
    ///
    /// On several processes ([`fovea::dist`]) each resumes from the same checkpoint, whatever
    /// the number of processes that wrote it; if any rank fails, all return an error.
    pub fn resume(dir: &Path, checkpoint: Checkpoint, changes: &ResumeChanges) -> Result<Run> {
        let world = fovea::dist::world();
        world.agree(Run::resume_here(dir, checkpoint, changes), "resuming the run")
    }

    fn resume_here(dir: &Path, checkpoint: Checkpoint, changes: &ResumeChanges) -> Result<Run> {
        // the run's folder, also when the checkpoint file itself is named
        let dir = if dir.is_file() { dir.parent().unwrap_or(Path::new(".")) } else { dir };
        if fovea::dist::world().is_root() {
            train::check_writable(dir)?;
        }
        let model = train::model_from_checkpoint(&checkpoint)?;
        // what the checkpoint says is wrong: the error names it
        let in_file = train::about_file(&checkpoint.file, train::CHECKPOINT_FILE);
        let mut meta = checkpoint.meta;
        let recorded = meta.data.as_ref().map(PathBuf::from).unwrap_or_else(FashionMnist::default_dir);
        let data_dir = match &changes.data {
            // the run's folder may have moved: then `data` says where to
            Some(given)
                if recorded.exists() && std::fs::canonicalize(given).ok() != std::fs::canonicalize(&recorded).ok() =>
            {
                return Err(Error::Invalid(format!(
                    "the data folder {} differs from the run's {}; a resumed run keeps its own",
                    given.display(),
                    recorded.display()
                )))
            }
            Some(given) => given.clone(),
            None => recorded,
        };
        let shape = meta.input_shape().map_err(&in_file)?;
        let batch = meta.train_size.map_or(meta.batch_size, |n| meta.batch_size.min(n.max(1)));
        check_activations(model.as_ref(), &meta.model, shape, batch).map_err(&in_file)?;
        // runs made before the size was recorded train on all the pictures
        let (train_set, test_set, class_names) =
            load_data(&data_dir, shape, meta.train_size).map_err(|e| match changes.data {
                Some(_) => e,
                None => Error::setting(
                    "data",
                    format!(
                        "not given, and the run's data {:?} (recorded in {}) does not load: {e}",
                        data_dir,
                        checkpoint.file.display()
                    ),
                ),
            })?;
        if class_names != meta.class_names {
            return Err(Error::Invalid(format!(
                "{} has the classes {class_names:?}, but the run was trained on {:?}",
                data_dir.display(),
                meta.class_names
            )));
        }
        meta.data = recorded_data(&data_dir);
        meta.epochs = changes.epochs.unwrap_or(meta.epochs);
        meta.lr = changes.lr.unwrap_or(meta.lr);
        if meta.epoch >= meta.epochs {
            return Err(Error::setting(
                "epochs",
                format!("{} already completed {} epoch(s); ask for more in all to continue", dir.display(), meta.epoch),
            ));
        }
        if let Some(layer) = &meta.freeze {
            Frozen::new(model.as_ref(), layer).map_err(&in_file)?;
        }
        let mut optimizer = train::make_optimizer(model.as_ref(), meta.optimizer_config()?).map_err(&in_file)?;
        optimizer.load_state(&checkpoint.optimizer, meta.optimizer_steps).map_err(&in_file)?;
        let augment = fitted_augment(meta.augment.as_deref(), &train_set).map_err(&in_file)?;
        Ok(Run { dir: dir.to_path_buf(), meta, model, optimizer, train_set, test_set, augment })
    }

    /// Pictures in the training and test sets.
    pub fn sizes(&self) -> (usize, usize) {
        (self.train_set.len(), self.test_set.len())
    }

    /// Trains the remaining epochs. After each, the test set is evaluated, the checkpoint,
    /// `metrics.csv` and `plot.png` are written and `observer.epoch` is told. Randomness
    /// derives from (seed, epoch), so a resumed run equals an uninterrupted one bit for
    /// bit. A failed epoch (a loss that is not finite) leaves the last checkpoint as it was.
    ///
    /// On several processes ([`fovea::dist`]) each trains on its shard of every batch and
    /// tests on its share of the test set; rank 0 alone writes the files and tells
    /// `observer`, after checking that every rank holds the same weights.
    pub fn fit(&mut self, observer: &mut dyn RunObserver) -> Result<()> {
        let world = fovea::dist::world();
        let frozen = self.meta.freeze.as_deref().map(|layer| Frozen::new(self.model.as_ref(), layer)).transpose()?;
        let tail = frozen.as_ref().map(|f| f.tail());
        // what trains: the whole network, the part after the frozen layers, or that part
        // alone on the frozen layers' cached outputs
        let cached;
        let (trained, train_set, test_set): (&dyn Module, &Dataset, &Dataset) = match (&frozen, &tail) {
            (Some(f), Some(tail)) if self.meta.cache_features => {
                let (train_features, test_features) =
                    cached_features(&self.dir, f, &self.train_set, &self.test_set, observer)?;
                cached = (
                    Dataset { images: train_features, labels: self.train_set.labels.clone() },
                    Dataset { images: test_features, labels: self.test_set.labels.clone() },
                );
                (tail, &cached.0, &cached.1)
            }
            (Some(f), _) => (f, &self.train_set, &self.test_set),
            _ => (self.model.as_ref(), &self.train_set, &self.test_set),
        };
        train::check_sync_batch_norm(train_set.len(), self.meta.batch_size)?;
        for epoch in self.meta.epoch + 1..=self.meta.epochs {
            let mut rng = Rng::derive(self.meta.seed, epoch as u64);
            let start = Instant::now();
            let progress = train::train_epoch(
                trained,
                &mut self.optimizer,
                train_set,
                self.meta.batch_size,
                &mut rng,
                self.augment.as_ref(),
                &mut |p| {
                    if world.is_root() {
                        observer.batch(epoch, p)
                    }
                },
            )
            .map_err(|e| {
                if self.meta.epoch == 0 && world.is_root() {
                    // the folder this run made, if it is still empty, goes (a non-empty one stays)
                    std::fs::remove_dir(&self.dir).ok();
                }
                let kept = match (self.meta.epoch, &self.meta.init) {
                    (0, Some(init)) => format!("the starting weights came from {init}; nothing was saved"),
                    (0, None) => "nothing was saved".to_string(),
                    (done, _) => format!("the checkpoint of epoch {done} in {} is unchanged", self.dir.display()),
                };
                Error::Invalid(format!("training stopped in epoch {epoch}: {e}; {kept}"))
            })?;
            let train_seconds = start.elapsed().as_secs_f32();
            let test = train::evaluate_trained(trained, test_set, 1000)?;
            let metrics = EpochMetrics {
                epoch,
                train_loss: progress.loss(),
                train_accuracy: progress.accuracy(),
                test_loss: test.loss(),
                test_accuracy: test.accuracy(),
                seconds: start.elapsed().as_secs_f32(),
                images_per_second: train_set.len() as f32 / train_seconds,
                isa: fovea::runtime::current_isa().to_string(),
                threads: fovea::runtime::num_threads(),
            };
            self.meta.epoch = epoch;
            self.meta.optimizer_steps = self.optimizer.steps;
            self.meta.history.push(metrics.clone());
            world.check_replicas(&fovea::nn::state_dict(self.model.as_ref()))?;
            let saved = match world.is_root() {
                true => train::save_checkpoint(&self.dir, self.model.as_ref(), Some(&self.optimizer), &self.meta)
                    .and_then(|_| train::write_metrics_csv(&self.dir.join("metrics.csv"), &self.meta.history))
                    .and_then(|_| crate::plot::training_curves(&self.dir.join("plot.png"), &self.meta.history)),
                false => Ok(()),
            };
            world.agree(saved, "saving the checkpoint")?;
            if world.is_root() {
                observer.epoch(&metrics);
            }
        }
        Ok(())
    }
}

/// The frozen layers' outputs for the training and test pictures: read from the run
/// folder's `features.safetensors` when it holds them for these pictures, else computed
/// and written there.
fn cached_features(
    run_dir: &Path,
    frozen: &Frozen,
    train_set: &Dataset,
    test_set: &Dataset,
    observer: &mut dyn RunObserver,
) -> Result<(Tensor, Tensor)> {
    let path = run_dir.join("features.safetensors");
    // what the cache was made from: the frozen weights and the pictures, summarised
    let sum = |data: &[f32]| data.iter().map(|&v| v as f64).sum::<f64>();
    let mut weights = 0.0;
    frozen.visit_frozen(&mut |_, v| weights += sum(v.value().data()));
    let fingerprint = format!(
        "{weights:e} {} {:e} {} {:e}",
        train_set.len(),
        sum(train_set.images.data()),
        test_set.len(),
        sum(test_set.images.data())
    );
    let read = fovea::io::read_safetensors(&path).ok().and_then(|(mut t, meta)| {
        let made_from = meta.get("made_from").is_some_and(|m| *m == fingerprint);
        Some((t.remove("train")?, t.remove("test")?)).filter(|_| made_from)
    });
    // on several processes the cache is used where every rank found it, else made again
    let world = fovea::dist::world();
    let mut found = [if read.is_some() { 1.0 } else { 0.0 }];
    world.sum_f64(&mut found, "the features cache")?;
    if let Some(features) = read.filter(|_| found[0] as usize == world.size()) {
        return Ok(features);
    }
    let start = Instant::now();
    let train_features = frozen.features_all(&train_set.images, 500)?;
    let test_features = frozen.features_all(&test_set.images, 500)?;
    // rank 0 writes the cache
    let written = match world.is_root() {
        true => std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e)).and_then(|_| {
            fovea::io::write_safetensors(
                &path,
                &[("train".into(), train_features.clone()), ("test".into(), test_features.clone())],
                [("made_from".to_string(), fingerprint)].into(),
            )
        }),
        false => Ok(()),
    };
    world.agree(written, "writing the features cache")?;
    if world.is_root() {
        observer.note(&format!(
            "frozen layers' outputs computed once in {:.1} s, cached in {}",
            start.elapsed().as_secs_f32(),
            path.display()
        ));
    }
    Ok((train_features, test_features))
}

/// A trained run measured on test pictures.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Evaluation {
    /// share of test pictures classified right, 0..1
    pub accuracy: f32,
    /// mean cross-entropy
    pub loss: f32,
    /// number of test pictures
    pub test_images: usize,
    /// class names; index = label
    pub class_names: Vec<String>,
    /// per class, the share of its test pictures classified right
    pub per_class_accuracy: Vec<f32>,
    /// Rows: the true class, columns: the predicted one.
    pub confusion_matrix: Vec<Vec<usize>>,
}

impl std::fmt::Display for Evaluation {
    /// The accuracy, the per-class accuracy and the confusion matrix as text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = &self.class_names;
        writeln!(
            f,
            "accuracy {:.2}% (loss {:.4}) on {} test images",
            100.0 * self.accuracy,
            self.loss,
            self.test_images
        )?;
        writeln!(f, "\nper-class accuracy:")?;
        for (n, acc) in names.iter().zip(&self.per_class_accuracy) {
            writeln!(f, "  {n:<12} {:6.2}%", 100.0 * acc)?;
        }
        writeln!(f, "\nconfusion matrix (rows: true class, columns: predicted):")?;
        write!(f, "{:>12}", "")?;
        for i in 0..names.len() {
            write!(f, "{i:>6}")?;
        }
        for (i, row) in self.confusion_matrix.iter().enumerate() {
            write!(f, "\n{:>9} {i:>2}", names[i].chars().take(9).collect::<String>())?;
            for v in row {
                write!(f, "{v:>6}")?;
            }
        }
        Ok(())
    }
}

/// Measures the run of `checkpoint` (a run folder or its checkpoint file) on the test
/// pictures of `data` (`None`: the data the run recorded), which must have the run's classes.
pub fn evaluate_run(checkpoint: &Path, data: Option<&Path>) -> Result<Evaluation> {
    let ckpt = train::load_checkpoint(checkpoint)?;
    let model = train::model_from_checkpoint(&ckpt)?;
    let recorded = ckpt.meta.data.as_ref().map(PathBuf::from).unwrap_or_else(FashionMnist::default_dir);
    let dir = data.map_or(recorded, Path::to_path_buf);
    let (test_set, names) = data::load(&dir, Split::Test, ckpt.meta.input_shape()?, None).map_err(|e| match data {
        Some(_) => e,
        None => Error::setting(
            "data",
            format!("not given, and the run's data {:?} (recorded in {}) does not load: {e}", dir, ckpt.file.display()),
        ),
    })?;
    if names != ckpt.meta.class_names {
        return Err(Error::format(
            &dir,
            format!("has the classes {names:?}, but the run was trained on {:?}", ckpt.meta.class_names),
        ));
    }
    let (p, predictions) = train::evaluate(model.as_ref(), &test_set, 1000)?;
    let cm = train::confusion_matrix(&test_set.labels, &predictions, ckpt.meta.classes);
    Ok(Evaluation {
        accuracy: p.accuracy(),
        loss: p.loss(),
        test_images: test_set.len(),
        per_class_accuracy: cm
            .iter()
            .enumerate()
            .map(|(i, row)| row[i] as f32 / row.iter().sum::<usize>().max(1) as f32)
            .collect(),
        confusion_matrix: cm,
        class_names: names,
    })
}

/// A trained run's network, for classifying pictures.
pub struct Classifier {
    /// the run's metadata (model, input shape, class names)
    pub meta: RunMeta,
    model: Box<dyn Module>,
}

impl Classifier {
    /// The network of the run `checkpoint` (a run folder or its checkpoint file).
    pub fn load(checkpoint: &Path) -> Result<Classifier> {
        let ckpt = train::load_checkpoint(checkpoint)?;
        Ok(Classifier { model: train::model_from_checkpoint(&ckpt)?, meta: ckpt.meta })
    }

    /// The network as an ONNX model ([`fovea::graph::export`]): its input `input` is a
    /// batch of pictures prepared as [`Classifier::classify_file`] prepares them (values
    /// 0..1, channels first, at the run's input size), its output the class scores (logits).
    pub fn to_onnx(&self) -> Result<fovea::io::onnx::Model> {
        fovea::graph::export::export(self.model.as_ref(), &self.meta.input_shape()?, "fovea")
    }

    /// The `k` most probable classes of the picture file `path`,
    /// prepared as the run's training pictures were: for Fashion-MNIST runs grey, light on
    /// dark, 28x28, then the run's input size.
    pub fn classify_file(&self, path: &Path, k: usize) -> Result<Vec<crate::models::Prediction>> {
        let picture = match self.meta.data {
            None => crate::image::load_fashion_input(path)?.reshape(&[1, 28, 28])?,
            Some(_) => crate::image::load_rgb(path)?,
        };
        self.classify(&picture, k).map_err(|e| e.in_file(path))
    }

    /// [`Classifier::classify_file`] of a picture held in memory (an upload); `name` names
    /// it in errors.
    pub fn classify_bytes(&self, bytes: &[u8], name: &str, k: usize) -> Result<Vec<crate::models::Prediction>> {
        let picture = match self.meta.data {
            None => crate::image::decode_fashion_input(bytes, name)?.reshape(&[1, 28, 28])?,
            Some(_) => crate::image::decode_rgb(bytes, name)?,
        };
        self.classify(&picture, k).map_err(|e| e.in_file(Path::new(name)))
    }

    fn classify(&self, picture: &Tensor, k: usize) -> Result<Vec<crate::models::Prediction>> {
        let shape = self.meta.input_shape()?;
        let x = data::image_folder::fit_image(picture, shape)?.reshape(&[1, shape[0], shape[1], shape[2]])?;
        // (many short parallel kernels in a row: the pool's threads kept awake between them)
        let forward = || self.model.forward(&fovea::Var::constant(x));
        let logits = fovea::no_grad(|| fovea::kernels::with_warm_threads(forward))?;
        let names = &self.meta.class_names;
        let top = train::top_k(&logits, k.min(self.meta.classes))?.remove(0);
        Ok(top
            .into_iter()
            .map(|(class, probability)| crate::models::Prediction { class, name: names[class].clone(), probability })
            .collect())
    }
}
