//! The per-channel loops of batch normalisation over `[N, C, S]` (S: the spatial size),
//! on all threads. Sums take each (sample, channel) block in f32 lanes, blocks in f64.
//! Elementwise passes run one (sample, channel) plane per task, so that a single sample
//! still uses every thread.

use super::lane_sum;
use rayon::prelude::*;

/// Mean and biased variance of each channel.
pub fn channel_stats(x: &[f32], n: usize, c: usize, s: usize) -> (Vec<f32>, Vec<f32>) {
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

/// `y = x·scale[c] + shift[c]`.
pub fn scale_shift(x: &[f32], c: usize, s: usize, scale: &[f32], shift: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    let planes = y.par_chunks_mut(s.max(1)).zip(x.par_chunks(s.max(1))).enumerate();
    planes.with_min_len((8192 / s.max(1)).max(1)).for_each(|(p, (yo, xi))| {
        let (a, b) = (scale[p % c], shift[p % c]);
        yo.iter_mut().zip(xi).for_each(|(o, &v)| *o = v * a + b);
    });
    y
}

/// Per channel: `Σ g` and `Σ g·(x - mean)·inv_std`.
pub fn channel_grad_sums(
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
pub struct InputGrad {
    pub mu: f32,
    pub inv_std: f32,
    pub k: f32,
    pub mean_g: f32,
    pub mean_gx: f32,
}

/// The input gradient, from the upstream gradient `g` and the input `x`.
pub fn input_grad(g: &[f32], x: &[f32], s: usize, channels: &[InputGrad]) -> Vec<f32> {
    let c = channels.len();
    let mut dx = vec![0.0f32; g.len()];
    let planes = dx.par_chunks_mut(s.max(1)).zip(g.par_chunks(s.max(1))).zip(x.par_chunks(s.max(1)));
    planes.enumerate().with_min_len((8192 / s.max(1)).max(1)).for_each(|(p, ((dxp, gp), xp))| {
        let InputGrad { mu, inv_std, k, mean_g, mean_gx } = channels[p % c];
        for ((d, &gv), &xv) in dxp.iter_mut().zip(gp).zip(xp) {
            *d = k * (gv - mean_g - (xv - mu) * inv_std * mean_gx);
        }
    });
    dx
}
