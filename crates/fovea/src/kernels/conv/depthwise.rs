//! Depthwise convolution (one input channel per group, `groups == c_in`), computed
//! directly as shift-and-add: for each kernel tap, an axpy over the valid part of each
//! output row. im2col + GEMM would run GEMMs with a single row here.

use super::geometry::{valid_range, ConvGeometry};
use rayon::prelude::*;

/// Calls `f(tap, oz, oy, iz, iy, a, b, start)` for every kernel tap and output row whose
/// input row exists: outputs `a..b` of the row read input `start + (ox - a)·stride_w`.
#[allow(clippy::type_complexity)]
fn for_each_tap_row(g: &ConvGeometry, mut f: impl FnMut(usize, usize, usize, usize, usize, usize, usize, usize)) {
    let [id, ih, iw] = g.input;
    let [kd, kh, kw] = g.kernel;
    let [od, oh, ow] = g.output;
    let [sd, sh, sw] = g.stride;
    let [dd, dh, dw] = g.dilation;
    let [pd, ph, pw] = g.pad;
    let mut tap = 0;
    for kz in 0..kd {
        for ky in 0..kh {
            for kx in 0..kw {
                let offx = (kx * dw) as isize - pw as isize;
                let (a, b) = valid_range(iw, ow, sw, offx);
                if a < b {
                    let start = (a as isize * sw as isize + offx) as usize;
                    for oz in 0..od {
                        let iz = (oz * sd + kz * dd) as isize - pd as isize;
                        if iz < 0 || iz >= id as isize {
                            continue;
                        }
                        for oy in 0..oh {
                            let iy = (oy * sh + ky * dh) as isize - ph as isize;
                            if iy >= 0 && iy < ih as isize {
                                f(tap, oz, oy, iz as usize, iy as usize, a, b, start);
                            }
                        }
                    }
                }
                tap += 1;
            }
        }
    }
}

/// Whether `g` is a depthwise convolution: one input channel per group (`groups == c_in > 1`).
pub fn is_depthwise(g: &ConvGeometry) -> bool {
    g.groups > 1 && g.groups == g.c_in
}

/// `y = conv(x, w) + bias` for a depthwise convolution, `c_out / c_in` filters per input
/// channel (overwrites `y`).
pub fn forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let (isp, osp, taps) = (g.in_spatial(), g.out_spatial(), g.kernel.iter().product::<usize>());
    let [_, ih, iw] = g.input;
    let [_, oh, ow] = g.output;
    let sw = g.stride[2];
    let mult = g.c_out / g.c_in;
    y.par_chunks_mut(osp).enumerate().for_each(|(plane, yp)| {
        let (n, o) = (plane / g.c_out, plane % g.c_out);
        let xp = &x[(n * g.c_in + o / mult) * isp..][..isp];
        let wo = &w[o * taps..(o + 1) * taps];
        yp.fill(bias.map_or(0.0, |b| b[o]));
        for_each_tap_row(g, |tap, oz, oy, iz, iy, a, b, start| {
            let wv = wo[tap];
            let src = &xp[(iz * ih + iy) * iw..][..iw];
            let dst = &mut yp[(oz * oh + oy) * ow..][a..b];
            if sw == 1 {
                for (d, &s) in dst.iter_mut().zip(&src[start..]) {
                    *d += wv * s;
                }
            } else {
                for (d, &s) in dst.iter_mut().zip(src[start..].iter().step_by(sw)) {
                    *d += wv * s;
                }
            }
        });
    });
}

/// `dx` given `dy` (overwrites `dx`).
pub fn backward_input(g: &ConvGeometry, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (isp, osp, taps) = (g.in_spatial(), g.out_spatial(), g.kernel.iter().product::<usize>());
    let [_, ih, iw] = g.input;
    let [_, oh, ow] = g.output;
    let sw = g.stride[2];
    let mult = g.c_out / g.c_in;
    dx.par_chunks_mut(isp).enumerate().for_each(|(plane, dxp)| {
        let (n, c) = (plane / g.c_in, plane % g.c_in);
        dxp.fill(0.0);
        for o in c * mult..(c + 1) * mult {
            let dyp = &dy[(n * g.c_out + o) * osp..][..osp];
            let wo = &w[o * taps..(o + 1) * taps];
            for_each_tap_row(g, |tap, oz, oy, iz, iy, a, b, start| {
                let wv = wo[tap];
                let src = &dyp[(oz * oh + oy) * ow..][a..b];
                let dst = &mut dxp[(iz * ih + iy) * iw..][..iw];
                if sw == 1 {
                    // A plain zip vectorizes; step_by(1) does not.
                    for (d, &s) in dst[start..].iter_mut().zip(src) {
                        *d += wv * s;
                    }
                } else {
                    for (d, &s) in dst[start..].iter_mut().step_by(sw).zip(src) {
                        *d += wv * s;
                    }
                }
            });
        }
    });
}

/// `dw` given `dy` (overwrites `dw`); each output channel sums over the batch in order.
pub fn backward_weight(g: &ConvGeometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let (isp, osp, taps) = (g.in_spatial(), g.out_spatial(), g.kernel.iter().product::<usize>());
    let [_, ih, iw] = g.input;
    let [_, oh, ow] = g.output;
    let sw = g.stride[2];
    let mult = g.c_out / g.c_in;
    dw.par_chunks_mut(taps).enumerate().for_each(|(o, dwo)| {
        let mut acc = vec![0.0f64; taps];
        for n in 0..g.batch {
            let xp = &x[(n * g.c_in + o / mult) * isp..][..isp];
            let dyp = &dy[(n * g.c_out + o) * osp..][..osp];
            for_each_tap_row(g, |tap, oz, oy, iz, iy, a, b, start| {
                let src = &xp[(iz * ih + iy) * iw..][..iw];
                let grad = &dyp[(oz * oh + oy) * ow..][a..b];
                let dot: f32 = grad.iter().zip(src[start..].iter().step_by(sw)).map(|(g, s)| g * s).sum();
                acc[tap] += dot as f64;
            });
        }
        for (d, a) in dwo.iter_mut().zip(acc) {
            *d = a as f32;
        }
    });
}
