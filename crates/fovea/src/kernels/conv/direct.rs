//! Direct convolution at the AVX2 (with FMA) and AVX-512 levels of x86-64 CPUs, for
//! one-group 1-D and 2-D convolutions of stride 1, 2 or 4: no patch matrix. im2col + GEMM
//! writes a patch matrix k² times the size of the input, then the GEMM packs it once
//! more; here the input is read where it lies.
//!
//! Output channels run along the vector lanes (8, 16 or 32 at a time) and up to 14
//! neighbouring output positions of a row share each weight load: every kernel tap is
//! one broadcast input value and one fused multiply-add per accumulator, all of them in
//! registers.
//!
//! Work units are (sample, band of output rows, group of channel blocks). A unit first
//! copies the input rows its band reads into a zero-padded slab, so that the inner loop
//! has no bounds logic: tap t of position (r, x) reads
//! `slab[r·stride_y·width + x·stride_x + offset(t)]`.
//! Taps run in chunks whose weights (256 KiB) stay in L2 cache while every position of
//! the band uses them.
//!
//! The weight gradient puts output channels on the lanes too and sums over positions,
//! up to 14 taps at a time. The input gradient of a stride-1 convolution is the forward
//! correlation of `dy` with the weights flipped and transposed ([`input_grad_geometry`])
//! where the padding keeps that at most 1.25x the forward pass; otherwise it stays with
//! GEMM + col2im.
//!
//! The forward pass hands each finished run of outputs (a channel's rows of a band) to
//! the caller's epilogue while it is in cache: a residual sum, an activation.

use super::geometry::{with_scratch, ConvGeometry, SharedMut};
use crate::kernels::{isa, num_threads, Isa};
use rayon::prelude::*;
use std::borrow::Cow;
use std::mem::MaybeUninit;

/// Largest padded sample (values) this path takes: beyond it, padding or dilation is
/// absurd (im2col reads only what is valid), or the picture is large enough for im2col's
/// bounded tiles to be the safer choice.
const MAX_PADDED: usize = 1 << 24;

/// Widest output row this path takes: a band holds whole rows, so a long 1-D signal
/// would make one huge unit (im2col cuts it into tiles).
const MAX_ROW: usize = 4096;

/// Fewest output positions (all samples) this path takes unless its weights were packed
/// beforehand ([`PackedWeights`]): packing them on every call costs more than it saves
/// for fewer positions (measured on ResNet's 7x7 and AlexNet's 13x13 layers at batch 1).
const MIN_POSITIONS: usize = 256;

/// Weights per tap chunk (256 KiB): they stay in L2 cache while a band uses them. Each
/// chunk stores the partial sums and loads them again, which cost more than the weights'
/// L1 misses: L1-sized chunks (16 KiB) made ResNet-50 7-10% slower.
pub(super) const CHUNK_WEIGHTS: usize = 1 << 16;

/// Outputs of one band, `[position][lane]` (64 KiB): they stay in L2 cache.
const BAND_OUTPUTS: usize = 16384;

/// Fewest output rows (all samples) this path takes: a work unit holds whole rows, so
/// fewer would leave threads idle (im2col cuts rows into tiles).
const MIN_ROWS: usize = 4;

/// f32 values in 64 bytes, a cache line: where packed weights start, and the unit the
/// kernels fetch ahead.
const LINE: usize = 16;

/// Strides along a row that the kernels are compiled for (AlexNet's first layer has 4).
const STRIDES: [usize; 3] = [1, 2, 4];

/// f32 lanes of one vector register at a level of this path.
pub(super) fn width(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 16,
        _ => 8,
    }
}

/// Instruction set and vectors per channel block for `c_out` output channels at `level`:
/// 8 lanes of AVX2 for up to 8 channels (a wider vector would be mostly idle), else 16 or
/// 32 lanes.
pub(super) fn layout(level: Isa, c_out: usize) -> (Isa, usize) {
    match level {
        _ if c_out <= 8 => (Isa::Avx2, 1),
        Isa::Avx512 => (Isa::Avx512, if c_out <= 16 { 1 } else { 2 }),
        _ => (Isa::Avx2, 2),
    }
}

/// Most positions (forward) or taps (weight gradient) in one register block: with the
/// vectors it loads, its accumulators must fit in 16 (AVX2) or 32 (AVX-512) registers.
pub(super) fn block_max(isa: Isa, v: usize) -> usize {
    match (isa, v) {
        (Isa::Avx512, _) => 14,
        (_, 1) => 12,
        _ => 6,
    }
}

/// Whether the direct kernel handles `g` at the current level ([`crate::kernels::isa`]),
/// packing its weights itself (with weights packed beforehand, see
/// [`PackedWeights::fit`]). The rule depends on the sizes and the level only, never on
/// the thread count. 1x1 kernels stay
/// with the GEMM, whose patch matrix is then the input itself or its subsample (measured
/// faster, strided or not).
pub fn applies(g: &ConvGeometry) -> bool {
    takes(g) && g.batch * g.out_spatial() >= MIN_POSITIONS
}

/// [`applies`] but for the number of positions: with weights packed beforehand
/// ([`PackedWeights`]) small pictures gain too.
fn takes(g: &ConvGeometry) -> bool {
    fits(g) && g.kernel != [1, 1, 1] && g.batch * g.output[1] >= MIN_ROWS
}

/// Whether the blocked kernel ([`forward_blocked`]) takes `g` at the current
/// level: as [`applies`] without its least size, and 1x1 kernels too, for at least a
/// block of output channels. Channels that do not fill their last block are padded with
/// zero weights, as onnxruntime pads them (fewer than a block would be mostly padding;
/// their kernel's vectors would also be narrower than a block at AVX-512).
pub fn takes_blocked(g: &ConvGeometry) -> bool {
    fits(g) && crate::kernels::blocked::block().is_some_and(|b| g.c_out >= b)
}

/// The sizes and the level the kernels here are compiled for.
fn fits(g: &ConvGeometry) -> bool {
    let level = isa::current();
    let padded = |d: usize| {
        let span = (g.output[d].checked_sub(1)?).checked_mul(g.stride[d])?;
        (g.kernel[d] - 1).checked_mul(g.dilation[d])?.checked_add(span)?.checked_add(1)
    };
    let padded_len = padded(1).zip(padded(2)).and_then(|(h, w)| h.checked_mul(w)?.checked_mul(g.c_in));
    g.groups == 1
        && g.stride[0] == 1
        && (1..=4).contains(&g.stride[1])
        && STRIDES.contains(&g.stride[2])
        && g.input[0] == 1
        && g.kernel[0] == 1
        && g.output[0] == 1
        && padded_len.is_some_and(|n| n <= MAX_PADDED)
        && g.output[2] <= MAX_ROW
        && level >= Isa::Avx2
}

