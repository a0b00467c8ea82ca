//! face-api's SSD MobileNetV1 face detector: MobileNetV1 (depth 1) at 512x512, eight extra
//! feature layers, six box predictors over 5118 stored anchors, the TF Object Detection
//! box coder, and face-api's own non-max suppression (IoU > 0.5).

use super::{network_input, Detection};
use crate::models::{pointwise, MobileNetV1};
use crate::tfjs::{conv_same, Weights};
use fovea::{no_grad, Error, Result, Tensor, Var};
use std::path::Path;

const SIZE: usize = 512;
const IOU_THRESHOLD: f64 = 0.5;

/// The detector's weights and its anchors.
pub struct SsdMobilenetV1 {
    backbone: MobileNetV1,
    /// The extra feature layers and box predictors.
    w: Weights,
    /// `[5118, 4]` anchors, (ymin, xmin, ymax, xmax) in the 512 square.
    anchors: Vec<[f32; 4]>,
}

impl SsdMobilenetV1 {
    /// Loads `ssd_mobilenetv1_model-weights_manifest.json` (and its `.bin`).
    pub fn load(manifest: &Path) -> Result<SsdMobilenetV1> {
        let w = Weights::load(manifest, "SSD detector", "Output/extra_dim")?;
        let anchors = w
            .get_sized("Output/extra_dim", 3, 2, 4)?
            .value()
            .data()
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect();
        Ok(SsdMobilenetV1 { backbone: MobileNetV1::from_weights(&w)?, w, anchors })
    }

    fn get(&self, name: &str, rank: usize) -> Result<&Var> {
        self.w.get(name, rank)
    }

    /// The extra layer `prefix`: conv + offset (its batch norm folded in) + relu6.
    fn extra(&self, x: &Var, prefix: &str, stride: usize) -> Result<Var> {
        let (w, b) =
            (self.get(&format!("{prefix}/weights"), 4)?, self.get(&format!("{prefix}/convolution_bn_offset"), 1)?);
        pointwise(x, w, b, stride)
    }

    /// Box encodings `[A, 4]` and class logits `[A, 3]` of a prepared input, anchors in
    /// face-api's order (predictor, y, x, anchor).
    fn forward(&self, x: &Var) -> Result<(Tensor, Tensor)> {
        let layers = self.backbone.layers(x, 13)?;
        let (conv11, h) = (layers[11].clone(), layers[13].clone());
        let mut extra = Vec::new();
        let mut e = h.clone();
        for i in 0..8 {
            e = self.extra(&e, &format!("Prediction/Conv2d_{i}_pointwise"), if i % 2 == 1 { 2 } else { 1 })?;
            extra.push(e.clone());
        }
        let maps = [&conv11, &h, &extra[1], &extra[3], &extra[5], &extra[7]];
        let (mut boxes, mut classes) = (Vec::new(), Vec::new());
        for (i, m) in maps.iter().enumerate() {
            let p = format!("Prediction/BoxPredictor_{i}");
            for (kind, out, width) in [("BoxEncodingPredictor", &mut boxes, 4), ("ClassPredictor", &mut classes, 3)] {
                let y = conv_same(
                    m,
                    self.get(&format!("{p}/{kind}/weights"), 4)?,
                    Some(self.get(&format!("{p}/{kind}/biases"), 1)?),
                    1,
                    1,
                )?;
                // NHWC order: y, x, then anchor and value
                let nhwc = y.value().permute(&[0, 2, 3, 1])?;
                let n = nhwc.numel() / width;
                out.push(nhwc.reshape(&[n, width])?);
            }
        }
        let cat = |v: &[Tensor]| Tensor::concat(&v.iter().collect::<Vec<_>>(), 0);
        Ok((cat(&boxes)?, cat(&classes)?))
    }

