//! Winograd's minimal filtering F(2x2, 3x3) for the 3x3 stride-1 convolutions of
//! inference graphs, in the channel-blocked layout (Lavin and Gray, "Fast Algorithms for
//! Convolutional Neural Networks", 2016; cuDNN, oneDNN and NNPACK take it for such layers,
//! onnxruntime's CPU provider does not). Each 4x4 patch of input (a tile, whose 2x2
//! outputs it gives) and each 3x3 kernel are transformed to 4x4 values, `v = Bᵀ d B` and
//! `u = G g Gᵀ`; the products of the 16 positions, summed over input channels, are
//! transformed back, `y = Aᵀ m A`: 16 multiplies for a tile's 36, 2.25 times fewer.
//!
//! The sum over input channels at one of the 16 positions is a 1x1 convolution over the
//! tiles: the direct kernel's ([`super::direct`]), with the transformed weights packed
//! at load like a 1x1 layer's. The work goes in units, each run by one thread from start
//! to end: a range of tiles (across rows and samples) and a part of the output channels
//! (sized by a small cost model). A unit's inputs are transformed into `v`
//! (`[ξ][input block][tile][lane]`), the products summed into `m` position by position,
//! and `m` transformed back to the outputs with the bias, the residual and the clamp.
//! (Three passes over all tiles, each handing its values to whichever thread took them
//! next, ran up to twice as slow in phases on a 2-vCPU virtual machine, as if its two
//! cores had been placed apart; units kept on one thread do not.)
//!
//! Rounding: the transforms' coefficients are 0, ±1 and ±1/2 and the transformed weights
//! are rounded once, from f64; an output's error is at most about `(c_in + 12)·ε` times
//! the algorithm run on absolute values, `Σ_c |Aᵀ| (|Bᵀ| |d| |B| ⊙ |G| |g| |Gᵀ|) |A|`
//! (the sums over channels are `c_in` terms long, the transforms a few). That scale also
//! holds products that cancel in exact arithmetic (an input with the weight of another
//! position), so it can be a few times the direct kernel's `Σ|x·w|`.

use super::direct::{
    self, bias_lanes, forward_kernel, output_and_residual, tap_chunks, ForwardKernel, Out, PackedWeights, CHUNK_WEIGHTS,
};
use super::geometry::{with_scratch, ConvGeometry, SharedMut};
use crate::kernels::{isa, Isa};
use rayon::prelude::*;
use std::borrow::Cow;

/// Positions of a transformed tile (4 x 4).
const XI: usize = 16;

/// Values that stay in a core's L2 cache in [`plan`]'s model (512 KiB, half of a 1 MiB
/// L2): a unit's `v` and `m` together, or a part's weights.
const L2_VALUES: usize = 1 << 17;

/// [`plan`]'s costs in multiply-adds of one lane: a value streamed from L3 cache, a
/// value of `v` computed, a unit's start.
const COST_L3: usize = 2;
const COST_TRANSFORM: usize = 4;
const COST_UNIT: usize = 100_000;

/// Most units of tiles [`plan`] considers: enough to balance any thread count here.
const MAX_UNITS: usize = 1024;

/// Most values of `v` and `m` in one unit (4 MiB), a bound on each thread's scratch,
/// unless one tile alone has more: `16·(c_in + c_out)` values at most, less than the
/// transformed weights, which were checked against the memory budget at load.
const MAX_UNIT_VALUES: usize = 1 << 20;

/// Fewest input and output channels this path takes: with fewer, the transforms cost
/// more than the multiplies they save.
const MIN_CHANNELS: usize = 32;

/// Whether this path takes `g` at the current level: a one-group 2-D 3x3 convolution of
/// stride and dilation 1 that the blocked direct kernel also takes, with enough
/// channels. The rule depends on the sizes and the level only.
pub fn applies(g: &ConvGeometry) -> bool {
    g.groups == 1
        && g.input[0] == 1
        && g.kernel == [1, 3, 3]
        && g.stride == [1; 3]
        && g.dilation == [1; 3]
        && g.c_in >= MIN_CHANNELS
        && g.c_out >= MIN_CHANNELS
        && direct::takes_blocked(g)
}