/// A convolution's weights packed once for the direct kernel (`[block][tap][lane]`), for
/// weights that stay the same from run to run (an inference graph's): every forward pass
/// would otherwise pack them again, which on small pictures costs more than the direct
/// kernel saves. A tensor, so that the memory budget counts it.
#[derive(Clone)]
pub struct PackedWeights {
    /// the level they were packed at, and the kernel's layout there
    level: Isa,
    isa: Isa,
    v: usize,
    c_out: usize,
    taps: usize,
    /// the packed weights from `data[skip]`, the first 64-byte boundary ([`Self::data`])
    data: crate::Tensor,
    skip: usize,
}

impl PartialEq for PackedWeights {
    fn eq(&self, other: &Self) -> bool {
        let layout = |p: &Self| (p.level, p.isa, p.v, p.c_out, p.taps);
        layout(self) == layout(other) && self.data() == other.data()
    }
}

impl std::fmt::Debug for PackedWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "PackedWeights({} x {} at {})", self.c_out, self.taps, self.level)
    }
}

impl PackedWeights {
    /// Weights `w` (`[c_out][taps]`, taps = input channels x kernel positions) of a
    /// one-group convolution, packed for the current level: `None` below AVX2, where the
    /// direct kernel never runs, or where the packed copy would not fit the memory budget.
    pub fn new(c_out: usize, w: &[f32]) -> Option<PackedWeights> {
        let level = isa::current();
        if c_out == 0 || level < Isa::Avx2 || !w.len().is_multiple_of(c_out) {
            return None;
        }
        let (isa, v) = layout(level, c_out);
        let (taps, lanes) = (w.len() / c_out, v * width(isa));
        crate::budget::check_shape("packed convolution weights", &[c_out.div_ceil(lanes) * lanes, taps]).ok()?;
        // packed from the first 64-byte boundary of a buffer with room for it
        let len = c_out.div_ceil(lanes) * lanes * taps;
        let mut aligned = Vec::<f32>::with_capacity(len + LINE - 1);
        let skip = aligned.as_ptr().align_offset(64).min(LINE - 1);
        let room = &mut aligned.spare_capacity_mut()[..len + LINE - 1];
        let (before, rest) = room.split_at_mut(skip);
        let (values, after) = rest.split_at_mut(len);
        before.iter_mut().chain(after).for_each(|v| _ = v.write(0.0));
        pack_weights_into(taps, lanes, c_out, w, values);
        // SAFETY: every value of the buffer was written just above.
        unsafe { aligned.set_len(len + LINE - 1) };
        let data = crate::Tensor::from_parts(vec![aligned.len()], aligned);
        Some(PackedWeights { level, isa, v, c_out, taps, data, skip })
    }

    /// The packed weights, from a 64-byte boundary: vector loads of them then never
    /// straddle two cache lines.
    pub(super) fn data(&self) -> &[f32] {
        &self.data.data()[self.skip..][..self.data.numel() + 1 - LINE]
    }

    /// Whether these weights serve `g` at the current level.
    pub fn fit(&self, g: &ConvGeometry) -> bool {
        self.fit_sizes(g) && takes(g)
    }

    /// Whether these weights serve `g` in [`forward_blocked`] at the current level.
    pub fn fit_blocked(&self, g: &ConvGeometry) -> bool {
        self.fit_sizes(g) && takes_blocked(g)
    }

    fn fit_sizes(&self, g: &ConvGeometry) -> bool {
        self.serves(g.c_out, g.col_rows())
    }

    /// Whether these are `c_out` x `taps` weights packed at the current level.
    pub(super) fn serves(&self, c_out: usize, taps: usize) -> bool {
        self.level == isa::current() && self.c_out == c_out && self.taps == taps
    }
}

/// The correlation that computes the input gradient of `g` from `dy`, when this path
/// should take it. With stride 1, `dx = correlate(dy, w')` where `w'[c][o]` is `w[o][c]`
/// turned by 180°, padded by `dilation·(k-1) - pad` before each dimension. Not taken
/// when that padding would be negative, or so large that the correlation multiplies
/// mostly zeros (a 'valid' convolution: more than 1.25x the forward multiply-adds), or
/// for fewer than 8 input channels, which would leave most vector lanes idle.
pub fn input_grad_geometry(g: &ConvGeometry) -> Option<ConvGeometry> {
    // applies() bounds the padded size, so dilation·(k-1) cannot overflow
    if g.c_in < 8 || g.stride != [1, 1, 1] || !applies(g) {
        return None;
    }
    let mut pad = [0; 3];
    for (d, p) in pad.iter_mut().enumerate() {
        *p = (g.dilation[d] * (g.kernel[d] - 1)).checked_sub(g.pad[d])?;
    }
    let t = ConvGeometry {
        batch: g.batch,
        c_in: g.c_out,
        c_out: g.c_in,
        groups: g.groups,
        input: g.output,
        kernel: g.kernel,
        stride: g.stride,
        dilation: g.dilation,
        pad,
        output: g.input,
    };
    (applies(&t) && 4 * g.in_spatial() <= 5 * g.out_spatial()).then_some(t)
}

/// A piece of work: sample, output rows `r0..r1`, channel blocks `b0..b1`.
#[derive(Clone, Copy)]
struct Unit {
    n: usize,
    r0: usize,
    r1: usize,
    b0: usize,
    b1: usize,
}

/// A stride-1 2-D correlation, cut into work units.
struct Plan {
    c_in: usize,
    c_out: usize,
    input: [usize; 2],
    output: [usize; 2],
    kernel: [usize; 2],
    dilation: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
    isa: Isa,
    /// vectors per channel block
    v: usize,
    /// bands of output rows per sample, and the most rows in one
    bands: usize,
    rows: usize,
    /// groups of channel blocks
    groups: usize,
}

impl Plan {
    fn new(g: &ConvGeometry) -> Plan {
        let (isa, v) = layout(isa::current(), g.c_out);
        let [oh, ow] = [g.output[1], g.output[2]];
        let (lanes, batch) = (v * width(isa), g.batch.max(1));
        // Bands small enough for the cache; then, if that gives fewer than two units per
        // thread (uneven units need the slack), channel blocks split into groups of equal
        // size (5 blocks in groups of 1, 1, 1 and 2 left a thread idle a fifth of the
        // time), then rows further.
        let threads = num_threads();
        let mut bands = oh.div_ceil((BAND_OUTPUTS / (ow * lanes)).max(1));
        let (blocks, least) = (g.c_out.div_ceil(lanes), (2 * threads).div_ceil(batch * bands));
        // (at most twice as many as needed: each group copies its own slab)
        let equal = (least..=2 * least).find(|&k| k <= blocks && blocks % k == 0);
        let groups = equal.unwrap_or(least.min(blocks)).max(1);
        bands = bands.max((2 * threads).div_ceil(batch * groups)).min(oh).max(1);
        // a few units of equal cost: a multiple of the threads, so that none waits
        while (batch * groups * bands) % threads != 0 && batch * groups * bands < 8 * threads && bands < oh {
            bands += 1;
        }
        Plan {
            c_in: g.c_in,
            c_out: g.c_out,
            input: [g.input[1], g.input[2]],
            output: [oh, ow],
            kernel: [g.kernel[1], g.kernel[2]],
            dilation: [g.dilation[1], g.dilation[2]],
            stride: [g.stride[1], g.stride[2]],
            pad: [g.pad[1], g.pad[2]],
            isa,
            v,
            bands,
            rows: oh.div_ceil(bands),
            groups,
        }
    }

