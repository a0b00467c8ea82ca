#![warn(missing_docs)]
//! fovea: a CNN engine for the CPU.
//!
//! Layers of the crate, bottom up:
//! - [`tensor`]: `Tensor`, an owned contiguous f32 array with a shape, and its plain
//!   (non-differentiable) operations;
//! - `kernels` (internal): slice-level CPU kernels (GEMM, im2col/col2im, pooling loops);
//!   the only place that knows about threads and SIMD levels, set through [`runtime`];
//! - [`autograd`]: `Var`, a tensor in a define-by-run graph, and `backward()`;
//! - [`ops`]: differentiable operations, forward and backward side by side;
//! - [`nn`]: layers and containers with named parameters (PyTorch `state_dict` names),
//!   evaluation and training modes, and per-layer summaries (shapes, parameters,
//!   multiply-adds) computed from shapes alone;
//! - [`optim`]: SGD, Adam, AdamW;
//! - [`graph`]: inference graphs built from ONNX models, with constants folded, batch norm
//!   and activations fused into convolutions, and values dropped after their last use;
//! - [`io`]: safetensors checkpoints, `.npy` arrays and ONNX files;
//! - [`dist`]: data-parallel training across processes started by an MPI launcher;
//! - [`budget`]: the memory budget every size from a user or a file is checked against.

pub mod autograd;
pub mod budget;
pub mod dist;
pub mod error;
pub mod graph;
pub mod io;
#[doc(hidden)]
pub mod kernels;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod rng;
pub mod runtime;
pub mod tensor;

pub use autograd::{no_grad, Var};
pub use error::{Error, Result};
pub use rng::Rng;
pub use tensor::Tensor;
