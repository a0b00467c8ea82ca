//! Pooling loops over (depth, height, width) planes; 1-D and 2-D pooling use depth (and
//! height) 1. Planes (sample x channel) are processed in parallel.

use rayon::prelude::*;

/// Sizes of one pooling, spatial dimensions as (depth, height, width).
#[derive(Clone, Debug, PartialEq)]
pub struct PoolGeometry {
    /// batch x channels
    pub planes: usize,
    /// input size
    pub input: [usize; 3],
    /// window size
    pub kernel: [usize; 3],
    /// stride
    pub stride: [usize; 3],
    /// padding before and after each dimension
    pub pad: [usize; 3],
    /// output size
    pub output: [usize; 3],
}

impl PoolGeometry {
    fn in_plane(&self) -> usize {
        self.input.iter().product()
    }
    fn out_plane(&self) -> usize {
        self.output.iter().product()
    }
    /// Windows along dimension `d`, one per output index: (start clipped to the input, end
    /// clipped to the input, window length counting padding as PyTorch's avg_pool does).
    pub(crate) fn windows(&self, d: usize) -> Vec<(usize, usize, usize)> {
        (0..self.output[d])
            .map(|o| {
                let start = (o * self.stride[d]) as isize - self.pad[d] as isize;
                let end = (start + self.kernel[d] as isize).min((self.input[d] + self.pad[d]) as isize);
                let padded_len = (end - start) as usize;
                let s = start.max(0) as usize;
                let e = (end.max(0) as usize).min(self.input[d]);
                (s, e.max(s), padded_len)
            })
            .collect()
    }
}

/// The larger of two values, or NaN if either is NaN (PyTorch's max pooling propagates
/// NaN); written as a select so that loops of it vectorise.
#[inline(always)]
fn max_nan(best: f32, v: f32) -> f32 {
    if v > best || v.is_nan() {
        v
    } else {
        best
    }
}

/// Max pooling without the winners' positions (inference: nothing to backpropagate).
pub fn max_pool_values(g: &PoolGeometry, x: &[f32], y: &mut [f32]) {
    if !separable(g) {
        let mut argmax = vec![0u32; y.len()];
        return max_pool_forward(g, x, y, &mut argmax);
    }
    reduce_windows_2d(g, x, y, Reduce::Max);
}

/// Whether [`reduce_windows_2d`] takes `g`: 1-D and 2-D pooling (no depth to pool over),
/// windows that do not skip columns (a stride past the window would make its phase
/// split as wide as the stride).
fn separable(g: &PoolGeometry) -> bool {
    g.input[0] == 1 && g.kernel[0] == 1 && g.output[0] == 1 && g.stride[2] <= g.kernel[2]
}

/// What [`reduce_windows_2d`] computes over each window.
#[derive(Clone, Copy, PartialEq)]
enum Reduce {
    Max,
    /// the maximum of a plane known to hold no NaN (one compare and select per value)
    MaxOfNumbers,
    /// the mean, dividing by the window's size with or without the padding
    Mean {
        count_include_pad: bool,
    },
}