    fn lanes(&self) -> usize {
        self.v * width(self.isa)
    }
    fn taps(&self) -> usize {
        self.c_in * self.kernel[0] * self.kernel[1]
    }
    fn in_len(&self) -> usize {
        self.c_in * self.input[0] * self.input[1]
    }
    fn out_len(&self) -> usize {
        self.c_out * self.output[0] * self.output[1]
    }
    /// Width of a padded row: exactly what the output positions read.
    fn width(&self) -> usize {
        (self.output[1] - 1) * self.stride[1] + (self.kernel[1] - 1) * self.dilation[1] + 1
    }
    /// Padded input rows a band reads.
    fn slab_rows(&self) -> usize {
        (self.rows - 1) * self.stride[0] + (self.kernel[0] - 1) * self.dilation[0] + 1
    }
    /// Distance in the slab between the first values of two output rows.
    fn row_step(&self) -> usize {
        self.stride[0] * self.width()
    }
    fn slab_len(&self) -> usize {
        self.c_in * self.slab_rows() * self.width()
    }

    /// Every work unit: bands of nearly equal rows, groups of nearly equal blocks.
    fn units(&self, batch: usize) -> Vec<Unit> {
        let (oh, bands, groups) = (self.output[0], self.bands, self.groups);
        let blocks = self.c_out.div_ceil(self.lanes());
        let mut units = Vec::with_capacity(batch * bands * groups);
        for n in 0..batch {
            for i in 0..bands {
                for j in 0..groups {
                    let (r0, r1) = (i * oh / bands, (i + 1) * oh / bands);
                    let (b0, b1) = (j * blocks / groups, (j + 1) * blocks / groups);
                    units.push(Unit { n, r0, r1, b0, b1 });
                }
            }
        }
        units
    }

    /// Copies the padded rows a band from output row `r0` reads, of one sample
    /// (`c_in x h x w`), into `slab`: zero where they lie in the padding (or past the
    /// input's end).
    fn fill_slab(&self, x: &[f32], r0: usize, slab: &mut [f32]) {
        let [h, w] = self.input;
        let (width, slab_rows) = (self.width(), self.slab_rows());
        // row[s] = src[s - pad] where that exists (the output may not reach the end)
        let lo = self.pad[1].min(width);
        let hi = (self.pad[1] + w).min(width);
        for (c, plane) in slab.chunks_exact_mut(slab_rows * width).enumerate() {
            for (i, row) in plane.chunks_exact_mut(width).enumerate() {
                let Some(src_row) = (r0 * self.stride[0] + i).checked_sub(self.pad[0]).filter(|&r| r < h) else {
                    row.fill(0.0);
                    continue;
                };
                let src = &x[(c * h + src_row) * w..][..w];
                row[..lo].fill(0.0);
                row[lo..hi].copy_from_slice(&src[..hi - lo]);
                row[hi..].fill(0.0);
            }
        }
    }

    /// Offset of each tap `(c, ky, kx)` in the slab, from its position's first value.
    fn tap_offsets(&self) -> Vec<usize> {
        let (width, plane) = (self.width(), self.slab_rows() * self.width());
        let mut taps = Vec::with_capacity(self.taps());
        for c in 0..self.c_in {
            for ky in 0..self.kernel[0] {
                for kx in 0..self.kernel[1] {
                    taps.push(c * plane + ky * self.dilation[0] * width + kx * self.dilation[1]);
                }
            }
        }
        taps
    }

    /// A row of outputs as pieces of at most `block_max` positions, as even as possible.
    fn row_pieces(&self) -> Vec<usize> {
        let ow = self.output[1];
        let pieces = ow.div_ceil(block_max(self.isa, self.v));
        (0..pieces).map(|i| ow / pieces + usize::from(i < ow % pieces)).collect()
    }
}

/// Taps per parallel task when weights are repacked, and per tile within a task: a tile
/// reads and writes a few cache lines per channel, so both sides stay in L1 cache.
const PACK_TASK_TAPS: usize = 256;
const PACK_TILE_TAPS: usize = 16;

/// Weights `w[o][tap]` as blocks of `lanes` output channels: `[block][tap][lane]`, zero
/// beyond `c_out`. On all threads: for one sample this is a tenth of the work.
fn pack_weights(taps: usize, lanes: usize, c_out: usize, w: &[f32]) -> Vec<f32> {
    let len = c_out.div_ceil(lanes) * lanes * taps;
    let mut out = Vec::with_capacity(len);
    pack_weights_into(taps, lanes, c_out, w, &mut out.spare_capacity_mut()[..len]);
    // SAFETY: pack_weights_into wrote every value.
    unsafe { out.set_len(len) };
    out
}

/// [`pack_weights`] into `out`, of exactly the packed size.
fn pack_weights_into(taps: usize, lanes: usize, c_out: usize, w: &[f32], out: &mut [MaybeUninit<f32>]) {
    crate::kernels::par_fill(out, PACK_TASK_TAPS * lanes, |task, out| {
        // tiles of a few taps; a tile that crosses into the next block is cut there
        let mut s = task * PACK_TASK_TAPS;
        for mut tile in out.chunks_mut(PACK_TILE_TAPS * lanes) {
            while !tile.is_empty() {
                let (b, t0) = (s / taps, s % taps);
                let n = (tile.len() / lanes).min(taps - t0);
                let (run, rest) = tile.split_at_mut(n * lanes);
                for l in 0..lanes {
                    let o = b * lanes + l;
                    for j in 0..n {
                        run[j * lanes + l].write(if o < c_out { w[o * taps + t0 + j] } else { 0.0 });
                    }
                }
                s += n;
                tile = rest;
            }
        }
    });
}

/// The inverse of [`pack_weights`]: `w[o][tap]` from `[block][tap][lane]`.
fn unpack_weights(p: &Plan, packed: &[f32], w: &mut [f32]) {
    let (taps, lanes) = (p.taps(), p.lanes());
    // 8 channels per task share each cache line read
    w.par_chunks_mut(8 * taps).enumerate().for_each(|(task, rows)| {
        for t0 in (0..taps).step_by(PACK_TILE_TAPS) {
            let t1 = (t0 + PACK_TILE_TAPS).min(taps);
            for (i, row) in rows.chunks_exact_mut(taps).enumerate() {
                let o = task * 8 + i;
                let src = &packed[(o / lanes * taps) * lanes + o % lanes..];
                for (t, v) in row[t0..t1].iter_mut().enumerate() {
                    *v = src[(t0 + t) * lanes];
                }
            }
        }
    });
}

