//! Direct convolution for layers with few channels (LeNet-sized), on x86-64 CPUs with
//! AVX2 and FMA. There, im2col + GEMM spends more time building and reading the patch
//! matrix than multiplying: GEMMs with 6 or 16 rows leave most of the GEMM kernel idle.
//!
//! Here output channels run along the vector lanes (8 or 16 at a time) and a handful of
//! output positions share each weight load; every kernel tap is one broadcast input
//! value and one fused multiply-add per accumulator. Each sample's input is first copied
//! into a zero-padded buffer so that the inner loop has no bounds logic: a tap reads
//! `padded[base(position) + offset(tap)]`.
//!
//! The weight gradient puts output channels on the lanes too and sums over positions.
//! The input gradient stays with GEMM + col2im: as a direct correlation of the padded
//! `dy` it would multiply mostly zeros (measured slower). Only stride 1, one group and
//! 1-D/2-D convolutions take this path (`applies`); everything else uses im2col + GEMM.

use super::conv::{with_scratch, ConvGeometry};
use super::num_threads;
use rayon::prelude::*;

/// Largest `c_in · kh · kw` and `c_out` this path takes. LeNet's layers (25 and 150
/// taps, 6 and 16 channels) run faster here; the 3x3 layer with 64 channels (576 taps)
/// stays with im2col + GEMM (not measured on this path). The bounds in between are
/// not tuned yet.
const MAX_TAPS: usize = 400;
const MAX_COUT: usize = 32;

/// Whether the direct kernel handles `g` on this CPU.
pub fn applies(g: &ConvGeometry) -> bool {
    g.groups == 1
        && g.stride == [1, 1, 1]
        && g.input[0] == 1
        && g.kernel[0] == 1
        && g.c_in * g.kernel[1] * g.kernel[2] <= MAX_TAPS
        && g.c_out <= MAX_COUT
        && g.batch >= num_threads()
        && has_avx2_fma()
}

fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A stride-1 2-D correlation of one sample.
struct Plan {
    c_in: usize,
    c_out: usize,
    input: [usize; 2],
    output: [usize; 2],
    kernel: [usize; 2],
    dilation: [usize; 2],
    pad: [usize; 2],
}

impl Plan {
    fn new(g: &ConvGeometry) -> Plan {
        Plan {
            c_in: g.c_in,
            c_out: g.c_out,
            input: [g.input[1], g.input[2]],
            output: [g.output[1], g.output[2]],
            kernel: [g.kernel[1], g.kernel[2]],
            dilation: [g.dilation[1], g.dilation[2]],
            pad: [g.pad[1], g.pad[2]],
        }
    }

