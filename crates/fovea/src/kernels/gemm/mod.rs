//! Matrix products (packed, SIMD, optionally multi-threaded) at the kernel level of
//! [`super::isa`]: `gemm-f32`'s scalar and AVX-512 micro-kernels (chosen here rather than
//! by the crate's own detection), and at the AVX2 level the private `avx2` module's,
//! written here because the crates' measured 15-30% short of OpenBLAS there.

use super::Isa;

#[cfg(target_arch = "x86_64")]
mod avx2;

/// A row-major matrix operand, optionally read transposed.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    /// rows and columns as stored
    rows: usize,
    cols: usize,
    /// distance between the starts of two stored rows (>= cols)
    stride: usize,
    transposed: bool,
}

impl<'a> MatRef<'a> {
    /// A contiguous row-major `rows x cols` matrix (`data` may be longer).
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef::with_stride(data, rows, cols, cols)
    }
    /// A `rows x cols` block of a larger row-major matrix whose rows are `stride` apart.
    pub fn with_stride(data: &'a [f32], rows: usize, cols: usize, stride: usize) -> Self {
        let needed = if rows == 0 { Some(0) } else { (rows - 1).checked_mul(stride).and_then(|v| v.checked_add(cols)) };
        assert!(stride >= cols && needed.is_some_and(|n| n <= data.len()), "matrix buffer too small");
        MatRef { data, rows, cols, stride, transposed: false }
    }
    /// The same matrix, read transposed.
    pub fn t(self) -> Self {
        MatRef { transposed: !self.transposed, ..self }
    }
    /// Logical (rows, cols) after the optional transpose.
    fn dims(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }
    /// (column stride, row stride) of the logical matrix.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (self.stride as isize, 1)
        } else {
            (1, self.stride as isize)
        }
    }
}

/// `c = a·b` (or `c += a·b` when `accumulate`), `c` row-major `m x n`.
/// `parallel` lets the GEMM use all threads; pass `false` when the caller already runs
/// GEMMs in parallel.
pub fn matmul(a: MatRef, b: MatRef, c: &mut [f32], accumulate: bool, parallel: bool) {
    let (m, n) = (a.dims().0, b.dims().1);
    assert!(m.checked_mul(n).is_some_and(|mn| mn <= c.len()), "matmul output buffer too small");
    // SAFETY: c holds m x n values with row stride n.
    unsafe { matmul_to(a, b, c.as_mut_ptr(), n, accumulate, parallel) }
}

/// Like [`matmul`], into an `m x n` block whose rows are `c_stride` apart.
///
/// # Safety
/// `c` must be valid for writes at `i * c_stride + j` for all `i < m`, `j < n`, and no
/// other thread may access those positions meanwhile.
pub(crate) unsafe fn matmul_to(a: MatRef, b: MatRef, c: *mut f32, c_stride: usize, accumulate: bool, parallel: bool) {
    let (m, k) = a.dims();
    let (k2, n) = b.dims();
    assert_eq!(k, k2, "matmul inner dimensions");
    assert!(c_stride >= n, "matmul output stride");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                std::slice::from_raw_parts_mut(c.add(i * c_stride), n).fill(0.0);
            }
        }
        return;
    }
    let (a_cs, a_rs) = a.strides();
    let (b_cs, b_rs) = b.strides();
    // a few rows times a transposed row-major matrix: a small batch through a fully
    // connected layer, where packing the weight costs more than the product
    if m <= FEW_ROWS && a_cs == 1 && b_rs == 1 && n >= 4 * COLUMNS && n * k >= 1 << 16 {
        let (a_rs, b_cs) = (a_rs as usize, b_cs as usize);
        let a_rows: Vec<&[f32]> = (0..m).map(|i| &a.data[i * a_rs..][..k]).collect();
        few_rows_times_transposed(&a_rows, b.data, b_cs, n, c, c_stride, accumulate, parallel);
        return;
    }
    let threads = if parallel && m * n * k >= 32 * 32 * 32 { super::num_threads() } else { 1 };
    let isa = super::isa::current();
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: as below
        return unsafe { matmul_avx2(a, b, c, c_stride, accumulate, threads) };
    }
    let parallelism =
        if threads > 1 { gemm_common::Parallelism::Rayon(threads) } else { gemm_common::Parallelism::None };
    // The micro-kernels prefer a column-major output: ours is row-major, so compute
    // cᵀ = bᵀ·aᵀ, which reads the same memory with the strides swapped.
    let f = level_gemm(isa);
    // SAFETY: MatRef's constructor checked that a and b cover what their strides reach;
    // the caller vouches for c; level_gemm gave a kernel this CPU runs.
    unsafe {
        f(
            n,
            m,
            k,
            c,
            c_stride as isize,
            1,
            accumulate,
            b.data.as_ptr(),
            b_rs,
            b_cs,
            a.data.as_ptr(),
            a_rs,
            a_cs,
            parallelism,
        )
    }
}

