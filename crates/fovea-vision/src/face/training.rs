//! The notes' face recognition training ideas, from scratch, on identity-labelled pictures
//! (a folder with one sub-folder per identity; Fashion-MNIST's classes stand in for people
//! by default): an embedding under the triplet loss, measured by one-shot identification
//! of identities it never saw, and verifiers over pairs of its embeddings.
//!
//! ```no_run
//! use fovea_vision::face::training::{train_embedding, train_verifiers, EmbeddingConfig, VerifierConfig};
//! let config = EmbeddingConfig { model: "lenet5".into(), epochs: 2, ..EmbeddingConfig::default() };
//! let (setup, run) = train_embedding(&config, "runs/embedding".as_ref(), false, &mut ())?;
//! println!("one-shot accuracy {:.3} (chance {:.3})", run.history[1].one_shot_accuracy, setup.baselines.chance);
//! let report = train_verifiers("runs/embedding".as_ref(), &VerifierConfig::default())?;
//! println!("threshold {:.3}: {:.3} on test pairs", report.threshold.value, report.threshold.test_accuracy);
//! # Ok::<(), fovea::Error>(())
//! ```

use super::triplet::{self, EmbeddingEpoch, EmbeddingProgress, EmbeddingRun, Mining, TripletConfig};
use super::verify::{self, PairFeature, Verifier};
use crate::data::{self, Dataset, FashionMnist, Split};
use crate::{run::training_input, train};
use fovea::optim::OptimizerConfig;
use fovea::{Error, Result, Rng, Tensor};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What an embedding run trains, on what, and how.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct EmbeddingConfig {
    /// The shared network: any model of the zoo, its output being the embedding
    #[cfg_attr(feature = "cli", arg(long, default_value_t = EmbeddingConfig::default().model))]
    pub model: String,
    /// Length of the embedding (the network's output, scaled to unit length)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = EmbeddingConfig::default().dim))]
    pub dim: usize,
    /// batches of identities x pictures, the mining and the margin
    #[cfg_attr(feature = "cli", command(flatten))]
    pub triplet: TripletConfig,
    /// epochs, each of as many pictures as the training set holds
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = EmbeddingConfig::default().epochs))]
    pub epochs: usize,
    /// Adam's learning rate
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::positive::<f32>, long, default_value_t = EmbeddingConfig::default().lr))]
    pub lr: f32,
    /// random seed: weights, batches, one-shot enrolment draws
    #[cfg_attr(feature = "cli", arg(long, default_value_t = EmbeddingConfig::default().seed))]
    pub seed: u64,
    /// Identities training never sees, by name or number (default: the last three); one-shot
    /// identification is measured on their test pictures
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub held_out: Vec<String>,
    /// One-shot trials to average, each enrolling another random picture per identity
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = EmbeddingConfig::default().trials))]
    pub trials: usize,
    /// Use only N training pictures (Fashion-MNIST's first N; an image folder's from each class in turn)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long))]
    pub train_size: Option<usize>,
    /// Use only N test pictures
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long))]
    pub test_size: Option<usize>,
    /// Side of the square pictures (default: what the model takes; 32 for ImageNet models on Fashion-MNIST)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::whole(8, 1024), long))]
    pub image_size: Option<usize>,
    /// Fashion-MNIST's IDX files (default), or a folder with one sub-folder per identity
    #[cfg_attr(feature = "cli", arg(long))]
    pub data: Option<PathBuf>,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        EmbeddingConfig {
            model: "cnn-bn".into(),
            dim: 64,
            triplet: TripletConfig { mining: Mining::SemiHard, margin: 0.2, identities_per_batch: 7, per_identity: 16 },
            epochs: 5,
            lr: 0.001,
            seed: 0,
            held_out: vec![],
            trials: 100,
            train_size: None,
            test_size: None,
            image_size: None,
            data: None,
        }
    }
}

/// One-shot identification of the held-out identities before training.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Baselines {
    /// One over the number of held-out identities.
    pub chance: f64,
    /// The nearest picture by pixels.
    pub pixels: f64,
    /// The untrained network's embedding.
    pub untrained: f64,
}