/// `y[n] = correlate(x[n], w) + bias` for every sample, with `w` packed beforehand if
/// given (it must fit `g`: [`PackedWeights::fit`]).
pub(crate) fn forward(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    packed: Option<&PackedWeights>,
    bias: Option<&[f32]>,
    y: &mut [f32],
    then: Option<super::Epilogue>,
) {
    let p = Plan::new(g);
    debug_assert!(packed.is_none_or(|p| p.fit(g)), "packed weights that fit");
    match packed {
        Some(packed) => forward_packed(&p, g.batch, x, packed.data(), bias, y, then),
        _ => forward_packed(&p, g.batch, x, &pack_weights(p.taps(), p.lanes(), p.c_out, w), bias, y, then),
    }
}

/// [`forward`] with weights from [`pack_weights`].
fn forward_packed(
    p: &Plan,
    batch: usize,
    x: &[f32],
    packed: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    then: Option<super::Epilogue>,
) {
    let lanes = p.lanes();
    let taps = p.tap_offsets();
    let chunks = tap_chunks(&taps, lanes);
    let pieces = p.row_pieces();
    let kernels: Vec<ForwardKernel> = pieces.iter().map(|&n| forward_kernel(p.isa, p.v, n, p.stride[1])).collect();
    let (ow, row_step, osp) = (p.output[1], p.row_step(), p.output[0] * p.output[1]);
    let y_ptr = SharedMut(y.as_mut_ptr());
    let block_len = p.taps() * lanes;
    p.units(batch).par_iter().for_each(|&Unit { n, r0, r1, b0, b1 }| {
        let positions = (r1 - r0) * ow;
        // the outputs, rounded up to whole 8 x 8 blocks for the transpose
        with_scratch(p.slab_len() + positions.next_multiple_of(8) * lanes, |scratch| {
            let (slab, out) = scratch.split_at_mut(p.slab_len());
            p.fill_slab(&x[n * p.in_len()..][..p.in_len()], r0, slab);
            for b in b0..b1 {
                let wb = &packed[b * block_len..][..block_len];
                let bias_lanes = bias_lanes(bias, b * lanes, lanes);
                for (c, chunk_taps) in chunks.iter().enumerate() {
                    let wc = wb[c * (CHUNK_WEIGHTS / lanes) * lanes..].as_ptr();
                    for r in 0..r1 - r0 {
                        let mut ox = 0;
                        for (&len, kernel) in pieces.iter().zip(&kernels) {
                            // SAFETY: takes() checked the CPU; every position's taps
                            // lie in the slab by construction of its size, the chunk's
                            // weights in wb, and the piece's outputs in `out`.
                            unsafe {
                                let o = Out {
                                    at: out.as_mut_ptr().add((r * ow + ox) * lanes),
                                    position: lanes,
                                    vector: width(p.isa),
                                    vectors: p.v,
                                    bias: if c == 0 { bias_lanes.as_ptr() } else { std::ptr::null() },
                                    residual: std::ptr::null(),
                                    clamp: None,
                                    prefetch: false,
                                };
                                let x = slab.as_ptr().add(r * row_step + ox * p.stride[1]);
                                kernel(x, chunk_taps, wc, &o);
                            }
                            ox += len;
                        }
                    }
                }
                // out[position][lane] -> y[channel][position], 8 x 8 at a time
                let channels = lanes.min(p.c_out - b * lanes);
                let first = (n * p.c_out + b * lanes) * osp + r0 * ow;
                for l0 in (0..channels).step_by(8) {
                    for i0 in (0..positions).step_by(8) {
                        let size = [(channels - l0).min(8), (positions - i0).min(8)];
                        // SAFETY: AVX2 checked; `out` holds positions rounded up to 8;
                        // this unit alone writes rows r0..r1 of its channels.
                        unsafe {
                            let dst = y_ptr.get().add(first + l0 * osp + i0);
                            crate::kernels::transpose_8x8(&out[i0 * lanes + l0..], lanes, dst, osp, size);
                        }
                    }
                }
                if let Some(f) = then {
                    for l in 0..channels {
                        // SAFETY: as above, and the writes are done.
                        let run =
                            unsafe { std::slice::from_raw_parts_mut(y_ptr.get().add(first + l * osp), positions) };
                        f(first + l * osp, run);
                    }
                }
            }
        });
    });
}