/// The AVX2 level's product ([`avx2::sgemm`]).
///
/// # Safety
/// As [`matmul_to`].
#[cfg(target_arch = "x86_64")]
unsafe fn matmul_avx2(a: MatRef, b: MatRef, c: *mut f32, c_stride: usize, accumulate: bool, tasks: usize) {
    let operand = |x: MatRef| {
        let (cs, rs) = x.strides();
        avx2::Operand { data: x.data.as_ptr(), rs, cs }
    };
    // SAFETY: MatRef's constructor checked that a and b cover what their strides reach;
    // the caller vouches for c; the level is at most what the CPU has
    unsafe { avx2::sgemm((a.dims().0, a.dims().1, b.dims().1), operand(a), operand(b), c, c_stride, accumulate, tasks) }
}

/// `dst = dst·[read_dst] + lhs·rhs` for an `m x n` output with (column, row) strides.
type GemmFn = unsafe fn(
    usize,
    usize,
    usize,
    *mut f32,
    isize,
    isize,
    bool,
    *const f32,
    isize,
    isize,
    *const f32,
    isize,
    isize,
    gemm_common::Parallelism,
);

/// One level's GEMM: `gemm-f32`'s micro-kernels of module `$module`, `$lanes` f32 lanes,
/// driven by `gemm-common` with the SIMD token `$simd` (as `gemm-f32` itself does).
macro_rules! level_gemm {
    ($name:ident, $module:ident, $simd:ty, $lanes:expr) => {
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name(
            m: usize,
            n: usize,
            k: usize,
            dst: *mut f32,
            dst_cs: isize,
            dst_rs: isize,
            read_dst: bool,
            lhs: *const f32,
            lhs_cs: isize,
            lhs_rs: isize,
            rhs: *const f32,
            rhs_cs: isize,
            rhs_rs: isize,
            parallelism: gemm_common::Parallelism,
        ) {
            use gemm_common::simd::MixedSimd;
            use gemm_f32::microkernel::$module::f32::{H_M, H_N, H_UKR, MR_DIV_N, NR, UKR};
            let simd = <$simd as MixedSimd<f32, f32, f32, f32>>::try_new().expect("the CPU runs this level");
            // SAFETY: as the caller's
            unsafe {
                gemm_common::gemm::gemm_basic_generic::<_, f32, { $lanes }, { MR_DIV_N * $lanes }, NR, MR_DIV_N, H_M, H_N>(
                    simd,
                    m,
                    n,
                    k,
                    dst,
                    dst_cs,
                    dst_rs,
                    read_dst,
                    lhs,
                    lhs_cs,
                    lhs_rs,
                    rhs,
                    rhs_cs,
                    rhs_rs,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    |a, b, c| a * b + c,
                    &UKR,
                    &H_UKR,
                    false,
                    parallelism,
                )
            }
        }
    };
}

level_gemm!(gemm_scalar, scalar, gemm_common::simd::Scalar, 1);
#[cfg(target_arch = "x86_64")]
level_gemm!(gemm_avx512, avx512f, gemm_common::simd::V4, 16);

