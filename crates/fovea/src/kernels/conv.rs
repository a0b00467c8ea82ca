//! Convolution as im2col + GEMM, for 1-, 2- and 3-D alike: every convolution is treated
//! as 3-D (a 2-D one has depth 1, a 1-D one depth and height 1).
//!
//! Per sample and group, with `cols` the `[C/g·k, out_spatial]` patch matrix:
//! - forward:        Y = W · cols (+ bias)
//! - weight grad:    dW += dY · colsᵀ
//! - input grad:     dX = col2im(Wᵀ · dY)
//!
//! The patch matrix is built a tile of whole output rows at a time (about 512 KiB), so
//! that im2col writes and the GEMM reads stay in cache and buffers stay bounded however
//! large the image (a tile is never less than one output row). A pointwise convolution
//! (1x1, stride 1, no padding) uses the input itself. Work units are (sample, tile) pairs,
//! so a single image still keeps every thread busy. Depthwise convolutions
//! (`groups == c_in`) have their own kernel (`depthwise.rs`), and stride-1 one-group 1-D
//! and 2-D convolutions take the direct kernel (`direct.rs`) where the CPU and the sizes
//! suit it.

use super::gemm::{matmul, matmul_to, MatRef};
use super::num_threads;
use super::{depthwise, direct};
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
    /// Output positions per patch tile: whole output rows, about 128K patch values but at
    /// least 256 positions, so that the GEMMs stay wide enough to run at full speed. (One
    /// output row is the smallest tile.) With fewer samples than threads, each sample is
    /// cut into a multiple of the threads it has to keep busy, in equal tiles.
    fn tile(&self) -> usize {
        const TILE_VALUES: usize = 128 * 1024;
        let ow = self.output[2].max(1);
        let out_rows = (self.output[0] * self.output[1]).max(1);
        let budget = (TILE_VALUES / (self.col_rows() * ow).max(1)).max(256usize.div_ceil(ow)).clamp(1, out_rows);
        let per_sample = num_threads().div_ceil(self.batch.max(1));
        let tiles = out_rows.div_ceil(budget).div_ceil(per_sample) * per_sample;
        out_rows.div_ceil(tiles).max(1) * ow
    }
    /// (sample, first position, end position) of every work unit.
    fn units(&self) -> Vec<(usize, usize, usize)> {
        let (osp, tile) = (self.out_spatial(), self.tile());
        (0..self.batch).flat_map(|n| (0..osp).step_by(tile).map(move |p| (n, p, (p + tile).min(osp)))).collect()
    }
    pub(super) fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1, 1] && self.stride == [1, 1, 1] && self.pad == [0, 0, 0] && self.output == self.input
    }
    /// Multiply-adds of the forward pass.
    pub fn macs(&self) -> usize {
        self.batch * self.c_out * self.out_spatial() * self.col_rows()
    }
}

thread_local! {
    /// Per-thread patch buffer, reused across calls: no allocation and no zeroing
    /// (im2col writes every value, and GEMMs overwrite their output).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a scratch buffer of `len` values. Falls back to a fresh buffer if this
/// thread's is in use (rayon may run a nested task while a threaded GEMM waits).
pub(super) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
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

/// A raw pointer that work units share; each unit touches only its own positions.
#[derive(Clone, Copy)]
pub(super) struct SharedMut(pub(super) *mut f32);
// SAFETY: used only to write disjoint regions from different threads (see callers).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    // A method, so that closures capture the whole (Send) wrapper, not the raw field.
    pub(super) fn get(self) -> *mut f32 {
        self.0
    }
}

/// Range of output positions `o` whose input index `o*stride + off` lies in `0..len`.
pub(crate) fn valid_range(len: usize, out: usize, stride: usize, off: isize) -> (usize, usize) {
    let lo = if off >= 0 { 0 } else { ((-off) as usize).div_ceil(stride) };
    let hi = if len as isize - off <= 0 { 0 } else { (len as isize - off - 1) as usize / stride + 1 };
    let hi = hi.min(out);
    (lo.min(hi), hi)
}

/// Copies a short row (patch rows are often under 32 values) in fixed blocks of 8, which
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

