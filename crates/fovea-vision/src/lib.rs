//! Applications built on the fovea engine's public API: datasets, images, models.
//!
//! Cargo features: `face-db` (on by default) builds `face::FaceDb`, the database of
//! enrolled faces, with bundled SQLite; `default-features = false` leaves it out. `cli`
//! derives `clap::Args` on the configurations and adds the module `cli` (value parsers, a
//! console that shows training runs), as the `fovea` tool uses them.

#![warn(missing_docs)]

pub mod augment;
#[cfg(feature = "cli")]
pub mod cli;
pub mod data;
pub mod detect;
pub mod draw;
pub mod experiments;
pub mod face;
pub mod filters;
pub mod image;
pub mod models;
pub mod plot;
pub mod run;
pub mod style;
mod tfjs;
pub mod train;
pub mod transfer;
pub mod visualize;

// The README's Rust snippets run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