/// Max or mean over each window of 1-D and 2-D planes, separably and a whole plane at a
/// time (planes of inception blocks are 7 to 28 values wide: loops over single rows would
/// spend their time in scalar tails): first each output row's window of input rows, into
/// rows padded with the reduction's identity so that windows need no clipping; then each
/// window along those rows, with the padded plane split by phase when strided so that
/// every tap reads consecutive values. Both stages vectorise, compiled for the CPU's
/// vector level; the padded rows give a few outputs past each row's end, not copied out.
fn reduce_windows_2d(g: &PoolGeometry, x: &[f32], y: &mut [f32], reduce: Reduce) {
    let (ip, op) = (g.in_plane(), g.out_plane());
    let [_, oh, ow] = g.output;
    if op == 0 || ow == 0 {
        return;
    }
    let sw = g.stride[2];
    let identity = if reduce == Reduce::Max { f32::NEG_INFINITY } else { 0.0 };
    if ip == 0 {
        // every window lies in the padding
        return y.fill(identity);
    }
    let plan = Separable {
        g,
        reduce,
        rows: g.windows(1),
        // window sizes along a row, for the mean
        column_counts: g
            .windows(2)
            .iter()
            .map(|&(x0, x1, lx)| if reduce == (Reduce::Mean { count_include_pad: true }) { lx } else { x1 - x0 })
            .collect(),
        // a padded row: the columns the windows read, rounded up to the stride
        width: ((ow - 1) * sw + g.kernel[2]).next_multiple_of(sw),
    };
    let level = super::isa::current();
    let phases_len = if sw > 1 { oh * plan.width } else { 0 };
    let scratch = || {
        let buffer = |len: usize| vec![identity; len];
        [buffer(oh * g.input[2]), buffer(oh * plan.width), buffer(phases_len), buffer(oh * plan.width / sw)]
    };
    y.par_chunks_mut(op).zip(x.par_chunks(ip)).for_each_init(scratch, |buffers, (yp, xp)| match level {
        // SAFETY: the level is at most what the CPU has.
        #[cfg(target_arch = "x86_64")]
        super::Isa::Avx2 | super::Isa::Avx512 => unsafe { plan.plane_avx2(xp, yp, buffers) },
        _ => plan.plane(xp, yp, buffers),
    });
}

/// What [`reduce_windows_2d`] needs for each plane.
struct Separable<'a> {
    g: &'a PoolGeometry,
    reduce: Reduce,
    /// (first, end, padded length) of each output row's window of input rows
    rows: Vec<(usize, usize, usize)>,
    column_counts: Vec<usize>,
    width: usize,
}

impl Separable<'_> {
    fn identity(&self) -> f32 {
        match self.reduce {
            Reduce::Max | Reduce::MaxOfNumbers => f32::NEG_INFINITY,
            Reduce::Mean { .. } => 0.0,
        }
    }

    #[inline(always)]
    fn combine(reduce: Reduce, acc: &mut [f32], v: &[f32]) {
        match reduce {
            Reduce::Max => max_into(acc, v, true),
            Reduce::MaxOfNumbers => max_into(acc, v, false),
            Reduce::Mean { .. } => acc.iter_mut().zip(v).for_each(|(a, &v)| *a += v),
        }
    }

    /// One plane `xp` into `yp`, with scratch `[rows, padded, phases, out]` of `oh` rows
    /// each: `iw` values wide, `width`, `width` (strided only) and `width / stride`.
    #[inline(always)]
    fn plane(&self, xp: &[f32], yp: &mut [f32], [rows, padded, phases, out]: &mut [Vec<f32>; 4]) {
        let ([_, ih, iw], [_, oh, ow]) = (self.g.input, self.g.output);
        let ([_, _, kw], [_, sh, sw], [_, ph, pw]) = (self.g.kernel, self.g.stride, self.g.pad);
        let (width, identity) = (self.width, self.identity());
        // one pass to find NaN (rare) spares a select per value in the passes after
        let reduce = match self.reduce {
            Reduce::Max if !xp.iter().fold(false, |nan, v| nan | v.is_nan()) => Reduce::MaxOfNumbers,
            r => r,
        };
        // the window of input rows of each output row
        rows.fill(identity);
        if sh == 1 {
            // whole planes at a time: tap ky of output rows lo..hi reads rows lo+ky-ph..
            for ky in 0..self.g.kernel[1] {
                let (lo, hi) = (ph.saturating_sub(ky), oh.min((ih + ph).saturating_sub(ky)));
                if lo < hi {
                    Self::combine(reduce, &mut rows[lo * iw..hi * iw], &xp[(lo + ky - ph) * iw..(hi + ky - ph) * iw]);
                }
            }
        } else {
            for (&(y0, y1, _), row) in self.rows.iter().zip(rows.chunks_exact_mut(iw)) {
                for r in y0..y1 {
                    Self::combine(reduce, row, &xp[r * iw..][..iw]);
                }
            }
        }
        // padded rows; the windows read at most `width - pw` input columns
        let valid = iw.min(width - pw);
        for (src, dst) in rows.chunks_exact(iw).zip(padded.chunks_exact_mut(width)) {
            super::copy_short(&mut dst[pw..pw + valid], &src[..valid]);
        }
        // tap kx of output i (of the padded plane's i-th window) reads phase kx % sw at
        // i + kx / sw
        let taps: &[f32] = if sw == 1 {
            padded
        } else {
            let len = padded.len() / sw;
            if sw == 2 {
                // (pairs: the loop vectorises, where a runtime step does not)
                let (even, odd) = phases.split_at_mut(len);
                for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(padded.chunks_exact(2)) {
                    (*e, *o) = (pair[0], pair[1]);
                }
            } else {
                for (q, phase) in phases.chunks_exact_mut(len).enumerate() {
                    phase.iter_mut().zip(padded.iter().skip(q).step_by(sw)).for_each(|(p, &v)| *p = v);
                }
            }
            phases
        };
        let len = out.len();
        out.fill(identity);
        for kx in 0..kw {
            let (phase, shift) = (kx % sw, kx / sw);
            Self::combine(reduce, &mut out[..len - shift], &taps[phase * len + shift..]);
        }
        for (row, (yrow, &(y0, y1, ly))) in out.chunks_exact(width / sw).zip(yp.chunks_exact_mut(ow).zip(&self.rows)) {
            super::copy_short(yrow, &row[..ow]);
            if let Reduce::Mean { count_include_pad } = self.reduce {
                let n = if count_include_pad { ly } else { y1 - y0 };
                for (v, &c) in yrow.iter_mut().zip(&self.column_counts) {
                    *v /= (n * c).max(1) as f32;
                }
            }
        }
    }

    /// [`Separable::plane`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn plane_avx2(&self, xp: &[f32], yp: &mut [f32], scratch: &mut [Vec<f32>; 4]) {
        self.plane(xp, yp, scratch)
    }
}

