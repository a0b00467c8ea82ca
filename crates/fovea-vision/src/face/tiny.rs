//! face-api's Tiny Face Detector: a Tiny-YOLOv2-style network (a 3x3 convolution, five
//! separable ones with 2x2 max pooling, a 1x1 head of 5 anchors x (tx, ty, tw, th,
//! objectness) per cell), its box decoding and non-max suppression.

use super::{network_input, Detection};
use crate::tfjs::{Source, Weights};
use fovea::ops::{self, ConvOptions, PoolOptions};
use fovea::{no_grad, Error, Result, Tensor, Var};
use std::path::Path;

/// Anchor boxes in grid cells (width, height).
const ANCHORS: [(f64, f64); 5] =
    [(1.603231, 2.094468), (6.041143, 7.080126), (2.882459, 3.518061), (4.266906, 5.178857), (9.041765, 10.66308)];
/// Per-channel means (R, G, B) subtracted from the 0..255 input.
const MEAN: [f32; 3] = [117.001, 114.697, 97.404];
/// face-api's IoU threshold for suppression (a box goes if IoU > 0.4).
const IOU_THRESHOLD: f64 = 0.4;
/// The slope of face-api's leaky ReLU, the f32 of 0.1.
const LEAK: f32 = 0.1;

/// The detector's weights, converted to fovea's layouts (OIHW; depthwise `[C, 1, 3, 3]`).
pub struct TinyFaceDetector {
    conv0: (Var, Var),
    separable: Vec<(Var, Var, Var)>,
    conv8: (Var, Var),
    source: Source,
}

impl TinyFaceDetector {
    /// Loads `tiny_face_detector_model-weights_manifest.json` (and its `.bin`).
    pub fn load(manifest: &Path) -> Result<TinyFaceDetector> {
        let w = Weights::load(manifest, "tiny face detector", "conv8/filters")?;
        let get = |name: &str, rank| w.get(name, rank).cloned();
        let conv0 = (get("conv0/filters", 4)?, get("conv0/bias", 1)?);
        let separable = (1..=5)
            .map(|i| {
                let part = |p: &str, rank| get(&format!("conv{i}/{p}"), rank);
                Ok((part("depthwise_filter", 4)?, part("pointwise_filter", 4)?, part("bias", 1)?))
            })
            .collect::<Result<Vec<_>>>()?;
        // 5 anchors x (4 box values + 1 score), read by position
        let conv8 = (w.get_sized("conv8/filters", 4, 0, 25)?.clone(), w.get_sized("conv8/bias", 1, 0, 25)?.clone());
        Ok(TinyFaceDetector { conv0, separable, conv8, source: w.source().clone() })
    }

    /// The network's raw output `[1, 25, g, g]` for a prepared input `[1, 3, s, s]`.
    pub fn forward(&self, x: &Var) -> Result<Var> {
        self.layers(x).map_err(|e| self.source.misfit(e))
    }

    fn layers(&self, x: &Var) -> Result<Var> {
        // relu(x - a·x) + a·x, op by op as face-api writes it
        let leaky = |x: Var| -> Result<Var> {
            let ax = ops::mul_scalar(&x, LEAK)?;
            ops::add(&ops::relu(&ops::sub(&x, &ax)?)?, &ax)
        };
        // TF's 'same' 2x2 pooling: a partial last window where the size is odd
        let pool = |x: &Var| ops::max_pool(x, &PoolOptions::new(2).ceil_mode(true));
        let (w0, b0) = &self.conv0;
        let mut h = pool(&leaky(ops::conv2d(x, w0, Some(b0), &ConvOptions::default())?)?)?;
        for (i, (dw, pw, b)) in self.separable.iter().enumerate() {
            let channels = dw.shape()[0];
            let padded = ops::pad(&h, &[(1, 1), (1, 1)], 0.0)?;
            let d = ops::conv2d(&padded, dw, None, &ConvOptions::default().groups(channels))?;
            h = leaky(ops::conv2d(&d, pw, Some(b), &ConvOptions::default())?)?;
            h = if i < 4 {
                pool(&h)?
            } else {
                // 2x2, stride 1, 'same': one padded row and column after, which never win
                let padded = ops::pad(&h, &[(0, 1), (0, 1)], f32::NEG_INFINITY)?;
                ops::max_pool(&padded, &PoolOptions::new(2).stride(1))?
            };
        }
        let (w8, b8) = &self.conv8;
        ops::conv2d(&h, w8, Some(b8), &ConvOptions::default())
    }

