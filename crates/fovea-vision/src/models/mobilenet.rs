//! MobileNetV1 (Howard et al. 2017, depth multiplier 1) with TensorFlow's weights as
//! face-api ships them inside its SSD face detector: the backbone of that detector and the
//! feature extractor of style transfer. Depthwise separable blocks: a 3x3 depthwise
//! convolution and a 1x1 pointwise one, each with batch norm (folded in at load) and ReLU6.

use crate::tfjs::{conv_same, fold_batch_norm, Source, Weights};
use fovea::{ops, Result, Var};
use std::path::Path;

/// The f32 of 1e-3, the epsilon of TF's batch norm layers here.
const BN_EPS: f32 = 0.001;

/// The backbone's weights: the 14 pointwise convolutions (layer 0 is a full 3x3 one) and
/// the 13 depthwise ones, each `(weight, bias)` with its batch norm folded in.
pub struct MobileNetV1 {
    pointwise: Vec<(Var, Var)>,
    depthwise: Vec<(Var, Var)>,
    source: Source,
}

impl MobileNetV1 {
    /// Layers in all (`conv0` ... `conv13`).
    pub const LAYERS: usize = 14;

    /// The backbone of face-api's SSD MobileNetV1, from its weights manifest
    /// (`ssd_mobilenetv1_model-weights_manifest.json`).
    pub fn load(manifest: &Path) -> Result<MobileNetV1> {
        MobileNetV1::from_weights(&Weights::load(manifest, "MobileNetV1", "MobilenetV1/Conv2d_0_pointwise/weights")?)
    }

    /// The backbone's tensors (under `MobilenetV1/`) of a TF.js network's weights.
    pub(crate) fn from_weights(w: &Weights) -> Result<MobileNetV1> {
        let pointwise = (0..Self::LAYERS)
            .map(|i| {
                let prefix = format!("MobilenetV1/Conv2d_{i}_pointwise");
                Ok((
                    w.get(&format!("{prefix}/weights"), 4)?.clone(),
                    w.get(&format!("{prefix}/convolution_bn_offset"), 1)?.clone(),
                ))
            })
            .collect::<Result<_>>()?;
        let depthwise = (1..Self::LAYERS)
            .map(|i| fold_batch_norm(w, &format!("MobilenetV1/Conv2d_{i}_depthwise"), "depthwise_weights", BN_EPS))
            .collect::<Result<_>>()?;
        Ok(MobileNetV1 { pointwise, depthwise, source: w.source().clone() })
    }

    /// The activations of layers 0 ..= `last` (at most 13) for `x` (`[N, 3, H, W]`, values
    /// in -1..1), each the output of a pointwise convolution and its ReLU6. Differentiable
    /// in `x` (style transfer optimises pictures through it).
    pub fn layers(&self, x: &Var, last: usize) -> Result<Vec<Var>> {
        let misfit = |e| self.source.misfit(e);
        let (w, b) = &self.pointwise[0];
        let mut h = pointwise(x, w, b, 2).map_err(misfit)?;
        let mut out = vec![h.clone()];
        for i in 1..=last.min(Self::LAYERS - 1) {
            let stride = if [2, 4, 6, 12].contains(&i) { 2 } else { 1 };
            let (dw, db) = &self.depthwise[i - 1];
            let d = conv_same(&h, dw, Some(db), stride, h.shape()[1]).and_then(|d| d.relu6()).map_err(misfit)?;
            let (w, b) = &self.pointwise[i];
            h = pointwise(&d, w, b, 1).map_err(misfit)?;
            out.push(h.clone());
        }
        Ok(out)
    }
}

/// A convolution with TF's `SAME` padding, its bias (batch norm folded in), then ReLU6.
pub(crate) fn pointwise(x: &Var, w: &Var, b: &Var, stride: usize) -> Result<Var> {
    ops::relu6(&conv_same(x, w, Some(b), stride, 1)?)
}
