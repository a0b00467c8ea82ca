//! The AVX2 level's matrix product, written here because the crates' AVX2 kernels stop
//! short of OpenBLAS: 2048³ on two Zen 3 cores runs at about 115 GFLOP/s in
//! `matrixmultiply` (an 8x8 tile: nine loads per eight multiply-adds) and 100 in
//! `gemm-f32`, against 135-145 in OpenBLAS.
//!
//! The loops are BLIS's (Van Zee and van de Geijn, "BLIS: A Framework for Rapidly
//! Instantiating BLAS Functionality", 2015), with its Haswell sizes: a 6x16 tile whose
//! twelve accumulators stay in registers (two loads of `b` and six broadcasts of `a` per
//! twelve multiply-adds), `a` packed in blocks of [`MC`] x [`KC`] that stay in L2, `b` in
//! blocks of [`KC`] x [`NC`] shared by the threads. Each output sums its products in the
//! same order (in [`KC`]-long runs of `k`, each from zero) whatever the thread count.

use super::OutPtr;
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::cell::RefCell;
use std::thread::LocalKey;

/// Rows of the micro-kernel's tile.
const MR: usize = 6;
/// Columns of the micro-kernel's tile (two vectors of eight).
const NR: usize = 16;
/// Length of the runs of `k` that one packed panel covers: a 6 x 256 panel of `a` and a
/// 256 x 16 panel of `b` (22 KiB) stay in the 32 KiB L1 cache.
const KC: usize = 256;
/// Rows of `a` packed at a time: 168 x 256 values (168 KiB) stay in L2.
const MC: usize = 168;
/// Columns of `b` packed at a time (4 MiB, in L3).
const NC: usize = 4080;

thread_local! {
    /// Packing buffers for `a` and for `b`, kept between calls: a fresh block would be
    /// zeroed (and over 128 KiB, mapped and faulted in page by page) on every call.
    static PACKED_A: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static PACKED_B: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's packing buffer `key`, at least `len` long.
fn with_buffer<R>(key: &'static LocalKey<RefCell<Vec<f32>>>, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    key.with(|cell| {
        let mut fresh = Vec::new();
        // in use already when this thread, waiting for its tasks, runs another product's
        // task (rayon's work stealing): that product packs into a buffer of its own
        let mut borrowed = cell.try_borrow_mut();
        let buffer = match borrowed.as_deref_mut() {
            Ok(kept) => kept,
            Err(_) => &mut fresh,
        };
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
        f(&mut buffer[..len])
    })
}

/// A matrix operand: its first value and (row, column) strides.
#[derive(Clone, Copy)]
pub struct Operand {
    pub data: *const f32,
    pub rs: isize,
    pub cs: isize,
}
// SAFETY: only read, and only while the caller of `sgemm` keeps it alive.
unsafe impl Send for Operand {}
unsafe impl Sync for Operand {}

impl Operand {
    /// # Safety
    /// The position must lie inside the operand.
    unsafe fn at(self, row: usize, col: usize) -> *const f32 {
        unsafe { self.data.offset(row as isize * self.rs + col as isize * self.cs) }
    }
}

/// `c[i][j] = c[i][j]·[accumulate] + Σ_p a[i][p]·b[p][j]` for `i < m`, `j < n`, `p < k`,
/// `c` row-major with rows `c_rs` apart, on `tasks` threads: each takes whole tiles of
/// rows of `c` (sharing each packed block of `b`) or, when there are more columns than
/// rows, of columns (each packing its own part of `b`, with no waiting on the others).
///
/// # Safety
/// The CPU has AVX2 and FMA; `a`, `b` are readable and `c` writable at every position
/// named above, and nothing else writes `c`'s positions meanwhile; `k > 0`.
pub unsafe fn sgemm(
    (m, k, n): (usize, usize, usize),
    a: Operand,
    b: Operand,
    c: *mut f32,
    c_rs: usize,
    accumulate: bool,
    tasks: usize,
) {
    if tasks <= 1 || m >= n {
        // SAFETY: the caller's promise
        return unsafe { by_rows((m, k, n), a, b, c, c_rs, accumulate, tasks) };
    }
    let c = OutPtr(c);
    (0..tasks).into_par_iter().for_each(|t| {
        let cols = share(n, NR, tasks, t);
        if !cols.is_empty() {
            // SAFETY: columns cols of b and c, only this task's
            let b = Operand { data: unsafe { b.at(0, cols.start) }, ..b };
            unsafe { by_rows((m, k, cols.len()), a, b, c.at(cols.start), c_rs, accumulate, 1) }
        }
    })
}

