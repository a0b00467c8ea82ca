//! Convolution as im2col + GEMM, for 1-, 2- and 3-D alike: every convolution is treated
//! as 3-D (a 2-D one has depth 1, a 1-D one depth and height 1).
//!
//! Per sample and group, with `cols` the `[C/g·k, out_spatial]` patch matrix:
//! - forward:        Y = W · cols (+ bias)
//! - weight grad:    dW += dY · colsᵀ
//! - input grad:     dX = col2im(Wᵀ · dY)
//!
//! A pointwise convolution (1x1, stride 1, no padding) uses the input itself as `cols`.
//! Work is spread over samples; with fewer samples than threads the GEMMs are threaded.

use super::gemm::{matmul, MatRef};
use super::num_threads;
use rayon::prelude::*;
use std::cell::RefCell;

/// Sizes of one convolution, spatial dimensions as (depth, height, width).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub groups: usize,
    pub input: [usize; 3],
    pub kernel: [usize; 3],
    pub stride: [usize; 3],
    pub dilation: [usize; 3],
    /// padding before each spatial dimension (the padding after only affects `output`)
    pub pad: [usize; 3],
    pub output: [usize; 3],
}

impl ConvGeometry {
    pub fn in_spatial(&self) -> usize {
        self.input.iter().product()
    }
    pub fn out_spatial(&self) -> usize {
        self.output.iter().product()
    }
    fn kernel_spatial(&self) -> usize {
        self.kernel.iter().product()
    }
    fn cin_group(&self) -> usize {
        self.c_in / self.groups
    }
    fn cout_group(&self) -> usize {
        self.c_out / self.groups
    }
    /// Rows of the patch matrix: input channels of a group times kernel positions.
    fn col_rows(&self) -> usize {
        self.cin_group() * self.kernel_spatial()
    }
    pub fn weight_len(&self) -> usize {
        self.c_out * self.col_rows()
    }
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1, 1] && self.stride == [1, 1, 1] && self.pad == [0, 0, 0] && self.output == self.input
    }
    /// Multiply-adds of the forward pass.
    pub fn macs(&self) -> usize {
        self.batch * self.c_out * self.out_spatial() * self.col_rows()
    }
}

thread_local! {
    /// Per-thread patch-matrix buffer, reused across calls: no allocation and no zeroing
    /// (im2col writes every value, and GEMMs overwrite their output).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a scratch buffer of `len` values. Falls back to a fresh buffer if this
/// thread's is in use (rayon may run a nested task while a threaded GEMM waits).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut vec![0.0f32; len]),
    })
}

/// Range of output positions `o` whose input index `o*stride + off` lies in `0..len`.
fn valid_range(len: usize, out: usize, stride: usize, off: isize) -> (usize, usize) {
    let lo = if off >= 0 { 0 } else { ((-off) as usize).div_ceil(stride) };
    let hi = if len as isize - off <= 0 { 0 } else { (len as isize - off - 1) as usize / stride + 1 };
    let hi = hi.min(out);
    (lo.min(hi), hi)
}

/// Copies a short row (im2col rows are often under 32 values) in fixed blocks of 8, which
/// compile to vector moves; a plain `copy_from_slice` becomes a `memmove` call per row.
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (a, b) in (&mut d).zip(&mut s) {
        let b: &[f32; 8] = b.try_into().expect("chunk of 8");
        a.copy_from_slice(b);
    }
    for (a, &b) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *a = b;
    }
}

