//! The channel-blocked layout (NCHWc) that inference graphs keep activations in between
//! the operators that read it: `[N][C/b][H][W][b]`, the `b` channels of a block (one
//! vector register: 8 at AVX2, 16 at AVX-512) side by side. Past the last channel a
//! reorder writes zeros and an operator may write anything: no channel depends on them.
//! The direct convolution kernel then stores its register blocks where they belong and
//! reads a position's channels as neighbours, and pooling runs along whole vectors.
//! This file has the reorders to and from `[N][C][H][W]` and the blocked pooling; the
//! blocked convolution is [`super::conv::conv_forward_blocked`].

use super::pool::PoolGeometry;
use super::{isa, Isa};
use rayon::prelude::*;

/// Channels per block at the current level, `None` where no kernel takes the layout.
pub fn block() -> Option<usize> {
    match isa::current() {
        _ if !cfg!(target_arch = "x86_64") => None,
        Isa::Avx512 => Some(16),
        Isa::Avx2 => Some(8),
        _ => None,
    }
}

/// Values of `batch` samples of `channels` x `spatial` in blocks of `block`.
pub fn blocked_len(batch: usize, channels: usize, spatial: usize, block: usize) -> usize {
    batch * channels.div_ceil(block) * spatial * block
}

/// Positions per tile of a reorder: a tile's blocked values (16 KiB at most) stay in L1
/// cache while its channels are read or written one at a time. (Whole planes at a time
/// read each cache line once per channel, from L2 or beyond: 4.6 ms for 64 x 224 x 224.)
const REORDER_TILE: usize = 256;

/// `[N][C][spatial]` to `[N][C/block][spatial][block]`, zero past the last channel.
pub fn to_blocked(x: &[f32], batch: usize, channels: usize, spatial: usize, block: usize) -> Vec<f32> {
    assert_eq!(x.len(), batch * channels * spatial, "to_blocked input size");
    let blocks = channels.div_ceil(block);
    super::par_filled(blocked_len(batch, channels, spatial, block), (spatial * block).max(1), |i, out| {
        let (n, b) = (i / blocks, i % blocks);
        for (t, tile) in out.chunks_mut(REORDER_TILE * block).enumerate() {
            let p0 = t * REORDER_TILE;
            for (l, c) in (b * block..(b + 1) * block).enumerate() {
                let src = (c < channels).then(|| &x[(n * channels + c) * spatial + p0..]);
                for (p, v) in tile.iter_mut().skip(l).step_by(block).enumerate() {
                    v.write(src.map_or(0.0, |s| s[p]));
                }
            }
        }
    })
}

/// `[N][C/block][spatial][block]` back to `[N][C][spatial]`.
pub fn to_planar(x: &[f32], batch: usize, channels: usize, spatial: usize, block: usize) -> Vec<f32> {
    assert_eq!(x.len(), blocked_len(batch, channels, spatial, block), "to_planar input size");
    let mut y = Vec::with_capacity(batch * channels * spatial);
    // one task per sample and block, whose channels are neighbouring planes of the output
    let mut tasks = Vec::new();
    let mut rest = &mut y.spare_capacity_mut()[..batch * channels * spatial];
    for n in 0..batch {
        for b in 0..channels.div_ceil(block) {
            let planes = block.min(channels - b * block);
            let (out, tail) = std::mem::take(&mut rest).split_at_mut(planes * spatial);
            tasks.push((&x[((n * channels.div_ceil(block)) + b) * spatial * block..][..spatial * block], out));
            rest = tail;
        }
    }
    let level = isa::current();
    tasks.into_par_iter().for_each(|(src, out)| {
        // whole groups of 8 positions by 8 x 8 transposes where the level has them
        let done = match level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the level is at most the CPU's; see planes_of_block
            Isa::Avx2 | Isa::Avx512 if block == 8 || block == 16 => unsafe {
                planes_of_block(src, block, spatial, out)
            },
            _ => 0,
        };
        for (t, tile) in src[done * block..].chunks(REORDER_TILE * block).enumerate() {
            let p0 = done + t * REORDER_TILE;
            for (l, plane) in out.chunks_exact_mut(spatial.max(1)).enumerate() {
                for (v, &s) in plane[p0..].iter_mut().zip(tile.iter().skip(l).step_by(block)) {
                    v.write(s);
                }
            }
        }
    });
    // SAFETY: the tasks cover every channel plane of every sample, and wrote each value
    unsafe { y.set_len(batch * channels * spatial) };
    y
}