/// Share `t` of `tasks` of `0..len`, in whole tiles, as even as that allows.
fn share(len: usize, tile: usize, tasks: usize, t: usize) -> std::ops::Range<usize> {
    let step = len.div_ceil(tasks).next_multiple_of(tile);
    (t * step).min(len)..((t + 1) * step).min(len)
}

/// [`sgemm`] with `tasks` threads taking rows.
///
/// # Safety
/// As [`sgemm`].
unsafe fn by_rows(
    (m, k, n): (usize, usize, usize),
    a: Operand,
    b: Operand,
    c: *mut f32,
    c_rs: usize,
    accumulate: bool,
    tasks: usize,
) {
    let c = OutPtr(c);
    let kc_max = k.min(KC);
    for j0 in (0..n).step_by(NC) {
        let nc = NC.min(n - j0);
        with_buffer(&PACKED_B, nc.next_multiple_of(NR) * kc_max, |packed_b| {
            for p0 in (0..k).step_by(KC) {
                let kc = KC.min(k - p0);
                let packed_b = &mut packed_b[..nc.next_multiple_of(NR) * kc];
                let pack_b = |(panel, dst): (usize, &mut [f32])| {
                    let cols = NR.min(nc - panel * NR);
                    // SAFETY: rows p0.., columns j0 + panel·NR.. of b (the caller's promise)
                    unsafe { pack::<NR>(dst, b.at(p0, j0 + panel * NR), b.cs, b.rs, cols, kc) }
                };
                if tasks > 1 {
                    packed_b.par_chunks_mut(NR * kc).enumerate().for_each(pack_b);
                } else {
                    packed_b.chunks_mut(NR * kc).enumerate().for_each(pack_b);
                }
                let packed_b = &*packed_b;
                let task = |t: usize| {
                    let rows = share(m, MR, tasks, t);
                    for i0 in rows.clone().step_by(MC) {
                        let mc = MC.min(rows.end - i0);
                        with_buffer(&PACKED_A, mc.next_multiple_of(MR) * kc, |packed_a| {
                            // SAFETY: rows i0.., columns p0.. of a
                            unsafe { pack_all::<MR>(packed_a, a.at(i0, p0), a.rs, a.cs, mc, kc) };
                            for jr in (0..nc).step_by(NR) {
                                for ir in (0..mc).step_by(MR) {
                                    let tile = (MR.min(mc - ir), NR.min(nc - jr));
                                    // SAFETY: the tile lies inside c, and only this task
                                    // writes these rows
                                    unsafe {
                                        kernel(
                                            kc,
                                            packed_a.as_ptr().add(ir * kc),
                                            packed_b.as_ptr().add(jr * kc),
                                            c.at((i0 + ir) * c_rs + j0 + jr),
                                            c_rs,
                                            tile,
                                            accumulate || p0 > 0,
                                        )
                                    }
                                }
                            }
                        })
                    }
                };
                if tasks > 1 {
                    (0..tasks).into_par_iter().for_each(task);
                } else {
                    task(0);
                }
            }
        })
    }
}

/// Packs `lines` x `len` values into consecutive panels of `WIDTH` lines (see [`pack`]).
///
/// # Safety
/// As [`pack`], for every panel.
unsafe fn pack_all<const WIDTH: usize>(
    dst: &mut [f32],
    src: *const f32,
    line_stride: isize,
    step: isize,
    lines: usize,
    len: usize,
) {
    for (panel, out) in dst.chunks_exact_mut(WIDTH * len).take(lines.div_ceil(WIDTH)).enumerate() {
        let first = panel * WIDTH;
        // SAFETY: lines first.. are inside (the caller's promise)
        unsafe {
            pack::<WIDTH>(
                out,
                src.offset(first as isize * line_stride),
                line_stride,
                step,
                WIDTH.min(lines - first),
                len,
            )
        }
    }
}

