//! NumPy-style broadcasting and its inverse (summing a gradient back to an input's shape),
//! plus reductions along dimensions.

use super::{fmt_shape, resolve_dim, strides, Tensor};
use crate::error::{Error, Result};

/// The shape two shapes broadcast to, aligning trailing dimensions.
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::shape(
                    op,
                    format!("shapes {} and {} cannot be broadcast together", fmt_shape(a), fmt_shape(b)),
                ))
            }
        };
    }
    Ok(out)
}

/// Strides of `shape` seen from the broadcast shape `out` (0 along broadcast dimensions).
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = strides(shape);
    let offset = out.len() - shape.len();
    (0..out.len()).map(|i| if i < offset || shape[i - offset] == 1 { 0 } else { own[i - offset] }).collect()
}

/// `f(a, b)` elementwise over `a` of shape `a_shape` and `b` of shape `b_shape`, both
/// broadcast to `out_shape` (which [`broadcast_shapes`] gave), in row-major order.
pub(crate) fn broadcast_map<T: Copy, U>(
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out_shape: &[usize],
    f: impl Fn(T, T) -> U,
) -> Vec<U> {
    let sa = broadcast_strides(a_shape, out_shape);
    let sb = broadcast_strides(b_shape, out_shape);
    let n: usize = out_shape.iter().product();
    let mut data = Vec::with_capacity(n);
    if n == 0 {
        return data;
    }
    // Walk the output in row-major order, keeping the input offsets up to date; the
    // innermost dimension is a tight loop.
    let nd = out_shape.len();
    if nd == 0 {
        data.push(f(a[0], b[0]));
        return data;
    }
    let inner = out_shape[nd - 1];
    let (ia, ib) = (sa[nd - 1], sb[nd - 1]);
    let mut idx = vec![0usize; nd];
    let (mut oa, mut ob) = (0usize, 0usize);
    for _ in 0..n / inner {
        for j in 0..inner {
            data.push(f(a[oa + j * ia], b[ob + j * ib]));
        }
        // advance the outer index
        let mut d = nd - 1;
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            oa += sa[d];
            ob += sb[d];
            if idx[d] < out_shape[d] {
                break;
            }
            oa -= sa[d] * idx[d];
            ob -= sb[d] * idx[d];
            idx[d] = 0;
        }
    }
    data
}

impl Tensor {
    /// `f(a, b)` elementwise with broadcasting.
    pub fn zip_broadcast(
        &self,
        other: &Tensor,
        op: &'static str,
        f: impl Fn(f32, f32) -> f32 + Sync,
    ) -> Result<Tensor> {
        if self.shape == other.shape {
            return self.zip_same(other, op, f);
        }
        let out_shape = broadcast_shapes(op, &self.shape, &other.shape)?;
        let (a, b) = (self.data(), other.data());
        if other.numel() == 1 {
            let s = b[0];
            let data = a.iter().map(|&x| f(x, s)).collect();
            return Ok(Tensor::from_parts(out_shape, data));
        }
        if self.numel() == 1 {
            let s = a[0];
            let data = b.iter().map(|&y| f(s, y)).collect();
            return Ok(Tensor::from_parts(out_shape, data));
        }
        // x [N, C, ...] with a per-channel [1, C, 1, ...] (a bias, a scale): plane by plane
        let per_channel = |t: &[usize]| {
            t.len() == out_shape.len()
                && t.len() >= 3
                && t[1] == out_shape[1]
                && t.iter().enumerate().all(|(i, &d)| i == 1 || d == 1)
        };
        if self.shape == out_shape && per_channel(&other.shape) {
            let (c, plane) = (out_shape[1], out_shape[2..].iter().product::<usize>());
            let data = crate::kernels::par_elementwise(a.len(), |range, out| {
                for (i, o) in range.zip(out.iter_mut()) {
                    o.write(f(a[i], b[(i / plane) % c]));
                }
            });
            return Ok(Tensor::from_parts(out_shape, data));
        }
        let data = broadcast_map(a, &self.shape, b, &other.shape, &out_shape, f);
        Ok(Tensor::from_parts(out_shape, data))
    }

    /// Sums this tensor down to `shape`, the inverse of broadcasting `shape` to `self.shape()`.
    pub fn sum_to_shape(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape == shape {
            return Ok(self.clone());
        }
        let check = broadcast_shapes("sum_to_shape", shape, &self.shape)?;
        if check != self.shape {
            return Err(Error::shape(
                "sum_to_shape",
                format!("{} does not broadcast to {}", fmt_shape(shape), fmt_shape(&self.shape)),
            ));
        }
        let st = broadcast_strides(shape, &self.shape);
        let mut out = vec![0.0f32; shape.iter().product()];
        let nd = self.shape.len();
        let mut idx = vec![0usize; nd];
        let mut o = 0usize;
        for &v in self.data() {
            out[o] += v;
            let mut d = nd;
            while d > 0 {
                d -= 1;
                idx[d] += 1;
                o += st[d];
                if idx[d] < self.shape[d] {
                    break;
                }
                o -= st[d] * idx[d];
                idx[d] = 0;
            }
        }
        Ok(Tensor::from_parts(shape.to_vec(), out))
    }

