//! Convolution kernels for 1-, 2- and 3-D alike: every convolution is treated as 3-D (a
//! 2-D one has depth 1, a 1-D one depth and height 1). This file picks the kernel:
//! depthwise convolutions (`groups == c_in`) take the shift-and-add kernel
//! ([`depthwise`]), stride-1 one-group 1-D and 2-D convolutions the direct kernel
//! ([`direct`]) where the CPU and the sizes suit it, and everything else im2col + GEMM
//! ([`im2col`]); inference graphs' convolutions in the channel-blocked layout take the
//! direct kernel ([`conv_forward_blocked`]), their 3x3 stride-1 layers Winograd's
//! F(2x2, 3x3) ([`winograd`]). [`conv_forward_naive`] is the slow, obviously-correct
//! reference they are all tested against.

pub mod depthwise;
pub mod direct;
mod geometry;
pub mod im2col;
pub mod winograd;

pub use direct::{forward_blocked as conv_forward_blocked, PackedWeights};
pub use geometry::ConvGeometry;
pub use winograd::WinogradWeights;

use rayon::prelude::*;

/// What a convolution does to its outputs once they are final, while they are still in
/// cache (a fused residual sum, an activation): `f(offset, values)` for runs of
/// consecutive outputs `y[offset..offset + values.len()]`, each output exactly once.
pub type Epilogue<'a> = &'a (dyn Fn(usize, &mut [f32]) + Sync);

/// `y = conv(x, w) + bias`, all NC(D)(H)W / O(C/g)(kD)(kH)(kW), contiguous.
pub fn conv_forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    conv_forward_then(g, x, w, None, bias, y, None)
}

/// [`conv_forward`] with the weights also `packed` beforehand for the direct kernel (used
/// where they fit), then `then` on every output.
pub fn conv_forward_then(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    packed: Option<&PackedWeights>,
    bias: Option<&[f32]>,
    y: &mut [f32],
    then: Option<Epilogue>,
) {
    assert_eq!(y.len(), g.batch * g.c_out * g.out_spatial(), "conv_forward output size");
    assert_eq!(x.len(), g.batch * g.c_in * g.in_spatial(), "conv_forward input size");
    assert_eq!(w.len(), g.weight_len(), "conv_forward weight size");
    assert!(bias.is_none_or(|b| b.len() == g.c_out), "conv_forward bias size");
    if depthwise::is_depthwise(g) {
        depthwise::forward(g, x, w, bias, y);
        if let Some(f) = then {
            const CHUNK: usize = 1 << 14;
            y.par_chunks_mut(CHUNK).enumerate().for_each(|(i, c)| f(i * CHUNK, c));
        }
        return;
    }
    let packed = packed.filter(|p| p.fit(g));
    if direct::applies(g) || packed.is_some() {
        direct::forward(g, x, w, packed, bias, y, then)
    } else {
        im2col::forward(g, x, w, bias, y, then)
    }
}

/// `dx = dL/dx` given `dy = dL/dy` (overwrites `dx`).
pub fn conv_backward_input(g: &ConvGeometry, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    assert_eq!(dx.len(), g.batch * g.c_in * g.in_spatial(), "conv_backward_input dx size");
    assert_eq!(dy.len(), g.batch * g.c_out * g.out_spatial(), "conv_backward_input dy size");
    assert_eq!(w.len(), g.weight_len(), "conv_backward_input weight size");
    if depthwise::is_depthwise(g) {
        depthwise::backward_input(g, w, dy, dx)
    } else if let Some(t) = direct::input_grad_geometry(g) {
        direct::backward_input(g, &t, w, dy, dx)
    } else {
        im2col::backward_input(g, w, dy, dx)
    }
}

/// `dw = dL/dw` given `dy` (overwrites `dw`); the result depends only on the thread count,
/// never on timing.
pub fn conv_backward_weight(g: &ConvGeometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    assert_eq!(dw.len(), g.weight_len(), "conv_backward_weight dw size");
    assert_eq!(dy.len(), g.batch * g.c_out * g.out_spatial(), "conv_backward_weight dy size");
    assert_eq!(x.len(), g.batch * g.c_in * g.in_spatial(), "conv_backward_weight x size");
    if depthwise::is_depthwise(g) {
        depthwise::backward_weight(g, x, dy, dw)
    } else if direct::applies(g) {
        direct::backward_weight(g, x, dy, dw)
    } else {
        im2col::backward_weight(g, x, dy, dw)
    }
}

/// `db = dL/db`: per output channel, the sum of `dy` over samples and positions (in f64
/// across planes). Channels run in parallel.
pub fn conv_backward_bias(g: &ConvGeometry, dy: &[f32]) -> Vec<f32> {
    let osp = g.out_spatial();
    (0..g.c_out)
        .into_par_iter()
        .map(|o| {
            let planes = (0..g.batch).map(|n| &dy[(n * g.c_out + o) * osp..][..osp]);
            planes.map(|p| crate::kernels::lane_sum(p.len(), |i| p[i]) as f64).sum::<f64>() as f32
        })
        .collect()
}

/// Direct (loop) convolution: the slow, obviously-correct reference the fast path is
/// tested against.
pub fn conv_forward_naive(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let [id, ih, iw] = g.input;
    let [kd, kh, kw] = g.kernel;
    let [od, oh, ow] = g.output;
    let (cig, cog) = (g.cin_group(), g.cout_group());
    let mut y = vec![0.0f32; g.batch * g.c_out * g.out_spatial()];
    let mut yi = 0;
    for n in 0..g.batch {
        for o in 0..g.c_out {
            let grp = o / cog;
            for oz in 0..od {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = bias.map_or(0.0, |b| b[o]);
                        for c in 0..cig {
                            let ci = grp * cig + c;
                            for kz in 0..kd {
                                for ky in 0..kh {
                                    for kx in 0..kw {
                                        let iz = (oz * g.stride[0] + kz * g.dilation[0]) as isize - g.pad[0] as isize;
                                        let iy = (oy * g.stride[1] + ky * g.dilation[1]) as isize - g.pad[1] as isize;
                                        let ix = (ox * g.stride[2] + kx * g.dilation[2]) as isize - g.pad[2] as isize;
                                        if iz < 0 || iy < 0 || ix < 0 {
                                            continue;
                                        }
                                        let (iz, iy, ix) = (iz as usize, iy as usize, ix as usize);
                                        if iz >= id || iy >= ih || ix >= iw {
                                            continue;
                                        }
                                        let xv = x[(((n * g.c_in + ci) * id + iz) * ih + iy) * iw + ix];
                                        let wv = w[(((o * cig + c) * kd + kz) * kh + ky) * kw + kx];
                                        acc += xv * wv;
                                    }
                                }
                            }
                        }
                        y[yi] = acc;
                        yi += 1;
                    }
                }
            }
        }
    }
    y
}