/// `acc[i] = max(acc[i], v[i])` over the shorter of the two, keeping `acc[i]` (the
/// earlier value) on ties and, if `nan`, NaN where either is (else neither holds NaN).
/// Explicit AVX vectors where the CPU has them: the compiler turned the generic select
/// into masked stores of the changed values, which AMD's CPUs run several times slower
/// than stores (3x3 pools took 4-8 times onnxruntime's).
#[inline(always)]
fn max_into(acc: &mut [f32], v: &[f32], nan: bool) {
    let n = acc.len().min(v.len());
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the level is at most what the CPU has; the loop stays within n
    let done = if super::isa::current() >= super::Isa::Avx2 {
        unsafe { max_into_avx(&mut acc[..n], &v[..n], nan) }
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for (a, &v) in acc[done..n].iter_mut().zip(&v[done..n]) {
        *a = if nan {
            max_nan(*a, v)
        } else if v > *a {
            v
        } else {
            *a
        };
    }
}

/// [`max_into`] for the whole vectors of `acc` (as long as `v`); returns how many values
/// it took. `max(v, a)` is `a` on ties and where either is NaN: a NaN in `a` stays.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn max_into_avx(acc: &mut [f32], v: &[f32], nan: bool) -> usize {
    use std::arch::x86_64::*;
    let n = acc.len() / 8 * 8;
    for i in (0..n).step_by(8) {
        let (a, x) = (_mm256_loadu_ps(acc.as_ptr().add(i)), _mm256_loadu_ps(v.as_ptr().add(i)));
        let mut m = _mm256_max_ps(x, a);
        if nan {
            m = _mm256_blendv_ps(m, x, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x));
        }
        _mm256_storeu_ps(acc.as_mut_ptr().add(i), m);
    }
    n
}