/// `y = clamp(correlate(x, w) + bias + residual)`, then `then`, returned, with `y` (and
/// `residual`) in the channel-blocked layout ([`crate::kernels::blocked`]) and `x` in it
/// too if `x_blocked`, else `[N][C][H][W]`. A residual given by value is summed in place:
/// its buffer becomes `y`, which saves a stream of memory traffic as large as the output
/// (onnxruntime sums in place too). The weights must fit `g`
/// ([`PackedWeights::fit_blocked`]). The outputs are stored where they belong, with the
/// bias, the sum and the clamp applied in registers: no patch matrix, no transpose, no
/// pass over the outputs but `then`. The caller checks the output's size against the
/// memory budget.
#[allow(clippy::too_many_arguments)]
pub fn forward_blocked(
    g: &ConvGeometry,
    x: &[f32],
    x_blocked: bool,
    packed: &PackedWeights,
    bias: Option<&[f32]>,
    residual: Option<Cow<[f32]>>,
    clamp: Option<[f32; 2]>,
    then: Option<super::Epilogue>,
) -> Vec<f32> {
    assert!(packed.fit_blocked(g), "blocked convolution weights that fit {g:?}");
    assert!(bias.is_none_or(|b| b.len() == g.c_out), "blocked convolution bias size");
    let p = Plan::new(g);
    let block = width(p.isa);
    // the input's block: plain input is blocked input with blocks of one channel
    let bin = if x_blocked { block } else { 1 };
    let (blocks_in, blocks_out) = (g.c_in.div_ceil(bin), g.c_out.div_ceil(block));
    let ([h, w], [oh, ow]) = (p.input, p.output);
    let osp = oh * ow;
    let len = [blocks_out, osp, block].iter().try_fold(g.batch, |n, &d| n.checked_mul(d));
    let len = len.expect("blocked convolution output size");
    assert!(residual.as_ref().is_none_or(|r| r.len() == len), "blocked convolution residual size");
    let in_len = blocks_in * h * w * bin;
    assert_eq!(x.len(), g.batch * in_len, "blocked convolution input size");
    // Input that needs no padding is read where it lies, else from a padded slab. A 1x1
    // kernel with a stride along rows reads one position in two (or fewer): each pass over
    // channel blocks fetched their lines again, half of each fetch unused, so those
    // positions are gathered into a slab once, then read as by a stride-1 kernel (ResNet's
    // downsampling layers at batch 8 were 1.3x onnxruntime's time).
    let reach = (oh - 1) * p.stride[0] + (p.kernel[0] - 1) * p.dilation[0] + 1;
    let inside = p.pad == [0, 0] && reach <= h && p.width() <= w;
    let gather = inside && p.kernel == [1, 1] && p.stride[1] > 1;
    let in_place = inside && !gather;
    // A 1x1 kernel reads each block of input channels once per piece, from lines too far
    // apart for the hardware to fetch them ahead: the kernel does (ResNet-50's 1x1 layers
    // with more input than output channels were 15% slower at batch 8 without).
    let prefetch = p.kernel == [1, 1] && x_blocked;
    let (pitch, plane) = if gather {
        (ow, p.rows * ow)
    } else if in_place {
        (w, h * w)
    } else {
        (p.width(), p.slab_rows() * p.width())
    };
    let mut taps = Vec::with_capacity(p.taps());
    for c in 0..g.c_in {
        for ky in 0..p.kernel[0] {
            for kx in 0..p.kernel[1] {
                let at = (ky * p.dilation[0] * pitch + kx * p.dilation[1]) * bin;
                taps.push(c / bin * plane * bin + at + c % bin);
            }
        }
    }
    let (step, row_step) = if gather { (bin, pitch * bin) } else { (p.stride[1] * bin, p.stride[0] * pitch * bin) };
    let slab_len = if in_place { 0 } else { blocks_in * plane * bin };
    let lanes = p.lanes();
    let chunks = tap_chunks(&taps, lanes);
    let pieces = p.row_pieces();
    let kernels: Vec<ForwardKernel> = pieces.iter().map(|&n| forward_kernel(p.isa, p.v, n, step)).collect();
    let block_len = p.taps() * lanes;
    let packed = packed.data();
    let biases: Vec<[f32; 32]> = (0..g.c_out.div_ceil(lanes)).map(|b| bias_lanes(bias, b * lanes, lanes)).collect();
    // With more input than output channels, the input is what streams from memory: then
    // as many channel blocks as have their weights fit one chunk take each piece of a row
    // in turn, and the piece's input, read once, serves them all from L1 cache. (Block by
    // block, the first block's pass read the band's input from memory and the others from
    // L2: ResNet's 256->64 layers at batch 8 were 10% slower.) With fewer input channels
    // the outputs are what streams, and writing more output planes at once made ResNet's
    // 64->256 layers 10% slower.
    let together = match chunks.len() {
        1 if g.c_in > g.c_out => CHUNK_WEIGHTS / block_len,
        _ => 1,
    };
    // every output is written below, once (each unit its rows of its blocks), after its
    // residual is read
    let (mut y, residual) = output_and_residual(residual, len);
    let y_ptr = SharedMut(y.as_mut_ptr());
    p.units(g.batch).par_iter().for_each(|&Unit { n, r0, r1, b0, b1 }| {
        with_scratch(slab_len, |slab| {
            let xs = &x[n * in_len..][..in_len];
            let src = if in_place {
                xs[r0 * row_step..].as_ptr()
            } else if gather {
                gather_blocked_slab(&p, bin, xs, r0..r1, slab);
                slab.as_ptr()
            } else {
                fill_blocked_slab(&p, bin, xs, r0, slab);
                slab.as_ptr()
            };
            for group in (b0..b1).step_by(together) {
                let blocks = group..(group + together).min(b1);
                for (c, chunk_taps) in chunks.iter().enumerate() {
                    for r in 0..r1 - r0 {
                        let mut ox = 0;
                        for (&len, kernel) in pieces.iter().zip(&kernels) {
                            for b in blocks.clone() {
                                let wc = packed[b * block_len..][..block_len][c * (CHUNK_WEIGHTS / lanes) * lanes..]
                                    .as_ptr();
                                let first = ((n * blocks_out + b * p.v) * osp + (r0 + r) * ow + ox) * block;
                                // SAFETY: fits() checked the CPU; every position's taps lie
                                // in the slab (or, unpadded, in the sample) by construction,
                                // the chunk's weights in `packed`, and the piece's outputs
                                // (and residual) in this unit's rows of its blocks, which no
                                // other unit writes; the kernel reads a piece's residual
                                // before it stores there.
                                unsafe {
                                    let o = Out {
                                        at: y_ptr.get().add(first),
                                        position: block,
                                        vector: osp * block,
                                        vectors: p.v.min(blocks_out - b * p.v),
                                        bias: if c == 0 { biases[b].as_ptr() } else { std::ptr::null() },
                                        residual: match residual {
                                            Some(r) if c == 0 => r.get().add(first).cast_const(),
                                            _ => std::ptr::null(),
                                        },
                                        clamp: if c + 1 == chunks.len() { clamp } else { None },
                                        prefetch,
                                    };
                                    kernel(src.add(r * row_step + ox * step), chunk_taps, wc, &o);
                                }
                            }
                            ox += len;
                        }
                    }
                }
                if let Some(f) = then {
                    for b in blocks {
                        for v in 0..p.v.min(blocks_out - b * p.v) {
                            let first = ((n * blocks_out + b * p.v + v) * osp + r0 * ow) * block;
                            // SAFETY: as above, and the writes are done.
                            let run = unsafe {
                                std::slice::from_raw_parts_mut(y_ptr.get().add(first), (r1 - r0) * ow * block)
                            };
                            f(first, run);
                        }
                    }
                }
            }
        });
    });
    // SAFETY: the units cover every sample, row and block, and the kernels stored every
    // position of each.
    unsafe { y.set_len(len) };
    y
}

/// The output buffer of a blocked convolution (`len` values, to be written), and where its
/// residual lies: a residual given by value becomes the output, summed in place; one given
/// by reference is read where it is.
pub(super) fn output_and_residual(residual: Option<Cow<[f32]>>, len: usize) -> (Vec<f32>, Option<SharedMut>) {
    match residual {
        Some(Cow::Owned(mut r)) => {
            let at = SharedMut(r.as_mut_ptr());
            (r, Some(at))
        }
        Some(Cow::Borrowed(r)) => (Vec::with_capacity(len), Some(SharedMut(r.as_ptr().cast_mut()))),
        None => (Vec::with_capacity(len), None),
    }
}

/// [`Plan::fill_slab`] for a blocked sample `x` (`[C/block][h][w][block]`; a block of
/// one is `[C][h][w]`): the slab is `[C/block][slab rows][width][block]`.
fn fill_blocked_slab(p: &Plan, block: usize, x: &[f32], r0: usize, slab: &mut [f32]) {
    let [h, w] = p.input;
    let (width, slab_rows) = (p.width(), p.slab_rows());
    let lo = p.pad[1].min(width);
    let hi = (p.pad[1] + w).min(width);
    for (cb, plane) in slab.chunks_exact_mut(slab_rows * width * block).enumerate() {
        for (i, row) in plane.chunks_exact_mut(width * block).enumerate() {
            let Some(src_row) = (r0 * p.stride[0] + i).checked_sub(p.pad[0]).filter(|&r| r < h) else {
                row.fill(0.0);
                continue;
            };
            let src = &x[(cb * h + src_row) * w * block..][..(hi - lo) * block];
            row[..lo * block].fill(0.0);
            row[lo * block..hi * block].copy_from_slice(src);
            row[hi * block..].fill(0.0);
        }
    }
}

