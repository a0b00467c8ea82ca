//! TensorFlow.js networks (face-api's): weights manifests read into fovea's layouts, and
//! the building blocks their graphs use (TF's `SAME` padding, batch norm folded into the
//! convolution before it). Shared by the face networks and the MobileNetV1 backbone.

use fovea::ops::{self, ConvOptions, Padding};
use fovea::{Error, Result, Tensor, Var};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A TF.js network's weights by their TF.js names, in fovea's layouts: filters HWIO
/// -> OIHW, depthwise filters `[kh, kw, C, 1]` -> `[C, 1, kh, kw]`.
pub(crate) struct Weights {
    w: BTreeMap<String, Var>,
    source: Source,
}

/// Where a network's weights came from, to name in errors.
#[derive(Clone)]
pub(crate) struct Source {
    manifest: PathBuf,
    what: &'static str,
}

impl Source {
    /// `e` with the manifest named where it is a shape error: a tensor that does not fit
    /// the network (a damaged or foreign manifest).
    pub(crate) fn misfit(&self, e: Error) -> Error {
        match e {
            Error::Shape { .. } => {
                Error::format(&self.manifest, format!("its tensors do not fit the {}: {e}", self.what))
            }
            e => e,
        }
    }
}

impl Weights {
    /// Reads `manifest`, the weights of `what`; it must hold `required`.
    pub(crate) fn load(manifest: &std::path::Path, what: &'static str, required: &str) -> Result<Weights> {
        let mut w = BTreeMap::new();
        for (name, t) in fovea::io::read_tfjs_manifest(manifest)? {
            if t.shape().contains(&0) {
                return Err(Error::format(manifest, format!("tensor '{name}' has the empty shape {:?}", t.shape())));
            }
            let t = match t.ndim() {
                4 if name.ends_with("depthwise_filter") || name.ends_with("depthwise_weights") => {
                    t.permute(&[2, 3, 0, 1])?
                }
                4 => t.permute(&[3, 2, 0, 1])?,
                _ => t,
            };
            w.insert(name, Var::constant(t));
        }
        if !w.contains_key(required) {
            return Err(Error::format(manifest, format!("has no tensor '{required}': not the {what}'s weights")));
        }
        Ok(Weights { w, source: Source { manifest: manifest.to_path_buf(), what } })
    }

    /// The tensor `name`, which must have `rank` dimensions.
    pub(crate) fn get(&self, name: &str, rank: usize) -> Result<&Var> {
        let Source { manifest, what } = &self.source;
        let v =
            self.w.get(name).ok_or_else(|| Error::format(manifest, format!("the {what} has no tensor '{name}'")))?;
        if v.shape().len() != rank {
            let shape = v.shape();
            return Err(Error::format(
                manifest,
                format!("tensor '{name}' has shape {shape:?}; the {what} needs {rank} dimensions"),
            ));
        }
        Ok(v)
    }

    /// The tensor `name` (of `rank` dimensions), whose dimension `axis` must be `size`: where
    /// the network's output is read by position.
    pub(crate) fn get_sized(&self, name: &str, rank: usize, axis: usize, size: usize) -> Result<&Var> {
        let v = self.get(name, rank)?;
        if v.shape()[axis] != size {
            let Source { manifest, what } = &self.source;
            let shape = v.shape();
            return Err(Error::format(
                manifest,
                format!("tensor '{name}' has shape {shape:?}; the {what} needs {size} at dimension {axis}"),
            ));
        }
        Ok(v)
    }

    pub(crate) fn source(&self) -> &Source {
        &self.source
    }
}

/// A 2-D convolution with TF's `SAME` padding for a square kernel: the output is
/// ceil(input / stride), the padding split with the extra pixel after.
pub(crate) fn conv_same(x: &Var, w: &Var, bias: Option<&Var>, stride: usize, groups: usize) -> Result<Var> {
    let (k, shape) = (w.shape()[2], x.shape());
    let pads: Vec<(usize, usize)> = shape[2..]
        .iter()
        .map(|&n| {
            let out = n.div_ceil(stride);
            let total = ((out - 1) * stride + k).saturating_sub(n);
            (total / 2, total - total / 2)
        })
        .collect();
    ops::conv2d(x, w, bias, &ConvOptions::default().stride(stride).groups(groups).padding(Padding::Explicit(pads)))
}

/// The convolution `prefix/{weights_name}` with its inference-mode batch norm
/// (`prefix/BatchNorm/...`, epsilon `eps`) folded in: w·s and beta - mean·s,
/// s = gamma / sqrt(var + eps). One op instead of two per layer.
pub(crate) fn fold_batch_norm(w: &Weights, prefix: &str, weights_name: &str, eps: f32) -> Result<(Var, Var)> {
    let get = |n: &str| w.get(&format!("{prefix}/{n}"), 1).map(|v| v.value().data().to_vec());
    let (gamma, beta) = (get("BatchNorm/gamma")?, get("BatchNorm/beta")?);
    let (mean, var) = (get("BatchNorm/moving_mean")?, get("BatchNorm/moving_variance")?);
    let weights = w.get(&format!("{prefix}/{weights_name}"), 4)?.value();
    let channels = weights.shape()[0];
    if [&gamma, &beta, &mean, &var].iter().any(|v| v.len() != channels) {
        return Err(Error::Invalid(format!("{prefix}: batch norm sizes do not match {channels} channels")));
    }
    let scale: Vec<f32> = gamma.iter().zip(&var).map(|(g, v)| g / (v + eps).sqrt()).collect();
    let taps = weights.numel() / channels;
    let folded =
        weights.data().chunks_exact(taps).zip(&scale).flat_map(|(k, s)| k.iter().map(move |x| x * s)).collect();
    let bias = beta.iter().zip(&mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
    Ok((Var::constant(Tensor::new(weights.shape(), folded)?), Var::constant(Tensor::new(&[channels], bias)?)))
}