/// Max pooling; `argmax` receives, for each output, the index of the winner in its plane.
pub fn max_pool_forward(g: &PoolGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    let (ip, op) = (g.in_plane(), g.out_plane());
    // (not with ceil_mode's partial last window, nor with depth)
    let whole_windows = 2 * g.output[1] <= g.input[1] && 2 * g.output[2] <= g.input[2];
    if g.kernel == [1, 2, 2] && g.stride == [1, 2, 2] && g.pad == [0, 0, 0] && g.input[0] == 1 && whole_windows {
        return max_pool_2x2(g, x, y, argmax);
    }
    let [_, ih, iw] = g.input;
    let (wz, wy, wx) = (g.windows(0), g.windows(1), g.windows(2));
    y.par_chunks_mut(op).zip(argmax.par_chunks_mut(op)).zip(x.par_chunks(ip)).for_each(|((yp, ap), xp)| {
        let mut i = 0;
        for &(z0, z1, _) in &wz {
            for &(y0, y1, _) in &wy {
                for &(x0, x1, _) in &wx {
                    let mut best = f32::NEG_INFINITY;
                    let mut best_at = (z0 * ih + y0) * iw + x0;
                    for z in z0..z1 {
                        for yy in y0..y1 {
                            let row = (z * ih + yy) * iw;
                            for (xx, &v) in xp[row + x0..row + x1].iter().enumerate() {
                                // NaN propagates (the last one wins), as in PyTorch; selects,
                                // not branches, which real activations mispredict
                                let take = v.is_nan() || v > best;
                                best = if take { v } else { best };
                                best_at = if take { row + x0 + xx } else { best_at };
                            }
                        }
                    }
                    yp[i] = best;
                    ap[i] = best_at as u32;
                    i += 1;
                }
            }
        }
    });
}

/// The common 2x2, stride 2, unpadded case: two input rows at a time, no window bookkeeping.
fn max_pool_2x2(g: &PoolGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    let (ip, op) = (g.in_plane(), g.out_plane());
    let [_, _, iw] = g.input;
    let [_, oh, ow] = g.output;
    y.par_chunks_mut(op).zip(argmax.par_chunks_mut(op)).zip(x.par_chunks(ip)).for_each(|((yp, ap), xp)| {
        for oy in 0..oh {
            let r0 = 2 * oy * iw;
            let (top, bottom) = (&xp[r0..r0 + 2 * ow], &xp[r0 + iw..r0 + iw + 2 * ow]);
            let (yr, ar) = (&mut yp[oy * ow..(oy + 1) * ow], &mut ap[oy * ow..(oy + 1) * ow]);
            // four outputs at a time with SSE2 (every x86-64 CPU has it), then the rest
            #[cfg(target_arch = "x86_64")]
            let blocks = {
                let blocks = ow / 4 * 4;
                // SAFETY: the rows hold 2·ow values and the outputs ow, so every block of
                // four outputs reads 8 values of each row and writes 4 of each output.
                unsafe {
                    sse2::max_pool_2x2_row(top, bottom, &mut yr[..blocks], &mut ar[..blocks], r0 as u32, iw as u32)
                };
                blocks
            };
            #[cfg(not(target_arch = "x86_64"))]
            let blocks = 0;
            for ox in blocks..ow {
                let c = 2 * ox;
                let (v, col) = max_of_window(top[c], top[c + 1], bottom[c], bottom[c + 1], iw as u32);
                yr[ox] = v;
                ar[ox] = r0 as u32 + c as u32 + col;
            }
        }
    });
}

/// Maximum of a 2x2 window (t0 t1 over b0 b1) and its offset from t0: 0, 1, `iw` or
/// `iw + 1`. Pairs within each row first, then the two rows: strict comparisons in this
/// order keep the first maximum in scan order and the last NaN, as PyTorch's loop does.
/// Selects, not branches: activations compare unpredictably.
#[inline(always)]
fn max_of_window(t0: f32, t1: f32, b0: f32, b1: f32, iw: u32) -> (f32, u32) {
    let (take_t, take_b) = (later_wins(t0, t1), later_wins(b0, b1));
    let vt = if take_t { t1 } else { t0 };
    let vb = if take_b { b1 } else { b0 };
    let take_bottom = later_wins(vt, vb);
    let v = if take_bottom { vb } else { vt };
    let offset = if take_bottom { iw + take_b as u32 } else { take_t as u32 };
    (v, offset)
}