/// gemm-f32's GEMM of a level (the AVX2 level takes [`matmul_avx2`] instead). Elsewhere
/// than x86-64 the crate picks its own (NEON on ARM).
fn level_gemm(isa: Isa) -> GemmFn {
    #[cfg(target_arch = "x86_64")]
    {
        match isa {
            Isa::Avx512 => gemm_avx512,
            _ => gemm_scalar,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, gemm_scalar as GemmFn);
        gemm_native
    }
}

/// gemm-f32's own choice of kernel (NEON on ARM), with [`GemmFn`]'s arguments.
#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_native(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_cs: isize,
    dst_rs: isize,
    read_dst: bool,
    lhs: *const f32,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const f32,
    rhs_cs: isize,
    rhs_rs: isize,
    parallelism: gemm_common::Parallelism,
) {
    let f = gemm_f32::gemm::f32::get_gemm_fn();
    // SAFETY: as the caller's
    unsafe {
        f(
            m,
            n,
            k,
            dst,
            dst_cs,
            dst_rs,
            read_dst,
            lhs,
            lhs_cs,
            lhs_rs,
            rhs,
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// At most this many rows of `a` take [`few_rows_times_transposed`].
const FEW_ROWS: usize = 8;
/// Values of each of four rows of `b` that [`few_rows_times_transposed`] dots with every
/// row of `a` in turn (16 KiB in all).
const K_BLOCK: usize = 1024;
/// Columns of the output per task of [`few_rows_times_transposed`]; it is taken only for
/// four tasks or more, to keep the threads busy.
const COLUMNS: usize = 64;

/// A raw output pointer shared by tasks that write disjoint positions.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: each task writes its own columns only (see few_rows_times_transposed).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// # Safety
    /// `offset` must stay inside the output.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        unsafe { self.0.add(offset) }
    }
}

/// `c[i][j] (+)= a[i]·b[j]` for a few rows `a[i]` and the rows `b[j]` (`n` of them, `b_rs`
/// apart): every row of `b` is read once from memory and dotted with all of `a`, four at
/// a time and [`K_BLOCK`] values at a time, so that the block of `b` stays in L1 cache
/// while each row of `a` uses it (a fully connected layer at batch 8 was bound by
/// reading each weight 8 times from L2); at AVX-512 three or four at a time, without
/// blocks ([`dots_avx512`]). (With groups of three, a task's last group is one column:
/// its dot products are computed three times, a few percent more multiplies at a batch
/// of 3 to 8, in a loop bound by memory.)
///
/// # Safety
/// As [`matmul_to`]: `c` valid for `a.len()` rows of `n` values, `c_stride` apart.
#[allow(clippy::too_many_arguments)]
unsafe fn few_rows_times_transposed(
    a: &[&[f32]],
    b: &[f32],
    b_rs: usize,
    n: usize,
    c: *mut f32,
    c_stride: usize,
    accumulate: bool,
    parallel: bool,
) {
    let k = a[0].len();
    assert!((n - 1) * b_rs + k <= b.len(), "matrix buffer too small");
    let out = OutPtr(c);
    let store = |i: usize, j: usize, d: f32| {
        // SAFETY: row i < a.len(), column j < n: inside c, and only the task of
        // columns t·64 .. (t+1)·64 writes there
        let p = unsafe { out.at(i * c_stride + j) };
        unsafe { *p = if accumulate { *p + d } else { d } };
    };
    let task = |t: usize| {
        let columns = t * COLUMNS..((t + 1) * COLUMNS).min(n);
        #[cfg(target_arch = "x86_64")]
        if super::isa::current() == Isa::Avx512 {
            // (four rows of b at a time for one or two rows of a, else three: the
            // accumulators fit the registers)
            let group = if a.len() <= 2 { 4 } else { 3 };
            for j in columns.clone().step_by(group) {
                let count = group.min(columns.end - j);
                // the last group repeats its last row to fill the four
                let rows: [&[f32]; 4] = std::array::from_fn(|q| &b[(j + q.min(count - 1)) * b_rs..][..k]);
                let mut sums = [[0.0f32; 4]; FEW_ROWS];
                // SAFETY: the level is at most what the CPU has
                unsafe { dots_avx512(a, rows, &mut sums) };
                for (i, dots) in sums.iter().enumerate().take(a.len()) {
                    dots[..count].iter().enumerate().for_each(|(q, &d)| store(i, j + q, d));
                }
            }
            return;
        }
        for j in columns.step_by(4) {
            let count = 4.min(n - j);
            // the last group repeats its last row to fill the four
            let rows: [&[f32]; 4] = std::array::from_fn(|q| &b[(j + q.min(count - 1)) * b_rs..][..k]);
            let mut sums = [[0.0f32; 4]; FEW_ROWS];
            for k0 in (0..k).step_by(K_BLOCK) {
                let k1 = (k0 + K_BLOCK).min(k);
                let block = rows.map(|r| &r[k0..k1]);
                add_dots4(a, k0..k1, block, &mut sums);
            }
            for (i, dots) in sums.iter().enumerate().take(a.len()) {
                dots[..count].iter().enumerate().for_each(|(q, &d)| store(i, j + q, d));
            }
        }
    };
    let tasks = n.div_ceil(COLUMNS);
    if parallel {
        use rayon::prelude::*;
        (0..tasks).into_par_iter().for_each(task);
    } else {
        (0..tasks).for_each(task);
    }
}

/// Adds to `sums[i]` the dot products of `xs[i][range]` with four rows, with AVX2 and FMA
/// at that level or above, two of `xs` at a time so that each load of the rows serves
/// both. (An AVX-512 variant of an earlier loop, in the same blocks, measured slower on an
/// Intel CPU: 175 ms against 96 for AlexNet at batch 8.)
fn add_dots4(xs: &[&[f32]], range: std::ops::Range<usize>, rows: [&[f32]; 4], sums: &mut [[f32; 4]]) {
    let add = |sum: &mut [f32; 4], dots: [f32; 4]| sum.iter_mut().zip(dots).for_each(|(s, d)| *s += d);
    #[cfg(target_arch = "x86_64")]
    if super::isa::current() >= Isa::Avx2 {
        for (pair, sum) in xs.chunks(2).zip(sums.chunks_mut(2)) {
            // SAFETY: the level is at most what the CPU has
            match pair {
                [x0, x1] => {
                    let dots = unsafe { dots4_avx2([&x0[range.clone()], &x1[range.clone()]], rows) };
                    sum.iter_mut().zip(dots).for_each(|(s, d)| add(s, d));
                }
                [x] => add(&mut sum[0], unsafe { dots4_avx2([&x[range.clone()]], rows) }[0]),
                _ => unreachable!("chunks of one or two"),
            }
        }
        return;
    }
    for (x, sum) in xs.iter().zip(sums) {
        add(sum, dot4_lanes(&x[range.clone()], rows));
    }
}

/// The dot products of each of `xs` (of one length) with four rows, with AVX2
/// intrinsics: an 8-lane sum per pair (independent chains of fused multiply-adds), each
/// load of the rows serving all of `xs`. One `x` is summed in the same order whatever
/// else is in `xs`, so a sample's result does not depend on its batch. (The compiler
/// vectorises [`dot4_lanes`] across the rows instead, with a shuffle per value.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots4_avx2<const R: usize>(xs: [&[f32]; R], rows: [&[f32]; 4]) -> [[f32; 4]; R] {
    use std::arch::x86_64::*;
    let k = xs[0].len();
    let (xs, rows) = (xs.map(|x| &x[..k]), rows.map(|r| &r[..k]));
    let mut acc = [[_mm256_setzero_ps(); 4]; R];
    let full = k / 8 * 8;
    for i in (0..full).step_by(8) {
        let xv = xs.map(|x| _mm256_loadu_ps(x.as_ptr().add(i)));
        for r in 0..4 {
            let w = _mm256_loadu_ps(rows[r].as_ptr().add(i));
            for j in 0..R {
                acc[j][r] = _mm256_fmadd_ps(xv[j], w, acc[j][r]);
            }
        }
    }
    std::array::from_fn(|j| {
        std::array::from_fn(|r| {
            let mut lanes = [0.0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), acc[j][r]);
            lanes.iter().sum::<f32>() + xs[j][full..].iter().zip(&rows[r][full..]).map(|(a, b)| a * b).sum::<f32>()
        })
    })
}

