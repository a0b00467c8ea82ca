//! Reductions along axes (ReduceMean, ReduceMax, ReduceSum) and Softmax/LogSoftmax.

use super::{int_list, Attrs};
use crate::graph::value::{axis, Value};
use crate::{Error, Result, Tensor};
use rayon::prelude::*;

/// Softmax or LogSoftmax along an axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Softmax {
    axis: i64,
    log: bool,
    /// before opset 13 the input is seen as a matrix, the axis splitting rows from columns
    as_matrix: bool,
}

impl Softmax {
    pub(super) fn from_node(a: &Attrs, opset: i64) -> Result<Softmax> {
        let as_matrix = opset < 13;
        Ok(Softmax { axis: a.int("axis", if as_matrix { 1 } else { -1 })?, log: a.op() == "LogSoftmax", as_matrix })
    }

    pub(super) fn run(&self, x: &Value) -> Result<Value> {
        let op = if self.log { "LogSoftmax" } else { "Softmax" };
        let t = x.tensor(op)?;
        let shape = t.shape();
        if shape.is_empty() {
            return Err(Error::shape(op, "expects at least one dimension"));
        }
        let a = axis(op, self.axis, shape.len())?;
        let (len, inner) = if self.as_matrix {
            (shape[a..].iter().product::<usize>(), 1)
        } else {
            (shape[a], shape[a + 1..].iter().product::<usize>())
        };
        let mut y = t.data().to_vec();
        let log = self.log;
        if len > 0 && inner > 0 {
            y.par_chunks_mut(len * inner).for_each(|block| {
                for i in 0..inner {
                    let at = |j: usize| j * inner + i;
                    let max = (0..len).map(|j| block[at(j)]).fold(f32::NEG_INFINITY, f32::max);
                    let sum: f64 = (0..len).map(|j| ((block[at(j)] - max) as f64).exp()).sum();
                    for j in 0..len {
                        let v = &mut block[at(j)];
                        *v = if log {
                            ((*v - max) as f64 - sum.ln()) as f32
                        } else {
                            (((*v - max) as f64).exp() / sum) as f32
                        };
                    }
                }
            });
        }
        Ok(x.like(Tensor::from_parts(shape.to_vec(), y)))
    }
}

/// What a reduction computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReduceKind {
    /// ReduceMean
    Mean,
    /// ReduceMax
    Max,
    /// ReduceSum
    Sum,
}

/// A reduction over some axes (all by default).
#[derive(Clone, Debug, PartialEq)]
pub struct Reduce {
    kind: ReduceKind,
    /// the axes attribute (before the axes became an input)
    axes: Option<Vec<i64>>,
    keepdims: bool,
    noop_with_empty_axes: bool,
}

impl Reduce {
    pub(super) fn from_node(a: &Attrs, _opset: i64) -> Result<Reduce> {
        let kind = match a.op() {
            "ReduceMean" => ReduceKind::Mean,
            "ReduceMax" => ReduceKind::Max,
            _ => ReduceKind::Sum,
        };
        Ok(Reduce {
            kind,
            axes: a.ints("axes")?,
            keepdims: a.int("keepdims", 1)? != 0,
            noop_with_empty_axes: a.int("noop_with_empty_axes", 0)? != 0,
        })
    }