/// Whether `later` replaces `earlier` as the running maximum: it is larger, or it is NaN
/// (PyTorch's rule).
#[inline(always)]
fn later_wins(earlier: f32, later: f32) -> bool {
    (later > earlier) | later.is_nan()
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    /// [`super::max_of_window`] on four windows at once: outputs `y[i]`, `argmax[i]` for
    /// windows `2i, 2i + 1` of rows `top` and `bottom` (`y.len()` a multiple of 4), the
    /// argmax counted from `first` (the index of `top[0]` in the plane).
    pub unsafe fn max_pool_2x2_row(
        top: &[f32],
        bottom: &[f32],
        y: &mut [f32],
        argmax: &mut [u32],
        first: u32,
        iw: u32,
    ) {
        debug_assert!(y.len().is_multiple_of(4) && top.len() >= 2 * y.len() && bottom.len() >= 2 * y.len());
        let later_wins = |e: __m128, l: __m128| _mm_or_ps(_mm_cmpgt_ps(l, e), _mm_cmpunord_ps(l, l));
        let select = |m: __m128, a: __m128, b: __m128| _mm_or_ps(_mm_and_ps(m, a), _mm_andnot_ps(m, b));
        let bit = |m: __m128| _mm_srli_epi32::<31>(_mm_castps_si128(m));
        let iw = _mm_set1_epi32(iw as i32);
        for i in (0..y.len()).step_by(4) {
            let (t, b) = (top.as_ptr().add(2 * i), bottom.as_ptr().add(2 * i));
            let (ta, tb) = (_mm_loadu_ps(t), _mm_loadu_ps(t.add(4)));
            let (ba, bb) = (_mm_loadu_ps(b), _mm_loadu_ps(b.add(4)));
            // even and odd columns
            let (t0, t1) = (_mm_shuffle_ps::<0x88>(ta, tb), _mm_shuffle_ps::<0xdd>(ta, tb));
            let (b0, b1) = (_mm_shuffle_ps::<0x88>(ba, bb), _mm_shuffle_ps::<0xdd>(ba, bb));
            let (take_t, take_b) = (later_wins(t0, t1), later_wins(b0, b1));
            let (vt, vb) = (select(take_t, t1, t0), select(take_b, b1, b0));
            let take_bottom = later_wins(vt, vb);
            _mm_storeu_ps(y.as_mut_ptr().add(i), select(take_bottom, vb, vt));
            let offset = _mm_castps_si128(select(
                take_bottom,
                _mm_castsi128_ps(_mm_add_epi32(iw, bit(take_b))),
                _mm_castsi128_ps(bit(take_t)),
            ));
            let col = _mm_add_epi32(_mm_set1_epi32((first as usize + 2 * i) as i32), _mm_setr_epi32(0, 2, 4, 6));
            _mm_storeu_si128(argmax.as_mut_ptr().add(i) as *mut __m128i, _mm_add_epi32(col, offset));
        }
    }
}

/// Gradient of max pooling: each output's gradient goes to its winner, recorded by
/// [`max_pool_forward`] (overwrites `dx`).
pub fn max_pool_backward(g: &PoolGeometry, dy: &[f32], argmax: &[u32], dx: &mut [f32]) {
    let (ip, op) = (g.in_plane(), g.out_plane());
    dx.par_chunks_mut(ip).zip(dy.par_chunks(op)).zip(argmax.par_chunks(op)).for_each(|((dxp, dyp), ap)| {
        dxp.fill(0.0);
        for (&g, &a) in dyp.iter().zip(ap) {
            dxp[a as usize] += g;
        }
    });
}

/// Average pooling. With `count_include_pad` the divisor counts padded positions (as
/// PyTorch's default); otherwise only positions inside the input.
pub fn avg_pool_forward(g: &PoolGeometry, x: &[f32], y: &mut [f32], count_include_pad: bool) {
    if separable(g) {
        return reduce_windows_2d(g, x, y, Reduce::Mean { count_include_pad });
    }
    let (ip, op) = (g.in_plane(), g.out_plane());
    let [_, ih, iw] = g.input;
    let (wz, wy, wx) = (g.windows(0), g.windows(1), g.windows(2));
    y.par_chunks_mut(op).zip(x.par_chunks(ip)).for_each(|(yp, xp)| {
        let mut i = 0;
        for &(z0, z1, lz) in &wz {
            for &(y0, y1, ly) in &wy {
                for &(x0, x1, lx) in &wx {
                    let mut sum = 0.0f32;
                    for z in z0..z1 {
                        for yy in y0..y1 {
                            let row = (z * ih + yy) * iw;
                            sum += xp[row + x0..row + x1].iter().sum::<f32>();
                        }
                    }
                    let count = if count_include_pad { lz * ly * lx } else { (z1 - z0) * (y1 - y0) * (x1 - x0) };
                    yp[i] = sum / count.max(1) as f32;
                    i += 1;
                }
            }
        }
    });
}

