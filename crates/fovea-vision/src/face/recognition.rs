//! face-api's face recognition net (dlib's ResNet-34-style model): 128 numbers per face,
//! close (Euclidean distance below 0.6) for the same person. The face is cut out by dlib's
//! alignment rule from the 68 landmarks.

use super::landmarks::MEAN;
use super::{network_input, Detection};
use crate::tfjs::Weights;
use fovea::ops::{self, ConvOptions, Padding, PoolOptions};
use fovea::{no_grad, Error, Result, Tensor, Var};
use std::path::Path;

const SIZE: usize = 150;

/// face-api's face recognition net (`faceRecognitionNet`): a 128-D descriptor per face.
pub struct FaceRecognitionNet {
    w: Weights,
}

impl FaceRecognitionNet {
    /// Loads `face_recognition_model-weights_manifest.json` (and its `.bin`).
    pub fn load(manifest: &Path) -> Result<FaceRecognitionNet> {
        let w = Weights::load(manifest, "recognition net", "fc")?;
        // descriptors of 128 values, compared with the database's
        w.get_sized("fc", 2, 1, 128)?;
        Ok(FaceRecognitionNet { w })
    }

    fn get(&self, name: &str, rank: usize) -> Result<&Var> {
        self.w.get(name, rank)
    }

    /// A per-channel vector `[C]` of the scale layer, shaped to broadcast over `[N, C, H, W]`.
    fn channel(&self, name: &str) -> Result<Var> {
        let v = self.get(name, 1)?;
        ops::reshape(v, &[1, v.shape()[0], 1, 1])
    }

    /// conv + bias, then the per-channel scale layer (`· weights + biases`), then ReLU.
    fn conv(&self, x: &Var, prefix: &str, stride: usize, same: bool, relu: bool) -> Result<Var> {
        let filters = self.get(&format!("{prefix}/conv/filters"), 4)?;
        let pad = if same { Padding::symmetric(filters.shape()[2] / 2) } else { Padding::symmetric(0) };
        let bias = self.get(&format!("{prefix}/conv/bias"), 1)?;
        let y = ops::conv2d(x, filters, Some(bias), &ConvOptions::default().stride(stride).padding(pad))?;
        let y = ops::mul(&y, &self.channel(&format!("{prefix}/scale/weights"))?)?;
        let y = ops::add(&y, &self.channel(&format!("{prefix}/scale/biases"))?)?;
        Ok(if relu { ops::relu(&y)? } else { y })
    }

    fn residual(&self, x: &Var, prefix: &str) -> Result<Var> {
        let a = self.conv(x, &format!("{prefix}/conv1"), 1, true, true)?;
        let b = self.conv(&a, &format!("{prefix}/conv2"), 1, true, false)?;
        ops::relu(&ops::add(&b, x)?)
    }

    /// Halves the size (stride-2 valid convolution; 2x2 average pool on the shortcut,
    /// zero channels appended where the count doubles, a zero row and column appended to
    /// the main path where the sizes differ).
    fn residual_down(&self, x: &Var, prefix: &str) -> Result<Var> {
        let a = self.conv(x, &format!("{prefix}/conv1"), 2, false, true)?;
        let mut b = self.conv(&a, &format!("{prefix}/conv2"), 1, true, false)?;
        let mut pooled = ops::avg_pool(x, &PoolOptions::new(2))?;
        let (ps, bs) = (pooled.shape(), b.shape());
        if ps[2] != bs[2] || ps[3] != bs[3] {
            b = ops::pad(&b, &[(0, 1), (0, 1)], 0.0)?;
        }
        if ps[1] != bs[1] {
            pooled = ops::pad(&pooled, &[(0, ps[1]), (0, 0), (0, 0)], 0.0)?;
        }
        ops::relu(&ops::add(&pooled, &b)?)
    }

    /// The 128-D descriptor of a prepared input `[1, 3, 150, 150]`.
    fn forward(&self, x: &Var) -> Result<Vec<f32>> {
        let h = self.conv(x, "conv32_down", 2, false, true)?;
        let mut h = ops::max_pool(&h, &PoolOptions::new(3).stride(2))?;
        for block in ["conv32_1", "conv32_2", "conv32_3"] {
            h = self.residual(&h, block)?;
        }
        for (down, blocks) in [
            ("conv64_down", &["conv64_1", "conv64_2", "conv64_3"][..]),
            ("conv128_down", &["conv128_1", "conv128_2"][..]),
            ("conv256_down", &["conv256_1", "conv256_2"][..]),
            ("conv256_down_out", &[][..]),
        ] {
            h = self.residual_down(&h, down)?;
            for block in blocks {
                h = self.residual(&h, block)?;
            }
        }
        let mean = ops::global_avg_pool(&h)?;
        Ok(ops::matmul(&mean, self.get("fc", 2)?)?.tensor().into_vec())
    }

    /// The descriptor of the face with these 68 `landmarks` (picture pixels) found in box
    /// `det` of a `[3, H, W]` picture, cut out by face-api's dlib alignment. `None` when
    /// the aligned crop is empty (face-api then drops the face).
    pub fn descriptor(&self, rgb: &Tensor, det: &Detection, landmarks: &[[f64; 2]]) -> Result<Option<Vec<f32>>> {
        if landmarks.len() != 68 {
            return Err(Error::Invalid(format!("dlib alignment needs 68 landmarks, got {}", landmarks.len())));
        }
        let Some(landmark_crop) = det.crop(rgb) else { return Ok(None) };
        let (crop_h, crop_w) = (landmark_crop.shape()[1] as f64, landmark_crop.shape()[2] as f64);
        let center = |r: std::ops::Range<usize>| {
            let n = r.len() as f64;
            let (sx, sy) = landmarks[r].iter().fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
            (sx / n, sy / n)
        };
        let (left, right, mouth) = (center(36..42), center(42..48), center(48..68));
        let dist = |p: (f64, f64)| ((mouth.0 - p.0).powi(2) + (mouth.1 - p.1).powi(2)).sqrt();
        let size = ((dist(left) + dist(right)) / 2.0 / 0.45).floor();
        let reference = ((left.0 + right.0 + mouth.0) / 3.0, (left.1 + right.1 + mouth.1) / 3.0);
        let x = (reference.0 - 0.5 * size).max(0.0).floor();
        let y = (reference.1 - 0.43 * size).max(0.0).floor();
        let aligned = Detection { score: det.score, x, y, width: size.min(crop_w + x), height: size.min(crop_h + y) };
        let Some(face) = aligned.crop(rgb) else { return Ok(None) };
        let (input, _) = network_input(&face, SIZE, true, |c, v| (v - MEAN[c]) / 255.0)?;
        Ok(Some(no_grad(|| self.forward(&Var::constant(input))).map_err(|e| self.w.source().misfit(e))?))
    }
}

/// Euclidean distance between two descriptors; below 0.6 counts as the same person.
pub fn distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt()
}