/// What an embedding run trains on and measures, known before its first epoch.
#[derive(Clone, Debug)]
pub struct EmbeddingSetup {
    /// training pictures of the identities trained on
    pub train_pictures: usize,
    /// Identities trained on.
    pub trained: usize,
    /// The held-out identities' names.
    pub held_out: Vec<String>,
    /// Held-out identities that have test pictures.
    pub held_out_present: usize,
    /// The held-out identities' test pictures, on which one-shot identification is measured.
    pub test_pictures: usize,
    /// one-shot accuracies to beat
    pub baselines: Baselines,
}

/// Hears how an embedding run goes.
pub trait EmbeddingObserver {
    /// The setup and baselines, before the first epoch.
    fn start(&mut self, _setup: &EmbeddingSetup) {}
    /// The running totals of `epoch` after each batch.
    fn batch(&mut self, _epoch: usize, _progress: &EmbeddingProgress) {}
    /// An epoch's figures, once the run is saved.
    fn epoch(&mut self, _epoch: &EmbeddingEpoch) {}
}

impl EmbeddingObserver for () {}

/// Resolves held-out identities (names or numbers) against the identity names; empty: the
/// last three.
fn held_out_classes(given: &[String], names: &[String]) -> Result<Vec<usize>> {
    if given.is_empty() {
        return Ok((names.len().saturating_sub(3)..names.len()).collect());
    }
    let mut out = Vec::new();
    for a in given {
        let i = match (names.iter().position(|n| n == a), a.parse::<usize>()) {
            (Some(i), _) => i,
            (None, Ok(i)) if i < names.len() => i,
            _ => {
                return Err(Error::setting(
                    "held_out",
                    format!("no identity '{a}' (identities: {}, or 0..{})", names.join(", "), names.len() - 1),
                ))
            }
        };
        if !out.contains(&i) {
            out.push(i);
        }
    }
    Ok(out)
}