    fn taps(&self) -> usize {
        self.c_in * self.kernel[0] * self.kernel[1]
    }
    /// Height and width of the padded input: exactly what the output positions read.
    fn padded(&self) -> [usize; 2] {
        [0, 1].map(|i| self.output[i] + (self.kernel[i] - 1) * self.dilation[i])
    }
    fn padded_len(&self) -> usize {
        self.c_in * self.padded()[0] * self.padded()[1]
    }
    fn positions(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// Copies one sample (`c_in x h x w`) into `dst` with the plan's zero padding.
    fn pad_input(&self, x: &[f32], dst: &mut [f32]) {
        let [h, w] = self.input;
        let [hp, wp] = self.padded();
        for c in 0..self.c_in {
            for r in 0..hp {
                let row = &mut dst[(c * hp + r) * wp..][..wp];
                if r < self.pad[0] || r >= self.pad[0] + h {
                    row.fill(0.0);
                    continue;
                }
                let src = &x[(c * h + r - self.pad[0]) * w..][..w];
                // row[s] = src[s - pad] where that exists (the output may not reach the end)
                let lo = self.pad[1].min(wp);
                let hi = (self.pad[1] + w).min(wp);
                row[..lo].fill(0.0);
                row[lo..hi].copy_from_slice(&src[..hi - lo]);
                row[hi..].fill(0.0);
            }
        }
    }

    /// Offset of each output position's window in the padded input, then of each tap
    /// within the window.
    fn offsets(&self) -> (Vec<usize>, Vec<usize>) {
        let [hp, wp] = self.padded();
        let bases = (0..self.output[0]).flat_map(|oy| (0..self.output[1]).map(move |ox| oy * wp + ox)).collect();
        let mut taps = Vec::with_capacity(self.taps());
        for c in 0..self.c_in {
            for ky in 0..self.kernel[0] {
                for kx in 0..self.kernel[1] {
                    taps.push(c * hp * wp + ky * self.dilation[0] * wp + kx * self.dilation[1]);
                }
            }
        }
        (bases, taps)
    }
}

/// Output channels per block: 8 lanes (one AVX register) or 16 (two).
fn lanes_for(c_out: usize) -> usize {
    if c_out <= 8 {
        8
    } else {
        16
    }
}

/// Weights `w[o][c][ky][kx]` as blocks of `lanes` output channels: `[block][tap][lane]`,
/// zero beyond `c_out`.
fn pack_weights(p: &Plan, w: &[f32], lanes: usize) -> Vec<f32> {
    let taps = p.taps();
    let mut packed = vec![0.0f32; p.c_out.div_ceil(lanes) * taps * lanes];
    for o in 0..p.c_out {
        for tap in 0..taps {
            packed[((o / lanes) * taps + tap) * lanes + o % lanes] = w[o * taps + tap];
        }
    }
    packed
}

/// `y[n] = correlate(x[n], w) + bias` for every sample.
pub fn forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let p = Plan::new(g);
    let lanes = lanes_for(p.c_out);
    let packed = pack_weights(&p, w, lanes);
    let (in_len, out_len) = (p.c_in * p.input[0] * p.input[1], p.c_out * p.positions());
    let (bases, taps) = p.offsets();
    let positions = p.positions();
    let padded_len = p.padded_len();
    y.par_chunks_mut(out_len).zip(x.par_chunks(in_len)).for_each(|(yn, xn)| {
        // padded input, then one [position][lane] tile of outputs per channel block
        with_scratch(padded_len + positions.next_multiple_of(8) * lanes, |scratch| {
            let (xp, tile) = scratch.split_at_mut(padded_len);
            p.pad_input(xn, xp);
            for (b, wb) in packed.chunks_exact(taps.len() * lanes).enumerate() {
                let mut bias_lanes = [0.0f32; 16];
                for (l, v) in bias_lanes[..lanes].iter_mut().enumerate() {
                    *v = bias.and_then(|bs| bs.get(b * lanes + l)).copied().unwrap_or(0.0);
                }
                // SAFETY: applies() checked AVX2 and FMA; every base + tap offset lies in
                // xp by construction of the padded size, and the tile holds all positions
                // rounded up to the block size.
                unsafe {
                    if lanes == 8 {
                        avx::forward_tile::<1, 8>(xp, &bases, &taps, wb, &bias_lanes, tile);
                    } else {
                        avx::forward_tile::<2, 4>(xp, &bases, &taps, wb, &bias_lanes, tile);
                    }
                }
                // tile[position][lane] -> y[channel][position], 8 x 8 at a time
                let channels = lanes.min(p.c_out - b * lanes);
                for l0 in (0..channels).step_by(8) {
                    for i0 in (0..positions).step_by(8) {
                        let mut block = [[0.0f32; 8]; 8];
                        // SAFETY: AVX2 checked; the tile holds positions rounded up to 8.
                        unsafe { avx::transpose_8x8(&tile[i0 * lanes + l0..], lanes, &mut block) };
                        for (l, row) in block.iter().enumerate().take(channels - l0) {
                            let n = (positions - i0).min(8);
                            yn[(b * lanes + l0 + l) * positions + i0..][..n].copy_from_slice(&row[..n]);
                        }
                    }
                }
            }
        });
    });
}