    /// Faces in an RGB picture `[3, H, W]` (values 0..1) with score above `min_score`
    /// (face-api's default 0.5), at most `max_results` (100), in face-api's order.
    pub fn detect(&self, rgb: &Tensor, min_score: f64, max_results: usize) -> Result<Vec<Detection>> {
        let (h, w) = (rgb.shape().get(1).copied().unwrap_or(0), rgb.shape().get(2).copied().unwrap_or(0));
        let (x, (rw, rh)) = network_input(rgb, SIZE, false, |_, v| v / 127.5 - 1.0)?;
        let (enc, logits) = no_grad(|| self.forward(&Var::constant(x))).map_err(|e| self.w.source().misfit(e))?;
        if enc.shape()[0] != self.anchors.len() || logits.shape()[0] != self.anchors.len() {
            let (boxes, scores, anchors) = (enc.shape()[0], logits.shape()[0], self.anchors.len());
            let e =
                Error::shape("SSD output", format!("{boxes} box encodings and {scores} scores for {anchors} anchors"));
            return Err(self.w.source().misfit(e));
        }
        // the box coder, op by op in f32 as TF.js computes it
        let boxes: Vec<[f32; 4]> = enc
            .data()
            .chunks_exact(4)
            .zip(&self.anchors)
            .map(|(t, a)| {
                let (ha, wa) = (a[2] - a[0], a[3] - a[1]);
                let (ya, xa) = (a[0] + ha / 2.0, a[1] + wa / 2.0);
                let exp = |v: f32| (v as f64).exp() as f32;
                let half_h = exp(t[2] / 5.0) * ha / 2.0;
                let yc = t[0] / 10.0 * ha + ya;
                let half_w = exp(t[3] / 5.0) * wa / 2.0;
                let xc = t[1] / 10.0 * wa + xa;
                [yc - half_h, xc - half_w, yc + half_h, xc + half_w]
            })
            .collect();
        let scores: Vec<f64> =
            logits.data().chunks_exact(3).map(|c| (1.0 / (1.0 + (-(c[1] as f64)).exp())) as f32 as f64).collect();
        let picks = suppress(&boxes, &scores, min_score, max_results);
        let (pad_x, pad_y) = (SIZE as f64 / rw, SIZE as f64 / rh);
        Ok(picks
            .into_iter()
            .map(|i| {
                let b = boxes[i].map(|v| v as f64);
                let (top, bottom) = (b[0].max(0.0) * pad_y, b[2].min(1.0) * pad_y);
                let (left, right) = (b[1].max(0.0) * pad_x, b[3].min(1.0) * pad_x);
                Detection {
                    score: scores[i],
                    x: left * w as f64,
                    y: top * h as f64,
                    width: (right - left) * w as f64,
                    height: (bottom - top) * h as f64,
                }
            })
            .collect())
    }
}

/// face-api's SSD suppression: candidates above `min_score` by descending score (stable);
/// each is kept unless its IoU with a box already kept exceeds 0.5; at most `max` kept.
fn suppress(boxes: &[[f32; 4]], scores: &[f64], min_score: f64, max: usize) -> Vec<usize> {
    let iou = |i: usize, j: usize| {
        let norm = |b: [f32; 4]| {
            let b = b.map(|v| v as f64);
            [b[0].min(b[2]), b[1].min(b[3]), b[0].max(b[2]), b[1].max(b[3])]
        };
        let (a, b) = (norm(boxes[i]), norm(boxes[j]));
        let (area_a, area_b) = ((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]));
        if area_a <= 0.0 || area_b <= 0.0 {
            return 0.0;
        }
        let inter = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0) * (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
        inter / (area_a + area_b - inter)
    };
    let mut candidates: Vec<usize> = (0..scores.len()).filter(|&i| scores[i] > min_score).collect();
    candidates.sort_by(|&i, &j| scores[j].total_cmp(&scores[i]));
    let mut kept: Vec<usize> = Vec::new();
    for c in candidates {
        if kept.len() >= max.min(boxes.len()) {
            break;
        }
        if kept.iter().rev().all(|&k| iou(c, k) <= IOU_THRESHOLD) {
            kept.push(c);
        }
    }
    kept
}
