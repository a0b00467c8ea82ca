//! Convolutions, batch normalization and pooling over 1, 2 or 3 spatial dimensions, as
//! ONNX defines them (explicit or `auto_pad` padding, asymmetric pads, dilations, groups,
//! `ceil_mode`, `count_include_pad`), on the engine's convolution and pooling kernels.

use super::elementwise::Activation;
use super::{check_output, Attrs};
use crate::graph::value::Value;
use crate::kernels::blocked::Pooling;
use crate::kernels::conv::{conv_backward_input, conv_forward, conv_forward_then, ConvGeometry, PackedWeights};
use crate::kernels::pool::{avg_pool_forward, max_pool_values, PoolGeometry};
use crate::{Error, Result, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

/// How padding is chosen (`auto_pad`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AutoPad {
    /// the `pads` attribute
    Explicit,
    /// none
    Valid,
    /// output = ceil(input / stride), the odd extra padding at the end
    SameUpper,
    /// the same, the odd extra padding at the start
    SameLower,
}

impl AutoPad {
    fn from_attrs(a: &Attrs) -> Result<AutoPad> {
        Ok(match a.string("auto_pad", "NOTSET")?.as_str() {
            "NOTSET" | "" => AutoPad::Explicit,
            "VALID" => AutoPad::Valid,
            "SAME_UPPER" => AutoPad::SameUpper,
            "SAME_LOWER" => AutoPad::SameLower,
            other => {
                return Err(a.invalid(format!("auto_pad {other:?} is not NOTSET, VALID, SAME_UPPER or SAME_LOWER")))
            }
        })
    }
}

/// The window attributes shared by convolutions and pooling.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    auto_pad: AutoPad,
    kernel: Option<Vec<usize>>,
    strides: Option<Vec<usize>>,
    dilations: Option<Vec<usize>>,
    pads: Option<Vec<usize>>,
}

/// A window attribute as sizes: all at least `min`.
fn sizes(a: &Attrs, name: &str, min: i64) -> Result<Option<Vec<usize>>> {
    match a.ints(name)? {
        None => Ok(None),
        Some(v) if v.iter().all(|&x| x >= min && x < 1 << 31) => Ok(Some(v.into_iter().map(|x| x as usize).collect())),
        Some(v) => Err(a.invalid(format!("{name} {v:?}: each must be from {min} to 2^31"))),
    }
}

/// Spatial sizes of one window along each dimension: (input, kernel, stride, dilation,
/// pad before, pad after, output).
#[derive(Clone, Copy, Debug)]
struct Extent {
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad_begin: usize,
    pad_end: usize,
    output: usize,
}

impl Window {
    fn from_attrs(a: &Attrs) -> Result<Window> {
        Ok(Window {
            auto_pad: AutoPad::from_attrs(a)?,
            kernel: sizes(a, "kernel_shape", 1)?,
            strides: sizes(a, "strides", 1)?,
            dilations: sizes(a, "dilations", 1)?,
            pads: sizes(a, "pads", 0)?,
        })
    }

    /// The extents for `input` (spatial sizes) with `kernel` (from the weights, if the
    /// attribute is not given); `ceil` rounds the output up (pooling's `ceil_mode`).
    fn extents(&self, op: &'static str, input: &[usize], kernel: Option<&[usize]>, ceil: bool) -> Result<Vec<Extent>> {
        let n = input.len();
        let kernel = self.kernel.as_deref().or(kernel).ok_or_else(|| Error::shape(op, "kernel_shape is missing"))?;
        let per_dim = |v: &Option<Vec<usize>>, name: &str, len: usize| -> Result<Vec<usize>> {
            match v {
                None => Ok(vec![if name == "pads" { 0 } else { 1 }; len]),
                Some(v) if v.len() == len => Ok(v.clone()),
                Some(v) => {
                    Err(Error::shape(op, format!("{name} {v:?} should have {len} values for {n} spatial dimensions")))
                }
            }
        };
        if kernel.len() != n || kernel.contains(&0) {
            return Err(Error::shape(op, format!("kernel {kernel:?} for {n} spatial dimensions")));
        }
        let strides = per_dim(&self.strides, "strides", n)?;
        let dilations = per_dim(&self.dilations, "dilations", n)?;
        let pads = per_dim(&self.pads, "pads", 2 * n)?;
        (0..n)
            .map(|d| {
                let span = (kernel[d] - 1) * dilations[d] + 1;
                let (s, x) = (strides[d], input[d]);
                let (pad_begin, pad_end, output) = match self.auto_pad {
                    AutoPad::Explicit | AutoPad::Valid => {
                        let (b, e) = if self.auto_pad == AutoPad::Valid { (0, 0) } else { (pads[d], pads[n + d]) };
                        let padded = x + b + e;
                        if padded < span {
                            return Err(Error::shape(
                                op,
                                format!("a window of {span} does not fit in input {x} padded by {b}+{e}"),
                            ));
                        }
                        let mut out = if ceil { (padded - span).div_ceil(s) + 1 } else { (padded - span) / s + 1 };
                        // the last window must start inside the input or its padding before
                        if ceil && (out - 1) * s >= x + b {
                            out -= 1;
                        }
                        (b, e, out)
                    }
                    AutoPad::SameUpper | AutoPad::SameLower => {
                        let out = x.div_ceil(s);
                        let total = ((out.max(1) - 1) * s + span).saturating_sub(x);
                        let small = total / 2;
                        let begin = if self.auto_pad == AutoPad::SameUpper { small } else { total - small };
                        (begin, total - begin, out)
                    }
                };
                Ok(Extent { kernel: kernel[d], stride: s, dilation: dilations[d], pad_begin, pad_end, output })
            })
            .collect()
    }
}