/// A 3x3 convolution's weights transformed (`u = G g Gᵀ`) and packed once, at load, for
/// each of the 16 positions as a 1x1 convolution's ([`PackedWeights`]).
#[derive(Clone, Debug, PartialEq)]
pub struct WinogradWeights {
    c_in: usize,
    positions: Vec<PackedWeights>,
}

impl WinogradWeights {
    /// Weights `w` (`[c_out][c_in][3][3]`) transformed and packed for the current level:
    /// `None` where they could not be packed ([`PackedWeights::new`]).
    pub fn new(c_out: usize, c_in: usize, w: &[f32]) -> Option<WinogradWeights> {
        if c_out.checked_mul(c_in)?.checked_mul(9)? != w.len() {
            return None;
        }
        crate::budget::check_shape("transformed convolution weights", &[XI, c_out, c_in]).ok()?;
        // (on all threads: VGG-16 loaded in 0.37-0.47 s one position after another, 0.37-0.41)
        let u: Vec<[f32; XI]> = w.par_chunks_exact(9).map(transform_kernel).collect();
        let positions = (0..XI)
            .into_par_iter()
            .map(|xi| PackedWeights::new(c_out, &u.iter().map(|u| u[xi]).collect::<Vec<f32>>()))
            .collect::<Option<Vec<_>>>()?;
        Some(WinogradWeights { c_in, positions })
    }

    /// Whether these weights serve `g` at the current level.
    pub fn fit(&self, g: &ConvGeometry) -> bool {
        applies(g) && g.c_in == self.c_in && self.positions[0].serves(g.c_out, g.c_in)
    }
}

/// `G g Gᵀ` of one 3x3 kernel `g` (row-major), in f64 and rounded once; `G` has rows
/// (1, 0, 0), (½, ½, ½), (½, -½, ½), (0, 0, 1).
fn transform_kernel(g: &[f32]) -> [f32; XI] {
    let along = |a: f64, b: f64, c: f64| [a, (a + b + c) / 2.0, (a - b + c) / 2.0, c];
    // G g: 4 x 3
    let mut rows = [[0.0f64; 3]; 4];
    for col in 0..3 {
        let t = along(g[col] as f64, g[3 + col] as f64, g[6 + col] as f64);
        for (r, v) in t.into_iter().enumerate() {
            rows[r][col] = v;
        }
    }
    let mut u = [0.0f32; XI];
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in along(row[0], row[1], row[2]).into_iter().enumerate() {
            u[r * 4 + c] = v as f32;
        }
    }
    u
}