/// Gradient of [`avg_pool_forward`]: each output's gradient, divided by the same count, is
/// added to every input position of its window (overwrites `dx`).
pub fn avg_pool_backward(g: &PoolGeometry, dy: &[f32], dx: &mut [f32], count_include_pad: bool) {
    let (ip, op) = (g.in_plane(), g.out_plane());
    let [_, ih, iw] = g.input;
    let (wz, wy, wx) = (g.windows(0), g.windows(1), g.windows(2));
    dx.par_chunks_mut(ip).zip(dy.par_chunks(op)).for_each(|(dxp, dyp)| {
        dxp.fill(0.0);
        let mut i = 0;
        for &(z0, z1, lz) in &wz {
            for &(y0, y1, ly) in &wy {
                for &(x0, x1, lx) in &wx {
                    let count = if count_include_pad { lz * ly * lx } else { (z1 - z0) * (y1 - y0) * (x1 - x0) };
                    let share = dyp[i] / count.max(1) as f32;
                    for z in z0..z1 {
                        for yy in y0..y1 {
                            let row = (z * ih + yy) * iw;
                            dxp[row + x0..row + x1].iter_mut().for_each(|v| *v += share);
                        }
                    }
                    i += 1;
                }
            }
        }
    });
}

/// Bins of adaptive pooling along one dimension, as PyTorch computes them:
/// [floor(i·n/out), ceil((i+1)·n/out)).
pub fn adaptive_bins(n: usize, out: usize) -> Vec<(usize, usize)> {
    (0..out).map(|i| ((i * n) / out, ((i + 1) * n).div_ceil(out))).collect()
}

/// Adaptive average pooling to `out` (depth, height, width); `x` holds `planes` planes.
pub fn adaptive_avg_forward(planes: usize, input: [usize; 3], out: [usize; 3], x: &[f32]) -> Vec<f32> {
    let bins: Vec<_> = (0..3).map(|d| adaptive_bins(input[d], out[d])).collect();
    let (ip, op) = (input.iter().product::<usize>(), out.iter().product::<usize>());
    let mut y = vec![0.0f32; planes * op];
    y.par_chunks_mut(op).zip(x.par_chunks(ip)).for_each(|(yp, xp)| {
        let mut i = 0;
        for &(z0, z1) in &bins[0] {
            for &(y0, y1) in &bins[1] {
                for &(x0, x1) in &bins[2] {
                    let mut sum = 0.0f32;
                    for z in z0..z1 {
                        for yy in y0..y1 {
                            let row = (z * input[1] + yy) * input[2];
                            sum += xp[row + x0..row + x1].iter().sum::<f32>();
                        }
                    }
                    yp[i] = sum / ((z1 - z0) * (y1 - y0) * (x1 - x0)) as f32;
                    i += 1;
                }
            }
        }
    });
    y
}