/// Spatial sizes of a value of rank 3 to 5 as (depth, height, width), with the number
/// of spatial dimensions.
fn spatial<'a>(op: &'static str, shape: &'a [usize]) -> Result<&'a [usize]> {
    if !(3..=5).contains(&shape.len()) {
        return Err(Error::shape(op, format!("expects N x C x 1 to 3 spatial dimensions, got {shape:?}")));
    }
    Ok(&shape[2..])
}

/// Pads a list of up to 3 spatial values to (depth, height, width) with `fill`.
fn three(v: impl Iterator<Item = usize>, n: usize, fill: usize) -> [usize; 3] {
    let mut out = [fill; 3];
    for (i, x) in v.enumerate() {
        out[3 - n + i] = x;
    }
    out
}

/// Conv: `y = act(conv(x, w) + b [+ s])`, the sum with `s` (a residual connection) and
/// the activation fused at load.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    window: Window,
    groups: usize,
    /// whether a fourth input is added to the output (fused from an Add after)
    pub residual: bool,
    /// an activation applied to the output, after the sum (fused from the node after)
    pub activation: Option<Activation>,
    /// the weights packed at load for the direct kernel, when they are a constant
    pub packed: Option<Arc<PackedWeights>>,
}

impl Conv {
    pub(super) fn from_node(a: &Attrs) -> Result<Conv> {
        let groups = a.int("group", 1)?;
        if !(1..1 << 31).contains(&groups) {
            return Err(a.invalid(format!("group {groups} must be at least 1")));
        }
        Ok(Conv {
            window: Window::from_attrs(a)?,
            groups: groups as usize,
            residual: false,
            activation: None,
            packed: None,
        })
    }

    /// Packs constant weights `w` once for the direct kernel, where it may take them.
    pub(crate) fn pack(&mut self, w: &Tensor) {
        // (1-D and 2-D, strides the kernel has, more than one kernel position: it never
        // takes others on plain values)
        let strides = self.window.strides.as_deref().unwrap_or(&[]);
        let positions: usize = w.shape().get(2..).unwrap_or_default().iter().product();
        if self.groups == 1
            && (3..=4).contains(&w.ndim())
            && positions > 1
            && strides.iter().all(|s| [1, 2, 4].contains(s))
        {
            self.packed = PackedWeights::new(w.shape()[0], w.data()).map(Arc::new);
        }
    }