/// `y = clamp(conv(x, w) + bias + residual)`, then `then`, as
/// [`super::direct::forward_blocked`] with blocked input, for a convolution this path
/// takes ([`WinogradWeights::fit`]). The caller checks the output's size against the
/// memory budget.
pub fn forward(
    g: &ConvGeometry,
    x: &[f32],
    weights: &WinogradWeights,
    bias: Option<&[f32]>,
    residual: Option<Cow<[f32]>>,
    clamp: Option<[f32; 2]>,
    then: Option<super::Epilogue>,
) -> Vec<f32> {
    assert!(weights.fit(g), "Winograd weights that fit {g:?}");
    assert!(bias.is_none_or(|b| b.len() == g.c_out), "Winograd convolution bias size");
    let (isa, v) = direct::layout(isa::current(), g.c_out);
    let block = direct::width(isa);
    debug_assert_eq!(Some(block), crate::kernels::blocked::block(), "the kernel's vectors are the layout's blocks");
    let lanes = v * block;
    let ([h, w], [oh, ow]) = ([g.input[1], g.input[2]], [g.output[1], g.output[2]]);
    let (blocks_in, blocks_out) = (g.c_in.div_ceil(block), g.c_out.div_ceil(block));
    assert_eq!(x.len(), g.batch * blocks_in * h * w * block, "Winograd convolution input size");
    let len = g.batch * blocks_out * oh * ow * block;
    assert!(residual.as_ref().is_none_or(|r| r.len() == len), "Winograd convolution residual size");
    if len == 0 {
        return Vec::new();
    }
    let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
    let tiles = g.batch * th * tw;
    let kernel_blocks = g.c_out.div_ceil(lanes);
    let Plan { per_unit, per_part } =
        plan(tiles, blocks_in * block, kernel_blocks, lanes, rayon::current_num_threads());
    let parts = kernel_blocks.div_ceil(per_part);
    // every output is written below, once, after its residual is read
    let (mut y, residual) = output_and_residual(residual, len);
    let y_at = SharedMut(y.as_mut_ptr());
    let biases: Vec<[f32; 32]> = (0..blocks_out).map(|b| bias_lanes(bias, b * block, block)).collect();
    let zeros = [0.0f32; 32];
    let most = direct::block_max(isa, v);
    (0..tiles.div_ceil(per_unit) * parts).into_par_iter().for_each(|unit| {
        let first = unit / parts * per_unit;
        let count = per_unit.min(tiles - first);
        let kbs = unit % parts * per_part..(unit % parts * per_part + per_part).min(kernel_blocks);
        // the part's blocks of outputs (the last may have fewer)
        let outs = kbs.start * v..(kbs.end * v).min(blocks_out);
        let segments: Vec<Segment> = (first / tw..(first + count).div_ceil(tw))
            .map(|r| {
                let column = first.max(r * tw) - r * tw;
                let end = (first + count).min((r + 1) * tw) - r * tw;
                Segment { sample: r / th, row: r % th, column, columns: end - column, first: r * tw + column - first }
            })
            .collect();
        // v is [ξ][input block][tile][lane], m [ξ][block of the part's][tile][lane]
        let stride = unit_stride(count);
        let v_len = XI * blocks_in * stride * block;
        with_scratch(v_len + XI * outs.len() * stride * block, |scratch| {
            let v_at = scratch.as_mut_ptr();
            // SAFETY: `m` follows `v` in the scratch
            let m_at = unsafe { v_at.add(v_len) };
            for &Segment { sample, row, column, columns, first: t } in &segments {
                for b in 0..blocks_in {
                    let src = &x[(sample * blocks_in + b) * h * w * block..][..h * w * block];
                    let origin = [2 * row as isize - g.pad[1] as isize, 2 * column as isize - g.pad[2] as isize];
                    // SAFETY: the row's tiles of block b at every position lie in `v`; the
                    // level is the CPU's or lower.
                    unsafe {
                        input_row(
                            isa,
                            src,
                            [h, w],
                            origin,
                            columns,
                            v_at.add((b * stride + t) * block),
                            blocks_in * stride * block,
                        )
                    };
                }
            }
            let taps: Vec<usize> = (0..g.c_in).map(|c| (c / block * stride) * block + c % block).collect();
            let chunks = tap_chunks(&taps, lanes);
            let pieces: Vec<(usize, ForwardKernel)> = {
                let pieces = count.div_ceil(most);
                let size = |i| count / pieces + usize::from(i < count % pieces);
                (0..pieces).map(|i| (size(i), forward_kernel(isa, v, size(i), block))).collect()
            };
            // position by position, so that each position's inputs are read once
            for xi in 0..XI {
                for kb in kbs.clone() {
                    let packed = &weights.positions[xi].data()[kb * g.c_in * lanes..][..g.c_in * lanes];
                    for (c, chunk_taps) in chunks.iter().enumerate() {
                        let wc = packed[c * (CHUNK_WEIGHTS / lanes) * lanes..].as_ptr();
                        let mut t0 = 0;
                        for &(piece, kernel) in &pieces {
                            // SAFETY: the piece's taps lie in position xi of `v` (written
                            // above), the chunk's weights in `packed`, its products in `m`.
                            unsafe {
                                let o = Out {
                                    at: m_at.add(((xi * outs.len() + kb * v - outs.start) * stride + t0) * block),
                                    position: block,
                                    vector: stride * block,
                                    vectors: v.min(blocks_out - kb * v),
                                    bias: if c == 0 { zeros.as_ptr() } else { std::ptr::null() },
                                    residual: std::ptr::null(),
                                    clamp: None,
                                    prefetch: true,
                                };
                                kernel(v_at.add((xi * blocks_in * stride + t0) * block), chunk_taps, wc, &o);
                            }
                            t0 += piece;
                        }
                    }
                }
            }
            for &Segment { sample, row, column, columns, first: t } in &segments {
                for (i, b) in outs.clone().enumerate() {
                    let first_out = (sample * blocks_out + b) * oh * ow * block;
                    // SAFETY: `m` holds the products of the row's tiles for this block
                    // (written above); this unit alone writes their outputs, reading each
                    // residual before it stores there.
                    unsafe {
                        let out = Tile {
                            y: y_at.get().add(first_out),
                            residual: residual.map_or(std::ptr::null(), |r| r.get().add(first_out).cast_const()),
                            bias: &biases[b],
                            clamp,
                            column,
                        };
                        let m = m_at.add((i * stride + t) * block);
                        output_row(isa, m, outs.len() * stride * block, columns, [oh, ow], row, &out);
                    }
                    let Some(f) = then else { continue };
                    let run = (2 * (column + columns)).min(ow) - 2 * column;
                    for y0 in (2 * row..(2 * row + 2).min(oh)).map(|r| first_out + (r * ow + 2 * column) * block) {
                        // SAFETY: as above, and these outputs are written.
                        f(y0, unsafe { std::slice::from_raw_parts_mut(y_at.get().add(y0), run * block) });
                    }
                }
            }
        });
    });
    // SAFETY: the units cover every tile and block of outputs, and each tile stored every
    // output of its 2x2 that exists.
    unsafe { y.set_len(len) };
    y
}

