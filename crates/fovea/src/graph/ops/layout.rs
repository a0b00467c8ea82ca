//! Operators that move elements without computing on them: Reshape, Flatten, Squeeze,
//! Unsqueeze, Transpose, Concat, Split, Slice, Gather and Pad, plus Shape and
//! ConstantOfShape, which make shapes into values and back. All work on every element
//! type.

use super::{check_output_of, int_list, Attrs};
use crate::graph::value::{axis, float_to_int, is_float, Value};
use crate::tensor::strides;
use crate::{Error, Result, Tensor};

/// How Pad fills.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PadMode {
    /// with a constant
    Constant,
    /// mirrored about the edge, the edge not repeated
    Reflect,
    /// with the edge value
    Edge,
    /// with the other end's values (circular)
    Wrap,
}

/// An operator that moves elements.
#[derive(Clone, Debug)]
pub enum Layout {
    /// Reshape to the shape input (0 copies a dimension unless `allowzero`, -1 is inferred)
    Reshape {
        /// whether 0 means a dimension of size 0
        allowzero: bool,
    },
    /// Flatten to a matrix at `axis`
    Flatten(i64),
    /// Squeeze (axes from the attribute, else from input 2, else every 1)
    Squeeze(Option<Vec<i64>>),
    /// Unsqueeze (axes from the attribute, else from input 2)
    Unsqueeze(Option<Vec<i64>>),
    /// Transpose (default: reverse the axes)
    Transpose(Option<Vec<i64>>),
    /// Concat along an axis
    Concat(i64),
    /// Split along `axis`, into the `split` sizes (attribute or input), or `outputs`
    /// parts of equal size (the last smaller)
    Split {
        /// the axis
        axis: i64,
        /// the sizes from the attribute (before opset 13)
        split: Option<Vec<i64>>,
        /// the number of outputs
        outputs: usize,
    },
    /// Slice; before opset 10 with starts, ends and axes as attributes
    Slice(Option<[Option<Vec<i64>>; 3]>),
    /// Shape, dimensions `start..end`
    Shape(i64, Option<i64>),
    /// Gather along an axis
    Gather(i64),
    /// GatherND with this many batch dimensions
    GatherNd(usize),
    /// Expand (broadcast to a shape)
    Expand,
    /// ConstantOfShape, filled with this one-element value
    ConstantOfShape(Value),
    /// Pad; before opset 11 with the pads and the value as attributes
    Pad {
        /// how
        mode: PadMode,
        /// the pads attribute
        pads: Option<Vec<i64>>,
        /// the value attribute
        value: f32,
    },
}

impl Layout {
    pub(super) fn from_node(a: &Attrs, opset: i64) -> Result<Layout> {
        Ok(match a.op() {
            "Reshape" => Layout::Reshape { allowzero: a.int("allowzero", 0)? != 0 },
            "Flatten" => Layout::Flatten(a.int("axis", 1)?),
            "Squeeze" => Layout::Squeeze(a.ints("axes")?),
            "Unsqueeze" => Layout::Unsqueeze(a.ints("axes")?),
            "Transpose" => Layout::Transpose(a.ints("perm")?),
            "Concat" => Layout::Concat(a.int("axis", if opset < 4 { 1 } else { i64::MIN })?),
            "Split" => Layout::Split {
                axis: a.int("axis", 0)?,
                split: a.ints("split")?,
                outputs: match a.int("num_outputs", a.0.outputs.len() as i64)? {
                    n if n == a.0.outputs.len() as i64 && n > 0 => n as usize,
                    n => return Err(a.invalid(format!("num_outputs {n} for {} outputs", a.0.outputs.len()))),
                },
            },
            "Slice" if opset < 10 => Layout::Slice(Some([a.ints("starts")?, a.ints("ends")?, a.ints("axes")?])),
            "Slice" => Layout::Slice(None),
            "Shape" => Layout::Shape(a.int("start", 0)?, a.0.attribute("end").map(|_| a.int("end", 0)).transpose()?),
            "Gather" => Layout::Gather(a.int("axis", 0)?),
            "GatherND" => Layout::GatherNd(
                usize::try_from(a.int("batch_dims", 0)?).map_err(|_| a.invalid("batch_dims must not be negative"))?,
            ),
            "Expand" => Layout::Expand,
            "ConstantOfShape" => Layout::ConstantOfShape(match a.tensor("value")? {
                Some(t) => Value::from_onnx(t)?,
                None => Value::float(Tensor::from_parts(vec![1], vec![0.0])),
            }),
            "Pad" => Layout::Pad {
                mode: match a.string("mode", "constant")?.as_str() {
                    "constant" => PadMode::Constant,
                    "reflect" => PadMode::Reflect,
                    "edge" => PadMode::Edge,
                    "wrap" => PadMode::Wrap,
                    m => return Err(a.invalid(format!("mode {m:?} is not constant, reflect, edge or wrap"))),
                },
                pads: if opset < 11 { a.ints("pads")?.or(a.ints("paddings")?) } else { None },
                value: a.float("value", 0.0)?,
            },
            other => return Err(a.invalid(format!("{other} is not an operator fovea runs"))),
        })
    }