/// The first positions of a blocked plane `src` (`[spatial][block]`), a multiple of 8, as
/// the planes of `out` (`[channels][spatial]`, `channels <= block`); returns how many.
///
/// # Safety
/// The CPU must have AVX2; `block` must be 8 or 16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn planes_of_block(src: &[f32], block: usize, spatial: usize, out: &mut Out) -> usize {
    assert!(src.len() == spatial * block && out.len() <= block * spatial && (block == 8 || block == 16));
    let channels = out.len() / spatial.max(1);
    let dst = out.as_mut_ptr().cast::<f32>();
    let full = spatial / 8 * 8;
    for i0 in (0..full).step_by(8) {
        for l0 in (0..channels).step_by(8) {
            // SAFETY: rows i0..i0+8 of 8 lanes from l0 (l0 + 8 <= block) lie in src, and
            // the writes in planes l0.. of out, positions i0..i0+8
            unsafe {
                super::transpose_8x8(
                    &src[i0 * block + l0..],
                    block,
                    dst.add(l0 * spatial + i0),
                    spatial,
                    [(channels - l0).min(8), 8],
                )
            };
        }
    }
    full
}

/// What a pooling window computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pooling {
    /// the largest value, NaN if any is
    Max,
    /// the mean, over the window with its padding or without
    Mean {
        /// whether padding counts in the divisor
        count_include_pad: bool,
    },
}

/// 2-D pooling of blocked planes: `g.planes` is samples x blocks, `g.input` and
/// `g.output` are `[1, h, w]`; `x` and the result hold `block` values per position.
pub fn pool(g: &PoolGeometry, pooling: Pooling, block: usize, x: &[f32]) -> Vec<f32> {
    assert!(g.input[0] == 1 && g.output[0] == 1, "blocked pooling is 2-D");
    assert!(block == 8 || block == 16, "blocks of 8 or 16 channels");
    let (ip, op) = (g.input[1] * g.input[2] * block, g.output[1] * g.output[2] * block);
    assert_eq!(x.len(), g.planes * ip, "blocked pooling input size");
    let (rows, cols) = (g.windows(1), g.windows(2));
    let level = isa::current();
    super::par_filled(g.planes * op, op.max(1), |p, yp| {
        let xp = &x[p * ip..][..ip];
        match (level, block) {
            // SAFETY: the level is at most what the CPU has.
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, 16) => unsafe { pool_plane_avx512(g.input[2], &rows, &cols, pooling, xp, yp) },
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2 | Isa::Avx512, 8) => unsafe { pool_plane_avx2(g.input[2], &rows, &cols, pooling, xp, yp) },
            (_, 16) => pool_plane::<16>(g.input[2], &rows, &cols, pooling, xp, yp),
            _ => pool_plane::<8>(g.input[2], &rows, &cols, pooling, xp, yp),
        }
    })
}

type Windows = [(usize, usize, usize)];
type Out = [std::mem::MaybeUninit<f32>];