/// The tiles of a unit in one row of tiles: `columns` tiles from column `column` of row
/// `row` of sample `sample`, the unit's tiles `first..first + columns`.
struct Segment {
    sample: usize,
    row: usize,
    column: usize,
    columns: usize,
    first: usize,
}

/// Tiles between the blocks of a unit of `count` tiles in `v` and `m`: an odd number, so
/// that the blocks of a tile do not fall on the same cache sets (with 64 tiles of 16
/// lanes, 4 KiB apart, the 56x56 layers ran 10% slower).
fn unit_stride(count: usize) -> usize {
    count | 1
}

/// How [`forward`] splits its work: `per_unit` tiles a unit, `per_part` blocks of
/// kernels (`lanes` output channels each) a part of the output channels.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Plan {
    per_unit: usize,
    per_part: usize,
}

/// The split of `tiles` tiles and `kernel_blocks` blocks of kernels into units, one
/// thread's each, that finishes first on `threads` threads by a small cost model
/// counted in multiply-adds of one lane: every unit reads its part's weights and
/// transforms its tiles' inputs (once per part), and the values of `v`, `m` or
/// weights that do not stay in L2 cache stream from L3 at [`COST_L3`] each. Splitting
/// the tiles more reads the weights again, splitting the channels transforms the
/// inputs again: many small channels split the tiles, few wide ones the channels.
fn plan(tiles: usize, c_in: usize, kernel_blocks: usize, lanes: usize, threads: usize) -> Plan {
    let unit_cost = |t: usize, k: usize| {
        let (v, m, w) = (XI * c_in * t, XI * k * lanes * t, XI * c_in * k * lanes);
        let spilled = if v + m > L2_VALUES { v + m } else { 0 };
        let streamed = if w > L2_VALUES { w } else { 0 };
        let traffic = COST_TRANSFORM * v + COST_L3 * (2 * spilled + streamed) + COST_UNIT;
        w.saturating_mul(t).saturating_add(traffic)
    };
    // each size of unit and of part once
    let sizes = |n: usize, most: usize| {
        let mut sizes: Vec<usize> = (1..=n.min(most)).map(|k| n.div_ceil(k)).collect();
        sizes.dedup();
        sizes
    };
    let mut best = (usize::MAX, Plan { per_unit: 1, per_part: 1 });
    for per_part in sizes(kernel_blocks, kernel_blocks) {
        // the sizes that fit the scratch bound, and the largest that does (one at least):
        // `unit_stride(t) <= q` where t is q, or q - 1 for an even q
        let q = MAX_UNIT_VALUES / (XI * (c_in + per_part * lanes));
        let most = if q % 2 == 1 { q } else { q.saturating_sub(1) }.clamp(1, tiles);
        let units = sizes(tiles, MAX_UNITS).into_iter().filter(|&t| t <= most);
        for per_unit in units.chain([most]) {
            let rounds = (tiles.div_ceil(per_unit) * kernel_blocks.div_ceil(per_part)).div_ceil(threads);
            let time = rounds.saturating_mul(unit_cost(per_unit, per_part));
            if time < best.0 {
                best = (time, Plan { per_unit, per_part });
            }
        }
    }
    best.1
}

