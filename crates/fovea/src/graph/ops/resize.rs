//! Resize and Upsample: nearest, linear and cubic interpolation with every coordinate
//! mode ONNX defines, one axis at a time (the interpolations are separable), as the
//! `onnx` package's reference computes them.

use super::{check_output, int_list, Attrs};
use crate::graph::value::{axis, is_float, Value};
use crate::{Error, Result, Tensor};
use rayon::prelude::*;

/// How output positions are interpolated from input positions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// the nearest input position
    Nearest,
    /// linear in each axis
    Linear,
    /// cubic convolution in each axis, with the coefficient `a`
    Cubic,
}

/// Which input position is nearest when a coordinate lies between two.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nearest {
    /// round, halves down
    RoundPreferFloor,
    /// round, halves up
    RoundPreferCeil,
    /// down
    Floor,
    /// up
    Ceil,
    /// before opset 11: down when enlarging, up when shrinking
    Legacy,
}

/// Where an output position lies in the input (`coordinate_transformation_mode`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Coordinates {
    /// (x + 0.5) / scale - 0.5
    HalfPixel,
    /// half_pixel, centred when the output size was rounded
    HalfPixelSymmetric,
    /// half_pixel, but -0.5... 0 for a one-element output (PyTorch's)
    PytorchHalfPixel,
    /// corners of input and output aligned
    AlignCorners,
    /// x / scale
    Asymmetric,
    /// the region of interest, values outside it extrapolated
    TfCropAndResize,
}

/// Resize (opset 10 and later) or Upsample.
#[derive(Clone, Debug, PartialEq)]
pub struct Resize {
    mode: Mode,
    coordinates: Coordinates,
    nearest: Nearest,
    cubic_a: f64,
    exclude_outside: bool,
    extrapolation: f64,
    antialias: bool,
    axes: Option<Vec<i64>>,
    /// keep_aspect_ratio_policy: `None` to stretch, else whether to take the smaller
    /// scale (not_larger) or the larger (not_smaller)
    keep_aspect: Option<bool>,
    /// Upsample-7's scales attribute
    scales_attr: Option<Vec<f32>>,
    /// whether the inputs are (X, roi, scales, sizes) (opset 11 and later) rather than
    /// (X, scales)
    with_roi: bool,
}

impl Resize {
    pub(super) fn from_node(a: &Attrs, opset: i64) -> Result<Resize> {
        let legacy = a.op() == "Upsample" || opset < 11;
        let mode = match a.string("mode", "nearest")?.as_str() {
            "nearest" => Mode::Nearest,
            "linear" | "bilinear" | "trilinear" => Mode::Linear,
            "cubic" if !legacy => Mode::Cubic,
            m => return Err(a.invalid(format!("mode {m:?} is not nearest, linear or cubic"))),
        };
        let coordinates = if legacy {
            Coordinates::Asymmetric
        } else {
            match a.string("coordinate_transformation_mode", "half_pixel")?.as_str() {
                "half_pixel" => Coordinates::HalfPixel,
                "half_pixel_symmetric" => Coordinates::HalfPixelSymmetric,
                "pytorch_half_pixel" => Coordinates::PytorchHalfPixel,
                "align_corners" => Coordinates::AlignCorners,
                "asymmetric" => Coordinates::Asymmetric,
                "tf_crop_and_resize" => Coordinates::TfCropAndResize,
                m => return Err(a.invalid(format!("coordinate_transformation_mode {m:?} is not one ONNX defines"))),
            }
        };
        let nearest = if legacy {
            Nearest::Legacy
        } else {
            match a.string("nearest_mode", "round_prefer_floor")?.as_str() {
                "round_prefer_floor" => Nearest::RoundPreferFloor,
                "round_prefer_ceil" => Nearest::RoundPreferCeil,
                "floor" => Nearest::Floor,
                "ceil" => Nearest::Ceil,
                m => return Err(a.invalid(format!("nearest_mode {m:?} is not one ONNX defines"))),
            }
        };
        let keep_aspect = match a.string("keep_aspect_ratio_policy", "stretch")?.as_str() {
            "stretch" => None,
            "not_larger" => Some(true),
            "not_smaller" => Some(false),
            p => {
                return Err(
                    a.invalid(format!("keep_aspect_ratio_policy {p:?} is not stretch, not_larger or not_smaller"))
                )
            }
        };
        let antialias = a.int("antialias", 0)? != 0;
        if antialias && mode == Mode::Nearest {
            return Err(a.invalid("antialias applies to linear and cubic modes only"));
        }
        Ok(Resize {
            mode,
            coordinates,
            nearest,
            cubic_a: a.float("cubic_coeff_a", -0.75)? as f64,
            exclude_outside: a.int("exclude_outside", 0)? != 0,
            extrapolation: a.float("extrapolation_value", 0.0)? as f64,
            antialias,
            axes: a.ints("axes")?,
            keep_aspect,
            scales_attr: a.floats("scales")?,
            with_roi: !legacy,
        })
    }

