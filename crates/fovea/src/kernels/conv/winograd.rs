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
//! at load like a 1x1 layer's. Tiles go in chunks (rows of tiles of all samples), each
//! in three passes: the inputs transformed into `v` (`[ξ][input block][tile][lane]`),
//! the 16 products into `m` (`[ξ][output block][tile][lane]`), then `m` transformed back
//! to the outputs with the bias, the residual and the clamp.
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
use super::geometry::{ConvGeometry, SharedMut};
use crate::kernels::{isa, Isa};
use rayon::prelude::*;
use std::borrow::Cow;

/// Positions of a transformed tile (4 x 4).
const XI: usize = 16;

/// Values of `v` and `m` together per chunk of tiles (4 MiB): each position's slice of
/// `v` then stays in L2 cache while the 1x1 kernel runs it for every block of outputs.
const CHUNK_VALUES: usize = 1 << 20;

/// Fewest input and output channels this path takes: with fewer, the transforms cost
/// more than the multiplies they save.
const MIN_CHANNELS: usize = 32;

/// Most values of `v` and `m` together for one row of tiles (16 MiB): beyond, a row
/// alone would take more scratch than the direct kernel's padded slab.
const MAX_ROW_VALUES: usize = 4 * CHUNK_VALUES;

/// Whether this path takes `g` at the current level: a one-group 2-D 3x3 convolution of
/// stride and dilation 1 that the blocked direct kernel also takes, with enough
/// channels, and rows of tiles small enough. The rule depends on the sizes and the level
/// only.
pub fn applies(g: &ConvGeometry) -> bool {
    let lanes = |c: usize| c.next_multiple_of(16);
    g.groups == 1
        && XI * g.output[2].div_ceil(2) * (lanes(g.c_in) + lanes(g.c_out)) <= MAX_ROW_VALUES
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
    let (tile_rows, tw) = (g.batch * oh.div_ceil(2), ow.div_ceil(2));
    let chunk_rows = (CHUNK_VALUES / (XI * tw * (blocks_in + blocks_out) * block)).clamp(1, tile_rows);
    let mut v_buf = Vec::<f32>::with_capacity(XI * chunk_rows * tw * blocks_in * block);
    let mut m_buf = Vec::<f32>::with_capacity(XI * chunk_rows * tw * blocks_out * block);
    let (v_at, m_at) = (SharedMut(v_buf.as_mut_ptr()), SharedMut(m_buf.as_mut_ptr()));
    // every output is written below, once, after its residual is read
    let (mut y, residual) = output_and_residual(residual, len);
    let y_at = SharedMut(y.as_mut_ptr());
    let biases: Vec<[f32; 32]> = (0..blocks_out).map(|b| bias_lanes(bias, b * block, block)).collect();
    let zeros = [0.0f32; 32];
    let kernel_blocks = g.c_out.div_ceil(lanes);
    let plane = h * w * block;
    for first in (0..tile_rows).step_by(chunk_rows) {
        let rows = chunk_rows.min(tile_rows - first);
        let tiles = rows * tw;
        // (sample, row of tiles) of the chunk's row r
        let tile_row = |r: usize| ((first + r) / oh.div_ceil(2), (first + r) % oh.div_ceil(2));
        (0..rows * blocks_in).into_par_iter().for_each(|unit| {
            let (r, b) = (unit / blocks_in, unit % blocks_in);
            let (n, ti) = tile_row(r);
            let src = &x[(n * blocks_in + b) * plane..][..plane];
            // SAFETY: this unit writes the row's tiles of its block at every position, a
            // part of `v_buf` no other unit writes; the level is the CPU's or lower.
            unsafe {
                let dst = v_at.get().add((b * tiles + r * tw) * block);
                let origin = [2 * ti as isize - g.pad[1] as isize, -(g.pad[2] as isize)];
                input_row(isa, src, [h, w], origin, tw, dst, blocks_in * tiles * block);
            }
        });
        let taps: Vec<usize> = (0..g.c_in).map(|c| (c / block * tiles) * block + c % block).collect();
        let chunks = tap_chunks(&taps, lanes);
        let most = direct::block_max(isa, v);
        let pieces: Vec<usize> = {
            let count = tiles.div_ceil(most);
            (0..count).map(|i| tiles / count + usize::from(i < tiles % count)).collect()
        };
        let kernels: Vec<ForwardKernel> = pieces.iter().map(|&n| forward_kernel(isa, v, n, block)).collect();
        (0..XI * kernel_blocks).into_par_iter().for_each(|unit| {
            let (xi, kb) = (unit / kernel_blocks, unit % kernel_blocks);
            let packed = &weights.positions[xi].data()[kb * g.c_in * lanes..][..g.c_in * lanes];
            for (c, chunk_taps) in chunks.iter().enumerate() {
                let wc = packed[c * (CHUNK_WEIGHTS / lanes) * lanes..].as_ptr();
                let mut t0 = 0;
                for (&n, kernel) in pieces.iter().zip(&kernels) {
                    // SAFETY: the taps of the piece's tiles lie in position xi's part of
                    // `v` (written above), the chunk's weights in `packed`, and the
                    // piece's products in this unit's blocks of `m` at xi, which no
                    // other unit writes.
                    unsafe {
                        let o = Out {
                            at: m_at.get().add(((xi * blocks_out + kb * v) * tiles + t0) * block),
                            position: block,
                            vector: tiles * block,
                            vectors: v.min(blocks_out - kb * v),
                            bias: if c == 0 { zeros.as_ptr() } else { std::ptr::null() },
                            residual: std::ptr::null(),
                            clamp: None,
                            prefetch: true,
                        };
                        kernel(v_at.get().add((xi * blocks_in * tiles + t0) * block), chunk_taps, wc, &o);
                    }
                    t0 += n;
                }
            }
        });
        (0..rows * blocks_out).into_par_iter().for_each(|unit| {
            let (r, b) = (unit / blocks_out, unit % blocks_out);
            let (n, ti) = tile_row(r);
            let first_out = (n * blocks_out + b) * oh * ow * block;
            // SAFETY: `m` holds the row's products (written above); this unit writes its
            // two rows of outputs of its block, which no other unit writes, reading each
            // residual before it stores there.
            unsafe {
                let src = m_at.get().add((b * tiles + r * tw) * block).cast_const();
                let out = Tile {
                    y: y_at.get().add(first_out),
                    residual: residual.map_or(std::ptr::null(), |r| r.get().add(first_out).cast_const()),
                    bias: &biases[b],
                    clamp,
                };
                output_row(isa, src, blocks_out * tiles * block, tw, [oh, ow], ti, &out);
            }
            if let Some(f) = then {
                let (r0, r1) = (2 * ti, (2 * ti + 2).min(oh));
                let at = first_out + r0 * ow * block;
                // SAFETY: as above, and the row's outputs are written.
                let run = unsafe { std::slice::from_raw_parts_mut(y_at.get().add(at), (r1 - r0) * ow * block) };
                f(at, run);
            }
        });
    }
    // SAFETY: the units cover every sample, row of tiles and block, and each tile stored
    // every output of its 2x2 that exists.
    unsafe { y.set_len(len) };
    y
}

/// Where a row of tiles of one block of output channels goes.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Tile<'a> {
    /// the block's first output (`[rows][cols][lanes]`), and the residual laid out alike
    /// (or null)
    y: *mut f32,
    residual: *const f32,
    bias: &'a [f32; 32],
    clamp: Option<[f32; 2]>,
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

/// `Aᵀ m A` of a row of `tiles` tiles (row `ti` of the output's tiles) of one block of
/// output channels, plus the bias and the residual, clamped, stored where each of the
/// tile's 2 x 2 outputs lies in the `size` output plane; position `ξ` of tile `j` is at
/// `m[ξ·position + j·B..]`. `Aᵀ` has rows (1, 1, 1, 0), (0, 1, -1, -1).
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
                let x = 2 * j + k;
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
