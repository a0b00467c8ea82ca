//! `fovea faces train-embedding` and `fovea faces train-verifier`: the notes' face
//! recognition training ideas, from scratch, on identity-labelled pictures (a folder with
//! one sub-folder per identity; Fashion-MNIST's classes stand in for people by default).

use anyhow::Result;
use clap::Args;
use fovea_vision::face::training::{self, EmbeddingConfig, VerifierConfig};
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainEmbeddingArgs {
    #[command(flatten)]
    config: EmbeddingConfig,
    /// Run folder (default: runs/embedding-<unix time>)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write into --out even if it already holds files, replacing them
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct TrainVerifierArgs {
    #[command(flatten)]
    config: VerifierConfig,
    /// A run folder of `fovea faces train-embedding`
    #[arg(long)]
    embedding: PathBuf,
}

pub fn train_embedding(a: TrainEmbeddingArgs) -> Result<()> {
    let out = a.out.unwrap_or_else(|| crate::default_run_folder("embedding"));
    let mut printer = crate::console(a.config.epochs, 0);
    let (setup, run) = training::train_embedding(&a.config, &out, a.force, &mut printer)?;
    let last = run.history.last().expect("at least one epoch ran");
    crate::finished(last, &out, serde_json::json!({"baselines": setup.baselines, "held_out": setup.held_out}), || {
        let (accuracy, b) = (100.0 * last.one_shot_accuracy, setup.baselines);
        format!(
            "one-shot identification among {} held-out identities: {accuracy:.2}% (chance {:.2}%, pixels {:.2}%); \
             embedding in {}",
            setup.held_out_present,
            100.0 * b.chance,
            100.0 * b.pixels,
            out.display()
        )
    })
}

pub fn train_verifier(a: TrainVerifierArgs) -> Result<()> {
    let r = training::train_verifiers(&a.embedding, &a.config)?;
    crate::report(&r)
}