    pub(super) fn run(&self, inputs: &[Option<&Value>]) -> Result<Value> {
        const OP: &str = "Resize";
        let given = |i: usize| inputs.get(i).copied().flatten().filter(|v| !v.is_empty());
        let x = inputs.first().copied().flatten().ok_or_else(|| Error::shape(OP, "input 1 is missing"))?;
        let r = x.shape().len();
        let axes: Vec<usize> = match &self.axes {
            Some(a) => a.iter().map(|&a| axis(OP, a, r)).collect::<Result<_>>()?,
            None => (0..r).collect(),
        };
        let floats = |v: &Value| v.to_f64s();
        let (roi, scales, sizes) = if self.with_roi {
            (given(1).map(floats), given(2).map(floats), given(3).map(|v| int_list(OP, v)).transpose()?)
        } else {
            let scales = match &self.scales_attr {
                Some(s) => s.iter().map(|&v| v as f64).collect(),
                None => given(1).map(floats).ok_or_else(|| Error::shape(OP, "the scales are missing"))?,
            };
            (None, Some(scales), None)
        };
        let n = axes.len();
        let in_shape = x.shape();
        // per dimension: scale and output size
        let mut scale = vec![1.0f64; r];
        let mut out = in_shape.to_vec();
        match (scales, sizes) {
            (_, Some(sizes)) => {
                if sizes.len() != n || sizes.iter().any(|&s| s < 0) {
                    return Err(Error::shape(OP, format!("sizes {sizes:?} for {n} axes")));
                }
                for (i, &d) in axes.iter().enumerate() {
                    scale[d] = sizes[i] as f64 / in_shape[d].max(1) as f64;
                    out[d] = sizes[i] as usize;
                }
                if let Some(smaller) = self.keep_aspect {
                    let pick = axes.iter().map(|&d| scale[d]);
                    let s = if smaller { pick.fold(f64::INFINITY, f64::min) } else { pick.fold(0.0, f64::max) };
                    for &d in &axes {
                        scale[d] = s;
                        out[d] = (s * in_shape[d] as f64 + 0.5) as usize;
                    }
                }
            }
            (Some(scales), None) => {
                if scales.len() != n || scales.iter().any(|&s| !(s > 0.0 && s.is_finite())) {
                    return Err(Error::shape(OP, format!("scales {scales:?} for {n} axes must be positive")));
                }
                for (i, &d) in axes.iter().enumerate() {
                    scale[d] = scales[i];
                    let size = scales[i] * in_shape[d] as f64;
                    if size >= (1u64 << 40) as f64 {
                        return Err(Error::shape(OP, format!("scale {} makes an absurd size", scales[i])));
                    }
                    out[d] = size as usize;
                }
            }
            (None, None) => return Err(Error::shape(OP, "neither scales nor sizes is given")),
        }
        check_output(OP, &out)?;
        let roi_of = |d: usize| -> (f64, f64) {
            match &roi {
                Some(roi) if roi.len() == 2 * n => {
                    let i = axes.iter().position(|&a| a == d).unwrap_or(0);
                    (roi[i], roi[n + i])
                }
                Some(roi) if roi.len() == 2 * r => (roi[d], roi[r + d]),
                _ => (0.0, 1.0),
            }
        };
        if self.coordinates == Coordinates::TfCropAndResize
            && roi.as_ref().is_none_or(|v| v.len() != 2 * n && v.len() != 2 * r)
        {
            return Err(Error::shape(OP, "tf_crop_and_resize needs a region of interest for every axis"));
        }
        let mut t = x.to_f32_tensor();
        for &d in &axes {
            let (lo, hi) = roi_of(d);
            if scale[d] == 1.0 && out[d] == in_shape[d] && (lo, hi) == (0.0, 1.0) {
                continue;
            }
            t = self.along(&t, d, scale[d], out[d], (lo, hi));
        }
        Ok(if is_float(x.elem()) { x.like(t) } else { x.like(t.map(f32::round_ties_even)) })
    }