    /// Faces in an RGB picture `[3, H, W]` (values 0..1, as decoded), at network input
    /// `input_size` (a multiple of 32; face-api's default 416) with score above
    /// `min_score` (default 0.5), in face-api's order: descending score after
    /// suppression.
    pub fn detect(&self, rgb: &Tensor, input_size: usize, min_score: f64) -> Result<Vec<Detection>> {
        if input_size == 0 || !input_size.is_multiple_of(32) {
            return Err(Error::Invalid(format!("the input size must be a multiple of 32, not {input_size}")));
        }
        // the input and the first layers' 16-channel maps at full size
        let side = input_size as u64;
        fovea::budget::check(&format!("input size {input_size}"), side.saturating_mul(side).saturating_mul(35 * 4))?;
        let (h, w) = (rgb.shape().get(1).copied().unwrap_or(0), rgb.shape().get(2).copied().unwrap_or(0));
        let (x, (rw, rh)) = network_input(rgb, input_size, false, |c, v| (v - MEAN[c]) / 255.0)?;
        let out = no_grad(|| self.forward(&Var::constant(x)))?.tensor();
        let g = input_size / 32;
        let (cfx, cfy) = (input_size as f64 / rw, input_size as f64 / rh);
        let at = |ch: usize, row: usize, col: usize| out.data()[(ch * g + row) * g + col] as f64;
        let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
        // candidates in row, column, anchor order: (score, left, top, right, bottom), relative
        let mut boxes = Vec::new();
        for row in 0..g {
            for col in 0..g {
                for (a, &(aw, ah)) in ANCHORS.iter().enumerate() {
                    let score = sigmoid(at(a * 5 + 4, row, col));
                    if score <= min_score {
                        continue;
                    }
                    let cx = (col as f64 + sigmoid(at(a * 5, row, col))) / g as f64 * cfx;
                    let cy = (row as f64 + sigmoid(at(a * 5 + 1, row, col))) / g as f64 * cfy;
                    let bw = at(a * 5 + 2, row, col).exp() * aw / g as f64 * cfx;
                    let bh = at(a * 5 + 3, row, col).exp() * ah / g as f64 * cfy;
                    let (left, top) = (cx - bw / 2.0, cy - bh / 2.0);
                    boxes.push((score, left, top, left + bw, top + bh));
                }
            }
        }
        let picks = suppress(&boxes, input_size as f64);
        Ok(picks
            .into_iter()
            .map(|i| {
                let (score, left, top, right, bottom) = boxes[i];
                Detection {
                    score,
                    x: left * w as f64,
                    y: top * h as f64,
                    width: (right - left) * w as f64,
                    height: (bottom - top) * h as f64,
                }
            })
            .collect())
    }
}

/// face-api's greedy non-max suppression: candidates sorted by ascending score (stable),
/// the last taken first; the rest kept while their IoU with it is at most 0.4. Boxes are
/// compared scaled by `scale`, as face-api does.
fn suppress(boxes: &[(f64, f64, f64, f64, f64)], scale: f64) -> Vec<usize> {
    let scaled: Vec<[f64; 4]> = boxes
        .iter()
        .map(|&(_, l, t, r, b)| {
            let (x, y, w, h) = (l * scale, t * scale, (r - l) * scale, (b - t) * scale);
            [x, y, w, h]
        })
        .collect();
    let iou = |a: &[f64; 4], b: &[f64; 4]| {
        let iw = ((a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0])).max(0.0);
        let ih = ((a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1])).max(0.0);
        let inter = iw * ih;
        inter / (a[2] * a[3] + b[2] * b[3] - inter)
    };
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&i, &j| boxes[i].0.total_cmp(&boxes[j].0));
    let mut picks = Vec::new();
    while let Some(current) = order.pop() {
        picks.push(current);
        order.retain(|&i| iou(&scaled[current], &scaled[i]) <= IOU_THRESHOLD);
    }
    picks
}