    /// The geometry for input shape `x` and weight shape `w`.
    pub fn geometry(&self, x: &[usize], w: &[usize]) -> Result<ConvGeometry> {
        let sp = spatial("Conv", x)?;
        let n = sp.len();
        if w.len() != x.len() || w[2..].contains(&0) {
            return Err(Error::shape("Conv", format!("weights {w:?} do not fit input {x:?}")));
        }
        let (c_in, c_out, g) = (x[1], w[0], self.groups);
        if c_in % g != 0 || c_out % g != 0 || w[1].checked_mul(g) != Some(c_in) {
            return Err(Error::shape(
                "Conv",
                format!("weights {w:?} do not fit input {x:?} in {g} group(s) (expected [C_out, {}/{g}, ...])", c_in),
            ));
        }
        if let Some(k) = self.window.kernel.as_ref().filter(|k| k[..] != w[2..]) {
            return Err(Error::shape("Conv", format!("kernel_shape {k:?} does not match weights {w:?}")));
        }
        let ext = self.window.extents("Conv", sp, Some(&w[2..]), false)?;
        Ok(ConvGeometry {
            batch: x[0],
            c_in,
            c_out,
            groups: g,
            input: three(sp.iter().copied(), n, 1),
            kernel: three(ext.iter().map(|e| e.kernel), n, 1),
            stride: three(ext.iter().map(|e| e.stride), n, 1),
            dilation: three(ext.iter().map(|e| e.dilation), n, 1),
            pad: three(ext.iter().map(|e| e.pad_begin), n, 0),
            output: three(ext.iter().map(|e| e.output), n, 1),
        })
    }

    pub(super) fn run(&self, x: &Value, w: &Value, b: Option<&Value>, residual: Option<&Value>) -> Result<Value> {
        let (x, w) = (x.tensor("Conv")?, w.tensor("Conv")?);
        let g = self.geometry(x.shape(), w.shape())?;
        let bias = bias_of(&g, b)?;
        let n = x.ndim() - 2;
        let mut shape = vec![g.batch, g.c_out];
        shape.extend_from_slice(&g.output[3 - n..]);
        let len = check_output("Conv", &shape)?;
        // (zeroed on all threads: one thread's memset of a batch's activations is slow)
        let mut y = crate::kernels::par_zeros(len);
        let residual = residual.map(|r| r.tensor("Conv")).transpose()?;
        match residual {
            Some(r) if r.shape() != shape.as_slice() => {
                // a broadcast sum: after the convolution
                check_output("Add", &crate::tensor::broadcast_shapes("Add", &shape, r.shape())?)?;
                conv_forward(&g, x.data(), w.data(), bias, &mut y);
                let sum = Tensor::from_parts(shape, y).zip_broadcast(r, "Add", |a, b| a + b)?;
                return Ok(Value::float(match self.activation {
                    Some(f) => sum.map(|v| f.apply(v)),
                    None => sum,
                }));
            }
            _ => {
                // the sum and the activation as each run of outputs is done
                let then = |at: usize, run: &mut [f32]| {
                    if let Some(r) = residual {
                        run.iter_mut().zip(&r.data()[at..]).for_each(|(y, &r)| *y += r);
                    }
                    if let Some(f) = self.activation {
                        f.apply_slice(run);
                    }
                };
                let fused = residual.is_some() || self.activation.is_some();
                let packed = self.packed.as_deref();
                conv_forward_then(&g, x.data(), w.data(), packed, bias, &mut y, fused.then_some(&then));
            }
        }
        Ok(Value::float(Tensor::from_parts(shape, y)))
    }
}

/// The bias `b` of a convolution of geometry `g`, refused if it is not one per output
/// channel.
pub(super) fn bias_of<'a>(g: &ConvGeometry, b: Option<&'a Value>) -> Result<Option<&'a [f32]>> {
    match b {
        Some(b) if b.len() != g.c_out => {
            Err(Error::shape("Conv", format!("bias {:?} for {} output channels", b.shape(), g.c_out)))
        }
        Some(b) => Ok(Some(b.tensor("Conv")?.data())),
        None => Ok(None),
    }
}

/// ConvTranspose: the gradient of a convolution with respect to its input, run forward.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose {
    window: Window,
    groups: usize,
    output_padding: Option<Vec<usize>>,
    output_shape: Option<Vec<usize>>,
}

impl ConvTranspose {
    pub(super) fn from_node(a: &Attrs) -> Result<ConvTranspose> {
        let Conv { window, groups, .. } = Conv::from_node(a)?;
        Ok(ConvTranspose {
            window,
            groups,
            output_padding: sizes(a, "output_padding", 0)?,
            output_shape: sizes(a, "output_shape", 1)?,
        })
    }

