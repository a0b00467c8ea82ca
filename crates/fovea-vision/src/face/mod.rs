//! Faces with face-api's pretrained networks (`models/face-api/`), computed as face-api
//! computes them (see `../shared/reference/faceapi.md`): preparing a picture for a network,
//! and the detectors.

mod landmarks;
mod recognition;
mod ssd;
mod tiny;

pub use landmarks::FaceLandmarkNet;
pub use recognition::{distance, FaceRecognitionNet};
pub use ssd::SsdMobilenetV1;
pub use tiny::TinyFaceDetector;

use fovea::ops::{self, ConvOptions};
use fovea::{Error, Result, Tensor, Var};
use std::path::PathBuf;

/// Where face-api's networks live: `FOVEA_MODELS/face-api` if set, else the repository's
/// `models/face-api`.
pub fn default_models_dir() -> PathBuf {
    match std::env::var("FOVEA_MODELS") {
        Ok(dir) => PathBuf::from(dir).join("face-api"),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/face-api"),
    }
}

/// A face found in a picture: its box in the picture's pixels (it may reach past the
/// edges) and the detector's score.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub score: f64,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// A picture made ready for a network of input `size` (`NetInput.toBatchTensor`): pixel
/// values 0..255, zero-padded to a square (after the picture, or centred), resized with
/// TF's legacy bilinear rule (no antialiasing), then `normalize(channel, value)`.
/// Returns `[1, 3, size, size]` and the size the picture itself takes inside the square,
/// rounded (face-api's "reshaped input dimensions", width then height).
pub fn network_input(
    rgb: &Tensor,
    size: usize,
    center: bool,
    normalize: impl Fn(usize, f32) -> f32,
) -> Result<(Tensor, (f64, f64))> {
    let &[3, h, w] = rgb.shape() else {
        return Err(Error::shape("face network input", format!("expected [3, H, W], got {:?}", rgb.shape())));
    };
    if h == 0 || w == 0 || size == 0 {
        return Err(Error::Invalid(format!("cannot prepare a {w}x{h} picture for a {size}x{size} network")));
    }
    // pad: all of it after the picture, or half (rounded up) after and the rest before
    let side = h.max(w);
    let diff = side - h.min(w);
    let before = if center { diff - (diff as f64 / 2.0).round() as usize } else { 0 };
    let (top, left) = if h < w { (before, 0) } else { (0, before) };
    let mut square = vec![0.0f32; 3 * side * side];
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                // back to the 0..255 integers the picture was decoded as
                square[(c * side + top + y) * side + left + x] = (rgb.data()[(c * h + y) * w + x] * 255.0).round();
            }
        }
    }
    let resized = if side == size { square } else { resize_bilinear_tf(&square, side, size) };
    let data = resized.chunks_exact(size * size).enumerate().flat_map(|(c, p)| p.iter().map(move |&v| (c, v)));
    let data = data.map(|(c, v)| normalize(c, v)).collect();
    let scale = size as f64 / side as f64;
    let reshaped = ((w as f64 * scale).round(), (h as f64 * scale).round());
    Ok((Tensor::new(&[1, 3, size, size], data)?, reshaped))
}

/// TF's `resizeBilinear` with `alignCorners` and `halfPixelCenters` off, as TF.js's CPU
/// kernel computes it (in f64, stored as f32): source = destination · (in / out), the
/// 2x2 neighbourhood at floor/ceil (clamped), along x first, then y.
fn resize_bilinear_tf(x: &[f32], side: usize, size: usize) -> Vec<f32> {
    let scale = side as f64 / size as f64;
    let taps: Vec<(usize, usize, f64)> = (0..size)
        .map(|o| {
            let src = o as f64 * scale;
            let lo = src.floor();
            (lo as usize, (src.ceil() as usize).min(side - 1), src - lo)
        })
        .collect();
    let mut out = vec![0.0f32; 3 * size * size];
    for c in 0..3 {
        let plane = &x[c * side * side..(c + 1) * side * side];
        for (oy, &(y0, y1, fy)) in taps.iter().enumerate() {
            for (ox, &(x0, x1, fx)) in taps.iter().enumerate() {
                let at = |y: usize, x: usize| plane[y * side + x] as f64;
                let top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * fx;
                let bottom = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * fx;
                out[(c * size + oy) * size + ox] = (top + (bottom - top) * fy) as f32;
            }
        }
    }
    out
}

/// A convolution with TF's 'same' padding: as many zeros as the stride needs, the odd one
/// after (below, right).
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
    let padded = ops::pad(x, &pads, 0.0)?;
    ops::conv2d(&padded, w, bias, &ConvOptions::default().stride(stride).groups(groups))
}

impl Detection {
    /// face-api's crop of this face from a `[3, H, W]` picture: the box clipped to the
    /// picture, each of x, y, width, height floored on its own (`clipAtImageBorders`).
    /// `None` for an empty crop.
    pub fn crop(&self, rgb: &Tensor) -> Option<Tensor> {
        let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
        let (x0, y0) = (self.x.max(0.0), self.y.max(0.0));
        let cw = (self.x + self.width - x0).min(w as f64 - x0).floor();
        let ch = (self.y + self.height - y0).min(h as f64 - y0).floor();
        let (x0, y0) = (x0.floor() as usize, y0.floor() as usize);
        if cw <= 0.0 || ch <= 0.0 || x0 >= w || y0 >= h {
            return None;
        }
        let (cw, ch) = ((cw as usize).min(w - x0), (ch as usize).min(h - y0));
        let mut out = Vec::with_capacity(3 * cw * ch);
        for plane in rgb.data().chunks_exact(h * w) {
            for row in plane.chunks_exact(w).skip(y0).take(ch) {
                out.extend_from_slice(&row[x0..x0 + cw]);
            }
        }
        Tensor::new(&[3, ch, cw], out).ok()
    }
}