/// The number of distinct identities in `set`.
fn identities_in(set: &Dataset) -> usize {
    let mut ids = set.labels.clone();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

/// Trains an embedding as `config` says into the run folder `out` (refused if it holds
/// files, unless `force`), saving the run after every epoch; returns the setup and the run
/// with its history.
pub fn train_embedding(
    config: &EmbeddingConfig,
    out: &Path,
    force: bool,
    observer: &mut dyn EmbeddingObserver,
) -> Result<(EmbeddingSetup, EmbeddingRun)> {
    let TripletConfig { margin, identities_per_batch, per_identity, .. } = config.triplet;
    if !(margin > 0.0 && margin <= 4.0) {
        return Err(Error::setting(
            "margin",
            format!("must be in (0, 4] (squared distances between unit vectors are at most 4), got {margin}"),
        ));
    }
    let dir = config.data.clone().unwrap_or_else(FashionMnist::default_dir);
    let shape = training_input(&config.model, data::is_fashion_mnist(&dir), config.image_size)?;
    let what = format!("batches of {identities_per_batch} identities x {per_identity} pictures");
    fovea::budget::check_shape(&what, &[identities_per_batch, per_identity, shape[0], shape[1], shape[2]])?;
    let net = crate::models::build(&config.model, config.dim, &mut Rng::new(config.seed)).map_err(|e| {
        // the model itself, or this embedding length? the error names the cause
        match crate::models::build(&config.model, 2, &mut Rng::new(0)) {
            Err(e) => Error::setting("model", e.to_string()),
            Ok(_) => Error::setting("dim", format!("{} with an embedding of {}: {e}", config.model, config.dim)),
        }
    })?;
    fovea::nn::summary::summarize(net.as_ref(), &shape).map_err(|e| {
        Error::setting("image_size", format!("{} cannot take {}x{} pictures ({e})", config.model, shape[1], shape[2]))
    })?;
    let (train_all, names) = data::load(&dir, Split::Train, shape, config.train_size)?;
    let (test_all, _) = data::load(&dir, Split::Test, shape, config.test_size)?;
    let held_out = held_out_classes(&config.held_out, &names)?;
    let trained: Vec<usize> = (0..names.len()).filter(|c| !held_out.contains(c)).collect();
    if trained.len() < 2 || held_out.len() < 2 {
        return Err(Error::setting(
            "held_out",
            format!(
                "leaves {} of the {} identities to train on and holds out {}: training needs two or more, and so \
                 does one-shot identification among the held-out ones",
                trained.len(),
                names.len(),
                held_out.len()
            ),
        ));
    }
    let train_set = train_all.of_classes(&trained);
    let eval_set = test_all.of_classes(&held_out);
    let seen_set = test_all.of_classes(&trained);
    if train_set.is_empty() {
        return Err(Error::setting("train_size", format!("no training pictures of the identities {trained:?}")));
    }
    // on several processes ([`fovea::dist`]), rank 0 alone writes the run and tells `observer`
    let world = fovea::dist::world();
    let checked = if world.is_root() { train::check_new_folder(out, force) } else { Ok(()) };
    world.agree(checked, "starting the run")?;
    let mut quiet = ();
    let observer: &mut dyn EmbeddingObserver = if world.is_root() { observer } else { &mut quiet };
    let mut optimizer = train::make_optimizer(net.as_ref(), OptimizerConfig::adam(config.lr, 0.0))?;
    // the same enrolment draws at every measurement, so that epochs compare
    let one_shot = |set: &Dataset, vectors: &Tensor| {
        triplet::one_shot_accuracy(vectors, &set.labels, config.trials, &mut Rng::new(config.seed))
    };
    let in_test = |e: Error| Error::Invalid(format!("the held-out identities' test pictures: {e}"));
    let pixels = eval_set.images.reshape(&[eval_set.len(), shape.iter().product()])?;
    let baselines = Baselines {
        chance: 1.0 / identities_in(&eval_set).max(1) as f64,
        pixels: one_shot(&eval_set, &pixels).map_err(in_test)?,
        untrained: one_shot(&eval_set, &triplet::embed_all(net.as_ref(), &eval_set, 500)?)?,
    };
    let setup = EmbeddingSetup {
        train_pictures: train_set.len(),
        trained: trained.len(),
        held_out: held_out.iter().map(|&c| names[c].clone()).collect(),
        held_out_present: identities_in(&eval_set),
        test_pictures: eval_set.len(),
        baselines,
    };
    observer.start(&setup);
    let mut run = EmbeddingRun {
        model: config.model.clone(),
        input: shape.to_vec(),
        dim: config.dim,
        mining: config.triplet.mining,
        margin,
        data: std::fs::canonicalize(&dir).unwrap_or(dir.clone()).display().to_string(),
        identities: names,
        held_out,
        lr: config.lr,
        identities_per_batch,
        per_identity,
        seed: config.seed,
        history: vec![],
    };
    for epoch in 1..=config.epochs {
        let mut rng = Rng::derive(config.seed, epoch as u64);
        let start = Instant::now();
        let progress = triplet::train_embedding_epoch(
            net.as_ref(),
            &mut optimizer,
            &train_set,
            config.triplet,
            &mut rng,
            &mut |p| observer.batch(epoch, p),
        )
        .map_err(|e| Error::Invalid(format!("training stopped in epoch {epoch}: {e}")))?;
        let seen = one_shot(&seen_set, &triplet::embed_all(net.as_ref(), &seen_set, 500)?)
            .map_err(|e| Error::Invalid(format!("the trained identities' test pictures: {e}")))?;
        let e = EmbeddingEpoch {
            epoch,
            loss: progress.loss(),
            active_triplets: progress.active_fraction(),
            one_shot_accuracy: one_shot(&eval_set, &triplet::embed_all(net.as_ref(), &eval_set, 500)?)?,
            seen_one_shot_accuracy: seen,
            seconds: start.elapsed().as_secs_f32(),
        };
        run.history.push(e.clone());
        world.check_replicas(&fovea::nn::state_dict(net.as_ref()))?;
        let saved = if world.is_root() { triplet::save_embedding_run(out, net.as_ref(), &run) } else { Ok(()) };
        world.agree(saved, "saving the run")?;
        observer.epoch(&e);
    }
    Ok((setup, run))
}

/// How the verifiers over an embedding's pairs are trained.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct VerifierConfig {
    /// Labelled pairs (half of one identity) to learn from, drawn from the training pictures
    /// of the identities the embedding never saw; as many again from their test pictures
    /// to measure on
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::whole(2, usize::MAX), long, default_value_t = VerifierConfig::default().pairs))]
    pub pairs: usize,
    /// Epochs of each logistic unit.
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = VerifierConfig::default().epochs))]
    pub epochs: usize,
    /// Adam's learning rate for the logistic unit
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::positive::<f32>, long, default_value_t = VerifierConfig::default().lr))]
    pub lr: f32,
    /// random seed: the pairs and the logistic units' training
    #[cfg_attr(feature = "cli", arg(long, default_value_t = VerifierConfig::default().seed))]
    pub seed: u64,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig { pairs: 10_000, epochs: 20, lr: 0.01, seed: 0 }
    }
}