    /// Resamples `t` along axis `d` to `out` positions.
    fn along(&self, t: &Tensor, d: usize, scale: f64, out: usize, roi: (f64, f64)) -> Tensor {
        let shape = t.shape();
        let (n_in, inner) = (shape[d], shape[d + 1..].iter().product::<usize>());
        let outer: usize = shape[..d].iter().product();
        if n_in == 0 {
            // nothing to interpolate from: an empty result (out positions of nothing)
            let mut new_shape = shape.to_vec();
            new_shape[d] = out;
            let len = new_shape.iter().product();
            return Tensor::from_parts(new_shape, vec![self.extrapolation as f32; len]);
        }
        let taps: Vec<(Vec<usize>, Vec<f32>)> = (0..out).map(|j| self.taps(j, n_in, scale, out, roi)).collect();
        let mut new_shape = shape.to_vec();
        new_shape[d] = out;
        let mut y = vec![0.0f32; outer * out * inner];
        let x = t.data();
        if !y.is_empty() && n_in > 0 {
            y.par_chunks_mut(out * inner).enumerate().for_each(|(o, block)| {
                let src = &x[o * n_in * inner..][..n_in * inner];
                for (row, (idx, coeffs)) in block.chunks_mut(inner).zip(&taps) {
                    if idx.is_empty() {
                        row.fill(self.extrapolation as f32);
                        continue;
                    }
                    row.fill(0.0);
                    for (&i, &c) in idx.iter().zip(coeffs) {
                        row.iter_mut().zip(&src[i * inner..][..inner]).for_each(|(y, &v)| *y += c * v);
                    }
                }
            });
        }
        Tensor::from_parts(new_shape, y)
    }