    pub(super) fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
        let input = |i: usize, op: &'static str| -> Result<&Value> {
            inputs.get(i).copied().flatten().ok_or_else(|| Error::shape(op, format!("input {} is missing", i + 1)))
        };
        let optional = |i: usize| inputs.get(i).copied().flatten();
        Ok(vec![match self {
            Layout::Reshape { allowzero } => {
                let x = input(0, "Reshape")?;
                let shape = reshape_target(x.shape(), &int_list("Reshape", input(1, "Reshape")?)?, *allowzero)?;
                x.reshaped("Reshape", &shape)?
            }
            Layout::Flatten(a) => {
                let x = input(0, "Flatten")?;
                let r = x.shape().len();
                let a = if *a == r as i64 { r } else { axis("Flatten", *a, r.max(1))? };
                let rows = x.shape()[..a].iter().product();
                x.reshaped("Flatten", &[rows, x.shape()[a..].iter().product()])?
            }
            Layout::Squeeze(attr) => {
                let x = input(0, "Squeeze")?;
                let axes = match (attr, optional(1)) {
                    (Some(a), _) => Some(a.clone()),
                    (None, Some(v)) => Some(int_list("Squeeze", v)?),
                    (None, None) => None,
                };
                let r = x.shape().len();
                let drop: Vec<usize> = match axes {
                    Some(a) => a.iter().map(|&a| axis("Squeeze", a, r)).collect::<Result<_>>()?,
                    None => (0..r).filter(|&d| x.shape()[d] == 1).collect(),
                };
                if let Some(&d) = drop.iter().find(|&&d| x.shape()[d] != 1) {
                    return Err(Error::shape("Squeeze", format!("dimension {d} of {:?} is not 1", x.shape())));
                }
                let shape: Vec<usize> = (0..r).filter(|d| !drop.contains(d)).map(|d| x.shape()[d]).collect();
                x.reshaped("Squeeze", &shape)?
            }
            Layout::Unsqueeze(attr) => {
                let x = input(0, "Unsqueeze")?;
                let axes = match attr {
                    Some(a) => a.clone(),
                    None => int_list("Unsqueeze", input(1, "Unsqueeze")?)?,
                };
                let r = x.shape().len() + axes.len();
                let mut new: Vec<usize> = axes.iter().map(|&a| axis("Unsqueeze", a, r)).collect::<Result<_>>()?;
                new.sort_unstable();
                if new.windows(2).any(|w| w[0] == w[1]) {
                    return Err(Error::shape("Unsqueeze", format!("axes {axes:?} repeat an axis")));
                }
                let mut rest = x.shape().iter();
                let shape: Vec<usize> =
                    (0..r).map(|d| if new.contains(&d) { 1 } else { *rest.next().unwrap_or(&1) }).collect();
                x.reshaped("Unsqueeze", &shape)?
            }
            Layout::Transpose(perm) => {
                let x = input(0, "Transpose")?;
                let r = x.shape().len();
                let perm: Vec<usize> = match perm {
                    Some(p) => p.iter().map(|&a| axis("Transpose", a, r)).collect::<Result<_>>()?,
                    None => (0..r).rev().collect(),
                };
                transpose(x, &perm)?
            }
            Layout::Concat(a) => concat(&inputs.iter().flatten().copied().collect::<Vec<_>>(), *a)?,
            Layout::Split { axis: a, split, outputs } => {
                let x = input(0, "Split")?;
                let sizes = match (split, optional(1)) {
                    (Some(s), _) => Some(s.clone()),
                    (None, Some(v)) => Some(int_list("Split", v)?),
                    (None, None) => None,
                };
                return split_value(x, *a, sizes, *outputs);
            }
            Layout::Slice(attrs) => {
                let x = input(0, "Slice")?;
                let (starts, ends, axes, steps) = match attrs {
                    Some([s, e, a]) => (s.clone().unwrap_or_default(), e.clone().unwrap_or_default(), a.clone(), None),
                    None => (
                        int_list("Slice", input(1, "Slice")?)?,
                        int_list("Slice", input(2, "Slice")?)?,
                        optional(3).map(|v| int_list("Slice", v)).transpose()?,
                        optional(4).map(|v| int_list("Slice", v)).transpose()?,
                    ),
                };
                slice(x, &starts, &ends, axes, steps)?
            }
            Layout::Shape(start, end) => {
                let x = input(0, "Shape")?;
                let r = x.shape().len() as i64;
                let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let (s, e) = (clamp(*start), clamp(end.unwrap_or(r)));
                let dims: Vec<i64> = x.shape()[s..e.max(s)].iter().map(|&d| d as i64).collect();
                Value::int64(vec![dims.len()], dims)
            }
            Layout::Gather(a) => gather(input(0, "Gather")?, input(1, "Gather")?, *a)?,
            Layout::GatherNd(b) => gather_nd(input(0, "GatherND")?, input(1, "GatherND")?, *b)?,
            Layout::Expand => {
                let x = input(0, "Expand")?;
                let dims = dims_to_shape("Expand", &int_list("Expand", input(1, "Expand")?)?)?;
                expand(x, &crate::tensor::broadcast_shapes("Expand", x.shape(), &dims)?)?
            }
            Layout::ConstantOfShape(value) => {
                let dims = int_list("ConstantOfShape", input(0, "ConstantOfShape")?)?;
                let shape = dims_to_shape("ConstantOfShape", &dims)?;
                let len = check_output_of("ConstantOfShape", &shape, value.value_bytes())?;
                let fill = value.to_f64s().first().copied().unwrap_or(0.0);
                match value {
                    Value::Float { elem, .. } => {
                        Value::float_of(*elem, Tensor::from_parts(shape, vec![fill as f32; len]))
                    }
                    Value::Int { elem, .. } => Value::Int { elem: *elem, shape, values: vec![fill as i64; len] },
                }
            }
            Layout::Pad { mode, pads, value } => {
                let x = input(0, "Pad")?;
                let pads = match pads {
                    Some(p) => p.clone(),
                    None => int_list("Pad", input(1, "Pad")?)?,
                };
                let fill = optional(2).and_then(|v| v.to_f64s().first().copied()).unwrap_or(*value as f64);
                let axes = optional(3).map(|v| int_list("Pad", v)).transpose()?;
                pad(x, &pads, axes, *mode, fill)?
            }
        }])
    }
}