/// The share of pairs a verifier gets right, on the pairs it learnt from and on the others.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PairAccuracy {
    /// on the pairs it learnt from
    pub train_accuracy: f64,
    /// on the pairs of the test pictures
    pub test_accuracy: f64,
}

/// The distance threshold fitted on the training pairs, and how it does.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ThresholdVerifier {
    /// same identity when the squared distance is below this
    pub value: f32,
    /// on the pairs it was fitted on
    pub train_accuracy: f64,
    /// on the pairs of the test pictures
    pub test_accuracy: f64,
}

/// The notes' three verifiers over the held-out identities' pairs.
#[derive(Clone, Debug, Serialize)]
pub struct VerifierReport {
    /// labelled pairs of each set, the training pictures' and the test pictures'
    pub pairs: usize,
    /// The held-out identities' names.
    pub held_out: Vec<String>,
    /// Same identity when the squared distance is below a threshold.
    pub threshold: ThresholdVerifier,
    /// A logistic unit over |f(a) - f(b)|.
    pub logistic_abs_diff: PairAccuracy,
    /// A logistic unit over (f(a) - f(b))² / (|f(a)| + |f(b)|), elementwise.
    pub logistic_chi_square: PairAccuracy,
}

/// The labels of `count` pairs of rows of `e`, their squared distances, and their features
/// of both kinds (abs-diff, chi-square).
fn pair_set(e: &Tensor, labels: &[usize], count: usize, rng: &mut Rng) -> Result<(Vec<bool>, Vec<f32>, [Tensor; 2])> {
    let d = e.shape()[1];
    let row = |i: usize| &e.data()[i * d..(i + 1) * d];
    let pairs = verify::sample_pairs(labels, count, rng)?;
    let features = |kind| {
        let data = pairs.iter().flat_map(|p| verify::pair_features(row(p.first), row(p.second), kind)).collect();
        Tensor::new(&[pairs.len(), d], data)
    };
    let distances =
        pairs.iter().map(|p| row(p.first).iter().zip(row(p.second)).map(|(a, b)| (a - b) * (a - b)).sum()).collect();
    let same = pairs.iter().map(|p| p.same).collect();
    Ok((same, distances, [features(PairFeature::AbsDiff)?, features(PairFeature::ChiSquare)?]))
}