/// Calls `f(kernel row, input plane, iz, iy, offx)` for each patch-matrix row and output
/// row segment, where (iz, iy) is the input row the segment reads (possibly outside).
fn for_each_patch_row(g: &ConvGeometry, mut f: impl FnMut(usize, usize, isize, isize, isize)) {
    let [kd, kh, kw] = g.kernel;
    let mut row = 0;
    for c in 0..g.cin_group() {
        for kz in 0..kd {
            for ky in 0..kh {
                for kx in 0..kw {
                    let dz = (kz * g.dilation[0]) as isize - g.pad[0] as isize;
                    let dy = (ky * g.dilation[1]) as isize - g.pad[1] as isize;
                    let dx = (kx * g.dilation[2]) as isize - g.pad[2] as isize;
                    f(row, c, dz, dy, dx);
                    row += 1;
                }
            }
        }
    }
}

/// Output rows `r0..r1` (r = oz·oh + oy) of one kernel tap with offsets (dz, dy), in
/// runs: `f(i0, i1, None)` for tile rows `i0..i1` (counted from `r0`) that read only
/// padding, `f(i0, i1, Some(first))` for rows that read input rows `first`, `first + sh`,
/// ... (row indices within the input plane).
fn row_runs(
    g: &ConvGeometry,
    (r0, r1): (usize, usize),
    (dz, dy): (isize, isize),
    mut f: impl FnMut(usize, usize, Option<usize>),
) {
    let [id, ih, _] = g.input;
    let [od, oh, _] = g.output;
    let (ylo, yhi) = valid_range(ih, oh, g.stride[1], dy);
    let (zlo, zhi) = valid_range(id, od, g.stride[0], dz);
    let mut r = r0;
    while r < r1 {
        let (oz, oy0) = (r / oh, r % oh);
        let oy1 = oh.min(oy0 + (r1 - r));
        let tile_row = |oy: usize| r - r0 + (oy - oy0);
        if oz < zlo || oz >= zhi {
            f(tile_row(oy0), tile_row(oy1), None);
        } else {
            let a = ylo.clamp(oy0, oy1);
            let b = yhi.clamp(a, oy1);
            if a > oy0 {
                f(tile_row(oy0), tile_row(a), None);
            }
            if b > a {
                let iz = ((oz * g.stride[0]) as isize + dz) as usize;
                let iy = ((a * g.stride[1]) as isize + dy) as usize;
                f(tile_row(a), tile_row(b), Some(iz * ih + iy));
            }
            if oy1 > b {
                f(tile_row(b), tile_row(oy1), None);
            }
        }
        r += oy1 - oy0;
    }
}

/// Fills `cols` (`col_rows x (p1 - p0)`) with the patches of output positions `p0..p1`
/// (whole output rows) of one group of one sample.
pub fn im2col(g: &ConvGeometry, x: &[f32], p0: usize, p1: usize, cols: &mut [f32]) {
    let [id, ih, iw] = g.input;
    let ow = g.output[2];
    let (sh, sw) = (g.stride[1], g.stride[2]);
    debug_assert!(p0.is_multiple_of(ow) && p1.is_multiple_of(ow), "tiles are whole output rows");
    let width = p1 - p0;
    for_each_patch_row(g, |row, c, dz, dy, offx| {
        let xc = &x[c * id * ih * iw..(c + 1) * id * ih * iw];
        let dst = &mut cols[row * width..(row + 1) * width];
        let (lo, hi) = valid_range(iw, ow, sw, offx);
        let start = (lo as isize * sw as isize + offx).max(0) as usize;
        row_runs(g, (p0 / ow, p1 / ow), (dz, dy), |i0, i1, first_row| {
            let Some(first_row) = first_row else {
                dst[i0 * ow..i1 * ow].fill(0.0);
                return;
            };
            {
                let mut src_at = first_row * iw + start;
                for out in dst[i0 * ow..i1 * ow].chunks_exact_mut(ow) {
                    if lo >= hi {
                        out.fill(0.0);
                        continue;
                    }
                    // the fills are usually empty: skip the call
                    if lo > 0 {
                        out[..lo].fill(0.0);
                    }
                    if hi < ow {
                        out[hi..].fill(0.0);
                    }
                    let out = &mut out[lo..hi];
                    if sw == 1 {
                        copy_short(out, &xc[src_at..src_at + out.len()]);
                    } else {
                        for (v, &s) in out.iter_mut().zip(xc[src_at..].iter().step_by(sw)) {
                            *v = s;
                        }
                    }
                    src_at += sh * iw;
                }
            }
        });
    });
}