/// A shape from a list of dimensions, refusing negative ones.
fn dims_to_shape(op: &'static str, dims: &[i64]) -> Result<Vec<usize>> {
    dims.iter()
        .map(|&d| usize::try_from(d).map_err(|_| Error::shape(op, format!("negative dimension in {dims:?}"))))
        .collect()
}

/// Reshape's target: 0 keeps the input's dimension (unless `allowzero`), one -1 takes
/// what is left.
fn reshape_target(input: &[usize], target: &[i64], allowzero: bool) -> Result<Vec<usize>> {
    const OP: &str = "Reshape";
    let total: usize = input.iter().product();
    let mut shape = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        shape.push(match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                1
            }
            0 if !allowzero => {
                *input.get(i).ok_or_else(|| Error::shape(OP, format!("0 at {i} copies no dimension of {input:?}")))?
            }
            d if d >= 0 => d as usize,
            _ => return Err(Error::shape(OP, format!("invalid target shape {target:?}"))),
        });
    }
    if let Some(i) = infer {
        let known = crate::tensor::shape_numel(OP, &shape)?;
        if known == 0 || !total.is_multiple_of(known) {
            return Err(Error::shape(OP, format!("cannot reshape {input:?} to {target:?}")));
        }
        shape[i] = total / known;
    }
    Ok(shape)
}