/// Sets `sums[i][q]` to the dot product of `xs[i]` (at most [`FEW_ROWS`] of them, of the
/// rows' length) with `rows[q]` for the rows it takes, with AVX-512, in one pass over the
/// rows: each 16 values of the rows meet every one of `xs` (from L2 cache) as they come
/// from memory, fetched a kilobyte ahead (two kilobytes measured slower). Four rows at a
/// time for one or two of `xs`, else three (the first three of `rows`; two streamed
/// slower); every dot product is summed in the same order either way, so that a row of a
/// batch gets the same bits as alone. In the blocks of [`add_dots4`], dotted with two of
/// `xs` at a time, the first pass over each block waited for memory: on an AMD Zen 4 with
/// two threads, AlexNet's first fully connected layer at batch 8 took 10.3 ms, now 8.3
/// (onnxruntime 6.5), and VGG-16's 31 ms, now 17.
///
/// # Safety
/// The CPU must have AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dots_avx512(xs: &[&[f32]], rows: [&[f32]; 4], sums: &mut [[f32; 4]; FEW_ROWS]) {
    /// values fetched ahead of the loads (1 KiB)
    const AHEAD: usize = 256;
    #[target_feature(enable = "avx512f")]
    unsafe fn dots<const R: usize, const C: usize>(xs: &[&[f32]], rows: [&[f32]; 4], sums: &mut [[f32; 4]; FEW_ROWS]) {
        use std::arch::x86_64::*;
        let k = rows[0].len();
        let xs: [&[f32]; R] = std::array::from_fn(|j| &xs[j][..k]);
        let rows: [&[f32]; C] = std::array::from_fn(|q| &rows[q][..k]);
        let mut acc = [[_mm512_setzero_ps(); C]; R];
        let full = k / 16 * 16;
        for i in (0..full).step_by(16) {
            let w = rows.map(|r| _mm512_loadu_ps(r.as_ptr().add(i)));
            for r in rows {
                _mm_prefetch::<_MM_HINT_T0>(r.as_ptr().wrapping_add(i + AHEAD).cast());
            }
            for j in 0..R {
                let x = _mm512_loadu_ps(xs[j].as_ptr().add(i));
                for q in 0..C {
                    acc[j][q] = _mm512_fmadd_ps(x, w[q], acc[j][q]);
                }
            }
        }
        for j in 0..R {
            for (q, row) in rows.iter().enumerate() {
                let tail: f32 = xs[j][full..].iter().zip(&row[full..]).map(|(a, b)| a * b).sum();
                sums[j][q] = _mm512_reduce_add_ps(acc[j][q]) + tail;
            }
        }
    }
    match xs.len() {
        1 => dots::<1, 4>(xs, rows, sums),
        2 => dots::<2, 4>(xs, rows, sums),
        3 => dots::<3, 3>(xs, rows, sums),
        4 => dots::<4, 3>(xs, rows, sums),
        5 => dots::<5, 3>(xs, rows, sums),
        6 => dots::<6, 3>(xs, rows, sums),
        7 => dots::<7, 3>(xs, rows, sums),
        FEW_ROWS => dots::<FEW_ROWS, 3>(xs, rows, sums),
        n => unreachable!("{n} rows, not 1 to {FEW_ROWS}"),
    }
}