/// Adds the patches in `cols` (positions `p0..p1`, whole output rows) back onto their
/// input positions: the adjoint of [`im2col`].
pub fn col2im(g: &ConvGeometry, cols: &[f32], p0: usize, p1: usize, dx: &mut [f32]) {
    let [id, ih, iw] = g.input;
    let ow = g.output[2];
    let (sh, sw) = (g.stride[1], g.stride[2]);
    debug_assert!(p0.is_multiple_of(ow) && p1.is_multiple_of(ow), "tiles are whole output rows");
    let width = p1 - p0;
    for_each_patch_row(g, |row, c, dz, dy, offx| {
        let xc = &mut dx[c * id * ih * iw..(c + 1) * id * ih * iw];
        let src = &cols[row * width..(row + 1) * width];
        let (lo, hi) = valid_range(iw, ow, sw, offx);
        if lo >= hi {
            return;
        }
        let start = (lo as isize * sw as isize + offx) as usize;
        row_runs(g, (p0 / ow, p1 / ow), (dz, dy), |i0, i1, first_row| {
            let Some(first_row) = first_row else { return };
            {
                let mut dst_at = first_row * iw + start;
                for s in src[i0 * ow..i1 * ow].chunks_exact(ow) {
                    let s = &s[lo..hi];
                    if sw == 1 {
                        for (d, &v) in xc[dst_at..dst_at + s.len()].iter_mut().zip(s) {
                            *d += v;
                        }
                    } else {
                        for (d, &v) in xc[dst_at..].iter_mut().step_by(sw).zip(s) {
                            *d += v;
                        }
                    }
                    dst_at += sh * iw;
                }
            }
        });
    });
}

/// Scratch values [`patches`] needs for a tile of `width` positions.
fn patches_len(g: &ConvGeometry, width: usize) -> usize {
    if g.is_pointwise() {
        0
    } else {
        g.col_rows() * width
    }
}

/// The patch matrix (`col_rows x (p1 - p0)`) of positions `p0..p1` of one group `xg`:
/// the input itself for a pointwise convolution, else built in `cols` by im2col.
fn patches<'a>(g: &ConvGeometry, xg: &'a [f32], (p0, p1): (usize, usize), cols: &'a mut [f32]) -> MatRef<'a> {
    if g.is_pointwise() {
        MatRef::with_stride(&xg[p0..], g.col_rows(), p1 - p0, g.in_spatial())
    } else {
        im2col(g, xg, p0, p1, cols);
        MatRef::new(cols, g.col_rows(), p1 - p0)
    }
}

/// `y = conv(x, w) + bias`, all NC(D)(H)W / O(C/g)(kD)(kH)(kW), contiguous.
pub fn conv_forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    assert_eq!(y.len(), g.batch * g.c_out * g.out_spatial(), "conv_forward output size");
    assert_eq!(x.len(), g.batch * g.c_in * g.in_spatial(), "conv_forward input size");
    assert_eq!(w.len(), g.weight_len(), "conv_forward weight size");
    assert!(bias.is_none_or(|b| b.len() == g.c_out), "conv_forward bias size");
    if depthwise::is_depthwise(g) {
        return depthwise::forward(g, x, w, bias, y);
    }
    if direct::applies(g) {
        return direct::forward(g, x, w, bias, y);
    }
    let (isp, osp, rows) = (g.in_spatial(), g.out_spatial(), g.col_rows());
    let (cig, cog) = (g.cin_group(), g.cout_group());
    let units = g.units();
    let threaded_gemm = units.len() < num_threads();
    let y_ptr = SharedMut(y.as_mut_ptr());
    units.par_iter().for_each(|&(n, p0, p1)| {
        let width = p1 - p0;
        with_scratch(patches_len(g, width), |cols| {
            for grp in 0..g.groups {
                let xg = &x[(n * g.c_in + grp * cig) * isp..][..cig * isp];
                let patches = patches(g, xg, (p0, p1), cols);
                let wg = MatRef::new(&w[grp * cog * rows..][..cog * rows], cog, rows);
                // SAFETY: this unit alone writes columns p0..p1 of these rows of y.
                unsafe {
                    let dst = y_ptr.get().add((n * g.c_out + grp * cog) * osp + p0);
                    matmul_to(wg, patches, dst, osp, false, threaded_gemm);
                    if let Some(b) = bias {
                        for o in 0..cog {
                            let row = std::slice::from_raw_parts_mut(dst.add(o * osp), width);
                            row.iter_mut().for_each(|v| *v += b[grp * cog + o]);
                        }
                    }
                }
            }
        })
    });
}