/// [`pool_plane`] with AVX-512 vectors of 16 channels, written out: the compiler did not
/// vectorise the generic loop's NaN-keeping select (GoogLeNet's 3x3 pools took 3-5 times
/// onnxruntime's). A window's largest value is its first of equal largest values (+0
/// before -0, as in PyTorch), or NaN where any of its values is: `max(v, acc)` returns
/// its second operand, `acc`, on ties and where `v` is NaN (then the NaN mask holds it).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pool_plane_avx512(iw: usize, rows: &Windows, cols: &Windows, pooling: Pooling, x: &[f32], y: &mut Out) {
    use std::arch::x86_64::*;
    assert!(y.len() >= rows.len() * cols.len() * 16, "pooled plane size");
    let mut out = y.as_mut_ptr().cast::<f32>();
    for &(y0, y1, ly) in rows {
        for &(x0, x1, lx) in cols {
            let window = |r: usize| &x[(r * iw + x0) * 16..(r * iw + x1) * 16];
            let acc = match pooling {
                Pooling::Max => {
                    let (mut acc, mut nan) = (_mm512_set1_ps(f32::NEG_INFINITY), 0u16);
                    for r in y0..y1 {
                        for v in window(r).chunks_exact(16) {
                            let v = _mm512_loadu_ps(v.as_ptr());
                            acc = _mm512_max_ps(v, acc);
                            nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
                        }
                    }
                    _mm512_mask_mov_ps(acc, nan, _mm512_set1_ps(f32::NAN))
                }
                Pooling::Mean { count_include_pad } => {
                    let mut acc = _mm512_setzero_ps();
                    for r in y0..y1 {
                        for v in window(r).chunks_exact(16) {
                            acc = _mm512_add_ps(acc, _mm512_loadu_ps(v.as_ptr()));
                        }
                    }
                    let n = if count_include_pad { ly * lx } else { (y1 - y0) * (x1 - x0) };
                    _mm512_div_ps(acc, _mm512_set1_ps(n.max(1) as f32))
                }
            };
            // SAFETY: one output of 16 values per window, counted above
            _mm512_storeu_ps(out, acc);
            out = out.add(16);
        }
    }
}

/// [`pool_plane_avx512`] with AVX vectors of 8 channels.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pool_plane_avx2(iw: usize, rows: &Windows, cols: &Windows, pooling: Pooling, x: &[f32], y: &mut Out) {
    use std::arch::x86_64::*;
    assert!(y.len() >= rows.len() * cols.len() * 8, "pooled plane size");
    let mut out = y.as_mut_ptr().cast::<f32>();
    for &(y0, y1, ly) in rows {
        for &(x0, x1, lx) in cols {
            let window = |r: usize| &x[(r * iw + x0) * 8..(r * iw + x1) * 8];
            let acc = match pooling {
                Pooling::Max => {
                    let (mut acc, mut nan) = (_mm256_set1_ps(f32::NEG_INFINITY), _mm256_setzero_ps());
                    for r in y0..y1 {
                        for v in window(r).chunks_exact(8) {
                            let v = _mm256_loadu_ps(v.as_ptr());
                            acc = _mm256_max_ps(v, acc);
                            nan = _mm256_or_ps(nan, _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
                        }
                    }
                    _mm256_blendv_ps(acc, _mm256_set1_ps(f32::NAN), nan)
                }
                Pooling::Mean { count_include_pad } => {
                    let mut acc = _mm256_setzero_ps();
                    for r in y0..y1 {
                        for v in window(r).chunks_exact(8) {
                            acc = _mm256_add_ps(acc, _mm256_loadu_ps(v.as_ptr()));
                        }
                    }
                    let n = if count_include_pad { ly * lx } else { (y1 - y0) * (x1 - x0) };
                    _mm256_div_ps(acc, _mm256_set1_ps(n.max(1) as f32))
                }
            };
            // SAFETY: one output of 8 values per window, counted above
            _mm256_storeu_ps(out, acc);
            out = out.add(8);
        }
    }
}

/// One plane: every output's window, `B` channels at a time, each output written once.
/// `rows` and `cols` are the windows of [`PoolGeometry::windows`].
#[inline(always)]
fn pool_plane<const B: usize>(iw: usize, rows: &Windows, cols: &Windows, pooling: Pooling, x: &[f32], y: &mut Out) {
    let mut out = y.chunks_exact_mut(B);
    for &(y0, y1, ly) in rows {
        for &(x0, x1, lx) in cols {
            let mut acc = [if pooling == Pooling::Max { f32::NEG_INFINITY } else { 0.0 }; B];
            for r in y0..y1 {
                for v in x[(r * iw + x0) * B..(r * iw + x1) * B].chunks_exact(B) {
                    for (a, &v) in acc.iter_mut().zip(v) {
                        *a = match pooling {
                            Pooling::Max if v > *a || v.is_nan() => v,
                            Pooling::Max => *a,
                            Pooling::Mean { .. } => *a + v,
                        };
                    }
                }
            }
            if let Pooling::Mean { count_include_pad } = pooling {
                let n = if count_include_pad { ly * lx } else { (y1 - y0) * (x1 - x0) };
                acc.iter_mut().for_each(|a| *a /= n.max(1) as f32);
            }
            let o = out.next().expect("an output per window");
            o.iter_mut().zip(acc).for_each(|(o, a)| {
                o.write(a);
            });
        }
    }
}