/// Gradient of [`adaptive_avg_forward`]: each output's gradient spread evenly over its bin.
pub fn adaptive_avg_backward(planes: usize, input: [usize; 3], out: [usize; 3], dy: &[f32]) -> Vec<f32> {
    let bins: Vec<_> = (0..3).map(|d| adaptive_bins(input[d], out[d])).collect();
    let (ip, op) = (input.iter().product::<usize>(), out.iter().product::<usize>());
    let mut dx = vec![0.0f32; planes * ip];
    dx.par_chunks_mut(ip).zip(dy.par_chunks(op)).for_each(|(dxp, dyp)| {
        let mut i = 0;
        for &(z0, z1) in &bins[0] {
            for &(y0, y1) in &bins[1] {
                for &(x0, x1) in &bins[2] {
                    let share = dyp[i] / ((z1 - z0) * (y1 - y0) * (x1 - x0)) as f32;
                    for z in z0..z1 {
                        for yy in y0..y1 {
                            let row = (z * input[1] + yy) * input[2];
                            dxp[row + x0..row + x1].iter_mut().for_each(|v| *v += share);
                        }
                    }
                    i += 1;
                }
            }
        }
    });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(kernel: usize, pad: usize) -> PoolGeometry {
        PoolGeometry {
            planes: 1,
            input: [1, 4, 4],
            kernel: [1, kernel, kernel],
            stride: [1, 2, 2],
            pad: [0, pad, pad],
            output: [1, 2, 2],
        }
    }

    #[test]
    fn max_pooling_propagates_nan_like_pytorch() {
        let mut x = vec![1.0f32; 16];
        x[5] = f32::NAN;
        x[0] = 7.0;
        for g in [geometry(2, 0), geometry(3, 1)] {
            let (mut y, mut at) = (vec![0.0; 4], vec![0u32; 4]);
            max_pool_forward(&g, &x, &mut y, &mut at);
            assert!(y[0].is_nan(), "{g:?}: {y:?}");
            assert_eq!(at[0], 5);
        }
    }

    #[test]
    fn the_2x2_fast_path_equals_the_general_loop_with_ties_and_nans() {
        // values from a small set, so windows hold ties and several NaNs
        let mut rng = crate::Rng::new(5);
        let choices = [0.0, 1.0, 2.0, -1.0, f32::NAN];
        let (planes, h, w) = (3, 6, 21);
        let x: Vec<f32> = (0..planes * h * w).map(|_| choices[rng.below(choices.len())]).collect();
        let fast = PoolGeometry {
            planes,
            input: [1, h, w],
            kernel: [1, 2, 2],
            stride: [1, 2, 2],
            pad: [0; 3],
            output: [1, h / 2, w / 2],
        };
        // the same windows, as a 3-D pooling the fast path does not take
        let general = PoolGeometry { input: [2, h, w], kernel: [1, 2, 2], output: [2, h / 2, w / 2], ..fast.clone() };
        let x2: Vec<f32> = x.chunks(h * w).flat_map(|p| p.iter().chain(p).copied()).collect();
        let n = planes * (h / 2) * (w / 2);
        let (mut y, mut at, mut y2, mut at2) = (vec![0.0; n], vec![0u32; n], vec![0.0; 2 * n], vec![0u32; 2 * n]);
        max_pool_forward(&fast, &x, &mut y, &mut at);
        max_pool_forward(&general, &x2, &mut y2, &mut at2);
        let first_copy = |v: &[u32]| v.chunks(n / planes).step_by(2).flatten().copied().collect::<Vec<_>>();
        assert_eq!(at, first_copy(&at2));
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let y2_first: Vec<f32> = y2.chunks(n / planes).step_by(2).flatten().copied().collect();
        assert_eq!(bits(&y), bits(&y2_first));
    }

    /// A random 1-D/2-D pooling of two planes (kernel, stride, padding up to half the
    /// window), with `ceil_mode`'s short last windows if asked.
    fn random_geometry(rng: &mut crate::Rng, ceil_mode: bool) -> PoolGeometry {
        let (h, w) = (1 + rng.below(9), 1 + rng.below(12));
        let (kh, kw) = (1 + rng.below(h.min(4)), 1 + rng.below(w.min(4)));
        let (sh, sw) = (1 + rng.below(3), 1 + rng.below(3));
        let (ph, pw) = (rng.below(kh / 2 + 1), rng.below(kw / 2 + 1));
        let out = |n: usize, k: usize, s: usize, p: usize| {
            let o = if ceil_mode { (n + 2 * p - k).div_ceil(s) } else { (n + 2 * p - k) / s } + 1;
            // drop a last window that would start in the right padding (PyTorch's rule)
            if (o - 1) * s >= n + p {
                o - 1
            } else {
                o
            }
        };
        PoolGeometry {
            planes: 2,
            input: [1, h, w],
            kernel: [1, kh, kw],
            stride: [1, sh, sw],
            pad: [0, ph, pw],
            output: [1, out(h, kh, sh, ph), out(w, kw, sw, pw)],
        }
    }

    #[test]
    fn separable_average_pooling_equals_the_window_loop() {
        // random 2-D geometries; the same planes twice along depth (kernel depth 1) take
        // the window-by-window loop
        let mut rng = crate::Rng::new(11);
        for case in 0..200 {
            let g = random_geometry(&mut rng, false);
            let ([_, h, w], [_, kh, kw], [_, oh, ow]) = (g.input, g.kernel, g.output);
            let deep = PoolGeometry { input: [2, h, w], output: [2, oh, ow], ..g.clone() };
            let x: Vec<f32> = (0..2 * h * w).map(|_| rng.normal()).collect();
            let x2: Vec<f32> = x.chunks(h * w).flat_map(|p| p.iter().chain(p).copied()).collect();
            let abs2: Vec<f32> = x2.iter().map(|v| v.abs()).collect();
            for include in [false, true] {
                let (mut got, mut want, mut scale) =
                    (vec![0.0; 2 * oh * ow], vec![0.0; 4 * oh * ow], vec![0.0; 4 * oh * ow]);
                avg_pool_forward(&g, &x, &mut got, include);
                avg_pool_forward(&deep, &x2, &mut want, include);
                avg_pool_forward(&deep, &abs2, &mut scale, include);
                let first = |v: Vec<f32>| -> Vec<f32> { v.chunks(oh * ow).step_by(2).flatten().copied().collect() };
                let (want, scale) = (first(want), first(scale));
                // two sums of at most kh·kw terms in different orders, each within
                // kh·kw·u·Σ|x| of the exact one (then both divided alike)
                for ((a, b), s) in got.iter().zip(&want).zip(&scale) {
                    let bound = (kh * kw) as f32 * f32::EPSILON * s;
                    assert!((a - b).abs() <= bound, "case {case} {g:?}: {got:?} vs {want:?}");
                }
            }
        }
    }

    #[test]
    fn max_into_keeps_the_earlier_of_equal_values_and_nan() {
        // every pair of these, at every level, in runs of 8 and a tail
        let values = [0.0, -0.0, 1.0, -1.0, f32::INFINITY, f32::NAN];
        let pairs: Vec<(f32, f32)> = values.iter().flat_map(|&a| values.iter().map(move |&v| (a, v))).collect();
        crate::kernels::for_each_level(&[1], |_, _| {
            for nan in [true, false] {
                let pairs: Vec<_> = pairs.iter().filter(|(a, v)| nan || !(a.is_nan() || v.is_nan())).collect();
                let (mut acc, v): (Vec<f32>, Vec<f32>) = pairs.iter().map(|&&(a, v)| (a, v)).unzip();
                max_into(&mut acc, &v, nan);
                for (&(a, v), got) in pairs.iter().zip(&acc) {
                    let want = if nan {
                        max_nan(*a, *v)
                    } else if v > a {
                        *v
                    } else {
                        *a
                    };
                    let same = got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan());
                    assert!(same, "max of {a} and {v} (nan: {nan}): {got}");
                }
            }
        });
    }

    #[test]
    fn values_only_max_pooling_equals_the_argmax_loop() {
        // random 1-D/2-D geometries (kernel, stride, padding, ceil-mode-like short last
        // windows), data with ties, infinities and NaNs (in every other case: a plane
        // without NaN takes another path), at every level. (Of +0 and -0 in one window
        // the separable passes may keep either: they meet the values in another order.)
        crate::kernels::for_each_level(&crate::kernels::TEST_THREADS, |_, _| {
            let mut rng = crate::Rng::new(9);
            let choices = [0.0, -0.0, 1.0, -2.0, 3.5, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
            for case in 0..200 {
                let g = random_geometry(&mut rng, true);
                let ([_, h, w], [_, oh, ow]) = (g.input, g.output);
                let kinds = if case % 2 == 0 { choices.len() } else { choices.len() - 1 };
                let x: Vec<f32> = (0..2 * h * w).map(|_| choices[rng.below(kinds)]).collect();
                let n = 2 * oh * ow;
                let (mut want, mut at, mut got) = (vec![0.0; n], vec![0u32; n], vec![0.0; n]);
                max_pool_forward(&g, &x, &mut want, &mut at);
                max_pool_values(&g, &x, &mut got);
                for (a, b) in got.iter().zip(&want) {
                    assert!(a == b || (a.is_nan() && b.is_nan()), "case {case} {g:?}: {got:?} vs {want:?}");
                }
            }
        });
    }
}