/// Builds a value of `shape` whose element at each coordinate is `x`'s element at
/// `source(coordinate)`, or `fill` where that is `None`.
fn remap(x: &Value, shape: Vec<usize>, fill: f64, source: impl Fn(&[usize]) -> Option<usize>) -> Result<Value> {
    // an index (Option<usize>) and a value per output
    let len = check_output_of("a layout operator", &shape, 16 + x.value_bytes())?;
    let mut coord = vec![0usize; shape.len()];
    let mut index = Vec::with_capacity(len);
    for _ in 0..len {
        index.push(source(&coord));
        for d in (0..shape.len()).rev() {
            coord[d] += 1;
            if coord[d] < shape[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    Ok(match x {
        Value::Float { elem, tensor } => {
            let (d, f) = (tensor.data(), fill as f32);
            let values = index.iter().map(|i| i.map_or(f, |i| d[i])).collect();
            Value::float_of(*elem, Tensor::from_parts(shape, values))
        }
        Value::Int { elem, values, .. } => {
            let f = float_to_int(*elem, fill);
            Value::Int { elem: *elem, shape, values: index.iter().map(|i| i.map_or(f, |i| values[i])).collect() }
        }
    })
}

/// `x` with its axes in the order `perm`.
pub fn transpose(x: &Value, perm: &[usize]) -> Result<Value> {
    let shape = x.shape();
    let mut seen = vec![false; shape.len()];
    if perm.len() != shape.len() || perm.iter().any(|&p| p >= shape.len() || std::mem::replace(&mut seen[p], true)) {
        return Err(Error::shape("Transpose", format!("perm {perm:?} is not a permutation of {} axes", shape.len())));
    }
    if let Value::Float { elem, tensor } = x {
        return Ok(Value::Float { elem: *elem, tensor: tensor.permute(perm)? });
    }
    let st = strides(shape);
    let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    remap(x, out, 0.0, |c| Some(c.iter().zip(perm).map(|(&i, &p)| i * st[p]).sum()))
}

fn concat(parts: &[&Value], a: i64) -> Result<Value> {
    const OP: &str = "Concat";
    let first = parts.first().ok_or_else(|| Error::shape(OP, "no inputs"))?;
    if a == i64::MIN {
        return Err(Error::shape(OP, "the axis attribute is missing"));
    }
    let r = first.shape().len();
    let a = axis(OP, a, r)?;
    for p in parts {
        let ok = p.shape().len() == r && (0..r).all(|d| d == a || p.shape()[d] == first.shape()[d]);
        if !ok || p.elem() != first.elem() {
            return Err(Error::shape(OP, format!("{:?} does not join {:?} along axis {a}", p.shape(), first.shape())));
        }
    }
    if is_float(first.elem()) {
        let tensors: Vec<&Tensor> = parts.iter().map(|p| p.tensor(OP)).collect::<Result<_>>()?;
        return Ok(Value::float_of(first.elem(), Tensor::concat(&tensors, a as isize)?));
    }
    let mut values = Vec::new();
    let outer: usize = first.shape()[..a].iter().product();
    for o in 0..outer {
        for p in parts {
            let run: usize = p.shape()[a..].iter().product();
            values.extend_from_slice(&p.ints(OP)?[o * run..(o + 1) * run]);
        }
    }
    let mut shape = first.shape().to_vec();
    shape[a] = parts.iter().map(|p| p.shape()[a]).sum();
    Ok(Value::Int { elem: first.elem(), shape, values })
}

fn split_value(x: &Value, a: i64, sizes: Option<Vec<i64>>, outputs: usize) -> Result<Vec<Value>> {
    const OP: &str = "Split";
    let r = x.shape().len();
    let a = axis(OP, a, r)?;
    let len = x.shape()[a];
    let sizes: Vec<usize> = match sizes {
        Some(s) => {
            let s = dims_to_shape(OP, &s)?;
            if s.iter().sum::<usize>() != len {
                return Err(Error::shape(OP, format!("sizes {s:?} do not add up to {len}")));
            }
            s
        }
        None => {
            let part = len.div_ceil(outputs);
            (0..outputs).map(|i| part.min(len.saturating_sub(i * part))).collect()
        }
    };
    let mut start = 0;
    sizes
        .iter()
        .map(|&n| {
            let piece = slice_axis(x, a, start, n);
            start += n;
            piece
        })
        .collect()
}

/// Elements `start..start + n` of `x` along axis `a`.
fn slice_axis(x: &Value, a: usize, start: usize, n: usize) -> Result<Value> {
    let mut shape = x.shape().to_vec();
    shape[a] = n;
    let st = strides(x.shape());
    remap(x, shape, 0.0, |c| {
        Some(c.iter().enumerate().map(|(d, &i)| (if d == a { i + start } else { i }) * st[d]).sum())
    })
}

fn slice(x: &Value, starts: &[i64], ends: &[i64], axes: Option<Vec<i64>>, steps: Option<Vec<i64>>) -> Result<Value> {
    const OP: &str = "Slice";
    let r = x.shape().len();
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(Error::shape(OP, "starts, ends, axes and steps differ in length"));
    }
    // per axis: first index and step (possibly negative), and count
    let mut first = vec![0i64; r];
    let mut step = vec![1i64; r];
    let mut shape = x.shape().to_vec();
    for i in 0..starts.len() {
        let d = axis(OP, axes[i], r)?;
        let n = x.shape()[d] as i64;
        let s = steps[i];
        if s == 0 {
            return Err(Error::shape(OP, "a step of 0"));
        }
        let clamp = |v: i64, lo: i64, hi: i64| (if v < 0 { v.saturating_add(n) } else { v }).clamp(lo, hi);
        let (b, e) = if s > 0 {
            (clamp(starts[i], 0, n), clamp(ends[i], 0, n))
        } else {
            (clamp(starts[i], -1, n - 1), clamp(ends[i], -1, n - 1))
        };
        // in i128: steps and ends may be anything an i64 holds
        let (b2, e2, s2) = (b as i128, e as i128, s as i128);
        let count = if s > 0 { ((e2 - b2).max(0) + s2 - 1) / s2 } else { ((b2 - e2).max(0) - s2 - 1) / (-s2) };
        let count = count as i64;
        first[d] = b;
        step[d] = s;
        shape[d] = count.max(0) as usize;
    }
    let st = strides(x.shape());
    remap(x, shape, 0.0, |c| {
        Some(c.iter().enumerate().map(|(d, &i)| (first[d] + i as i64 * step[d]) as usize * st[d]).sum())
    })
}

fn gather(x: &Value, indices: &Value, a: i64) -> Result<Value> {
    const OP: &str = "Gather";
    let r = x.shape().len();
    let a = axis(OP, a, r)?;
    let n = x.shape()[a] as i64;
    let idx: Vec<usize> = indices
        .ints(OP)?
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + n } else { i };
            usize::try_from(j)
                .ok()
                .filter(|&j| (j as i64) < n)
                .ok_or_else(|| Error::shape(OP, format!("index {i} is out of range for a dimension of {n}")))
        })
        .collect::<Result<_>>()?;
    let ishape = indices.shape();
    let mut shape: Vec<usize> = x.shape()[..a].to_vec();
    shape.extend_from_slice(ishape);
    shape.extend_from_slice(&x.shape()[a + 1..]);
    let st = strides(x.shape());
    let ist = strides(ishape);
    let k = ishape.len();
    remap(x, shape, 0.0, |c| {
        let j: usize = c[a..a + k].iter().zip(&ist).map(|(&i, &s)| i * s).sum();
        let before: usize = c[..a].iter().zip(&st).map(|(&i, &s)| i * s).sum();
        let after: usize = c[a + k..].iter().zip(&st[a + 1..]).map(|(&i, &s)| i * s).sum();
        Some(before + idx[j] * st[a] + after)
    })
}