/// Global pooling of blocked samples to `[N][C]`: the mean, or the largest value (NaN if
/// any is), of each channel over its `spatial` positions.
pub fn global_pool(x: &[f32], batch: usize, channels: usize, spatial: usize, block: usize, max: bool) -> Vec<f32> {
    assert_eq!(x.len(), blocked_len(batch, channels, spatial, block), "global pooling input size");
    let blocks = channels.div_ceil(block);
    assert!(block <= 16, "blocks of at most 16 channels");
    let pooled: Vec<[f32; 16]> = (0..batch * blocks)
        .into_par_iter()
        .map(|i| {
            let plane = &x[i * spatial * block..][..spatial * block];
            let mut lanes = [if max { f32::NEG_INFINITY } else { 0.0 }; 16];
            if max {
                for v in plane.chunks_exact(block) {
                    lanes.iter_mut().zip(v).for_each(|(a, &v)| *a = if v > *a || v.is_nan() { v } else { *a });
                }
                return lanes;
            }
            // runs of 64 positions summed in f32, the runs in f64
            let mut sums = [0.0f64; 16];
            for run in plane.chunks(64 * block) {
                let mut part = [0.0f32; 16];
                for v in run.chunks_exact(block) {
                    part.iter_mut().zip(v).for_each(|(a, &v)| *a += v);
                }
                sums.iter_mut().zip(&part).for_each(|(s, &p)| *s += p as f64);
            }
            lanes.iter_mut().zip(&sums).for_each(|(l, &s)| *l = (s / spatial as f64) as f32);
            lanes
        })
        .collect();
    let mut y = Vec::with_capacity(batch * channels);
    for n in 0..batch {
        for c in 0..channels {
            y.push(pooled[n * blocks + c / block][c % block]);
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::pool::{avg_pool_forward, max_pool_forward};
    use crate::kernels::{for_each_level, TEST_THREADS};

    #[test]
    fn reorders_are_inverse_and_pad_with_zeros() {
        // planes shorter than the 8 x 8 transposes, with a tail after them, and of several tiles
        for_each_level(&TEST_THREADS, |_, _| {
            for spatial in [7, 21, 600] {
                let (batch, channels) = (2, 19);
                let x: Vec<f32> = (0..batch * channels * spatial).map(|i| i as f32).collect();
                for block in [8, 16] {
                    let b = to_blocked(&x, batch, channels, spatial, block);
                    assert_eq!(b.len(), blocked_len(batch, channels, spatial, block));
                    // channel 9 of sample 1, position 4
                    let at = ((channels.div_ceil(block) + 9 / block) * spatial + 4) * block + 9 % block;
                    assert_eq!(b[at], x[(channels + 9) * spatial + 4]);
                    let padding =
                        b.chunks(spatial * block).skip(channels.div_ceil(block) - 1).step_by(channels.div_ceil(block));
                    for plane in padding {
                        assert!(plane.chunks(block).all(|p| p[channels % block..].iter().all(|&v| v == 0.0)));
                    }
                    assert_eq!(to_planar(&b, batch, channels, spatial, block), x);
                }
            }
        });
    }

    /// Blocked pooling equals the engine's plain pooling (tested against PyTorch) on random
    /// 2-D windows with padding and `ceil_mode`'s short last windows: max pooling exactly
    /// (ties, infinities and NaNs included), the mean within the rounding of two sums of
    /// the window in different orders. Both block sizes at every level: a block that is
    /// not the level's takes the portable loop.
    #[test]
    fn blocked_pooling_equals_plain_pooling() {
        for_each_level(&TEST_THREADS, |_, _| {
            let mut rng = crate::Rng::new(21);
            let choices = [0.0, -0.0, 1.0, -2.0, 3.5, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
            for case in 0..60 {
                let (h, w) = (1 + rng.below(9), 1 + rng.below(12));
                let (kh, kw) = (1 + rng.below(h.min(4)), 1 + rng.below(w.min(4)));
                let (sh, sw) = (1 + rng.below(3), 1 + rng.below(3));
                let (ph, pw) = (rng.below(kh / 2 + 1), rng.below(kw / 2 + 1));
                let out = |n: usize, k: usize, s: usize, p: usize| {
                    let o = (n + 2 * p - k).div_ceil(s) + 1;
                    if (o - 1) * s >= n + p {
                        o - 1
                    } else {
                        o
                    }
                };
                let (oh, ow) = (out(h, kh, sh, ph), out(w, kw, sw, pw));
                let (batch, channels) = (2, 1 + rng.below(20));
                let plain = PoolGeometry {
                    planes: batch * channels,
                    input: [1, h, w],
                    kernel: [1, kh, kw],
                    stride: [1, sh, sw],
                    pad: [0, ph, pw],
                    output: [1, oh, ow],
                };
                let max_input = case % 2 == 0;
                let x: Vec<f32> = (0..batch * channels * h * w)
                    .map(|_| if max_input { choices[rng.below(choices.len())] } else { rng.normal() })
                    .collect();
                for block in [8, 16] {
                    let g = PoolGeometry { planes: batch * channels.div_ceil(block), ..plain.clone() };
                    let xb = to_blocked(&x, batch, channels, h * w, block);
                    let mut want = vec![0.0; batch * channels * oh * ow];
                    if max_input {
                        let yb = pool(&g, Pooling::Max, block, &xb);
                        let mut at = vec![0; want.len()];
                        max_pool_forward(&plain, &x, &mut want, &mut at);
                        let got = to_planar(&yb, batch, channels, oh * ow, block);
                        for (a, b) in got.iter().zip(&want) {
                            let same = a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
                            assert!(same, "case {case} {plain:?}: {got:?} vs {want:?}");
                        }
                        continue;
                    }
                    for count_include_pad in [false, true] {
                        let yb = pool(&g, Pooling::Mean { count_include_pad }, block, &xb);
                        avg_pool_forward(&plain, &x, &mut want, count_include_pad);
                        let abs: Vec<f32> = x.iter().map(|v| v.abs()).collect();
                        let mut scale = vec![0.0; want.len()];
                        avg_pool_forward(&plain, &abs, &mut scale, count_include_pad);
                        let got = to_planar(&yb, batch, channels, oh * ow, block);
                        for ((a, b), s) in got.iter().zip(&want).zip(&scale) {
                            let bound = (2 * kh * kw) as f32 * f32::EPSILON * s;
                            assert!((a - b).abs() <= bound, "case {case} {plain:?}: {got:?} vs {want:?}");
                        }
                    }
                }
            }
        });
    }

    #[test]
    fn global_pooling_of_blocks_is_the_mean_or_the_max_of_each_channel() {
        let mut rng = crate::Rng::new(22);
        let (batch, channels, spatial) = (2, 21, 300);
        let mut x: Vec<f32> = (0..batch * channels * spatial).map(|_| rng.normal()).collect();
        x[5 * spatial + 17] = f32::NAN;
        for block in [8, 16] {
            let xb = to_blocked(&x, batch, channels, spatial, block);
            let mean = global_pool(&xb, batch, channels, spatial, block, false);
            let max = global_pool(&xb, batch, channels, spatial, block, true);
            for (i, plane) in x.chunks(spatial).enumerate() {
                let exact = plane.iter().map(|&v| v as f64).sum::<f64>() / spatial as f64;
                let largest = plane.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m || v.is_nan() { v } else { m });
                if i == 5 {
                    assert!(mean[i].is_nan() && max[i].is_nan(), "NaN in channel 5");
                    continue;
                }
                // 64 f32 additions per run, then exact enough in f64
                let scale = plane.iter().map(|v| v.abs() as f64).sum::<f64>() / spatial as f64;
                assert!((mean[i] as f64 - exact).abs() <= 65.0 * f32::EPSILON as f64 * scale, "mean of {i}");
                assert_eq!(max[i], largest, "max of {i}");
            }
        }
    }
}
