//! Convolution as im2col + GEMM, per sample and group, with `cols` the
//! `[C/g·k, out_spatial]` patch matrix:
//! - forward:        Y = W · cols (+ bias)
//! - weight grad:    dW += dY · colsᵀ
//! - input grad:     dX = col2im(Wᵀ · dY)
//!
//! The patch matrix is built a tile of whole output rows at a time (about 512 KiB), so
//! that im2col writes and the GEMM reads stay in cache and buffers stay bounded however
//! large the image (a tile is never less than one output row). A pointwise convolution
//! (1x1, stride 1, no padding) uses the input itself. Work units are (sample, tile) pairs,
//! so a single image still keeps every thread busy.

use super::geometry::{valid_range, with_scratch, ConvGeometry, SharedMut};
use crate::kernels::gemm::{matmul, matmul_to, MatRef};
use crate::kernels::{copy_short, num_threads};
use rayon::prelude::*;

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

/// `y = conv(x, w) + bias` by im2col + GEMM.
pub(super) fn forward(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    then: Option<super::Epilogue>,
) {
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
                    for o in 0..cog {
                        let row = std::slice::from_raw_parts_mut(dst.add(o * osp), width);
                        if let Some(b) = bias {
                            row.iter_mut().for_each(|v| *v += b[grp * cog + o]);
                        }
                        if let Some(f) = then {
                            f((n * g.c_out + grp * cog + o) * osp + p0, row);
                        }
                    }
                }
            }
        })
    });
}

/// `dx = dL/dx` by GEMM + col2im. Tiles of one sample overlap in `dx`, so samples run in
/// parallel and their tiles in turn.
pub(super) fn backward_input(g: &ConvGeometry, w: &[f32], dy: &[f32], dx: &mut [f32]) {
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

/// `dw = dL/dw` by im2col + GEMM. The work units are split into a fixed number of chunks
/// whose partial sums are added in order, so the result depends only on the thread
/// count, never on timing.
pub(super) fn backward_weight(g: &ConvGeometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
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