    pub(super) fn run(&self, x: &Value, w: &Value, b: Option<&Value>) -> Result<Value> {
        const OP: &str = "ConvTranspose";
        let (x, w) = (x.tensor(OP)?, w.tensor(OP)?);
        let sp = spatial(OP, x.shape())?;
        let n = sp.len();
        let (c_in, g) = (x.shape()[1], self.groups);
        if w.ndim() != x.ndim() || w.shape()[0] != c_in || c_in % g != 0 || w.shape()[2..].contains(&0) {
            return Err(Error::shape(OP, format!("weights {:?} do not fit input {:?}", w.shape(), x.shape())));
        }
        let c_out = w.shape()[1] * g;
        let kernel = self.window.kernel.clone().unwrap_or_else(|| w.shape()[2..].to_vec());
        let one = |v: &Option<Vec<usize>>, fill: usize, len: usize, name: &str| -> Result<Vec<usize>> {
            match v {
                None => Ok(vec![fill; len]),
                Some(v) if v.len() == len => Ok(v.clone()),
                Some(v) => Err(Error::shape(OP, format!("{name} {v:?} should have {len} values"))),
            }
        };
        let strides = one(&self.window.strides, 1, n, "strides")?;
        let dilations = one(&self.window.dilations, 1, n, "dilations")?;
        let out_pad = one(&self.output_padding, 0, n, "output_padding")?;
        let pads = one(&self.window.pads, 0, 2 * n, "pads")?;
        if kernel.len() != n || kernel.as_slice() != &w.shape()[2..] {
            return Err(Error::shape(OP, format!("kernel_shape {kernel:?} does not match weights {:?}", w.shape())));
        }
        let mut output = Vec::with_capacity(n);
        let mut pad_begin = Vec::with_capacity(n);
        for d in 0..n {
            // the output before cropping by the pads
            let full = strides[d] * (sp[d].max(1) - 1) + out_pad[d] + (kernel[d] - 1) * dilations[d] + 1;
            let wanted = match (&self.output_shape, self.window.auto_pad) {
                (Some(s), _) if s.len() < n => {
                    return Err(Error::shape(OP, format!("output_shape {s:?} for {n} spatial dimensions")))
                }
                (Some(s), _) => Some(s[s.len() - n + d]),
                (None, AutoPad::SameUpper | AutoPad::SameLower) => Some(sp[d] * strides[d]),
                _ => None,
            };
            let (b, out) = match wanted {
                Some(out) => {
                    // negative when the output is larger: zeros (and the bias) past the end
                    let total = full as i64 - out as i64;
                    let upper = self.window.auto_pad == AutoPad::SameUpper;
                    let begin = if upper { total.div_euclid(2) } else { total - total.div_euclid(2) };
                    let begin = usize::try_from(begin).map_err(|_| {
                        Error::shape(OP, format!("output_shape {out} would pad the output before its start"))
                    })?;
                    (begin, out)
                }
                None => {
                    let out = full
                        .checked_sub(pads[d] + pads[n + d])
                        .filter(|&o| o > 0)
                        .ok_or_else(|| Error::shape(OP, format!("pads {pads:?} leave no output of a full {full}")))?;
                    (pads[d], out)
                }
            };
            output.push(out);
            pad_begin.push(b);
        }
        // the convolution whose input gradient this is: its input is our output
        let geom = ConvGeometry {
            batch: x.shape()[0],
            c_in: c_out,
            c_out: c_in,
            groups: g,
            input: three(output.iter().copied(), n, 1),
            kernel: three(kernel.iter().copied(), n, 1),
            stride: three(strides.iter().copied(), n, 1),
            dilation: three(dilations.iter().copied(), n, 1),
            pad: three(pad_begin.iter().copied(), n, 0),
            output: three(sp.iter().copied(), n, 1),
        };
        let mut shape = vec![geom.batch, c_out];
        shape.extend_from_slice(&output);
        let len = check_output(OP, &shape)?;
        let mut y = vec![0.0f32; len];
        conv_backward_input(&geom, w.data(), x.data(), &mut y);
        if let Some(b) = b {
            let b = b.tensor(OP)?;
            if b.numel() != c_out {
                return Err(Error::shape(OP, format!("bias {:?} for {c_out} output channels", b.shape())));
            }
            let plane = geom.in_spatial();
            y.par_chunks_mut(plane.max(1)).enumerate().for_each(|(i, p)| {
                let v = b.data()[i % c_out];
                p.iter_mut().for_each(|y| *y += v)
            });
        }
        Ok(Value::float(Tensor::from_parts(shape, y)))
    }
}

/// BatchNormalization: `y = scale · (x - mean) / √(var + ε) + bias` per channel (axis
/// 1), with the running statistics or, in training mode, the batch's own.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    /// ε
    pub epsilon: f32,
    momentum: f32,
    training: bool,
}