    /// The ONNX operator's name.
    pub fn name(&self) -> &'static str {
        match self.kind {
            ReduceKind::Mean => "ReduceMean",
            ReduceKind::Max => "ReduceMax",
            ReduceKind::Sum => "ReduceSum",
        }
    }

    /// Whether this reduction of a float value of rank `rank`, with the input `axes` (if
    /// given), is a global pooling: the mean or the largest value over every axis after
    /// the first two. Returns `(max, keepdims)`: whether it is the largest value, and
    /// whether it keeps the reduced axes.
    pub(crate) fn global_pool(&self, axes: Option<&Value>, rank: usize) -> Option<(bool, bool)> {
        let axes = self.reduced_axes(axes, rank).ok()??;
        let spatial = rank > 2 && axes.iter().copied().eq(2..rank);
        match self.kind {
            ReduceKind::Mean if spatial => Some((false, self.keepdims)),
            ReduceKind::Max if spatial => Some((true, self.keepdims)),
            _ => None,
        }
    }

    /// The axes of a value of rank `rank` that the reduction reduces, from the attribute
    /// or the input `axes`, in order, each once (an axis named twice counts once); `None`
    /// where it reduces none (no axes, with `noop_with_empty_axes`).
    fn reduced_axes(&self, axes: Option<&Value>, rank: usize) -> Result<Option<Vec<usize>>> {
        let op = self.name();
        let axes = match axes {
            Some(v) => Some(int_list(op, v)?),
            None => self.axes.clone(),
        };
        let mut axes = match axes {
            Some(a) if !a.is_empty() => a.iter().map(|&a| axis(op, a, rank)).collect::<Result<Vec<_>>>()?,
            _ if self.noop_with_empty_axes => return Ok(None),
            _ => (0..rank).collect(),
        };
        axes.sort_unstable();
        axes.dedup();
        Ok(Some(axes))
    }

    /// Reduces `x` over the axes of the attribute or of the input `axes`. Computes in f64
    /// and returns `x`'s type.
    pub(super) fn run(&self, x: &Value, axes: Option<&Value>) -> Result<Value> {
        let op = self.name();
        let rank = x.shape().len();
        let Some(axes) = self.reduced_axes(axes, rank)? else {
            return Ok(x.clone());
        };
        let reduced: Vec<bool> = (0..rank).map(|d| axes.contains(&d)).collect();
        let shape = x.shape();
        let run: usize = axes.iter().map(|&d| shape[d]).product();
        let kept: Vec<usize> = (0..rank).filter(|&d| !reduced[d]).map(|d| shape[d]).collect();
        use crate::io::onnx::data_type::*;
        let least = match x.elem() {
            INT2 => -2.0,
            INT4 => -8.0,
            INT8 => i8::MIN as f64,
            INT16 => i16::MIN as f64,
            INT32 => i32::MIN as f64,
            INT64 => i64::MIN as f64,
            e if crate::graph::value::is_float(e) => f64::NEG_INFINITY,
            _ => 0.0,
        };
        let kind = self.kind;
        let fold = |r: &mut dyn Iterator<Item = f64>| match kind {
            ReduceKind::Sum => r.sum(),
            ReduceKind::Mean => r.sum::<f64>() / run as f64,
            // the maximum of nothing is the least value of the type
            ReduceKind::Max if run == 0 => least,
            ReduceKind::Max => r.fold(f64::NEG_INFINITY, |m, v| if v > m || v.is_nan() { v } else { m }),
        };
        let out: Vec<f64> = match x {
            // trailing axes of floats (global pooling): runs read where they lie, in parallel
            Value::Float { tensor, .. } if run > 0 && axes.iter().copied().eq(rank - axes.len()..rank) => {
                tensor.data().par_chunks(run).map(|r| fold(&mut r.iter().map(|&v| v as f64))).collect()
            }
            _ => {
                // move the reduced axes last, then reduce contiguous runs
                let order: Vec<usize> =
                    (0..rank).filter(|&d| !reduced[d]).chain((0..rank).filter(|&d| reduced[d])).collect();
                // the transposed copy and its f64 values
                super::check_output_of(op, x.shape(), x.value_bytes() + 8)?;
                let values = super::layout::transpose(x, &order)?.to_f64s();
                let count: usize = kept.iter().product();
                (0..count).map(|i| fold(&mut values[i * run..(i + 1) * run].iter().copied())).collect()
            }
        };
        let out_shape: Vec<usize> =
            if self.keepdims { (0..rank).map(|d| if reduced[d] { 1 } else { shape[d] }).collect() } else { kept };
        let t = Tensor::from_parts(out_shape, out.iter().map(|&v| v as f32).collect());
        Ok(match x {
            Value::Int { elem, .. } => Value::Int {
                elem: *elem,
                shape: t.shape().to_vec(),
                values: out.iter().map(|&v| crate::graph::value::float_to_int(*elem, v)).collect(),
            },
            _ => x.like(t),
        })
    }
}
