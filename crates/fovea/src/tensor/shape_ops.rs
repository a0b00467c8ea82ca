//! Shape operations that move data: permute, concat, narrow (slice), pad, flip.

use super::{fmt_shape, resolve_dim, strides, Tensor};
use crate::error::{Error, Result};

impl Tensor {
    /// Reorders dimensions: output dimension `i` is input dimension `dims[i]`.
    pub fn permute(&self, dims: &[usize]) -> Result<Tensor> {
        let nd = self.ndim();
        let mut seen = vec![false; nd];
        if dims.len() != nd || dims.iter().any(|&d| d >= nd || std::mem::replace(&mut seen[d], true)) {
            return Err(Error::shape(
                "permute",
                format!("{dims:?} is not a permutation of the {nd} dimensions of {}", fmt_shape(self.shape())),
            ));
        }
        let in_strides = strides(self.shape());
        let out_shape: Vec<usize> = dims.iter().map(|&d| self.shape()[d]).collect();
        let src_strides: Vec<usize> = dims.iter().map(|&d| in_strides[d]).collect();
        let x = self.data();
        let mut out = Vec::with_capacity(self.numel());
        let mut idx = vec![0usize; nd];
        let mut off = 0usize;
        for _ in 0..self.numel() {
            out.push(x[off]);
            let mut d = nd;
            while d > 0 {
                d -= 1;
                idx[d] += 1;
                off += src_strides[d];
                if idx[d] < out_shape[d] {
                    break;
                }
                off -= src_strides[d] * idx[d];
                idx[d] = 0;
            }
        }
        Ok(Tensor::from_parts(out_shape, out))
    }

    /// Swaps the two dimensions of a matrix.
    pub fn transpose2d(&self) -> Result<Tensor> {
        if self.ndim() != 2 {
            return Err(Error::shape("transpose", format!("expected a matrix, got {}", fmt_shape(self.shape()))));
        }
        self.permute(&[1, 0])
    }

    /// Joins tensors along `dim`; all other dimensions must agree.
    pub fn concat(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        let first = tensors.first().ok_or_else(|| Error::shape("concat", "no tensors to join"))?;
        let d = resolve_dim("concat", dim, first.ndim())?;
        for t in tensors {
            let same_rank = t.ndim() == first.ndim();
            if !same_rank || (0..first.ndim()).any(|i| i != d && t.shape()[i] != first.shape()[i]) {
                return Err(Error::shape(
                    "concat",
                    format!(
                        "cannot join {} and {} along dimension {d}",
                        fmt_shape(first.shape()),
                        fmt_shape(t.shape())
                    ),
                ));
            }
        }
        let outer: usize = first.shape()[..d].iter().product();
        let mut out_shape = first.shape().to_vec();
        out_shape[d] = tensors.iter().map(|t| t.shape()[d]).sum();
        // output row o (of `outer`) is the tensors' o-th pieces in turn; `starts[t]` is
        // where tensor t's piece starts in a row
        let blocks: Vec<usize> = tensors.iter().map(|t| t.numel() / outer.max(1)).collect();
        let starts: Vec<usize> = blocks.iter().scan(0, |at, b| Some(std::mem::replace(at, *at + b))).collect();
        let row: usize = blocks.iter().sum();
        // copied on all threads: GoogLeNet joins every inception block's branches
        let out = crate::kernels::par_elementwise(out_shape.iter().product(), |range, dst| {
            let mut at = range.start;
            while at < range.end {
                let (o, within) = (at / row, at % row);
                let t = starts.partition_point(|&s| s <= within) - 1;
                let src = &tensors[t].data()[o * blocks[t] + within - starts[t]..(o + 1) * blocks[t]];
                let n = src.len().min(range.end - at);
                for (d, &v) in dst[at - range.start..][..n].iter_mut().zip(src) {
                    d.write(v);
                }
                at += n;
            }
        });
        Ok(Tensor::from_parts(out_shape, out))
    }