/// The input positions a 1x1 kernel with a stride reads for output rows `rows`, from a
/// blocked sample `x` (`[C/block][h][w][block]`) into the first rows of `slab`'s planes
/// (`[C/block][p.rows][ow][block]`).
fn gather_blocked_slab(p: &Plan, block: usize, x: &[f32], rows: std::ops::Range<usize>, slab: &mut [f32]) {
    let ([h, w], ow, [sy, sx]) = (p.input, p.output[1], p.stride);
    let plane = p.rows * ow * block;
    for (cb, out) in slab.chunks_exact_mut(plane).enumerate() {
        for (i, r) in rows.clone().enumerate() {
            let src = &x[(cb * h + r * sy) * w * block..][..w * block];
            let dst = &mut out[i * ow * block..][..ow * block];
            for (d, s) in dst.chunks_exact_mut(block).zip(src.chunks(sx * block)) {
                d.copy_from_slice(&s[..block]);
            }
        }
    }
}

/// The taps in chunks whose weights stay in L2 cache ([`CHUNK_WEIGHTS`]): at least one,
/// so that the outputs start from the bias even without taps.
pub(super) fn tap_chunks(taps: &[usize], lanes: usize) -> Vec<&[usize]> {
    let mut chunks: Vec<&[usize]> = taps.chunks(CHUNK_WEIGHTS / lanes).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    chunks
}

/// The bias of channels `first..first + lanes` (zero past its end, or without one).
pub(super) fn bias_lanes(bias: Option<&[f32]>, first: usize, lanes: usize) -> [f32; 32] {
    let mut out = [0.0f32; 32];
    for (l, v) in out[..lanes].iter_mut().enumerate() {
        *v = bias.and_then(|b| b.get(first + l)).copied().unwrap_or(0.0);
    }
    out
}

/// `dx` from `dy` by the correlation `t` of [`input_grad_geometry`] (overwrites `dx`).
pub(crate) fn backward_input(g: &ConvGeometry, t: &ConvGeometry, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (c_in, c_out, spatial) = (g.c_in, g.c_out, g.kernel[1] * g.kernel[2]);
    // turned[c][o][k] = w[o][c][last - k]
    let turned = crate::kernels::par_filled(w.len(), c_out * spatial, |c, dst| {
        for (o, d) in dst.chunks_exact_mut(spatial).enumerate() {
            d.iter_mut().zip(w[(o * c_in + c) * spatial..][..spatial].iter().rev()).for_each(|(d, &v)| {
                d.write(v);
            });
        }
    });
    let p = Plan::new(t);
    forward_packed(&p, t.batch, dy, &pack_weights(p.taps(), p.lanes(), p.c_out, &turned), None, dx, None);
}

/// `dw[o][tap] = Σ_n Σ_position dy[n][o][position] · padded_x[n][position + offset(tap)]`.
/// The units are split into one run per thread whose partial sums are added in order,
/// so the result depends on the thread count only, never on timing.
pub(crate) fn backward_weight(g: &ConvGeometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let p = Plan::new(g);
    let lanes = p.lanes();
    let blocks = p.c_out.div_ceil(lanes);
    let taps = p.tap_offsets();
    let n_taps = taps.len();
    let step = block_max(p.isa, p.v);
    let (ow, row_step, osp) = (p.output[1], p.row_step(), p.output[0] * p.output[1]);
    let units = p.units(g.batch);
    let per_run = units.len().div_ceil(num_threads().min(units.len()).max(1)).max(1);
    let mut partials: Vec<Vec<f32>> = units
        .par_chunks(per_run)
        .map(|run| {
            let mut acc = vec![0.0f32; blocks * n_taps * lanes];
            with_scratch(p.slab_len() + p.rows * ow * lanes, |scratch| {
                let (slab, dyt) = scratch.split_at_mut(p.slab_len());
                for &Unit { n, r0, r1, b0, b1 } in run {
                    p.fill_slab(&x[n * p.in_len()..][..p.in_len()], r0, slab);
                    let positions = (r1 - r0) * ow;
                    for b in b0..b1 {
                        // dy of this channel block as [position][lane]
                        let dyt = &mut dyt[..positions * lanes];
                        dyt.fill(0.0);
                        for l in 0..lanes.min(p.c_out - b * lanes) {
                            let src = &dy[n * p.out_len() + (b * lanes + l) * osp + r0 * ow..][..positions];
                            for (i, &v) in src.iter().enumerate() {
                                dyt[i * lanes + l] = v;
                            }
                        }
                        for t0 in (0..n_taps).step_by(step) {
                            let count = step.min(n_taps - t0);
                            let kernel = weight_grad_kernel(p.isa, p.v, count, p.stride[1]);
                            // SAFETY: as in forward; acc holds every tap of every block.
                            unsafe {
                                let sums = acc.as_mut_ptr().add((b * n_taps + t0) * lanes);
                                let shape = [r1 - r0, ow, row_step];
                                kernel(slab.as_ptr(), &taps[t0..t0 + count], dyt.as_ptr(), shape, sums);
                            }
                        }
                    }
                }
            });
            acc
        })
        .collect();
    let (first, rest) = partials.split_first_mut().expect("at least one band");
    first.par_chunks_mut(1 << 15).enumerate().for_each(|(i, sum)| {
        for other in rest.iter() {
            sum.iter_mut().zip(&other[i << 15..]).for_each(|(s, &v)| *s += v);
        }
    });
    unpack_weights(&p, first, dw);
}

/// Where a forward kernel keeps the outputs of a piece, and how it starts and ends them.
pub(super) struct Out {
    /// the piece's first output: vector `v` of position `j` is at `j·position + v·vector`
    pub(super) at: *mut f32,
    pub(super) position: usize,
    pub(super) vector: usize,
    /// the vectors that exist (a last block of channels may have fewer than `V`)
    pub(super) vectors: usize,
    /// start from these `V` vectors (the bias) instead of the partial sums at `at`
    pub(super) bias: *const f32,
    /// with `bias`: add these too after the taps, laid out as the outputs (a residual
    /// sum); may be null
    pub(super) residual: *const f32,
    /// clamp to `[lo, hi]` before storing (after the last chunk of taps)
    pub(super) clamp: Option<[f32; 2]>,
    /// a 1x1 kernel on blocked input: fetch the input of the channel blocks two ahead
    pub(super) prefetch: bool,
}

/// `out[j][v] (+)= Σ_t x[j·step + taps[t]] · w[t][v]` for the positions `j` of a piece:
/// added to the partial sums there, or to the bias (and residual) given in [`Out`].
pub(super) type ForwardKernel = unsafe fn(*const f32, &[usize], *const f32, &Out);

