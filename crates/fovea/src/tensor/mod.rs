//! `Tensor`: an f32 array, row-major and contiguous, with a shape.
//!
//! The buffer is reference-counted, so cloning a tensor (as autograd does to keep inputs
//! for backward) is free; writing through [`Tensor::data_mut`] copies only if the buffer
//! is shared. Reshapes are free; every other shape operation makes a new contiguous tensor.

mod broadcast;
mod shape_ops;

pub(crate) use broadcast::broadcast_map;
pub use broadcast::broadcast_shapes;

use crate::error::{Error, Result};
use std::fmt;
use std::sync::Arc;

/// An f32 array, row-major and contiguous, with a shape; clones share the buffer.
#[derive(Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Arc<Buffer>,
}

/// A tensor's values, counted in [`crate::budget::in_use`] while they live.
struct Buffer {
    values: Vec<f32>,
    /// The bytes counted for `values` (uncounted on drop, even if the values moved out).
    counted: u64,
}

impl Buffer {
    fn new(values: Vec<f32>) -> Buffer {
        let counted = values.capacity() as u64 * 4;
        crate::budget::track(counted);
        Buffer { values, counted }
    }
}

impl Clone for Buffer {
    fn clone(&self) -> Buffer {
        Buffer::new(self.values.clone())
    }
}

impl std::ops::Deref for Buffer {
    type Target = Vec<f32>;
    fn deref(&self) -> &Vec<f32> {
        &self.values
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        crate::budget::untrack(self.counted);
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor{:?}", self.shape)?;
        if self.numel() <= 16 {
            write!(f, " {:?}", self.data())?;
        }
        Ok(())
    }
}

/// Formats a shape as `[8, 3, 32, 32]` for error messages.
pub fn fmt_shape(shape: &[usize]) -> String {
    format!("{shape:?}")
}

impl Tensor {
    /// A tensor from its data and shape; the data length must equal the product of the shape.
    pub fn new(shape: &[usize], data: Vec<f32>) -> Result<Tensor> {
        let n = shape_numel("Tensor::new", shape)?;
        if n != data.len() {
            return Err(Error::shape(
                "Tensor::new",
                format!("shape {} needs {} values but {} were given", fmt_shape(shape), n, data.len()),
            ));
        }
        Ok(Tensor { shape: shape.to_vec(), data: Arc::new(Buffer::new(data)) })
    }

    /// Like [`Tensor::new`] for callers that computed the length themselves.
    pub(crate) fn from_parts(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor { shape, data: Arc::new(Buffer::new(data)) }
    }