    /// `len` entries of dimension `dim` starting at `start`.
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = resolve_dim("narrow", dim, self.ndim())?;
        if start + len > self.shape()[d] {
            return Err(Error::shape(
                "narrow",
                format!("entries {start}..{} are outside dimension {d} of {}", start + len, fmt_shape(self.shape())),
            ));
        }
        let (outer, size, inner) = self.split_at_dim(d);
        let mut out = Vec::with_capacity(outer * len * inner);
        for o in 0..outer {
            let base = (o * size + start) * inner;
            out.extend_from_slice(&self.data()[base..base + len * inner]);
        }
        let mut shape = self.shape().to_vec();
        shape[d] = len;
        Ok(Tensor::from_parts(shape, out))
    }

    /// The entries `indices` of dimension `dim`, in that order (repeats allowed), as
    /// PyTorch's `index_select`.
    pub fn index_select(&self, dim: isize, indices: &[usize]) -> Result<Tensor> {
        let d = resolve_dim("index_select", dim, self.ndim())?;
        let (outer, size, inner) = self.split_at_dim(d);
        if let Some(&bad) = indices.iter().find(|&&i| i >= size) {
            return Err(Error::shape(
                "index_select",
                format!("index {bad} is outside dimension {d} of {}", fmt_shape(self.shape())),
            ));
        }
        let mut out = Vec::with_capacity(outer * indices.len() * inner);
        for o in 0..outer {
            for &i in indices {
                let base = (o * size + i) * inner;
                out.extend_from_slice(&self.data()[base..base + inner]);
            }
        }
        let mut shape = self.shape().to_vec();
        shape[d] = indices.len();
        Ok(Tensor::from_parts(shape, out))
    }

    /// The reverse of [`Tensor::index_select`]: a tensor whose dimension `dim` has `size`
    /// entries, entry `indices[k]` the sum of this tensor's entries `k` (zero where no index
    /// points).
    pub fn index_add(&self, dim: isize, indices: &[usize], size: usize) -> Result<Tensor> {
        let d = resolve_dim("index_add", dim, self.ndim())?;
        let (outer, n, inner) = self.split_at_dim(d);
        if n != indices.len() || indices.iter().any(|&i| i >= size) {
            return Err(Error::shape(
                "index_add",
                format!(
                    "{} indices below {size} do not fit dimension {d} of {}",
                    indices.len(),
                    fmt_shape(self.shape())
                ),
            ));
        }
        let mut shape = self.shape().to_vec();
        shape[d] = size;
        let mut out = Tensor::zeros(&shape);
        let dst = out.data_mut();
        for o in 0..outer {
            for (k, &i) in indices.iter().enumerate() {
                let src = &self.data()[(o * n + k) * inner..][..inner];
                for (a, b) in dst[(o * size + i) * inner..][..inner].iter_mut().zip(src) {
                    *a += b;
                }
            }
        }
        Ok(out)
    }

    /// Pads the last `pads.len()` dimensions with `value`: `pads[i] = (before, after)` for
    /// the i-th of those dimensions, in order.
    pub fn pad(&self, pads: &[(usize, usize)], value: f32) -> Result<Tensor> {
        if pads.len() > self.ndim() {
            return Err(Error::shape(
                "pad",
                format!("{} padded dimensions for a tensor {}", pads.len(), fmt_shape(self.shape())),
            ));
        }
        let first = self.ndim() - pads.len();
        let mut out_shape = self.shape().to_vec();
        for (i, &(b, a)) in pads.iter().enumerate() {
            out_shape[first + i] += b + a;
        }
        let mut out = Tensor::full(&out_shape, value);
        let out_strides = strides(&out_shape);
        let nd = self.ndim();
        let inner = if nd == 0 { 1 } else { self.shape()[nd - 1] };
        let rows = self.numel() / inner.max(1);
        let src = self.data();
        let dst = out.data_mut();
        let mut idx = vec![0usize; nd.saturating_sub(1)];
        for r in 0..rows {
            let mut off = 0;
            for (d, &i) in idx.iter().enumerate() {
                let shift = if d >= first { pads[d - first].0 } else { 0 };
                off += (i + shift) * out_strides[d];
            }
            if nd > 0 && nd > first {
                off += pads[nd - 1 - first].0;
            }
            dst[off..off + inner].copy_from_slice(&src[r * inner..(r + 1) * inner]);
            let mut d = idx.len();
            while d > 0 {
                d -= 1;
                idx[d] += 1;
                if idx[d] < self.shape()[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        Ok(out)
    }

    /// Reverses the order of entries along each of `dims`.
    pub fn flip(&self, dims: &[usize]) -> Result<Tensor> {
        let nd = self.ndim();
        if let Some(&bad) = dims.iter().find(|&&d| d >= nd) {
            return Err(Error::shape(
                "flip",
                format!("dimension {bad} is out of range for {}", fmt_shape(self.shape())),
            ));
        }
        let st = strides(self.shape());
        let x = self.data();
        let mut out = Vec::with_capacity(self.numel());
        let mut idx = vec![0usize; nd];
        for _ in 0..self.numel() {
            let mut off = 0;
            for d in 0..nd {
                let i = if dims.contains(&d) { self.shape()[d] - 1 - idx[d] } else { idx[d] };
                off += i * st[d];
            }
            out.push(x[off]);
            let mut d = nd;
            while d > 0 {
                d -= 1;
                idx[d] += 1;
                if idx[d] < self.shape()[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        Ok(Tensor::from_parts(self.shape().to_vec(), out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_concat_narrow_pad_flip() {
        let t = Tensor::new(&[2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        assert_eq!(t.permute(&[1, 0]).unwrap().data(), &[1., 4., 2., 5., 3., 6.]);
        let c = Tensor::concat(&[&t, &t], 1).unwrap();
        assert_eq!(c.shape(), &[2, 6]);
        assert_eq!(c.data(), &[1., 2., 3., 1., 2., 3., 4., 5., 6., 4., 5., 6.]);
        assert_eq!(t.narrow(1, 1, 2).unwrap().data(), &[2., 3., 5., 6.]);
        let p = t.pad(&[(1, 0), (0, 1)], 0.0).unwrap();
        assert_eq!(p.shape(), &[3, 4]);
        assert_eq!(p.data(), &[0., 0., 0., 0., 1., 2., 3., 0., 4., 5., 6., 0.]);
        assert_eq!(t.flip(&[0, 1]).unwrap().data(), &[6., 5., 4., 3., 2., 1.]);
        assert!(t.permute(&[0, 0]).is_err());
        assert!(t.narrow(1, 2, 2).is_err());
    }

    #[test]
    fn concat_of_pieces_across_parallel_chunks_is_in_order() {
        // pieces of uneven sizes (an empty one among them) across the copy's chunks
        crate::kernels::for_each_level(&crate::kernels::TEST_THREADS, |_, _| {
            let part = |c: usize, base: f32| {
                let data = (0..3 * c * 7001).map(|i| base + i as f32).collect();
                Tensor::new(&[3, c, 7001], data).unwrap()
            };
            let parts = [part(5, 0.0), part(0, 1e6), part(2, 2e6), part(9, 3e6)];
            let refs: Vec<&Tensor> = parts.iter().collect();
            let joined = Tensor::concat(&refs, 1).unwrap();
            assert_eq!(joined.shape(), &[3, 16, 7001]);
            let mut want = Vec::new();
            for o in 0..3 {
                for p in &parts {
                    let run = p.numel() / 3;
                    want.extend_from_slice(&p.data()[o * run..(o + 1) * run]);
                }
            }
            assert_eq!(joined.data(), want.as_slice());
        });
    }
}