impl BatchNorm {
    pub(super) fn from_node(a: &Attrs, _opset: i64) -> Result<BatchNorm> {
        Ok(BatchNorm {
            epsilon: a.float("epsilon", 1e-5)?,
            momentum: a.float("momentum", 0.9)?,
            training: a.int("training_mode", 0)? != 0,
        })
    }

    /// Whether it normalizes with the batch's own statistics.
    pub fn training(&self) -> bool {
        self.training
    }

    /// Per channel (multiplier, offset) such that `y = m·x + o`.
    pub fn affine(&self, scale: &[f32], bias: &[f32], mean: &[f32], var: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let m: Vec<f32> = scale.iter().zip(var).map(|(&s, &v)| s / (v + self.epsilon).sqrt()).collect();
        let o = bias.iter().zip(mean).zip(&m).map(|((&b, &mu), &m)| b - mu * m).collect();
        (m, o)
    }

    pub(super) fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
        const OP: &str = "BatchNormalization";
        let get = |i: usize| -> Result<&Tensor> {
            inputs
                .get(i)
                .copied()
                .flatten()
                .ok_or_else(|| Error::shape(OP, format!("input {} is missing", i + 1)))?
                .tensor(OP)
        };
        let x = get(0)?;
        if x.ndim() < 2 {
            return Err(Error::shape(OP, format!("expects N x C x ..., got {:?}", x.shape())));
        }
        let (batch, c) = (x.shape()[0], x.shape()[1]);
        let plane: usize = x.shape()[2..].iter().product();
        let params = [get(1)?, get(2)?, get(3)?, get(4)?];
        if let Some(p) = params.iter().find(|p| p.numel() != c) {
            return Err(Error::shape(OP, format!("a parameter of shape {:?} for {c} channels", p.shape())));
        }
        let [scale, bias, mean, var] = params.map(|p| p.data());
        let stats = self.training.then(|| batch_stats(x.data(), batch, c, plane));
        let (m, o) = match &stats {
            Some((bm, bv)) => self.affine(scale, bias, bm, bv),
            None => self.affine(scale, bias, mean, var),
        };
        let mut outputs = vec![Value::float(channel_affine(x, &m, &o))];
        if let Some((bm, bv)) = stats {
            let blend = |run: &[f32], cur: &[f32]| {
                let v = run.iter().zip(cur).map(|(&r, &c)| r * self.momentum + c * (1.0 - self.momentum)).collect();
                Value::float(Tensor::from_parts(vec![c], v))
            };
            outputs.push(blend(mean, &bm));
            outputs.push(blend(var, &bv));
        }
        Ok(outputs)
    }
}

/// Per-channel mean and (biased) variance over samples and positions, in f64.
fn batch_stats(x: &[f32], batch: usize, c: usize, plane: usize) -> (Vec<f32>, Vec<f32>) {
    (0..c)
        .map(|ch| {
            let values = || (0..batch).flat_map(move |n| &x[(n * c + ch) * plane..][..plane]).map(|&v| v as f64);
            let count = (batch * plane).max(1) as f64;
            let mean = values().sum::<f64>() / count;
            let var = values().map(|v| (v - mean) * (v - mean)).sum::<f64>() / count;
            (mean as f32, var as f32)
        })
        .unzip()
}

/// `y = m[c]·x + o[c]` along axis 1.
pub fn channel_affine(x: &Tensor, m: &[f32], o: &[f32]) -> Tensor {
    let c = m.len();
    let plane: usize = x.shape()[2..].iter().product();
    let mut y = x.data().to_vec();
    y.par_chunks_mut(plane.max(1)).enumerate().for_each(|(i, p)| {
        let (m, o) = (m[i % c], o[i % c]);
        p.iter_mut().for_each(|v| *v = *v * m + o);
    });
    Tensor::from_parts(x.shape().to_vec(), y)
}

/// The kinds of pooling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoolKind {
    /// MaxPool
    Max,
    /// AveragePool
    Average,
    /// GlobalMaxPool
    GlobalMax,
    /// GlobalAveragePool
    GlobalAverage,
}

/// MaxPool, AveragePool and their global forms. Computes in f32 on every type.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    /// which pooling
    pub kind: PoolKind,
    window: Window,
    ceil_mode: bool,
    count_include_pad: bool,
    column_major: bool,
    /// whether MaxPool's second output (the indices) is wanted
    indices: bool,
}