    /// The input positions and weights that output position `j` takes (none: the
    /// extrapolation value).
    fn taps(&self, j: usize, n_in: usize, scale: f64, out: usize, roi: (f64, f64)) -> (Vec<usize>, Vec<f32>) {
        let (y, inw) = (j as f64, n_in as f64);
        let out_f = scale * inw;
        // (the reference divides by the unrounded output size, scale x input)
        let x = match self.coordinates {
            Coordinates::AlignCorners if out_f == 1.0 => 0.0,
            Coordinates::AlignCorners => y * (inw - 1.0) / (out_f - 1.0),
            Coordinates::Asymmetric => y / scale,
            Coordinates::TfCropAndResize => {
                let x = if out_f == 1.0 {
                    (roi.1 - roi.0) * (inw - 1.0) / 2.0
                } else {
                    y * (roi.1 - roi.0) * (inw - 1.0) / (out_f - 1.0)
                } + roi.0 * (inw - 1.0);
                if x < 0.0 || x > inw - 1.0 {
                    return (Vec::new(), Vec::new());
                }
                x
            }
            Coordinates::PytorchHalfPixel if out_f == 1.0 => -0.5,
            Coordinates::PytorchHalfPixel | Coordinates::HalfPixel => (y + 0.5) / scale - 0.5,
            Coordinates::HalfPixelSymmetric => {
                let adjustment = out as f64 / out_f;
                inw / 2.0 * (1.0 - adjustment) + (y + 0.5) / scale - 0.5
            }
        };
        let clamp = |i: i64| i.clamp(0, n_in as i64 - 1) as usize;
        if self.nearest == Nearest::Legacy && self.mode == Mode::Nearest {
            let i = if scale < 1.0 { x.ceil() } else { x.floor() };
            return (vec![clamp(i as i64)], vec![1.0]);
        }
        let ratio = if x == x.floor() { 1.0 } else { x - x.floor() };
        let mut coeffs: Vec<f64> = match self.mode {
            Mode::Nearest => {
                let up = match self.nearest {
                    _ if ratio == 1.0 => true,
                    Nearest::RoundPreferFloor => ratio > 0.5,
                    Nearest::RoundPreferCeil => ratio >= 0.5,
                    Nearest::Floor => false,
                    Nearest::Ceil | Nearest::Legacy => true,
                };
                if up {
                    vec![0.0, 1.0]
                } else {
                    vec![1.0, 0.0]
                }
            }
            Mode::Linear if self.antialias => {
                let s = scale.min(1.0);
                let start = (-1.0 / s).floor() as i64 + 1;
                let c: Vec<f64> =
                    (start..2 - start).map(|i| (1.0 - ((i as f64 - ratio) * s).abs()).clamp(0.0, 1.0)).collect();
                let sum: f64 = c.iter().sum();
                c.into_iter().map(|v| v / sum).collect()
            }
            Mode::Linear => vec![1.0 - ratio, ratio],
            Mode::Cubic if self.antialias => {
                let (s, a) = (scale.min(1.0), self.cubic_a);
                let f = |x: f64| {
                    let x = x.abs();
                    if x <= 1.0 {
                        (a + 2.0) * x * x * x - (a + 3.0) * x * x + 1.0
                    } else if x < 2.0 {
                        a * x * x * x - 5.0 * a * x * x + 8.0 * a * x - 4.0 * a
                    } else {
                        0.0
                    }
                };
                let start = (-2.0 / s).floor() as i64 + 1;
                let c: Vec<f64> = (start..2 - start).map(|i| f(s * (i as f64 - ratio))).collect();
                let sum: f64 = c.iter().sum();
                c.into_iter().map(|v| v / sum).collect()
            }
            Mode::Cubic => {
                let (a, r) = (self.cubic_a, ratio);
                let far = |t: f64| ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a;
                let near = |t: f64| ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
                vec![far(r + 1.0), near(r), near(1.0 - r), far(2.0 - r)]
            }
        };
        // the taps' window, as the reference picks the n positions nearest x
        let n = coeffs.len() as i64;
        let pad = (n + 1) / 2;
        let xp = x + pad as f64;
        let p = xp.floor() as i64;
        let frac = xp - p as f64;
        let offset = if n % 2 == 0 {
            if frac == 0.0 {
                -(n / 2)
            } else {
                -(n / 2) + 1
            }
        } else if frac <= 0.5 {
            -((n - 1) / 2)
        } else {
            -((n - 1) / 2) + 1
        };
        let start = p + offset - pad;
        let positions: Vec<i64> = (start..start + n).collect();
        if self.exclude_outside {
            for (c, &i) in coeffs.iter_mut().zip(&positions) {
                if i < 0 || i >= n_in as i64 {
                    *c = 0.0;
                }
            }
            let sum: f64 = coeffs.iter().sum();
            if sum != 0.0 {
                coeffs.iter_mut().for_each(|c| *c /= sum);
            }
        }
        if self.mode == Mode::Nearest {
            let pick = if coeffs[0] != 0.0 { positions[0] } else { positions[1] };
            return (vec![clamp(pick)], vec![1.0]);
        }
        (positions.into_iter().map(clamp).collect(), coeffs.into_iter().map(|c| c as f32).collect())
    }
}
