//! `fovea experiment`: the notes' experiments (see `fovea_vision::experiments`), each a
//! comparison of training curves plotted side by side.

use anyhow::Result;
use clap::{Args, Subcommand};
use fovea_vision::experiments::{self, AugmentConfig, PlainVsResidualConfig, TransferConfig};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Experiment {
    /// Train a plain deep network and a residual one of the same depth; plot their errors
    PlainVsResidual(PlainVsResidualArgs),
    /// Train on a few pictures with and without augmentation; compare test accuracy
    Augment(AugmentArgs),
    /// Pretrain on Fashion-MNIST's classes 0-4, then learn 5-9 from a few pictures: from
    /// scratch, with the pretrained layers frozen, and fine-tuning all of them
    Transfer(TransferArgs),
}

#[derive(Args)]
pub struct PlainVsResidualArgs {
    #[command(flatten)]
    config: PlainVsResidualConfig,
    /// Folder for the plot and the per-epoch figures
    #[arg(long, default_value = "runs/plain-vs-residual")]
    out: PathBuf,
    /// Write into --out even if it already holds files, replacing them
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct AugmentArgs {
    #[command(flatten)]
    config: AugmentConfig,
    /// Folder for the plot
    #[arg(long, default_value = "runs/augment")]
    out: PathBuf,
    /// Write into --out even if it already holds files, replacing them
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct TransferArgs {
    #[command(flatten)]
    config: TransferConfig,
    /// Folder for the plot
    #[arg(long, default_value = "runs/transfer")]
    out: PathBuf,
    /// Write into --out even if it already holds files, replacing them
    #[arg(long)]
    force: bool,
}

pub fn run(e: Experiment) -> Result<()> {
    match e {
        Experiment::PlainVsResidual(a) => plain_vs_residual(a),
        Experiment::Augment(a) => augment(a),
        Experiment::Transfer(a) => transfer(a),
    }
}

fn plain_vs_residual(a: PlainVsResidualArgs) -> Result<()> {
    let (_, png) = experiments::plain_vs_residual(&a.config, &a.out, a.force, &mut crate::console(0, 0))?;
    if !crate::json() {
        eprintln!("plot in {}", png.display());
    }
    Ok(())
}

fn augment(a: AugmentArgs) -> Result<()> {
    let r = experiments::augment_comparison(&a.config, &a.out, a.force, &mut crate::console(0, 0))?;
    crate::report(&r)
}

fn transfer(a: TransferArgs) -> Result<()> {
    let r = experiments::transfer_comparison(&a.config, &a.out, a.force, &mut crate::console(0, 0))?;
    crate::report(&r)
}