/// Packs one panel: `lines` (at most `WIDTH`) lines of `len` values (line `l`, position
/// `p` at `src + l·line_stride + p·step`), position after position with the panel's
/// `WIDTH` values adjacent; lines past `lines` are zeros.
///
/// # Safety
/// `src` readable at every position named; `dst` holds `WIDTH·len` values.
unsafe fn pack<const WIDTH: usize>(
    dst: &mut [f32],
    src: *const f32,
    line_stride: isize,
    step: isize,
    lines: usize,
    len: usize,
) {
    for (p, values) in dst[..WIDTH * len].chunks_exact_mut(WIDTH).enumerate() {
        // SAFETY: position p < len
        let at = unsafe { src.offset(p as isize * step) };
        if line_stride == 1 && lines == WIDTH {
            // adjacent lines (columns of a row-major b, rows of a transposed a): a copy
            values.copy_from_slice(unsafe { &*(at as *const [f32; WIDTH]) });
            continue;
        }
        for (l, v) in values.iter_mut().enumerate() {
            *v = if l < lines { unsafe { *at.offset(l as isize * line_stride) } } else { 0.0 };
        }
    }
}

/// One 6x16 tile of `c` (its top-left `rows` x `cols` written): `c (+)= a·b` over `kc`
/// products, from a packed panel of `a` (6 values per step) and of `b` (16 per step).
///
/// # Safety
/// AVX2 and FMA present; the panels hold `kc` steps; `c` writable for the tile's `rows`
/// rows of `cols` values, `c_rs` apart.
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    c_rs: usize,
    (rows, cols): (usize, usize),
    add: bool,
) {
    // the tile of c lies a row of c away from the last one: fetch it while the products run
    for i in 0..rows {
        let row = c.wrapping_add(i * c_rs) as *const i8;
        _mm_prefetch::<_MM_HINT_T0>(row);
        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(4 * NR - 1));
    }
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    let step = |p: usize, acc: &mut [[__m256; 2]; MR]| {
        // SAFETY: step p < kc of both panels
        unsafe {
            let b0 = _mm256_loadu_ps(b.add(p * NR));
            let b1 = _mm256_loadu_ps(b.add(p * NR + 8));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm256_broadcast_ss(&*a.add(p * MR + i));
                row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
            }
        }
    };
    // four steps per loop turn: one turn a step measured 10-15% slower
    let mut p = 0;
    while p + 4 <= kc {
        for q in p..p + 4 {
            step(q, &mut acc);
        }
        p += 4;
    }
    for q in p..kc {
        step(q, &mut acc);
    }
    if rows == MR && cols == NR {
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: a whole tile inside c
            unsafe {
                let out = c.add(i * c_rs);
                for (h, &v) in row.iter().enumerate() {
                    let v = if add { _mm256_add_ps(_mm256_loadu_ps(out.add(8 * h)), v) } else { v };
                    _mm256_storeu_ps(out.add(8 * h), v);
                }
            }
        }
        return;
    }
    // an edge tile: through a buffer, writing only what lies inside c
    let mut tile = [[0.0f32; NR]; MR];
    for (row, sums) in tile.iter_mut().zip(&acc) {
        // SAFETY: 16 values of the local buffer
        unsafe {
            _mm256_storeu_ps(row.as_mut_ptr(), sums[0]);
            _mm256_storeu_ps(row.as_mut_ptr().add(8), sums[1]);
        }
    }
    for (i, row) in tile.iter().enumerate().take(rows) {
        // SAFETY: rows x cols inside c
        let out = unsafe { std::slice::from_raw_parts_mut(c.add(i * c_rs), cols) };
        for (o, &v) in out.iter_mut().zip(row) {
            *o = if add { *o + v } else { v };
        }
    }
}
