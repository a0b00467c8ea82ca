//! face-api's 68-point landmark net: four dense blocks of separable convolutions with
//! summed shortcuts, 7x7 average pooling and a fully connected layer to 68 (x, y) pairs
//! relative to the 112x112 input, mapped back to the face crop and the picture.

use super::{network_input, Detection};
use crate::tfjs::{conv_same, Weights};
use fovea::ops::{self, ConvOptions, PoolOptions};
use fovea::{no_grad, Result, Tensor, Var};
use std::path::Path;

const SIZE: usize = 112;
/// Per-channel means (R, G, B) of the landmark and recognition nets.
pub(crate) const MEAN: [f32; 3] = [122.782, 117.001, 104.298];

/// face-api's 68-point face landmark net (`faceLandmark68Net`).
pub struct FaceLandmarkNet {
    w: Weights,
}

impl FaceLandmarkNet {
    /// Loads `face_landmark_68_model-weights_manifest.json` (and its `.bin`).
    pub fn load(manifest: &Path) -> Result<FaceLandmarkNet> {
        let w = Weights::load(manifest, "landmark net", "fc/weights")?;
        // 68 points, x and y, read by position
        w.get_sized("fc/weights", 2, 1, 136)?;
        w.get_sized("fc/bias", 1, 0, 136)?;
        Ok(FaceLandmarkNet { w })
    }

    fn get(&self, name: &str, rank: usize) -> Result<&Var> {
        self.w.get(name, rank)
    }

    /// Depthwise 3x3 (stride, 'same') then pointwise, plus bias.
    fn separable(&self, x: &Var, prefix: &str, stride: usize) -> Result<Var> {
        let d = conv_same(x, self.get(&format!("{prefix}/depthwise_filter"), 4)?, None, stride, x.shape()[1])?;
        let pw = self.get(&format!("{prefix}/pointwise_filter"), 4)?;
        ops::conv2d(&d, pw, Some(self.get(&format!("{prefix}/bias"), 1)?), &ConvOptions::default())
    }

    /// The 136 raw outputs for a prepared input `[1, 3, 112, 112]`.
    fn forward(&self, x: &Var) -> Result<Tensor> {
        let mut h = x.clone();
        for k in 0..4 {
            let p = format!("dense{k}");
            let o1 = ops::relu(&if k == 0 {
                let (w, b) = (self.get(&format!("{p}/conv0/filters"), 4)?, self.get(&format!("{p}/conv0/bias"), 1)?);
                conv_same(&h, w, Some(b), 2, 1)?
            } else {
                self.separable(&h, &format!("{p}/conv0"), 2)?
            })?;
            let o2 = self.separable(&o1, &format!("{p}/conv1"), 1)?;
            let o3 = self.separable(&ops::relu(&ops::add(&o1, &o2)?)?, &format!("{p}/conv2"), 1)?;
            let o4 = self.separable(&ops::relu(&ops::add(&o1, &ops::add(&o2, &o3)?)?)?, &format!("{p}/conv3"), 1)?;
            h = ops::relu(&ops::add(&o1, &ops::add(&o2, &ops::add(&o3, &o4)?)?)?)?;
        }
        let pooled = ops::avg_pool(&h, &PoolOptions::new(7).stride(2))?;
        let flat = ops::flatten(&pooled)?;
        let y = ops::add(&ops::matmul(&flat, self.get("fc/weights", 2)?)?, self.get("fc/bias", 1)?)?;
        Ok(y.tensor())
    }

    /// The 68 points of the face `det` in a `[3, H, W]` picture, in its pixels, as face-api
    /// places them (shifted by the box's own, unclipped corner). Empty if the crop is.
    pub fn landmarks(&self, rgb: &Tensor, det: &Detection) -> Result<Vec<[f64; 2]>> {
        let Some(crop) = det.crop(rgb) else { return Ok(Vec::new()) };
        let (ch, cw) = (crop.shape()[1] as f64, crop.shape()[2] as f64);
        let (x, _) = network_input(&crop, SIZE, true, |c, v| (v - MEAN[c]) / 255.0)?;
        let raw = no_grad(|| self.forward(&Var::constant(x))).map_err(|e| self.w.source().misfit(e))?;
        // face-api's postProcess: the sizes in f64 (JS), then its tensor ops in f32
        let s = SIZE as f64 / cw.max(ch);
        let (w1, h1) = (cw * s, ch * s);
        let pad_x = (if w1 < h1 { (w1 - h1).abs() / 2.0 } else { 0.0 }) as f32;
        let pad_y = (if h1 < w1 { (w1 - h1).abs() / 2.0 } else { 0.0 }) as f32;
        let (w1, h1) = (w1 as f32, h1 as f32);
        Ok(raw
            .data()
            .chunks_exact(2)
            .map(|p| {
                let rx = ((p[0] * SIZE as f32 - pad_x) / w1) as f64;
                let ry = ((p[1] * SIZE as f32 - pad_y) / h1) as f64;
                // positions in the crop, back to relative, then shifted (FaceLandmarks)
                let (rx, ry) = ((rx * cw) / cw, (ry * ch) / ch);
                [rx * cw + det.x, ry * ch + det.y]
            })
            .collect())
    }
}