/// Fills `cols` (`col_rows x out_spatial`) with the patches of one group of one sample.
pub fn im2col(g: &ConvGeometry, x: &[f32], cols: &mut [f32]) {
    let [id, ih, iw] = g.input;
    let [kd, kh, kw] = g.kernel;
    let [od, oh, ow] = g.output;
    let [sd, sh, sw] = g.stride;
    let [dd, dh, dw] = g.dilation;
    let [pd, ph, pw] = g.pad;
    let plane = id * ih * iw;
    let mut rows = cols.chunks_exact_mut(ow);
    for xc in x.chunks_exact(plane).take(g.cin_group()) {
        for kz in 0..kd {
            for ky in 0..kh {
                for kx in 0..kw {
                    let offx = (kx * dw) as isize - pw as isize;
                    let (lo, hi) = valid_range(iw, ow, sw, offx);
                    for oz in 0..od {
                        let iz = (oz * sd + kz * dd) as isize - pd as isize;
                        for oy in 0..oh {
                            let iy = (oy * sh + ky * dh) as isize - ph as isize;
                            let out = rows.next().expect("cols holds col_rows x out_spatial values");
                            if iz < 0 || iz >= id as isize || iy < 0 || iy >= ih as isize || lo == hi {
                                out.fill(0.0);
                                continue;
                            }
                            let src = &xc[(iz as usize * ih + iy as usize) * iw..][..iw];
                            // the fills are usually empty: skip the call
                            if lo > 0 {
                                out[..lo].fill(0.0);
                            }
                            if hi < ow {
                                out[hi..].fill(0.0);
                            }
                            let start = (lo as isize * sw as isize + offx) as usize;
                            if sw == 1 {
                                copy_short(&mut out[lo..hi], &src[start..start + hi - lo]);
                            } else {
                                for (v, &s) in out[lo..hi].iter_mut().zip(src[start..].iter().step_by(sw)) {
                                    *v = s;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Adds the patches in `cols` back onto their input positions (the adjoint of im2col).
pub fn col2im(g: &ConvGeometry, cols: &[f32], dx: &mut [f32]) {
    let [id, ih, iw] = g.input;
    let [kd, kh, kw] = g.kernel;
    let [od, oh, ow] = g.output;
    let [sd, sh, sw] = g.stride;
    let [dd, dh, dw] = g.dilation;
    let [pd, ph, pw] = g.pad;
    let plane = id * ih * iw;
    let mut rows = cols.chunks_exact(ow);
    for xc in dx.chunks_exact_mut(plane).take(g.cin_group()) {
        for kz in 0..kd {
            for ky in 0..kh {
                for kx in 0..kw {
                    let offx = (kx * dw) as isize - pw as isize;
                    let (lo, hi) = valid_range(iw, ow, sw, offx);
                    for oz in 0..od {
                        let iz = (oz * sd + kz * dd) as isize - pd as isize;
                        for oy in 0..oh {
                            let iy = (oy * sh + ky * dh) as isize - ph as isize;
                            let s = rows.next().expect("cols holds col_rows x out_spatial values");
                            if iz < 0 || iz >= id as isize || iy < 0 || iy >= ih as isize || lo == hi {
                                continue;
                            }
                            let dst = &mut xc[(iz as usize * ih + iy as usize) * iw..][..iw];
                            let start = (lo as isize * sw as isize + offx) as usize;
                            if sw == 1 {
                                for (d, &v) in dst[start..start + hi - lo].iter_mut().zip(&s[lo..hi]) {
                                    *d += v;
                                }
                            } else {
                                for (d, &v) in dst[start..].iter_mut().step_by(sw).zip(&s[lo..hi]) {
                                    *d += v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `y = conv(x, w) + bias`, all NC(D)(H)W / O(C/g)(kD)(kH)(kW), contiguous.
pub fn conv_forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let (isp, osp, rows) = (g.in_spatial(), g.out_spatial(), g.col_rows());
    let (cig, cog) = (g.cin_group(), g.cout_group());
    let threaded_gemm = g.batch < num_threads();
    let cols_len = if g.is_pointwise() { 0 } else { rows * osp };
    y.par_chunks_mut(g.c_out * osp).zip(x.par_chunks(g.c_in * isp)).for_each(|(yn, xn)| {
        with_scratch(cols_len, |cols| {
            for grp in 0..g.groups {
                let xg = &xn[grp * cig * isp..(grp + 1) * cig * isp];
                let patches: &[f32] = if g.is_pointwise() {
                    xg
                } else {
                    im2col(g, xg, cols);
                    cols
                };
                let wg = &w[grp * cog * rows..(grp + 1) * cog * rows];
                let yg = &mut yn[grp * cog * osp..(grp + 1) * cog * osp];
                matmul(MatRef::new(wg, cog, rows), MatRef::new(patches, rows, osp), yg, false, threaded_gemm);
            }
            if let Some(b) = bias {
                for (o, plane) in yn.chunks_mut(osp).enumerate() {
                    plane.iter_mut().for_each(|v| *v += b[o]);
                }
            }
        })
    });
}

/// `dx = dL/dx` given `dy = dL/dy`; `dx` must be zero on entry.
pub fn conv_backward_input(g: &ConvGeometry, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (isp, osp, rows) = (g.in_spatial(), g.out_spatial(), g.col_rows());
    let (cig, cog) = (g.cin_group(), g.cout_group());
    let threaded_gemm = g.batch < num_threads();
    let cols_len = if g.is_pointwise() { 0 } else { rows * osp };
    dx.par_chunks_mut(g.c_in * isp).zip(dy.par_chunks(g.c_out * osp)).for_each(|(dxn, dyn_)| {
        with_scratch(cols_len, |cols| {
            for grp in 0..g.groups {
                let wg = MatRef::new(&w[grp * cog * rows..(grp + 1) * cog * rows], cog, rows);
                let dyg = MatRef::new(&dyn_[grp * cog * osp..(grp + 1) * cog * osp], cog, osp);
                let dxg = &mut dxn[grp * cig * isp..(grp + 1) * cig * isp];
                if g.is_pointwise() {
                    matmul(wg.t(), dyg, dxg, false, threaded_gemm);
                } else {
                    matmul(wg.t(), dyg, cols, false, threaded_gemm);
                    col2im(g, cols, dxg);
                }
            }
        })
    });
}

/// `dw = dL/dw` given `dy` (overwrites `dw`). The batch is split into a fixed number of
/// chunks whose partial sums are added in order, so the result depends only on the
/// thread count, never on timing.
pub fn conv_backward_weight(g: &ConvGeometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let (isp, osp, rows) = (g.in_spatial(), g.out_spatial(), g.col_rows());
    let (cig, cog) = (g.cin_group(), g.cout_group());
    let chunks = g.batch.min(num_threads()).max(1);
    let per_chunk = g.batch.div_ceil(chunks);
    let threaded_gemm = chunks < num_threads();
    let cols_len = if g.is_pointwise() { 0 } else { rows * osp };
    let partials: Vec<Vec<f32>> = (0..chunks)
        .into_par_iter()
        .map(|chunk| {
            let mut acc = vec![0.0f32; g.weight_len()];
            with_scratch(cols_len, |cols| {
                for n in chunk * per_chunk..((chunk + 1) * per_chunk).min(g.batch) {
                    let xn = &x[n * g.c_in * isp..(n + 1) * g.c_in * isp];
                    let dyn_ = &dy[n * g.c_out * osp..(n + 1) * g.c_out * osp];
                    for grp in 0..g.groups {
                        let xg = &xn[grp * cig * isp..(grp + 1) * cig * isp];
                        let patches: &[f32] = if g.is_pointwise() {
                            xg
                        } else {
                            im2col(g, xg, cols);
                            cols
                        };
                        let dyg = MatRef::new(&dyn_[grp * cog * osp..(grp + 1) * cog * osp], cog, osp);
                        let dwg = &mut acc[grp * cog * rows..(grp + 1) * cog * rows];
                        matmul(dyg, MatRef::new(patches, rows, osp).t(), dwg, true, threaded_gemm);
                    }
                }
            });
            acc
        })
        .collect();
    dw.fill(0.0);
    for p in &partials {
        dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
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