/// `dx = dL/dx` given `dy = dL/dy` (overwrites `dx`). Tiles of one sample overlap in
/// `dx`, so samples run in parallel and their tiles in turn.
pub fn conv_backward_input(g: &ConvGeometry, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    assert_eq!(dx.len(), g.batch * g.c_in * g.in_spatial(), "conv_backward_input dx size");
    assert_eq!(dy.len(), g.batch * g.c_out * g.out_spatial(), "conv_backward_input dy size");
    assert_eq!(w.len(), g.weight_len(), "conv_backward_input weight size");
    if depthwise::is_depthwise(g) {
        return depthwise::backward_input(g, w, dy, dx);
    }
    if let Some(t) = direct::input_grad_geometry(g) {
        return direct::backward_input(g, &t, w, dy, dx);
    }
    let (isp, osp, rows) = (g.in_spatial(), g.out_spatial(), g.col_rows());
    let (cig, cog, tile) = (g.cin_group(), g.cout_group(), g.tile());
    let threaded_gemm = g.batch < num_threads();
    dx.par_chunks_mut(g.c_in * isp).zip(dy.par_chunks(g.c_out * osp)).for_each(|(dxn, dyn_)| {
        for grp in 0..g.groups {
            let wg = MatRef::new(&w[grp * cog * rows..][..cog * rows], cog, rows);
            let dyg = &dyn_[grp * cog * osp..][..cog * osp];
            let dxg = &mut dxn[grp * cig * isp..][..cig * isp];
            if g.is_pointwise() {
                matmul(wg.t(), MatRef::new(dyg, cog, osp), dxg, false, threaded_gemm);
                continue;
            }
            dxg.fill(0.0);
            for p0 in (0..osp).step_by(tile) {
                let p1 = (p0 + tile).min(osp);
                with_scratch(rows * (p1 - p0), |cols| {
                    let dy_tile = MatRef::with_stride(&dyg[p0..], cog, p1 - p0, osp);
                    matmul(wg.t(), dy_tile, cols, false, threaded_gemm);
                    col2im(g, cols, p0, p1, dxg);
                });
            }
        }
    });
}

/// `dw = dL/dw` given `dy` (overwrites `dw`). The work units are split into a fixed
/// number of chunks whose partial sums are added in order, so the result depends only
/// on the thread count, never on timing.
pub fn conv_backward_weight(g: &ConvGeometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    assert_eq!(dw.len(), g.weight_len(), "conv_backward_weight dw size");
    assert_eq!(dy.len(), g.batch * g.c_out * g.out_spatial(), "conv_backward_weight dy size");
    assert_eq!(x.len(), g.batch * g.c_in * g.in_spatial(), "conv_backward_weight x size");
    if depthwise::is_depthwise(g) {
        return depthwise::backward_weight(g, x, dy, dw);
    }
    if direct::applies(g) {
        return direct::backward_weight(g, x, dy, dw);
    }
    let (isp, osp, rows) = (g.in_spatial(), g.out_spatial(), g.col_rows());
    let (cig, cog) = (g.cin_group(), g.cout_group());
    let units = g.units();
    let chunks = units.len().min(num_threads()).max(1);
    let per_chunk = units.len().div_ceil(chunks);
    let threaded_gemm = chunks < num_threads();
    let partials: Vec<Vec<f32>> = units
        .par_chunks(per_chunk.max(1))
        .map(|chunk| {
            let mut acc = vec![0.0f32; g.weight_len()];
            for &(n, p0, p1) in chunk {
                let width = p1 - p0;
                with_scratch(patches_len(g, width), |cols| {
                    for grp in 0..g.groups {
                        let xg = &x[(n * g.c_in + grp * cig) * isp..][..cig * isp];
                        let patches = patches(g, xg, (p0, p1), cols);
                        let dy_tile = MatRef::with_stride(&dy[(n * g.c_out + grp * cog) * osp + p0..], cog, width, osp);
                        let dwg = &mut acc[grp * cog * rows..][..cog * rows];
                        matmul(dy_tile, patches.t(), dwg, true, threaded_gemm);
                    }
                });
            }
            acc
        })
        .collect();
    dw.fill(0.0);
    for p in &partials {
        dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
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
            planes.map(|p| super::lane_sum(p.len(), |i| p[i]) as f64).sum::<f64>() as f32
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
