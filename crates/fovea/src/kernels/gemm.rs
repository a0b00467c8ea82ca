//! Matrix products through the `gemm` crate (packed, SIMD, optionally multi-threaded).

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
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef::with_stride(data, rows, cols, cols)
    }
    /// A `rows x cols` block of a larger row-major matrix whose rows are `stride` apart.
    pub fn with_stride(data: &'a [f32], rows: usize, cols: usize, stride: usize) -> Self {
        let needed = if rows == 0 { Some(0) } else { (rows - 1).checked_mul(stride).and_then(|v| v.checked_add(cols)) };
        assert!(stride >= cols && needed.is_some_and(|n| n <= data.len()), "matrix buffer too small");
        MatRef { data, rows, cols, stride, transposed: false }
    }
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
pub unsafe fn matmul_to(a: MatRef, b: MatRef, c: *mut f32, c_stride: usize, accumulate: bool, parallel: bool) {
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
    let threads = super::num_threads();
    let parallelism = if parallel && threads > 1 && m * n * k >= 32 * 32 * 32 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: MatRef's constructor checked that a and b cover what their strides reach;
    // the caller vouches for c.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            c_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
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
}