/// Eight running sums per row, so that the loop vectorises.
fn dot4_lanes(x: &[f32], rows: [&[f32]; 4]) -> [f32; 4] {
    const L: usize = 8;
    let k = x.len();
    let rows = rows.map(|r| &r[..k]);
    let mut acc = [[0.0f32; L]; 4];
    for (q, xv) in x.chunks_exact(L).enumerate() {
        for (r, row) in rows.iter().enumerate() {
            let wv = &row[q * L..q * L + L];
            for l in 0..L {
                acc[r][l] += xv[l] * wv[l];
            }
        }
    }
    let tail = k / L * L;
    std::array::from_fn(|r| {
        acc[r].iter().sum::<f32>() + x[tail..].iter().zip(&rows[r][tail..]).map(|(a, b)| a * b).sum::<f32>()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_with_transposes() {
        let a = [1., 2., 3., 4., 5., 6.]; // 2x3
        let b = [7., 8., 9., 10., 11., 12.]; // 3x2
        let mut c = [0.0; 4];
        matmul(MatRef::new(&a, 2, 3), MatRef::new(&b, 3, 2), &mut c, false, false);
        assert_eq!(c, [58., 64., 139., 154.]);
        // (bᵀ)ᵀ with b stored as 2x3 transposed
        let bt = [7., 9., 11., 8., 10., 12.];
        let mut c2 = [1.0; 4];
        matmul(MatRef::new(&a, 2, 3), MatRef::new(&bt, 2, 3).t(), &mut c2, true, false);
        assert_eq!(c2, [59., 65., 140., 155.]);
    }

    /// The exact `Σ_t a[i][t]·b[t][j]` and `Σ_t |a[i][t]·b[t][j]|` in f64, `a` `m x k` and `b`
    /// `k x n` given as functions of (row, column).
    fn exact(
        m: usize,
        n: usize,
        k: usize,
        a: impl Fn(usize, usize) -> f32,
        b: impl Fn(usize, usize) -> f32,
    ) -> (Vec<f64>, Vec<f64>) {
        let (mut sum, mut abs) = (vec![0.0; m * n], vec![0.0; m * n]);
        for i in 0..m {
            for j in 0..n {
                for t in 0..k {
                    let p = a(i, t) as f64 * b(t, j) as f64;
                    sum[i * n + j] += p;
                    abs[i * n + j] += p.abs();
                }
            }
        }
        (sum, abs)
    }

    /// Whether `got` is within the rounding bound of `k` (+1 when accumulating) f32
    /// products of the exact sum: (terms)·u·Σ|a·b|, u = ε/2 (see tests/conv_naive.rs).
    fn within_bound(got: f32, exact: f64, abs: f64, terms: usize) -> bool {
        (got as f64 - exact).abs() <= terms as f64 * f32::EPSILON as f64 / 2.0 * abs
    }

    #[test]
    fn every_level_equals_the_exact_product() {
        // odd sizes around the micro-kernels' tiles (scalar 2x4, AVX2 6x16, AVX-512 32x6 or
        // so) and the AVX2 level's blocks (k past 256, m past 168 split by rows, n past
        // 4080 split by columns), plain and transposed operands, accumulating into a
        // strided output
        super::super::for_each_level(&super::super::TEST_THREADS, |_, _| {
            let mut rng = crate::Rng::new(6);
            for (m, n, k) in [
                (1, 1, 1),
                (3, 5, 7),
                (17, 33, 9),
                (64, 64, 64),
                (45, 70, 131),
                (129, 3, 40),
                (2, 300, 65),
                (181, 37, 300),
                (7, 4100, 20),
            ] {
                let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
                let b: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
                let c0: Vec<f32> = (0..m * (n + 2)).map(|_| rng.normal()).collect();
                for (a_t, b_t, accumulate) in
                    [(false, false, false), (true, false, true), (false, true, false), (true, true, true)]
                {
                    // the same logical a (m x k) and b (k x n), stored transposed when asked
                    let am = if a_t { MatRef::new(&a, k, m).t() } else { MatRef::new(&a, m, k) };
                    let bm = if b_t { MatRef::new(&b, n, k).t() } else { MatRef::new(&b, k, n) };
                    let av = |i: usize, t: usize| if a_t { a[t * m + i] } else { a[i * k + t] };
                    let bv = |t: usize, j: usize| if b_t { b[j * k + t] } else { b[t * n + j] };
                    let (want, abs) = exact(m, n, k, av, bv);
                    let mut c = c0.clone();
                    // SAFETY: c holds m rows of n + 2 values
                    unsafe { matmul_to(am, bm, c.as_mut_ptr(), n + 2, accumulate, true) };
                    for i in 0..m {
                        for j in 0..n {
                            let before = c0[i * (n + 2) + j];
                            let (e, s) = if accumulate {
                                (want[i * n + j] + before as f64, abs[i * n + j] + before.abs() as f64)
                            } else {
                                (want[i * n + j], abs[i * n + j])
                            };
                            let got = c[i * (n + 2) + j];
                            assert!(within_bound(got, e, s, k + 1), "{m}x{n}x{k} {a_t} {b_t} ({i}, {j}): {got} vs {e}");
                        }
                        assert_eq!(&c[i * (n + 2) + n..(i + 1) * (n + 2)], &c0[i * (n + 2) + n..(i + 1) * (n + 2)]);
                    }
                }
            }
        });
    }

    #[test]
    fn every_thread_count_gives_the_same_bits() {
        // each output is one task's and sums in the same order, so a run resumes bit for
        // bit on a machine with another number of cores
        let mut rng = crate::Rng::new(8);
        for (m, n, k) in [(300, 200, 520), (20, 700, 300)] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
            for isa in Isa::supported() {
                let product = |threads| {
                    super::super::scoped(isa, threads, || {
                        let mut c = vec![0.0f32; m * n];
                        matmul(MatRef::new(&a, m, k), MatRef::new(&b, k, n), &mut c, false, true);
                        c
                    })
                    .unwrap()
                };
                let one = product(1);
                for threads in [2, 3, 16] {
                    assert!(product(threads) == one, "{m}x{n}x{k} at {isa} with {threads} threads");
                }
            }
        }
    }

    #[test]
    fn few_rows_path_equals_the_general_product() {
        // 1 to 8 rows times a transposed 259x2349 (odd sizes: tails of the 4-row groups, of
        // the 64-column tasks, of the blocks along k and of the 8-lane sums), into a
        // strided output, plain and accumulating
        super::super::for_each_level(&super::super::TEST_THREADS, |_, _| {
            let mut rng = crate::Rng::new(5);
            let (n, k) = (259, 2 * K_BLOCK + 301);
            let w: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect();
            for m in 1..=FEW_ROWS {
                let x: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
                let (want, abs) = exact(m, n, k, |i, t| x[i * k + t], |t, j| w[j * k + t]);
                for accumulate in [false, true] {
                    let stride = n + 3;
                    let mut c = vec![1.0f32; m * stride];
                    // SAFETY: c holds m rows of stride values
                    unsafe {
                        matmul_to(
                            MatRef::new(&x, m, k),
                            MatRef::new(&w, n, k).t(),
                            c.as_mut_ptr(),
                            stride,
                            accumulate,
                            true,
                        )
                    };
                    for i in 0..m {
                        for j in 0..n {
                            let extra = if accumulate { 1.0 } else { 0.0 };
                            let (e, s) = (want[i * n + j] + extra, abs[i * n + j] + extra);
                            assert!(within_bound(c[i * stride + j], e, s, k + 1), "m={m} i={i} j={j}");
                        }
                        assert_eq!(&c[i * stride + n..(i + 1) * stride], &[1.0; 3], "outside the block");
                    }
                    // a row's result does not depend on the rows beside it
                    for i in (0..m).filter(|_| !accumulate) {
                        let mut alone = vec![0.0f32; n];
                        matmul(MatRef::new(&x[i * k..], 1, k), MatRef::new(&w, n, k).t(), &mut alone, false, true);
                        let same = alone.iter().zip(&c[i * stride..]).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "m={m}: row {i} differs from the row alone");
                    }
                }
            }
        });
    }
}
