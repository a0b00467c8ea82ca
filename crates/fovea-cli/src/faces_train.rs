//! `fovea faces train-embedding` and `fovea faces train-verifier`: the notes' face
//! recognition training ideas, from scratch, on identity-labelled pictures (a folder with
//! one sub-folder per identity; Fashion-MNIST's classes stand in for people by default).

use anyhow::Result;
use clap::{Args, ValueEnum};
use fovea_vision::face::training::{self, EmbeddingConfig, EmbeddingObserver, EmbeddingSetup, VerifierConfig};
use fovea_vision::face::triplet::{EmbeddingEpoch, EmbeddingProgress, Mining, TripletConfig};
use serde_json::json;
use std::path::PathBuf;

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

/// Prints an embedding run's setup, progress and epochs (JSON lines with `--json`).
struct Printer(crate::EpochBar);

impl EmbeddingObserver for Printer {
    fn start(&mut self, s: &EmbeddingSetup) {
        if self.0.hidden {
            let line = json!({"baselines": s.baselines, "held_out": s.held_out, "test_pictures": s.test_pictures});
            println!("{line}");
            return;
        }
        eprintln!(
            "training on {} pictures of {} identities; one-shot identification among {} held-out ({}) on {} test pictures",
            s.train_pictures,
            s.trained,
            s.held_out_present,
            s.held_out.join(", "),
            s.test_pictures
        );
        let b = s.baselines;
        eprintln!(
            "before training: chance {:.2}%, nearest picture by pixels {:.2}%, untrained network {:.2}%",
            100.0 * b.chance,
            100.0 * b.pixels,
            100.0 * b.untrained
        );
        self.0.len = s.train_pictures;
    }
    fn batch(&mut self, epoch: usize, p: &EmbeddingProgress) {
        self.0.update(epoch, p.images, format!("loss {:.4} active {:.0}%", p.loss(), 100.0 * p.active_fraction()));
    }
    fn epoch(&mut self, e: &EmbeddingEpoch) {
        let epochs = self.0.epochs;
        self.0.end_epoch(e, || {
            format!(
                "epoch {}/{epochs}: triplet loss {:.4}, {:.0}% of triplets active | one-shot accuracy: held-out {:.2}%, seen {:.2}% | {:.1}s",
                e.epoch,
                e.loss,
                100.0 * e.active_triplets,
                100.0 * e.one_shot_accuracy,
                100.0 * e.seen_one_shot_accuracy,
                e.seconds
            )
        });
    }
}

pub fn train_embedding(a: TrainEmbeddingArgs) -> Result<()> {
    let config = EmbeddingConfig {
        model: a.model,
        dim: a.dim,
        triplet: TripletConfig {
            mining: match a.mining {
                MiningName::BatchHard => Mining::BatchHard,
                MiningName::SemiHard => Mining::SemiHard,
            },
            margin: a.margin,
            identities_per_batch: a.identities_per_batch,
            per_identity: a.per_identity,
        },
        epochs: a.epochs,
        lr: a.lr,
        seed: a.seed,
        held_out: a.held_out,
        trials: a.trials,
        train_size: a.train_size,
        test_size: a.test_size,
        image_size: a.image_size,
        data: a.data,
    };
    let out = a.out.unwrap_or_else(|| crate::default_run_folder("embedding"));
    let mut printer = Printer(crate::EpochBar::new(a.json, a.epochs, 0));
    let (setup, run) = training::train_embedding(&config, &out, a.force, &mut printer)?;
    let last = run.history.last().expect("at least one epoch ran");
    if a.json {
        println!(
            "{}",
            json!({"final": true, "one_shot_accuracy": last.one_shot_accuracy, "baselines": setup.baselines,
                   "held_out": setup.held_out, "run": out.display().to_string()})
        );
    } else {
        println!(
            "one-shot identification among {} held-out identities: {:.2}% (chance {:.2}%, pixels {:.2}%); embedding in {}",
            setup.held_out_present,
            100.0 * last.one_shot_accuracy,
            100.0 * setup.baselines.chance,
            100.0 * setup.baselines.pixels,
            out.display()
        );
    }
    Ok(())
}

pub fn train_verifier(a: TrainVerifierArgs) -> Result<()> {
    let config = VerifierConfig { pairs: a.pairs, epochs: a.epochs, lr: a.lr, seed: a.seed };
    let r = training::train_verifiers(&a.embedding, &config)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    println!(
        "pairs of {} ({} to learn from, {} to test on; half of one identity):",
        r.held_out.join(", "),
        r.pairs,
        r.pairs
    );
    let t = r.threshold;
    println!(
        "  distance threshold {:.4}:          train {:.2}%  test {:.2}%",
        t.value,
        100.0 * t.train_accuracy,
        100.0 * t.test_accuracy
    );
    for (name, v) in [("abs-diff", r.logistic_abs_diff), ("chi-square", r.logistic_chi_square)] {
        println!(
            "  logistic unit over {:<16} train {:.2}%  test {:.2}%",
            format!("{name}:"),
            100.0 * v.train_accuracy,
            100.0 * v.test_accuracy
        );
    }
    Ok(())
}