impl Pool {
    pub(super) fn from_node(a: &Attrs) -> Result<Pool> {
        let kind = match a.op() {
            "MaxPool" => PoolKind::Max,
            "AveragePool" => PoolKind::Average,
            "GlobalMaxPool" => PoolKind::GlobalMax,
            _ => PoolKind::GlobalAverage,
        };
        let window = Window::from_attrs(a)?;
        if matches!(kind, PoolKind::Max | PoolKind::Average) && window.kernel.is_none() {
            return Err(a.invalid("kernel_shape is missing"));
        }
        Ok(Pool {
            kind,
            window,
            ceil_mode: a.int("ceil_mode", 0)? != 0,
            count_include_pad: a.int("count_include_pad", 0)? != 0,
            column_major: a.int("storage_order", 0)? != 0,
            indices: a.0.outputs.get(1).is_some_and(|o| !o.is_empty()),
        })
    }

    pub(super) fn run(&self, x: &Value) -> Result<Vec<Value>> {
        let op = self.name();
        let t = x.to_f32_tensor();
        let shape = t.shape();
        if shape.len() < 3 {
            return Err(Error::shape(op, format!("expects N x C x spatial dimensions, got {shape:?}")));
        }
        let planes = shape[0] * shape[1];
        let sp = &shape[2..];
        let plane: usize = sp.iter().product();
        if matches!(self.kind, PoolKind::GlobalMax | PoolKind::GlobalAverage) {
            let max = self.kind == PoolKind::GlobalMax;
            let y: Vec<f32> = t
                .data()
                .par_chunks(plane.max(1))
                .map(|p| {
                    if max {
                        p.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m || v.is_nan() { v } else { m })
                    } else {
                        crate::kernels::lane_sum(p.len(), |i| p[i]) / plane as f32
                    }
                })
                .collect();
            let mut out_shape = vec![shape[0], shape[1]];
            out_shape.extend(sp.iter().map(|_| 1));
            return Ok(vec![x.like(Tensor::from_parts(out_shape, y))]);
        }
        let n = sp.len();
        if n > 3 {
            return Err(Error::shape(op, format!("at most 3 spatial dimensions, got {shape:?}")));
        }
        let ext = self.window.extents(op, sp, None, self.ceil_mode)?;
        let mut out_shape = vec![shape[0], shape[1]];
        out_shape.extend(ext.iter().map(|e| e.output));
        let len = check_output(op, &out_shape)?;
        let mut y = crate::kernels::par_zeros(len);
        if let Some(g) = self.kernel_geometry(planes, sp, &ext) {
            // the engine's kernels, for the windows they take
            match self.kind {
                PoolKind::Max => max_pool_values(&g, t.data(), &mut y),
                _ => avg_pool_forward(&g, t.data(), &mut y, self.count_include_pad),
            }
            return Ok(vec![x.like(Tensor::from_parts(out_shape, y))]);
        }
        let mut indices = vec![0i64; if self.indices { len } else { 0 }];
        let per_plane = len / planes.max(1);
        let e3 = {
            let fill = Extent { kernel: 1, stride: 1, dilation: 1, pad_begin: 0, pad_end: 0, output: 1 };
            let mut e = [fill; 3];
            e[3 - n..].copy_from_slice(&ext);
            e
        };
        let input = three(sp.iter().copied(), n, 1);
        let column_major = self.column_major;
        let pool_plane = |p: usize, yp: &mut [f32], ip: &mut [i64]| {
            let xp = &t.data()[p * plane..][..plane];
            let mut i = 0;
            for oz in 0..e3[0].output {
                for oy in 0..e3[1].output {
                    for ox in 0..e3[2].output {
                        let (mut best, mut at, mut sum, mut inside, mut padded) =
                            (f32::NEG_INFINITY, 0usize, 0.0f32, 0, 0);
                        for kz in 0..e3[0].kernel {
                            let Some((z, zin)) = tap(&e3[0], oz, kz, input[0]) else { continue };
                            for ky in 0..e3[1].kernel {
                                let Some((yy, yin)) = tap(&e3[1], oy, ky, input[1]) else { continue };
                                for kx in 0..e3[2].kernel {
                                    let Some((xx, xin)) = tap(&e3[2], ox, kx, input[2]) else { continue };
                                    padded += 1;
                                    if !(zin && yin && xin) {
                                        continue;
                                    }
                                    inside += 1;
                                    let pos = (z * input[1] + yy) * input[2] + xx;
                                    let v = xp[pos];
                                    sum += v;
                                    if v > best || (v.is_nan() && !best.is_nan()) {
                                        best = v;
                                        at = if column_major { (xx * input[1] + yy) * input[0] + z } else { pos };
                                    }
                                }
                            }
                        }
                        match self.kind {
                            PoolKind::Max => {
                                yp[i] = best;
                                if let Some(slot) = ip.get_mut(i) {
                                    *slot = (p * plane + at) as i64;
                                }
                            }
                            _ => yp[i] = sum / (if self.count_include_pad { padded } else { inside }).max(1) as f32,
                        }
                        i += 1;
                    }
                }
            }
        };
        if indices.is_empty() {
            y.par_chunks_mut(per_plane.max(1)).enumerate().for_each(|(p, yp)| pool_plane(p, yp, &mut []));
        } else {
            y.par_chunks_mut(per_plane.max(1))
                .zip(indices.par_chunks_mut(per_plane.max(1)))
                .enumerate()
                .for_each(|(p, (yp, ip))| pool_plane(p, yp, ip));
        }
        let mut outputs = vec![x.like(Tensor::from_parts(out_shape.clone(), y))];
        if self.indices {
            outputs.push(Value::int64(out_shape, indices));
        }
        Ok(outputs)
    }
}