/// `sums[t][lane] += Σ_{r, i} x[r·row_step + i·stride + taps[t]] · dyt[r·ow + i][lane]`
/// over `[rows, ow, row_step]`.
type WeightGradKernel = unsafe fn(*const f32, &[usize], *const f32, [usize; 3], *mut f32);

/// The register blocks of 1 to 14 positions (or taps) of one kernel, for `v` vectors
/// of channels, at each step between positions: the [`STRIDES`], and for the forward
/// kernel also those times the 8 (AVX2) or 16 (AVX-512) channels of a block.
#[cfg(target_arch = "x86_64")]
macro_rules! by_block_size {
    ($isa:ident :: $f:ident, $v:literal, [$($s:literal),*]) => {
        [$(by_block_size!($isa::$f, $v, $s)),*]
    };
    ($isa:ident :: $f:ident, $v:literal, $s:literal) => {
        [
            $isa::$f::<$v, 1, $s>,
            $isa::$f::<$v, 2, $s>,
            $isa::$f::<$v, 3, $s>,
            $isa::$f::<$v, 4, $s>,
            $isa::$f::<$v, 5, $s>,
            $isa::$f::<$v, 6, $s>,
            $isa::$f::<$v, 7, $s>,
            $isa::$f::<$v, 8, $s>,
            $isa::$f::<$v, 9, $s>,
            $isa::$f::<$v, 10, $s>,
            $isa::$f::<$v, 11, $s>,
            $isa::$f::<$v, 12, $s>,
            $isa::$f::<$v, 13, $s>,
            $isa::$f::<$v, 14, $s>,
        ]
    };
}