/// `dw[o][tap] = Σ_n Σ_position dy[n][o][position] · padded_x[n][base(position) + tap]`.
/// Samples are split into one chunk per thread whose partial sums are added in order,
/// so the result depends on the thread count only, never on timing.
pub fn backward_weight(g: &ConvGeometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let p = Plan::new(g);
    let lanes = lanes_for(p.c_out);
    let blocks = p.c_out.div_ceil(lanes);
    let (bases, mut taps) = p.offsets();
    let n_taps = taps.len();
    // the kernel takes taps four or eight at a time; extra ones reread tap 0
    let tap_block = if lanes == 8 { 8 } else { 4 };
    taps.resize(n_taps.next_multiple_of(tap_block), 0);
    let (in_len, out_len, positions) = (p.c_in * p.input[0] * p.input[1], p.c_out * p.positions(), p.positions());
    let acc_len = blocks * taps.len() * lanes;
    let per_chunk = g.batch.div_ceil(num_threads().min(g.batch).max(1)).max(1);
    let partials: Vec<Vec<f32>> = x
        .par_chunks(in_len * per_chunk)
        .zip(dy.par_chunks(out_len * per_chunk))
        .map(|(xs, dys)| {
            let mut acc = vec![0.0f32; acc_len];
            with_scratch(p.padded_len() + positions * lanes, |scratch| {
                let (xp, dyt) = scratch.split_at_mut(p.padded_len());
                for (xn, dyn_) in xs.chunks_exact(in_len).zip(dys.chunks_exact(out_len)) {
                    p.pad_input(xn, xp);
                    for b in 0..blocks {
                        // dy of this channel block as [position][lane]
                        dyt.fill(0.0);
                        for l in 0..lanes.min(p.c_out - b * lanes) {
                            let src = &dyn_[(b * lanes + l) * positions..][..positions];
                            for (i, &v) in src.iter().enumerate() {
                                dyt[i * lanes + l] = v;
                            }
                        }
                        let accb = &mut acc[b * taps.len() * lanes..][..taps.len() * lanes];
                        // SAFETY: as in forward; accb holds every (padded) tap.
                        unsafe {
                            if lanes == 8 {
                                avx::weight_grad::<1, 8>(xp, &bases, &taps, dyt, accb);
                            } else {
                                avx::weight_grad::<2, 4>(xp, &bases, &taps, dyt, accb);
                            }
                        }
                    }
                }
            });
            acc
        })
        .collect();
    dw.fill(0.0);
    for acc in &partials {
        for o in 0..p.c_out {
            let (b, l) = (o / lanes, o % lanes);
            for t in 0..n_taps {
                dw[o * n_taps + t] += acc[(b * taps.len() + t) * lanes + l];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)] // register blocks read best as indexed loops
mod avx {
    use std::arch::x86_64::*;

    /// Outputs of every position for one block of `8·V` channels, `P` positions at a
    /// time: `tile[position][lane] = bias + Σ_tap xp[base + tap] · w[tap][lane]`.
    /// `tile` holds the positions rounded up to a multiple of `P`; the extra ones repeat
    /// position 0 and are ignored by the caller.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn forward_tile<const V: usize, const P: usize>(
        xp: &[f32],
        bases: &[usize],
        taps: &[usize],
        w: &[f32],
        bias: &[f32; 16],
        tile: &mut [f32],
    ) {
        let lanes = 8 * V;
        debug_assert!(w.len() == taps.len() * lanes && tile.len() >= bases.len().next_multiple_of(P) * lanes);
        let (xp, w) = (xp.as_ptr(), w.as_ptr());
        for p0 in (0..bases.len()).step_by(P) {
            let mut base = [0usize; P];
            for (j, b) in base.iter_mut().enumerate() {
                *b = bases.get(p0 + j).copied().unwrap_or(bases[0]);
            }
            let mut acc = [[_mm256_setzero_ps(); V]; P];
            for a in acc.iter_mut() {
                for (v, r) in a.iter_mut().enumerate() {
                    *r = _mm256_loadu_ps(bias.as_ptr().add(8 * v));
                }
            }
            for (t, &off) in taps.iter().enumerate() {
                let mut wv = [_mm256_setzero_ps(); V];
                for (v, r) in wv.iter_mut().enumerate() {
                    *r = _mm256_loadu_ps(w.add(t * lanes + 8 * v));
                }
                for j in 0..P {
                    let xv = _mm256_broadcast_ss(&*xp.add(base[j] + off));
                    for v in 0..V {
                        acc[j][v] = _mm256_fmadd_ps(xv, wv[v], acc[j][v]);
                    }
                }
            }
            for j in 0..P {
                for v in 0..V {
                    _mm256_storeu_ps(tile.as_mut_ptr().add((p0 + j) * lanes + 8 * v), acc[j][v]);
                }
            }
        }
    }

    /// `dst[l][i] = src[i·stride + l]` for an 8 x 8 block.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn transpose_8x8(src: &[f32], stride: usize, dst: &mut [[f32; 8]; 8]) {
        debug_assert!(src.len() >= 7 * stride + 8);
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.as_ptr().add(i * stride)));
        // pairs of rows interleaved, then quads, then the two 128-bit halves
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xee>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xee>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xee>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xee>(t5, t7);
        let out = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (row, v) in dst.iter_mut().zip(out) {
            _mm256_storeu_ps(row.as_mut_ptr(), v);
        }
    }

    /// `acc[tap][lane] += Σ_position xp[base + tap] · dyt[position][lane]`, `T` taps at a
    /// time (`taps.len()` is a multiple of `T`).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weight_grad<const V: usize, const T: usize>(
        xp: &[f32],
        bases: &[usize],
        taps: &[usize],
        dyt: &[f32],
        acc: &mut [f32],
    ) {
        let lanes = 8 * V;
        debug_assert!(taps.len().is_multiple_of(T) && acc.len() == taps.len() * lanes);
        debug_assert!(dyt.len() >= bases.len() * lanes);
        let (xp, dyt) = (xp.as_ptr(), dyt.as_ptr());
        for t0 in (0..taps.len()).step_by(T) {
            let mut off = [0usize; T];
            off.copy_from_slice(&taps[t0..t0 + T]);
            let mut sum = [[_mm256_setzero_ps(); V]; T];
            for (i, &base) in bases.iter().enumerate() {
                let mut d = [_mm256_setzero_ps(); V];
                for (v, r) in d.iter_mut().enumerate() {
                    *r = _mm256_loadu_ps(dyt.add(i * lanes + 8 * v));
                }
                for t in 0..T {
                    let xv = _mm256_broadcast_ss(&*xp.add(base + off[t]));
                    for v in 0..V {
                        sum[t][v] = _mm256_fmadd_ps(xv, d[v], sum[t][v]);
                    }
                }
            }
            for t in 0..T {
                for v in 0..V {
                    let dst = acc.as_mut_ptr().add((t0 + t) * lanes + 8 * v);
                    _mm256_storeu_ps(dst, _mm256_add_ps(_mm256_loadu_ps(dst), sum[t][v]));
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx {
    // never called: applies() is false off x86-64
    pub unsafe fn forward_tile<const V: usize, const P: usize>(
        _: &[f32],
        _: &[usize],
        _: &[usize],
        _: &[f32],
        _: &[f32; 16],
        _: &mut [f32],
    ) {
        unreachable!("direct convolution needs x86-64")
    }
    pub unsafe fn transpose_8x8(_: &[f32], _: usize, _: &mut [[f32; 8]; 8]) {
        unreachable!("direct convolution needs x86-64")
    }
    pub unsafe fn weight_grad<const V: usize, const T: usize>(
        _: &[f32],
        _: &[usize],
        _: &[usize],
        _: &[f32],
        _: &mut [f32],
    ) {
        unreachable!("direct convolution needs x86-64")
    }
}