impl Pool {
    fn name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "MaxPool",
            PoolKind::Average => "AveragePool",
            PoolKind::GlobalMax => "GlobalMaxPool",
            PoolKind::GlobalAverage => "GlobalAveragePool",
        }
    }

    /// The geometry of `planes` planes of spatial sizes `sp` with windows `ext`, where the
    /// engine's kernels take them: no dilation, the same padding before and after, and
    /// no indices wanted.
    fn kernel_geometry(&self, planes: usize, sp: &[usize], ext: &[Extent]) -> Option<PoolGeometry> {
        let n = sp.len();
        let symmetric = ext.iter().all(|e| e.dilation == 1 && e.pad_begin == e.pad_end && e.pad_begin < e.kernel);
        (symmetric && !self.indices).then(|| PoolGeometry {
            planes,
            input: three(sp.iter().copied(), n, 1),
            kernel: three(ext.iter().map(|e| e.kernel), n, 1),
            stride: three(ext.iter().map(|e| e.stride), n, 1),
            pad: three(ext.iter().map(|e| e.pad_begin), n, 0),
            output: three(ext.iter().map(|e| e.output), n, 1),
        })
    }

    /// What each window of a 2-D MaxPool or AveragePool over values of shape `x`
    /// computes, and its geometry with `planes` planes, where the blocked pooling takes
    /// it ([`crate::kernels::blocked::pool`]); `None` for other pooling.
    pub(crate) fn blocked(&self, x: &[usize], planes: usize) -> Option<(PoolGeometry, Pooling)> {
        let pooling = match self.kind {
            PoolKind::Max => Pooling::Max,
            PoolKind::Average => Pooling::Mean { count_include_pad: self.count_include_pad },
            _ => return None,
        };
        let sp = x.get(2..).filter(|sp| sp.len() == 2)?;
        let ext = self.window.extents(self.name(), sp, None, self.ceil_mode).ok()?;
        Some((self.kernel_geometry(planes, sp, &ext)?, pooling))
    }

    /// Whether it is GlobalMaxPool (else another pooling).
    pub(crate) fn is_global_max(&self) -> bool {
        self.kind == PoolKind::GlobalMax
    }

    /// Whether it is GlobalAveragePool or GlobalMaxPool.
    pub(crate) fn is_global(&self) -> bool {
        matches!(self.kind, PoolKind::GlobalMax | PoolKind::GlobalAverage)
    }
}

/// The input position of tap `k` of output `o` along one dimension, and whether it lies
/// inside the input; `None` past the padding after (a `ceil_mode` window's overhang).
#[inline]
fn tap(e: &Extent, o: usize, k: usize, len: usize) -> Option<(usize, bool)> {
    let pos = (o * e.stride + k * e.dilation) as isize - e.pad_begin as isize;
    if pos >= (len + e.pad_end) as isize {
        return None;
    }
    Some((pos.max(0) as usize, pos >= 0 && (pos as usize) < len))
}