fn pad(x: &Value, pads: &[i64], axes: Option<Vec<i64>>, mode: PadMode, fill: f64) -> Result<Value> {
    const OP: &str = "Pad";
    let r = x.shape().len();
    let axes: Vec<usize> = match axes {
        Some(a) => a.iter().map(|&a| axis(OP, a, r)).collect::<Result<_>>()?,
        None => (0..r).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(Error::shape(OP, format!("pads {pads:?} should have 2 values per padded axis ({})", axes.len())));
    }
    let (mut before, mut after) = (vec![0i64; r], vec![0i64; r]);
    for (i, &d) in axes.iter().enumerate() {
        before[d] = pads[i];
        after[d] = pads[axes.len() + i];
    }
    let shape: Vec<usize> = (0..r)
        .map(|d| {
            let n = (x.shape()[d] as i128 + before[d] as i128 + after[d] as i128).min(i64::MAX as i128);
            usize::try_from(n).map_err(|_| Error::shape(OP, format!("pads {pads:?} crop more than {:?}", x.shape())))
        })
        .collect::<Result<_>>()?;
    if mode != PadMode::Constant && x.shape().iter().zip(&shape).any(|(&i, &o)| i == 0 && o > 0) {
        return Err(Error::shape(OP, "cannot pad an empty dimension by reflection, edge or wrap"));
    }
    let st = strides(x.shape());
    let dims = x.shape().to_vec();
    remap(x, shape, fill, |c| {
        let mut at = 0;
        for d in 0..r {
            let n = dims[d] as i64;
            let mut i = c[d] as i64 - before[d];
            if !(0..n).contains(&i) {
                i = match mode {
                    PadMode::Constant => return None,
                    PadMode::Edge => i.clamp(0, n - 1),
                    PadMode::Wrap => i.rem_euclid(n),
                    PadMode::Reflect if n == 1 => 0,
                    PadMode::Reflect => {
                        let period = 2 * (n - 1);
                        let m = i.rem_euclid(period);
                        if m < n {
                            m
                        } else {
                            period - m
                        }
                    }
                };
            }
            at += i as usize * st[d];
        }
        Some(at)
    })
}