/// The forward kernel for `v` vectors of channels, `n` positions and a step of `step`
/// values between positions: a stride, or a stride times the block (8 at AVX2, 16 at
/// AVX-512) in the channel-blocked layout.
pub(super) fn forward_kernel(isa: Isa, v: usize, n: usize, step: usize) -> ForwardKernel {
    #[cfg(target_arch = "x86_64")]
    {
        // (the steps of each table, in order)
        const AVX2_STEPS: [usize; 6] = [1, 2, 4, 8, 16, 32];
        const AVX2: [[[ForwardKernel; 14]; 6]; 2] = [
            by_block_size!(avx2::forward, 1, [1, 2, 4, 8, 16, 32]),
            by_block_size!(avx2::forward, 2, [1, 2, 4, 8, 16, 32]),
        ];
        const AVX512_STEPS: [usize; 6] = [1, 2, 4, 16, 32, 64];
        const AVX512: [[[ForwardKernel; 14]; 6]; 2] = [
            by_block_size!(avx512::forward, 1, [1, 2, 4, 16, 32, 64]),
            by_block_size!(avx512::forward, 2, [1, 2, 4, 16, 32, 64]),
        ];
        let (steps, table) = match isa {
            Isa::Avx512 => (AVX512_STEPS, &AVX512),
            _ => (AVX2_STEPS, &AVX2),
        };
        let s = steps.iter().position(|&s| s == step).expect("a step the kernels are compiled for");
        table[v - 1][s][n - 1]
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("direct convolution needs x86-64 ({isa:?}, {v}, {n}, {step})")
}

/// The weight-gradient kernel for `v` vectors of channels, `n` taps and a stride of `s`.
fn weight_grad_kernel(isa: Isa, v: usize, n: usize, s: usize) -> WeightGradKernel {
    #[cfg(target_arch = "x86_64")]
    {
        const AVX2: [[[WeightGradKernel; 14]; 3]; 2] =
            [by_block_size!(avx2::weight_grad, 1, [1, 2, 4]), by_block_size!(avx2::weight_grad, 2, [1, 2, 4])];
        const AVX512: [[[WeightGradKernel; 14]; 3]; 2] =
            [by_block_size!(avx512::weight_grad, 1, [1, 2, 4]), by_block_size!(avx512::weight_grad, 2, [1, 2, 4])];
        match isa {
            Isa::Avx512 => AVX512[v - 1][s.ilog2() as usize][n - 1],
            _ => AVX2[v - 1][s.ilog2() as usize][n - 1],
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("direct convolution needs x86-64 ({isa:?}, {v}, {n}, {s})")
}

/// One module of kernels per instruction set, from the same source.
#[cfg(target_arch = "x86_64")]
macro_rules! kernels {
    (
        $isa:ident, $feature:literal, $width:literal, $vector:ident, $zero:ident, $load:ident, $store:ident,
        $set1:ident, $fma:ident, $add:ident, $max:ident, $min:ident
    ) => {
        #[allow(clippy::needless_range_loop)] // register blocks read best as indexed loops
        mod $isa {
            use std::arch::x86_64::*;

            /// See [`super::ForwardKernel`]: `P` positions, `V` vectors of channels,
            /// `S` values between neighbouring positions' inputs.
            #[target_feature(enable = $feature)]
            pub unsafe fn forward<const V: usize, const P: usize, const S: usize>(
                x: *const f32,
                taps: &[usize],
                w: *const f32,
                o: &super::Out,
            ) {
                let mut acc = [[$zero(); V]; P];
                let vectors = o.vectors.min(V);
                if o.bias.is_null() {
                    for j in 0..P {
                        for v in 0..vectors {
                            acc[j][v] = $load(o.at.add(j * o.position + v * o.vector));
                        }
                    }
                } else {
                    for v in 0..V {
                        let b = $load(o.bias.add(v * $width));
                        for j in 0..P {
                            acc[j][v] = b;
                        }
                    }
                    // the residual is added after the taps, which run while it comes
                    // from memory (added first, every accumulator waited for it)
                    if !o.residual.is_null() {
                        for j in 0..P {
                            for v in 0..vectors {
                                _mm_prefetch::<_MM_HINT_T0>(o.residual.add(j * o.position + v * o.vector).cast());
                            }
                        }
                    }
                }
                // (two loops, one with the fetches: a flag tested in one loop made the
                // AVX2 3x3 kernels 10% slower)
                if o.prefetch && S == $width {
                    add_taps::<V, P, S, true>(&mut acc, x, taps, w);
                } else {
                    add_taps::<V, P, S, false>(&mut acc, x, taps, w);
                }
                if !o.bias.is_null() && !o.residual.is_null() {
                    for j in 0..P {
                        for v in 0..vectors {
                            let r = $load(o.residual.add(j * o.position + v * o.vector));
                            acc[j][v] = $add(acc[j][v], r);
                        }
                    }
                }
                if let Some([lo, hi]) = o.clamp {
                    // bound first, value second: a NaN value stays NaN
                    let (lo, hi) = ($set1(lo), $set1(hi));
                    for j in 0..P {
                        for v in 0..V {
                            acc[j][v] = $min(hi, $max(lo, acc[j][v]));
                        }
                    }
                }
                for j in 0..P {
                    for v in 0..vectors {
                        $store(o.at.add(j * o.position + v * o.vector), acc[j][v]);
                    }
                }
            }

            /// `acc[j][v] += Σ_t x[j·S + taps[t]] · w[t][v]`; with `PREFETCH`, also fetches one
            /// line of the positions' input two blocks of channels ahead per tap (the
            /// piece's lines all at once stalled the taps).
            #[target_feature(enable = $feature)]
            #[inline]
            unsafe fn add_taps<const V: usize, const P: usize, const S: usize, const PREFETCH: bool>(
                acc: &mut [[$vector; V]; P],
                x: *const f32,
                taps: &[usize],
                w: *const f32,
            ) {
                for (t, &off) in taps.iter().enumerate() {
                    // (the tap ahead adds its lane, t % width, to position t % width of
                    // its block: the fetch is that position's line, or its second one
                    // where the input does not start on a line)
                    let line = (t % $width) * super::LINE;
                    if PREFETCH && line < P * S {
                        if let Some(&ahead) = taps.get(t + 2 * $width) {
                            _mm_prefetch::<_MM_HINT_T0>(x.wrapping_add(ahead + line).cast());
                        }
                    }
                    let mut wv = [$zero(); V];
                    for v in 0..V {
                        wv[v] = $load(w.add(t * V * $width + v * $width));
                    }
                    let xt = x.add(off);
                    for j in 0..P {
                        let xv = $set1(*xt.add(j * S));
                        for v in 0..V {
                            acc[j][v] = $fma(xv, wv[v], acc[j][v]);
                        }
                    }
                }
            }

            /// See [`super::WeightGradKernel`]: `T` taps, `V` vectors of channels,
            /// stride `S`.
            #[target_feature(enable = $feature)]
            pub unsafe fn weight_grad<const V: usize, const T: usize, const S: usize>(
                x: *const f32,
                taps: &[usize],
                dyt: *const f32,
                [rows, ow, row_step]: [usize; 3],
                sums: *mut f32,
            ) {
                let lanes = V * $width;
                let mut off = [0usize; T];
                off.copy_from_slice(&taps[..T]);
                let mut acc = [[$zero(); V]; T];
                for t in 0..T {
                    for v in 0..V {
                        acc[t][v] = $load(sums.add(t * lanes + v * $width));
                    }
                }
                for r in 0..rows {
                    let (xr, dr) = (x.add(r * row_step), dyt.add(r * ow * lanes));
                    for i in 0..ow {
                        let mut d = [$zero(); V];
                        for v in 0..V {
                            d[v] = $load(dr.add(i * lanes + v * $width));
                        }
                        for t in 0..T {
                            let xv = $set1(*xr.add(i * S + off[t]));
                            for v in 0..V {
                                acc[t][v] = $fma(xv, d[v], acc[t][v]);
                            }
                        }
                    }
                }
                for t in 0..T {
                    for v in 0..V {
                        $store(sums.add(t * lanes + v * $width), acc[t][v]);
                    }
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
kernels!(
    avx2,
    "avx2,fma",
    8,
    __m256,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps,
    _mm256_max_ps,
    _mm256_min_ps
);
#[cfg(target_arch = "x86_64")]
kernels!(
    avx512,
    "avx512f",
    16,
    __m512,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps,
    _mm512_max_ps,
    _mm512_min_ps
);

#[cfg(test)]
mod tests {
    use super::*;

    fn conv2d(batch: usize, c_in: usize, size: usize, c_out: usize, k: usize, pad: usize) -> ConvGeometry {
        let out = size + 2 * pad + 1 - k;
        ConvGeometry {
            batch,
            c_in,
            c_out,
            groups: 1,
            input: [1, size, size],
            kernel: [1, k, k],
            stride: [1; 3],
            dilation: [1; 3],
            pad: [0, pad, pad],
            output: [1, out, out],
        }
    }

    #[test]
    fn the_rule_depends_on_sizes_and_level_never_on_threads() {
        let cases = [
            (conv2d(64, 1, 28, 6, 5, 2), true),    // LeNet-5's first layer
            (conv2d(1, 192, 28, 32, 5, 2), true),  // GoogLeNet's 5x5 branch
            (conv2d(1, 512, 7, 512, 3, 1), false), // 49 positions: fewer than MIN_POSITIONS
            (conv2d(8, 512, 7, 512, 3, 1), true),  // the same layer at batch 8
            (conv2d(1, 64, 3, 64, 3, 0), false),   // one output row
            (conv2d(1, 64, 56, 64, 1, 0), false),  // pointwise: the GEMM takes the input as it is
            (ConvGeometry { stride: [1, 4, 4], output: [1, 55, 55], ..conv2d(1, 3, 224, 64, 11, 2) }, true), // AlexNet's first
            (ConvGeometry { stride: [1, 3, 3], output: [1, 74, 74], ..conv2d(1, 3, 224, 64, 3, 0) }, false), // no stride-3 kernels
            (ConvGeometry { stride: [1, 2, 2], output: [1, 28, 28], ..conv2d(1, 64, 56, 128, 1, 0) }, false), // 1x1/2: measured faster by GEMM
            (conv2d(1, 8, 5000, 8, 3, 1), false), // rows longer than MAX_ROW
        ];
        for isa in Isa::supported() {
            for threads in [1, 16] {
                let got: Vec<bool> =
                    crate::kernels::scoped(isa, threads, || cases.iter().map(|(g, _)| applies(g)).collect()).unwrap();
                let want: Vec<bool> = cases.iter().map(|&(_, w)| w && isa >= Isa::Avx2).collect();
                assert_eq!(got, want, "at {isa} with {threads} threads");
            }
        }
    }

    #[test]
    fn packed_weights_serve_small_pictures_at_their_level_only() {
        use crate::kernels::scoped;
        let g = conv2d(1, 512, 7, 512, 3, 1); // too few positions to pack on every call
        let w = vec![0.5f32; g.weight_len()];
        for isa in Isa::supported() {
            let packed = scoped(isa, 1, || PackedWeights::new(512, &w)).unwrap();
            assert_eq!(packed.is_some(), isa >= Isa::Avx2, "at {isa}");
            assert!(
                !scoped(isa, 1, || packed.as_ref().is_some_and(|p| p.fit(&conv2d(1, 4608, 7, 512, 1, 0)))).unwrap(),
                "1x1"
            );
            let Some(packed) = packed else { continue };
            for other in Isa::supported() {
                assert_eq!(scoped(other, 2, || packed.fit(&g)).unwrap(), other == isa, "{isa} at {other}");
            }
            assert!(!scoped(isa, 1, || packed.fit(&conv2d(1, 512, 7, 256, 3, 1))).unwrap(), "other outputs");
            assert!(!scoped(isa, 1, || packed.fit(&conv2d(1, 256, 7, 512, 3, 1))).unwrap(), "other inputs");
        }
    }
}
