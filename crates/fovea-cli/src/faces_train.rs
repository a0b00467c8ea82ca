//! `fovea faces train-embedding` and `fovea faces train-verifier`: the notes' face
//! recognition training ideas, from scratch, on identity-labelled pictures (a folder with
//! one sub-folder per identity; Fashion-MNIST's classes stand in for people by default).

use crate::classify::data_dir;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use fovea::optim::OptimizerConfig;
use fovea::{Rng, Tensor};
use fovea_vision::data::{self, Dataset, Split};
use fovea_vision::face::triplet::{self, EmbeddingEpoch, EmbeddingRun, Mining, TripletConfig};
use fovea_vision::face::verify::{self, PairFeature, Verifier};
use fovea_vision::run::training_input;
use fovea_vision::train;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct TrainEmbeddingArgs {
    /// The shared network: any model of the zoo, its output being the embedding
    #[arg(long, default_value = "cnn-bn")]
    model: String,
    /// Length of the embedding (the network's output, scaled to unit length)
    #[arg(value_parser = crate::range::count, long, default_value_t = 64)]
    dim: usize,
    /// How triplets are chosen in each batch (batch-hard tends to collapse every embedding
    /// to one point when a network starts from scratch: lower --lr for it)
    #[arg(long, value_enum, default_value = "semi-hard")]
    mining: MiningName,
    /// The triplet loss's margin alpha (embeddings have unit length: squared distances are 0..4)
    #[arg(value_parser = crate::range::non_negative::<f32>, long, default_value_t = 0.2)]
    margin: f32,
    /// Identities per batch (P)
    #[arg(value_parser = crate::range::whole(2, usize::MAX), long, default_value_t = 7)]
    identities_per_batch: usize,
    /// Pictures of each identity per batch (K)
    #[arg(value_parser = crate::range::whole(2, usize::MAX), long, default_value_t = 16)]
    per_identity: usize,
    #[arg(value_parser = crate::range::count, long, default_value_t = 5)]
    epochs: usize,
    /// Adam's learning rate
    #[arg(value_parser = crate::range::positive::<f32>, long, default_value_t = 0.001)]
    lr: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Identities training never sees, by name or number (default: the last three); one-shot
    /// identification is measured on their test pictures
    #[arg(long, value_delimiter = ',')]
    held_out: Vec<String>,
    /// One-shot trials to average, each enrolling another random picture per identity
    #[arg(value_parser = crate::range::count, long, default_value_t = 100)]
    trials: usize,
    /// Use only N training pictures (Fashion-MNIST's first N; an image folder's from each class in turn)
    #[arg(value_parser = crate::range::count, long)]
    train_size: Option<usize>,
    /// Use only N test pictures
    #[arg(value_parser = crate::range::count, long)]
    test_size: Option<usize>,
    /// Side of the square pictures (default: what the model takes; 32 for ImageNet models on Fashion-MNIST)
    #[arg(value_parser = crate::range::whole(8, 1024), long)]
    image_size: Option<usize>,
    /// Fashion-MNIST's IDX files (default), or a folder with one sub-folder per identity
    #[arg(long)]
    data: Option<PathBuf>,
    /// Run folder (default: runs/embedding-<unix time>)
    #[arg(long)]
    out: Option<PathBuf>,
    /// One JSON object per epoch and a last one with the result
    #[arg(long)]
    json: bool,
    /// Write into --out even if it already holds files, replacing them
    #[arg(long)]
    force: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum MiningName {
    /// Each anchor with its farthest positive and nearest negative in the batch
    BatchHard,
    /// Each anchor-positive pair with the nearest negative farther than the positive
    SemiHard,
}

#[derive(Args)]
pub struct TrainVerifierArgs {
    /// A run folder of `fovea faces train-embedding`
    #[arg(long)]
    embedding: PathBuf,
    /// Labelled pairs (half of one identity) to learn from, drawn from the training pictures
    /// of the identities the embedding never saw; as many again from their test pictures
    /// to measure on
    #[arg(value_parser = crate::range::whole(2, usize::MAX), long, default_value_t = 10_000)]
    pairs: usize,
    #[arg(value_parser = crate::range::count, long, default_value_t = 20)]
    epochs: usize,
    /// Adam's learning rate for the logistic unit
    #[arg(value_parser = crate::range::positive::<f32>, long, default_value_t = 0.01)]
    lr: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

/// Resolves `--held-out` (names or numbers) against the class names.
fn held_out_classes(args: &[String], names: &[String]) -> Result<Vec<usize>> {
    if args.is_empty() {
        return Ok((names.len().saturating_sub(3)..names.len()).collect());
    }
    let mut out = Vec::new();
    for a in args {
        let i = match (names.iter().position(|n| n == a), a.parse::<usize>()) {
            (Some(i), _) => i,
            (None, Ok(i)) if i < names.len() => i,
            _ => bail!("--held-out: no identity '{a}' (identities: {}, or 0..{})", names.join(", "), names.len() - 1),
        };
        if !out.contains(&i) {
            out.push(i);
        }
    }
    Ok(out)
}

pub fn train_embedding(a: TrainEmbeddingArgs) -> Result<()> {
    if !(a.margin > 0.0 && a.margin <= 4.0) {
        bail!("--margin must be in (0, 4] (squared distances between unit vectors are at most 4), got {}", a.margin);
    }
    let dir = data_dir(&a.data);
    let fashion = data::is_fashion_mnist(&dir);
    let shape = training_input(&a.model, fashion, a.image_size)?;
    let what =
        format!("batches of --identities-per-batch {} x --per-identity {}", a.identities_per_batch, a.per_identity);
    fovea::budget::check_shape(&what, &[a.identities_per_batch, a.per_identity, shape[0], shape[1], shape[2]])?;
    let probe = fovea_vision::models::build(&a.model, a.dim, &mut Rng::new(0))
        .with_context(|| format!("{} with --dim {}", a.model, a.dim))?;
    fovea::nn::summary::summarize(probe.as_ref(), &shape).with_context(|| {
        format!("{} cannot take {}x{} pictures; choose another --image-size", a.model, shape[1], shape[2])
    })?;
    let (train_all, names) = data::load(&dir, Split::Train, shape, a.train_size)?;
    let (test_all, _) = data::load(&dir, Split::Test, shape, a.test_size)?;
    let held_out = held_out_classes(&a.held_out, &names)?;
    let trained: Vec<usize> = (0..names.len()).filter(|c| !held_out.contains(c)).collect();
    if trained.len() < 2 || held_out.len() < 2 {
        bail!(
            "--held-out leaves {} of the {} identities to train on and holds out {}: training needs two or more, \
             and so does one-shot identification among the held-out ones",
            trained.len(),
            names.len(),
            held_out.len()
        );
    }
    let train_set = train_all.of_classes(&trained);
    let eval_set = test_all.of_classes(&held_out);
    let seen_set = test_all.of_classes(&trained);
    if train_set.is_empty() {
        bail!("no training pictures of the identities {trained:?}; raise --train-size");
    }

    let out = a.out.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        PathBuf::from(format!("runs/embedding-{t}"))
    });
    train::check_new_folder(&out, a.force)?;
    let net = fovea_vision::models::build(&a.model, a.dim, &mut Rng::new(a.seed))?;
    let mut optimizer = train::make_optimizer(net.as_ref(), OptimizerConfig::adam(a.lr, 0.0))?;
    let mining = match a.mining {
        MiningName::BatchHard => Mining::BatchHard,
        MiningName::SemiHard => Mining::SemiHard,
    };
    let config = TripletConfig {
        mining,
        margin: a.margin,
        identities_per_batch: a.identities_per_batch,
        per_identity: a.per_identity,
    };
    // the same enrolment draws at every measurement, so that epochs compare
    let one_shot = |set: &Dataset, vectors: &Tensor| {
        triplet::one_shot_accuracy(vectors, &set.labels, a.trials, &mut Rng::new(a.seed))
    };
    let pixels = eval_set.images.reshape(&[eval_set.len(), shape.iter().product()])?;
    let present = |set: &Dataset| {
        let mut ids = set.labels.clone();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    let chance = 1.0 / present(&eval_set).max(1) as f64;
    let pixel_accuracy = one_shot(&eval_set, &pixels).context("the held-out identities' test pictures")?;
    let untrained_accuracy = one_shot(&eval_set, &triplet::embed_all(net.as_ref(), &eval_set, 500)?)?;
    let baselines = json!({"chance": chance, "pixels": pixel_accuracy, "untrained": untrained_accuracy});
    let held_out_names: Vec<&str> = held_out.iter().map(|&c| names[c].as_str()).collect();
    if a.json {
        println!("{}", json!({"baselines": baselines, "held_out": held_out_names, "test_pictures": eval_set.len()}));
    } else {
        eprintln!(
            "training on {} pictures of {} identities; one-shot identification among {} held-out ({}) on {} test pictures",
            train_set.len(),
            trained.len(),
            present(&eval_set),
            held_out_names.join(", "),
            eval_set.len()
        );
        eprintln!(
            "before training: chance {:.2}%, nearest picture by pixels {:.2}%, untrained network {:.2}%",
            100.0 * chance,
            100.0 * pixel_accuracy,
            100.0 * untrained_accuracy
        );
    }

    let mut run = EmbeddingRun {
        model: a.model.clone(),
        input: shape.to_vec(),
        dim: a.dim,
        mining,
        margin: a.margin,
        data: std::fs::canonicalize(&dir).unwrap_or(dir.clone()).display().to_string(),
        identities: names.clone(),
        held_out: held_out.clone(),
        lr: a.lr,
        identities_per_batch: a.identities_per_batch,
        per_identity: a.per_identity,
        seed: a.seed,
        history: vec![],
    };
    for epoch in 1..=a.epochs {
        let mut rng = Rng::derive(a.seed, epoch as u64);
        let bar = crate::progress_bar(train_set.len(), a.json, format!("epoch {epoch}/{}", a.epochs));
        let start = Instant::now();
        let progress =
            triplet::train_embedding_epoch(net.as_ref(), &mut optimizer, &train_set, config, &mut rng, &mut |p| {
                bar.set_position(p.images as u64);
                bar.set_message(format!("loss {:.4} active {:.0}%", p.loss(), 100.0 * p.active_fraction()));
            });
        bar.finish_and_clear();
        let progress = progress.with_context(|| format!("training stopped in epoch {epoch}"))?;
        let accuracy = one_shot(&eval_set, &triplet::embed_all(net.as_ref(), &eval_set, 500)?)?;
        let seen_accuracy = one_shot(&seen_set, &triplet::embed_all(net.as_ref(), &seen_set, 500)?)
            .context("the trained identities' test pictures")?;
        let e = EmbeddingEpoch {
            epoch,
            loss: progress.loss(),
            active_triplets: progress.active_fraction(),
            one_shot_accuracy: accuracy,
            seen_one_shot_accuracy: seen_accuracy,
            seconds: start.elapsed().as_secs_f32(),
        };
        run.history.push(e.clone());
        triplet::save_embedding_run(&out, net.as_ref(), &run)?;
        if a.json {
            println!("{}", serde_json::to_string(&e)?);
        } else {
            eprintln!(
                "epoch {epoch}/{}: triplet loss {:.4}, {:.0}% of triplets active | one-shot accuracy: held-out {:.2}%, seen {:.2}% | {:.1}s",
                a.epochs,
                e.loss,
                100.0 * e.active_triplets,
                100.0 * accuracy,
                100.0 * seen_accuracy,
                e.seconds
            );
        }
    }
    let last = run.history.last().expect("at least one epoch ran");
    if a.json {
        println!(
            "{}",
            json!({"final": true, "one_shot_accuracy": last.one_shot_accuracy, "baselines": baselines,
                   "held_out": held_out_names, "run": out.display().to_string()})
        );
    } else {
        println!(
            "one-shot identification among {} held-out identities: {:.2}% (chance {:.2}%, pixels {:.2}%); embedding in {}",
            present(&eval_set),
            100.0 * last.one_shot_accuracy,
            100.0 * chance,
            100.0 * pixel_accuracy,
            out.display()
        );
    }
    Ok(())
}

/// Squared distances and the features of both kinds for `pairs` of rows of `e`.
struct PairSet {
    same: Vec<bool>,
    distances: Vec<f32>,
    features: Vec<Tensor>,
}

const FEATURES: [(PairFeature, &str); 2] = [(PairFeature::AbsDiff, "abs_diff"), (PairFeature::ChiSquare, "chi_square")];

fn pair_set(e: &Tensor, labels: &[usize], count: usize, rng: &mut Rng) -> Result<PairSet> {
    let d = e.shape()[1];
    let row = |i: usize| &e.data()[i * d..(i + 1) * d];
    let pairs = verify::sample_pairs(labels, count, rng)?;
    let mut features = Vec::new();
    for (kind, _) in FEATURES {
        let data = pairs.iter().flat_map(|p| verify::pair_features(row(p.first), row(p.second), kind)).collect();
        features.push(Tensor::new(&[pairs.len(), d], data)?);
    }
    let distances =
        pairs.iter().map(|p| row(p.first).iter().zip(row(p.second)).map(|(a, b)| (a - b) * (a - b)).sum()).collect();
    Ok(PairSet { same: pairs.iter().map(|p| p.same).collect(), distances, features })
}

pub fn train_verifier(a: TrainVerifierArgs) -> Result<()> {
    // each pair: its features (a few of the descriptors' length each), twice (fit and test)
    fovea::budget::check_shape(&format!("--pairs {}", a.pairs), &[a.pairs, 2, 8, 128])?;
    let (run, net) = triplet::load_embedding_run(&a.embedding)?;
    let dir = PathBuf::from(&run.data);
    let shape: [usize; 3] = run
        .input
        .as_slice()
        .try_into()
        .with_context(|| format!("{}: the embedding's input is not [C, H, W]", a.embedding.display()))?;
    let embed = |split: Split| -> Result<(Tensor, Dataset)> {
        let (set, names) = data::load(&dir, split, shape, None)?;
        if names != run.identities {
            bail!(
                "{} now has the identities {names:?}, not the {:?} the embedding knew",
                dir.display(),
                run.identities
            );
        }
        let set = set.of_classes(&run.held_out);
        Ok((triplet::embed_all(net.as_ref(), &set, 500)?, set))
    };
    // what goes wrong here comes from what the embedding run recorded
    let recorded = || format!("the embedding run {} (data {})", a.embedding.display(), dir.display());
    let (train_e, train_set) = embed(Split::Train).with_context(recorded)?;
    let (test_e, test_set) = embed(Split::Test).with_context(recorded)?;
    let mut rng = Rng::new(a.seed);
    let fit = pair_set(&train_e, &train_set.labels, a.pairs, &mut rng)
        .with_context(|| format!("pairs of the held-out identities' training pictures of {}", recorded()))?;
    let test = pair_set(&test_e, &test_set.labels, a.pairs, &mut rng)
        .with_context(|| format!("pairs of the held-out identities' test pictures of {}", recorded()))?;

    let (threshold, threshold_fit) = verify::fit_threshold(&fit.distances, &fit.same);
    let threshold_test =
        verify::accuracy(&test.distances.iter().map(|&d| d < threshold).collect::<Vec<_>>(), &test.same);
    let mut result = json!({
        "pairs": a.pairs,
        "threshold": {"value": threshold, "train_accuracy": threshold_fit, "test_accuracy": threshold_test},
    });
    for (k, (_, name)) in FEATURES.iter().enumerate() {
        let v = Verifier::train(&fit.features[k], &fit.same, a.epochs, a.lr, &mut Rng::derive(a.seed, k as u64))?;
        let predict = |x: &Tensor| -> Result<Vec<bool>> { Ok(v.probabilities(x)?.iter().map(|&p| p > 0.5).collect()) };
        result[format!("logistic_{name}")] = json!({
            "train_accuracy": verify::accuracy(&predict(&fit.features[k])?, &fit.same),
            "test_accuracy": verify::accuracy(&predict(&test.features[k])?, &test.same),
        });
    }
    if a.json {
        println!("{result}");
    } else {
        let held_out: Vec<&str> = run.held_out.iter().map(|&c| run.identities[c].as_str()).collect();
        println!(
            "pairs of {} ({} to learn from, {} to test on; half of one identity):",
            held_out.join(", "),
            a.pairs,
            a.pairs
        );
        println!(
            "  distance threshold {:.4}:          train {:.2}%  test {:.2}%",
            threshold,
            100.0 * threshold_fit,
            100.0 * threshold_test
        );
        for (_, name) in FEATURES {
            let r = &result[format!("logistic_{name}")];
            println!(
                "  logistic unit over {:<16} train {:.2}%  test {:.2}%",
                format!("{}:", name.replace('_', "-")),
                100.0 * r["train_accuracy"].as_f64().unwrap_or(0.0),
                100.0 * r["test_accuracy"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}