/// `x` broadcast to `shape` (which it must broadcast to).
pub fn expand(x: &Value, shape: &[usize]) -> Result<Value> {
    if x.shape() == shape {
        return Ok(x.clone());
    }
    let out = crate::tensor::broadcast_shapes("Expand", x.shape(), shape)?;
    if out != shape {
        return Err(Error::shape("Expand", format!("{:?} does not broadcast to {shape:?}", x.shape())));
    }
    let offset = shape.len() - x.shape().len();
    let st = strides(x.shape());
    let dims = x.shape().to_vec();
    remap(x, out, 0.0, |c| {
        Some(c[offset..].iter().zip(&dims).zip(&st).map(|((&i, &d), &s)| if d == 1 { 0 } else { i * s }).sum())
    })
}

fn gather_nd(x: &Value, indices: &Value, batch_dims: usize) -> Result<Value> {
    const OP: &str = "GatherND";
    let (ds, is) = (x.shape(), indices.shape());
    let k = *is.last().ok_or_else(|| Error::shape(OP, "indices must have at least one dimension"))?;
    if k == 0 {
        return Err(Error::shape(OP, "the last dimension of indices must be at least 1"));
    }
    if batch_dims >= is.len() || batch_dims + k > ds.len() || ds[..batch_dims] != is[..batch_dims] {
        return Err(Error::shape(
            OP,
            format!("indices {is:?} do not fit data {ds:?} with {batch_dims} batch dimensions"),
        ));
    }
    let idx = indices.ints(OP)?;
    let inner: usize = ds[batch_dims + k..].iter().product();
    let per_batch_data: usize = ds[batch_dims..].iter().product();
    let tuples = idx.len() / k.max(1);
    let per_batch_tuples = tuples / is[..batch_dims].iter().product::<usize>().max(1);
    let st = strides(ds);
    // the first element of each picked slice
    let mut starts = Vec::with_capacity(tuples);
    for t in 0..tuples {
        let mut at = (t / per_batch_tuples.max(1)) * per_batch_data;
        for j in 0..k {
            let n = ds[batch_dims + j] as i64;
            let i = idx[t * k + j];
            let i = if i < 0 { i + n } else { i };
            if !(0..n).contains(&i) {
                return Err(Error::shape(
                    OP,
                    format!("index {} is out of range for a dimension of {n}", idx[t * k + j]),
                ));
            }
            at += i as usize * st[batch_dims + j];
        }
        starts.push(at);
    }
    let mut shape = is[..is.len() - 1].to_vec();
    shape.extend_from_slice(&ds[batch_dims + k..]);
    check_output_of(OP, &shape, 8 + x.value_bytes())?;
    let index: Vec<usize> = starts.iter().flat_map(|&s| s..s + inner).collect();
    Ok(x.gather_flat(shape, &index))
}