    /// A tensor of `shape` with every value `value`.
    pub fn full(shape: &[usize], value: f32) -> Tensor {
        Tensor::from_parts(shape.to_vec(), vec![value; shape.iter().product()])
    }
    /// A tensor of `shape` filled with 0.
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 0.0)
    }
    /// A tensor of `shape` filled with 1.
    pub fn ones(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 1.0)
    }
    /// A 0-D tensor (shape `[]`) holding `value`.
    pub fn scalar(value: f32) -> Tensor {
        Tensor::from_parts(vec![], vec![value])
    }
    /// Values drawn from N(0, std²).
    pub fn randn(shape: &[usize], std: f32, rng: &mut crate::Rng) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_parts(shape.to_vec(), (0..n).map(|_| rng.normal() * std).collect())
    }
    /// Values drawn from U(lo, hi).
    pub fn rand_uniform(shape: &[usize], lo: f32, hi: f32, rng: &mut crate::Rng) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_parts(shape.to_vec(), (0..n).map(|_| rng.uniform_range(lo, hi)).collect())
    }

    /// Sizes of the dimensions, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }
    /// Number of values.
    pub fn numel(&self) -> usize {
        self.data.len()
    }
    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    /// Mutable access; copies the buffer first if another tensor shares it.
    pub fn data_mut(&mut self) -> &mut [f32] {
        Arc::make_mut(&mut self.data).values.as_mut_slice()
    }
    /// The values, moved out if no other tensor shares the buffer, else copied.
    pub fn into_vec(self) -> Vec<f32> {
        match Arc::try_unwrap(self.data) {
            Ok(mut own) => std::mem::take(&mut own.values),
            Err(shared) => shared.values.clone(),
        }
    }
    /// The single value of a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(Error::shape("item", format!("tensor {} has more than one value", fmt_shape(&self.shape))));
        }
        Ok(self.data[0])
    }

    /// The same data with another shape of the same size (free).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if shape_numel("reshape", shape)? != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!("cannot reshape {} into {}", fmt_shape(&self.shape), fmt_shape(shape)),
            ));
        }
        Ok(Tensor { shape: shape.to_vec(), data: self.data.clone() })
    }

    /// Applies `f` to every element.
    pub fn map(&self, f: impl Fn(f32) -> f32 + Sync) -> Tensor {
        let data = crate::kernels::par_elementwise(self.numel(), |range, out| {
            out.iter_mut().zip(&self.data[range]).for_each(|(o, &v)| {
                o.write(f(v));
            })
        });
        Tensor::from_parts(self.shape.clone(), data)
    }

    /// Elementwise combination of two tensors of the same shape.
    pub fn zip_same(&self, other: &Tensor, op: &'static str, f: impl Fn(f32, f32) -> f32 + Sync) -> Result<Tensor> {
        if self.shape != other.shape {
            return Err(Error::shape(
                op,
                format!("shapes {} and {} differ", fmt_shape(&self.shape), fmt_shape(&other.shape)),
            ));
        }
        let data = crate::kernels::par_elementwise(self.numel(), |range, out| {
            let inputs = self.data[range.clone()].iter().zip(&other.data[range]);
            out.iter_mut().zip(inputs).for_each(|(o, (&a, &b))| {
                o.write(f(a, b));
            })
        });
        Ok(Tensor::from_parts(self.shape.clone(), data))
    }

    /// `self += other` for tensors of the same shape (gradient accumulation).
    pub fn add_assign(&mut self, other: &Tensor) -> Result<()> {
        if self.shape != other.shape {
            return Err(Error::shape(
                "add_assign",
                format!("shapes {} and {} differ", fmt_shape(&self.shape), fmt_shape(&other.shape)),
            ));
        }
        for (a, &b) in self.data_mut().iter_mut().zip(other.data.iter()) {
            *a += b;
        }
        Ok(())
    }

    /// Every value times `s`.
    pub fn scale(&self, s: f32) -> Tensor {
        self.map(|v| v * s)
    }

    /// Sum of all values, accumulated in f64.
    pub fn sum_all(&self) -> f32 {
        // f64 accumulation keeps large sums accurate and independent of chunking.
        self.data.iter().map(|&v| v as f64).sum::<f64>() as f32
    }
    /// Mean of all values (0 for an empty tensor).
    pub fn mean_all(&self) -> f32 {
        self.sum_all() / self.numel().max(1) as f32
    }
    /// Largest |a - b| over the values of both in order (for tests): infinite when their
    /// lengths differ, NaN when one holds a NaN (or an infinity) the other does not, so that
    /// `diff < tolerance` fails then. Shapes are not compared.
    pub fn max_abs_diff(&self, other: &Tensor) -> f32 {
        let (a, b) = (self.data(), other.data());
        if a.len() != b.len() {
            return f32::INFINITY;
        }
        let diff = |(x, y): (&f32, &f32)| if x == y || (x.is_nan() && y.is_nan()) { 0.0 } else { (x - y).abs() };
        a.iter().zip(b).map(diff).fold(0.0, |m, d| if m.is_nan() || d.is_nan() { f32::NAN } else { m.max(d) })
    }
    /// Whether no value is NaN or infinite.
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }

    /// Index of the largest value in each row of a `[N, C]` tensor.
    pub fn argmax_rows(&self) -> Result<Vec<usize>> {
        if self.ndim() != 2 {
            return Err(Error::shape("argmax_rows", format!("expected [N, C], got {}", fmt_shape(&self.shape))));
        }
        let c = self.shape[1];
        Ok(self
            .data
            .chunks(c.max(1))
            .map(|row| {
                let mut best = 0;
                for (i, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = i;
                    }
                }
                best
            })
            .collect())
    }
}

/// The number of values of `shape`, or an error naming `op` and the shape if it overflows.
/// For shapes that are only computed; [`checked_numel`] before allocating.
pub fn shape_numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::shape(op, format!("shape {} is too large to count", fmt_shape(shape))))
}

/// The number of values of `shape`, or an error naming `op` and the shape if it overflows
/// or is over the memory budget ([`crate::budget`]): the check before allocating.
pub fn checked_numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    crate::budget::check_shape(&format!("{op}: shape {}", fmt_shape(shape)), shape)
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Resolves a possibly negative axis (`-1` = last) against `ndim`.
pub fn resolve_dim(op: &'static str, dim: isize, ndim: usize) -> Result<usize> {
    let d = if dim < 0 { dim + ndim as isize } else { dim };
    if d < 0 || d as usize >= ndim {
        return Err(Error::shape(op, format!("dimension {dim} is out of range for a {ndim}-D tensor")));
    }
    Ok(d as usize)
}