/// Trains and measures the three verifiers on pairs of the embedding run `embedding`'s
/// held-out identities: learnt on their training pictures, measured on their test pictures.
pub fn train_verifiers(embedding: &Path, config: &VerifierConfig) -> Result<VerifierReport> {
    // each pair: its features (a few of the descriptors' length each), twice (fit and test)
    fovea::budget::check_shape(&format!("{} pairs", config.pairs), &[config.pairs, 2, 8, 128])
        .map_err(|e| Error::setting("pairs", e.to_string()))?;
    let (run, net) = triplet::load_embedding_run(embedding)?;
    let dir = PathBuf::from(&run.data);
    // what goes wrong here comes from what the embedding run recorded
    let recorded =
        |e: Error| Error::Invalid(format!("the embedding run {} (data {}): {e}", embedding.display(), dir.display()));
    let shape: [usize; 3] = run
        .input
        .as_slice()
        .try_into()
        .map_err(|_| Error::format(embedding, format!("the embedding's input {:?} is not [C, H, W]", run.input)))?;
    let embed = |split: Split| -> Result<(Tensor, Dataset)> {
        let (set, names) = data::load(&dir, split, shape, None)?;
        if names != run.identities {
            return Err(Error::format(
                &dir,
                format!("now has the identities {names:?}, not the {:?} the embedding knew", run.identities),
            ));
        }
        let set = set.of_classes(&run.held_out);
        Ok((triplet::embed_all(net.as_ref(), &set, 500)?, set))
    };
    let (train_e, train_set) = embed(Split::Train).map_err(recorded)?;
    let (test_e, test_set) = embed(Split::Test).map_err(recorded)?;
    let mut rng = Rng::new(config.seed);
    let of = |pictures: &'static str| {
        move |e: Error| recorded(Error::Invalid(format!("pairs of the held-out identities' {pictures} pictures: {e}")))
    };
    let (fit_same, fit_distances, fit_features) =
        pair_set(&train_e, &train_set.labels, config.pairs, &mut rng).map_err(of("training"))?;
    let (test_same, test_distances, test_features) =
        pair_set(&test_e, &test_set.labels, config.pairs, &mut rng).map_err(of("test"))?;

    let (value, train_accuracy) = verify::fit_threshold(&fit_distances, &fit_same);
    let below: Vec<bool> = test_distances.iter().map(|&d| d < value).collect();
    let threshold = ThresholdVerifier { value, train_accuracy, test_accuracy: verify::accuracy(&below, &test_same) };
    let mut logistic = Vec::new();
    for (k, (fit, test)) in fit_features.iter().zip(&test_features).enumerate() {
        let v = Verifier::train(fit, &fit_same, config.epochs, config.lr, &mut Rng::derive(config.seed, k as u64))?;
        let predict = |x: &Tensor| -> Result<Vec<bool>> { Ok(v.probabilities(x)?.iter().map(|&p| p > 0.5).collect()) };
        logistic.push(PairAccuracy {
            train_accuracy: verify::accuracy(&predict(fit)?, &fit_same),
            test_accuracy: verify::accuracy(&predict(test)?, &test_same),
        });
    }
    Ok(VerifierReport {
        pairs: config.pairs,
        held_out: run.held_out.iter().map(|&c| run.identities[c].clone()).collect(),
        threshold,
        logistic_abs_diff: logistic[0],
        logistic_chi_square: logistic[1],
    })
}

impl std::fmt::Display for EmbeddingSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.baselines;
        write!(
            f,
            "training on {} pictures of {} identities; one-shot identification among {} held-out ({}) on {} test \
             pictures\nbefore training: chance {:.2}%, nearest picture by pixels {:.2}%, untrained network {:.2}%",
            self.train_pictures,
            self.trained,
            self.held_out_present,
            self.held_out.join(", "),
            self.test_pictures,
            100.0 * b.chance,
            100.0 * b.pixels,
            100.0 * b.untrained
        )
    }
}

impl std::fmt::Display for VerifierReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "pairs of {} ({} to learn from, {} to test on; half of one identity):",
            self.held_out.join(", "),
            self.pairs,
            self.pairs
        )?;
        let t = self.threshold;
        write!(
            f,
            "  distance threshold {:.4}:          train {:.2}%  test {:.2}%",
            t.value,
            100.0 * t.train_accuracy,
            100.0 * t.test_accuracy
        )?;
        for (name, v) in [("abs-diff", self.logistic_abs_diff), ("chi-square", self.logistic_chi_square)] {
            write!(
                f,
                "\n  logistic unit over {:<16} train {:.2}%  test {:.2}%",
                format!("{name}:"),
                100.0 * v.train_accuracy,
                100.0 * v.test_accuracy
            )?;
        }
        Ok(())
    }
}
