//! Applications built on the fovea engine's public API: datasets, images, models.

pub mod augment;
pub mod data;
pub mod detect;
pub mod draw;
pub mod face;
pub mod filters;
pub mod image;
pub mod models;
pub mod plot;
pub mod style;
pub mod train;
pub mod transfer;
pub mod visualize;
