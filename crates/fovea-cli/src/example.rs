//! `fovea example ecg1d|volume3d`: the notes' 1-D and 3-D generalisations of convolution,
//! each a small CNN that learns a generated task: heart rhythms from ECG strips, and
//! whether a volume holds a small sphere.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use fovea_vision::experiments::{Example as Generated, ExampleConfig, ExampleKind};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Example {
    /// A 1-D CNN classifies generated ECG strips: normal, atrial fibrillation, premature beats, tachycardia
    Ecg1d(ExampleArgs),
    /// A 3-D CNN finds which generated volumes hold a small sphere among boxes
    Volume3d(ExampleArgs),
}

#[derive(Args)]
pub struct ExampleArgs {
    #[command(flatten)]
    config: ExampleConfig,
    /// A picture of samples of each class (PNG)
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(e: Example) -> Result<()> {
    let (a, kind) = match e {
        Example::Ecg1d(a) => (a, ExampleKind::Ecg1d),
        Example::Volume3d(a) => (a, ExampleKind::Volume3d),
    };
    let example = Generated::new(kind, &a.config)?;
    crate::note(&example);
    let r = example.train(&a.config, &mut crate::console(0, 0))?;
    if let Some(out) = &a.out {
        example.picture()?.save_png(out).with_context(|| format!("cannot write {}", out.display()))?;
    }
    crate::report_with(&r, serde_json::json!({"epochs": r.curve_test_error.len()}), || r.to_string())
}