/// Where a row of tiles (or part of one) of one block of output channels goes.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Tile<'a> {
    /// the block's first output (`[rows][cols][lanes]`), and the residual laid out alike
    /// (or null)
    y: *mut f32,
    residual: *const f32,
    bias: &'a [f32; 32],
    clamp: Option<[f32; 2]>,
    /// the first tile's column among the row's
    column: usize,
}

/// [`input_row_of`] at `isa`'s vector width.
///
/// # Safety
/// The CPU must have `isa`; see [`input_row_of`].
unsafe fn input_row(
    isa: Isa,
    plane: &[f32],
    size: [usize; 2],
    origin: [isize; 2],
    tiles: usize,
    v: *mut f32,
    position: usize,
) {
    #[cfg(target_arch = "x86_64")]
    match isa {
        Isa::Avx512 => x86::input_row_avx512(plane, size, origin, tiles, v, position),
        _ => x86::input_row_avx2(plane, size, origin, tiles, v, position),
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "Winograd convolution needs x86-64 ({isa:?}, {plane:p}, {size:?}, {origin:?}, {tiles}, {v:p}, {position})"
    )
}

/// [`output_row_of`] at `isa`'s vector width.
///
/// # Safety
/// The CPU must have `isa`; see [`output_row_of`].
unsafe fn output_row(isa: Isa, m: *const f32, position: usize, tiles: usize, size: [usize; 2], ti: usize, out: &Tile) {
    #[cfg(target_arch = "x86_64")]
    match isa {
        Isa::Avx512 => x86::output_row_avx512(m, position, tiles, size, ti, out),
        _ => x86::output_row_avx2(m, position, tiles, size, ti, out),
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("Winograd convolution needs x86-64 ({isa:?}, {m:p}, {position}, {tiles}, {size:?}, {ti}, {:p})", out.y)
}

/// The vector widths' instances, compiled for their level so that the lane loops become
/// vector instructions.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{input_row_of, output_row_of, Tile};

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn input_row_avx512(
        plane: &[f32],
        size: [usize; 2],
        origin: [isize; 2],
        tiles: usize,
        v: *mut f32,
        position: usize,
    ) {
        input_row_of::<16>(plane, size, origin, tiles, v, position)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn input_row_avx2(
        plane: &[f32],
        size: [usize; 2],
        origin: [isize; 2],
        tiles: usize,
        v: *mut f32,
        position: usize,
    ) {
        input_row_of::<8>(plane, size, origin, tiles, v, position)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn output_row_avx512(
        m: *const f32,
        position: usize,
        tiles: usize,
        size: [usize; 2],
        ti: usize,
        out: &Tile,
    ) {
        output_row_of::<16>(m, position, tiles, size, ti, out)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn output_row_avx2(
        m: *const f32,
        position: usize,
        tiles: usize,
        size: [usize; 2],
        ti: usize,
        out: &Tile,
    ) {
        output_row_of::<8>(m, position, tiles, size, ti, out)
    }
}

#[cfg(target_arch = "x86_64")]
type Lanes<const B: usize> = [f32; B];

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn add<const B: usize>(a: &Lanes<B>, b: &Lanes<B>) -> Lanes<B> {
    std::array::from_fn(|l| a[l] + b[l])
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn sub<const B: usize>(a: &Lanes<B>, b: &Lanes<B>) -> Lanes<B> {
    std::array::from_fn(|l| a[l] - b[l])
}

/// `Bᵀ d B` of the 4 x 4 patches `d` of a row of `tiles` tiles of one block of channels:
/// `plane` is `size` positions of `B` lanes, tile `j`'s patch starts at `origin + (0, 2j)`
/// (zero outside the plane), and its position `ξ` goes to `v[ξ·position + j·B..]`.
/// `Bᵀ` has rows (1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1).
///
/// # Safety
/// `v` must be valid for those writes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn input_row_of<const B: usize>(
    plane: &[f32],
    [h, w]: [usize; 2],
    [y0, x0]: [isize; 2],
    tiles: usize,
    v: *mut f32,
    position: usize,
) {
    let row = |a: usize| usize::try_from(y0 + a as isize).ok().filter(|&y| y < h);
    let rows = [row(0), row(1), row(2), row(3)];
    for j in 0..tiles {
        let mut d = [[[0.0f32; B]; 4]; 4];
        for (a, y) in rows.iter().enumerate() {
            let Some(y) = y else { continue };
            for (b, lanes) in d[a].iter_mut().enumerate() {
                let Some(x) = usize::try_from(x0 + (2 * j + b) as isize).ok().filter(|&x| x < w) else { continue };
                lanes.copy_from_slice(&plane[(y * w + x) * B..][..B]);
            }
        }
        // Bᵀ d: the patch's rows combined, then (Bᵀ d) B: each row's columns
        let t: [[Lanes<B>; 4]; 4] = [
            std::array::from_fn(|b| sub(&d[0][b], &d[2][b])),
            std::array::from_fn(|b| add(&d[1][b], &d[2][b])),
            std::array::from_fn(|b| sub(&d[2][b], &d[1][b])),
            std::array::from_fn(|b| sub(&d[1][b], &d[3][b])),
        ];
        for (a, t) in t.iter().enumerate() {
            let out = [sub(&t[0], &t[2]), add(&t[1], &t[2]), sub(&t[2], &t[1]), sub(&t[1], &t[3])];
            for (b, lanes) in out.iter().enumerate() {
                std::ptr::copy_nonoverlapping(lanes.as_ptr(), v.add((a * 4 + b) * position + j * B), B);
            }
        }
    }
}

/// `Aᵀ m A` of `tiles` tiles of a row (row `ti` of the output's tiles, from column
/// `out.column`) of one block of output channels, plus the bias and the residual,
/// clamped, stored where each of the tile's 2 x 2 outputs lies in the `size` output
/// plane; position `ξ` of the row's tile `out.column + j` is at `m[ξ·position + j·B..]`. `Aᵀ` has rows (1, 1, 1, 0), (0, 1, -1, -1).
///
/// # Safety
/// `m` must hold those values; `out.y` (and `out.residual`, if not null) the plane.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn output_row_of<const B: usize>(
    m: *const f32,
    position: usize,
    tiles: usize,
    [oh, ow]: [usize; 2],
    ti: usize,
    out: &Tile,
) {
    let bias: &Lanes<B> = out.bias[..B].try_into().expect("B lanes of bias");
    for j in 0..tiles {
        let mv: [Lanes<B>; XI] =
            std::array::from_fn(|xi| std::ptr::read_unaligned(m.add(xi * position + j * B).cast::<Lanes<B>>()));
        // Aᵀ m: 2 x 4, then (Aᵀ m) A: 2 x 2
        let s: [[Lanes<B>; 4]; 2] = std::array::from_fn(|i| {
            std::array::from_fn(|b| {
                let (m0, m1, m2, m3) = (&mv[b], &mv[4 + b], &mv[8 + b], &mv[12 + b]);
                if i == 0 {
                    add(&add(m0, m1), m2)
                } else {
                    sub(&sub(m1, m2), m3)
                }
            })
        });
        for (i, s) in s.iter().enumerate() {
            let y = 2 * ti + i;
            if y >= oh {
                continue;
            }
            let pair = [add(&add(&s[0], &s[1]), &s[2]), sub(&sub(&s[1], &s[2]), &s[3])];
            for (k, value) in pair.iter().enumerate() {
                let x = 2 * (out.column + j) + k;
                if x >= ow {
                    continue;
                }
                let at = (y * ow + x) * B;
                let mut value = add(value, bias);
                if !out.residual.is_null() {
                    value = add(&value, &std::ptr::read_unaligned(out.residual.add(at).cast::<Lanes<B>>()));
                }
                if let Some([lo, hi]) = out.clamp {
                    // (written so that a NaN stays NaN, as in the direct kernel)
                    value = value.map(|v| if lo > v { lo } else { v }).map(|v| if v > hi { hi } else { v });
                }
                std::ptr::write_unaligned(out.y.add(at).cast::<Lanes<B>>(), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_splits_few_wide_channels_by_channel_and_many_tiles_by_tile() {
        // ResNet-50's last 3x3 layers at batch 1 (16 tiles, 512 channels: 16 blocks of
        // 32 lanes): reading their 16 MiB of weights twice would cost more than
        // transforming the inputs twice
        assert_eq!(plan(16, 512, 16, 32, 2), Plan { per_unit: 16, per_part: 8 });
        // its first at batch 8 (6272 tiles, 64 channels): units that stay in L2 cache,
        // as many for each thread
        let Plan { per_unit, per_part } = plan(6272, 64, 2, 32, 2);
        assert_eq!(per_part, 2);
        assert!(XI * per_unit * (64 + 64) <= L2_VALUES, "{per_unit} tiles a unit");
        assert_eq!(6272_usize.div_ceil(per_unit) % 2, 0, "{per_unit} tiles a unit");
        // the scratch stays bounded however many tiles and channels, with units of more
        // than one tile where they fit (VGG's second layer at batch 64 has 802,816 tiles:
        // a thousand units would each take more)
        let cases = [(802_816, 64, 2, 2), (100_000, 4096, 128, 2), (50, 70_000, 1, 1), (3, 16, 1, 64)];
        for (tiles, c_in, blocks, threads) in cases {
            let p = plan(tiles, c_in, blocks, 32, threads);
            let values = XI * unit_stride(p.per_unit) * (c_in + p.per_part * 32);
            assert!(p.per_unit == 1 || values <= MAX_UNIT_VALUES, "{p:?} for {tiles} tiles of {c_in} channels");
            assert!((1..=tiles).contains(&p.per_unit) && (1..=blocks).contains(&p.per_part), "{p:?}");
            assert!(p.per_unit > 1 || XI * 3 * (c_in + 32) > MAX_UNIT_VALUES || tiles <= threads, "{p:?}");
        }
    }

    #[test]
    fn kernel_transform_matches_g_g_gt() {
        let g: Vec<f32> = (0..9).map(|i| (i as f32 - 3.5) * 0.75).collect();
        let big_g = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];
        let u = transform_kernel(&g);
        for r in 0..4 {
            for c in 0..4 {
                let mut want = 0.0f64;
                for i in 0..3 {
                    for j in 0..3 {
                        want += big_g[r][i] * g[i * 3 + j] as f64 * big_g[c][j];
                    }
                }
                assert!((u[r * 4 + c] as f64 - want).abs() <= 1e-6 * want.abs(), "position ({r}, {c})");
            }
        }
    }
}
