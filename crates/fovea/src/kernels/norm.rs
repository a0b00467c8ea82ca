//! The per-channel loops of batch normalisation over `[N, C, S]` (S: the spatial size),
//! on all threads. Sums take each (sample, channel) block in f32 lanes, blocks in f64.
//! Elementwise passes run whole (sample, channel) planes per task, at least 8192 values,
//! so that a single sample still uses every thread.

use super::{lane_sum, par_filled};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Mean and biased variance of each channel.
pub(crate) fn channel_stats(x: &[f32], (n, c, s): (usize, usize, usize)) -> (Vec<f32>, Vec<f32>) {
    let m = (n * s) as f64;
    (0..c)
        .into_par_iter()
        .map(|ci| {
            let blocks = || (0..n).map(|ni| &x[(ni * c + ci) * s..][..s]);
            let mu = blocks().map(|b| lane_sum(s, |i| b[i]) as f64).sum::<f64>() / m;
            let muf = mu as f32;
            let sq = blocks().map(|b| lane_sum(s, |i| (b[i] - muf) * (b[i] - muf)) as f64).sum::<f64>();
            (muf, (sq / m) as f32)
        })
        .unzip()
}

/// Per channel, the sum of the values, or with `mean` the sum of their squared deviations
/// from it (summed as [`channel_stats`] sums).
pub(crate) fn channel_sums(x: &[f32], (n, c, s): (usize, usize, usize), mean: Option<&[f32]>) -> Vec<f64> {
    (0..c)
        .into_par_iter()
        .map(|ci| {
            let blocks = (0..n).map(|ni| &x[(ni * c + ci) * s..][..s]);
            match mean {
                None => blocks.map(|b| lane_sum(s, |i| b[i]) as f64).sum(),
                Some(mean) => {
                    let mu = mean[ci];
                    blocks.map(|b| lane_sum(s, |i| (b[i] - mu) * (b[i] - mu)) as f64).sum()
                }
            }
        })
        .collect()
}

/// A new buffer of `len` values in planes of `s`, `f(p, out)` writing every value of
/// plane `p` (its channel is `p % C`).
fn by_plane(len: usize, s: usize, f: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    let s = s.max(1);
    let per_task = (8192 / s).max(1);
    par_filled(len, per_task * s, |task, planes| {
        for (j, plane) in planes.chunks_mut(s).enumerate() {
            f(task * per_task + j, plane);
        }
    })
}

/// `y = x·scale[c] + shift[c]`.
pub(crate) fn scale_shift(x: &[f32], (_, c, s): (usize, usize, usize), scale: &[f32], shift: &[f32]) -> Vec<f32> {
    by_plane(x.len(), s, |p, out| {
        let (a, b) = (scale[p % c], shift[p % c]);
        out.iter_mut().zip(&x[p * s..]).for_each(|(o, &v)| {
            o.write(v * a + b);
        });
    })
}

/// Per channel: `Σ g` and `Σ g·(x - mean)·inv_std`.
pub(crate) fn channel_grad_sums(
    g: &[f32],
    x: &[f32],
    (n, c, s): (usize, usize, usize),
    mean: &[f32],
    inv_std: &[f32],
) -> (Vec<f64>, Vec<f64>) {
    (0..c)
        .into_par_iter()
        .map(|ci| {
            let (mu, k) = (mean[ci], inv_std[ci]);
            let (mut sg, mut sgx) = (0.0f64, 0.0f64);
            for ni in 0..n {
                let (gb, xb) = (&g[(ni * c + ci) * s..][..s], &x[(ni * c + ci) * s..][..s]);
                sg += lane_sum(s, |i| gb[i]) as f64;
                sgx += lane_sum(s, |i| gb[i] * ((xb[i] - mu) * k)) as f64;
            }
            (sg, sgx)
        })
        .unzip()
}

/// One channel's terms of the input gradient: `dx = k·(g - mean_g - (x - mu)·inv_std·mean_gx)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InputGrad {
    pub mu: f32,
    pub inv_std: f32,
    pub k: f32,
    pub mean_g: f32,
    pub mean_gx: f32,
}

/// The input gradient from the upstream gradient `g` and the input `x`, one
/// [`InputGrad`] per channel.
pub(crate) fn input_grad(g: &[f32], x: &[f32], (_, _, s): (usize, usize, usize), channels: &[InputGrad]) -> Vec<f32> {
    by_plane(g.len(), s, |p, out| {
        let InputGrad { mu, inv_std, k, mean_g, mean_gx } = channels[p % channels.len()];
        for ((d, &gv), &xv) in out.iter_mut().zip(&g[p * s..]).zip(&x[p * s..]) {
            d.write(k * (gv - mean_g - (xv - mu) * inv_std * mean_gx));
        }
    })
}