    /// Sum over one dimension; `keepdim` keeps it with size 1.
    pub fn sum_dim(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        let d = resolve_dim("sum", dim, self.ndim())?;
        let (outer, len, inner) = self.split_at_dim(d);
        let mut out = vec![0.0f32; outer * inner];
        let x = self.data();
        for o in 0..outer {
            for k in 0..len {
                let src = &x[(o * len + k) * inner..(o * len + k + 1) * inner];
                for (acc, &v) in out[o * inner..(o + 1) * inner].iter_mut().zip(src) {
                    *acc += v;
                }
            }
        }
        Ok(Tensor::from_parts(self.reduced_shape(d, keepdim), out))
    }

    /// Mean over one dimension.
    pub fn mean_dim(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        let d = resolve_dim("mean", dim, self.ndim())?;
        let len = self.shape[d].max(1) as f32;
        Ok(self.sum_dim(dim, keepdim)?.scale(1.0 / len))
    }

    /// Maximum over one dimension, with the index of the first maximum.
    pub fn max_dim(&self, dim: isize, keepdim: bool) -> Result<(Tensor, Vec<usize>)> {
        let d = resolve_dim("max", dim, self.ndim())?;
        if self.shape[d] == 0 {
            return Err(Error::shape("max", "cannot take the maximum over an empty dimension"));
        }
        let (outer, len, inner) = self.split_at_dim(d);
        let x = self.data();
        let mut vals = vec![f32::NEG_INFINITY; outer * inner];
        let mut idx = vec![0usize; outer * inner];
        for o in 0..outer {
            for k in 0..len {
                for i in 0..inner {
                    let v = x[(o * len + k) * inner + i];
                    let slot = o * inner + i;
                    if v > vals[slot] || (k == 0) {
                        vals[slot] = v;
                        idx[slot] = k;
                    }
                }
            }
        }
        Ok((Tensor::from_parts(self.reduced_shape(d, keepdim), vals), idx))
    }

    /// (product of dims before `d`, size of `d`, product of dims after `d`).
    pub(crate) fn split_at_dim(&self, d: usize) -> (usize, usize, usize) {
        let outer = self.shape[..d].iter().product();
        let inner = self.shape[d + 1..].iter().product();
        (outer, self.shape[d], inner)
    }

    fn reduced_shape(&self, d: usize, keepdim: bool) -> Vec<usize> {
        let mut s = self.shape.clone();
        if keepdim {
            s[d] = 1;
        } else {
            s.remove(d);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_add_matches_by_hand() {
        let a = Tensor::new(&[2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let b = Tensor::new(&[3], vec![10., 20., 30.]).unwrap();
        let c = a.zip_broadcast(&b, "add", |x, y| x + y).unwrap();
        assert_eq!(c.data(), &[11., 22., 33., 14., 25., 36.]);
        let col = Tensor::new(&[2, 1], vec![100., 200.]).unwrap();
        let d = a.zip_broadcast(&col, "add", |x, y| x + y).unwrap();
        assert_eq!(d.data(), &[101., 102., 103., 204., 205., 206.]);
        assert_eq!(d.sum_to_shape(&[2, 1]).unwrap().data(), &[306., 615.]);
    }

    #[test]
    fn broadcast_mismatch_names_both_shapes() {
        let a = Tensor::zeros(&[2, 3]);
        let b = Tensor::zeros(&[4]);
        let err = a.zip_broadcast(&b, "add", |x, y| x + y).unwrap_err().to_string();
        assert!(err.contains("add") && err.contains("[2, 3]") && err.contains("[4]"), "{err}");
    }

    #[test]
    fn per_channel_fast_path_equals_the_general_walk() {
        // [2, 3, 2, 5] with [1, 3, 1, 1] takes the plane-by-plane path; [1, 3, 1, 5] the
        // general one: the same values where they coincide
        let x = Tensor::new(&[2, 3, 2, 5], (0..60).map(|v| v as f32).collect()).unwrap();
        let b = Tensor::new(&[1, 3, 1, 1], vec![10.0, 20.0, 30.0]).unwrap();
        let wide = Tensor::new(&[1, 3, 1, 5], [10.0f32, 20.0, 30.0].iter().flat_map(|&v| [v; 5]).collect()).unwrap();
        let fast = x.zip_broadcast(&b, "sub", |a, c| a - c).unwrap();
        let general = x.zip_broadcast(&wide, "sub", |a, c| a - c).unwrap();
        assert_eq!(fast.shape(), [2, 3, 2, 5]);
        assert_eq!(fast.data(), general.data());
        assert_eq!(fast.data()[10], 10.0 - 20.0);
    }
}
