//! Operators on values in the channel-blocked layout ([`crate::kernels::blocked`]), which
//! the graph's blocked plan puts in place of the ONNX ones where the kernels take them. A
//! blocked value is a float tensor of shape `[N, C/b, spatial.., b]`; its channel count
//! is known to the steps that read it.

use super::check_output;
use super::conv::{Conv, Pool};
use super::elementwise::Activation;
use crate::graph::value::Value;
use crate::kernels::blocked::{self, blocked_len};
use crate::kernels::conv::{conv_forward_blocked, winograd, PackedWeights, WinogradWeights};
use crate::{Error, Result, Tensor};
use std::borrow::Cow;
use std::sync::Arc;

/// An operator of the blocked plan.
#[derive(Clone, Debug)]
pub enum Blocked {
    /// `[N, C, spatial..]` to blocks
    ToBlocked {
        /// channels per block
        block: usize,
    },
    /// blocks of `channels` channels back to `[N, C, spatial..]`
    ToPlanar {
        /// channels per block
        block: usize,
        /// the channels
        channels: usize,
    },
    /// a convolution (its sum and activation fused) writing blocks, reading blocks if
    /// `x_blocked`, else `[N, C, spatial..]`
    Conv {
        /// the convolution
        conv: Conv,
        /// its weights, packed
        packed: Arc<PackedWeights>,
        /// its weights transformed for Winograd's algorithm, where that takes it
        winograd: Option<Arc<WinogradWeights>>,
        /// whether the input is blocked
        x_blocked: bool,
    },
    /// a 2-D MaxPool or AveragePool
    Pool {
        /// the pooling
        pool: Pool,
        /// channels per block
        block: usize,
    },
    /// GlobalAveragePool or GlobalMaxPool (or ReduceMean or ReduceMax over the spatial
    /// axes) of blocks of `channels` channels, to `[N, C, 1..]` (or `[N, C]`)
    GlobalPool {
        /// the largest value, else the mean
        max: bool,
        /// whether the spatial axes stay, of size 1
        keepdims: bool,
        /// channels per block
        block: usize,
        /// the channels
        channels: usize,
    },
}

/// The blocked float tensor of value `v`, with its samples, blocks, spatial sizes and
/// block.
fn parts<'a>(op: &'static str, v: &'a Value) -> Result<(&'a Tensor, usize, usize, &'a [usize], usize)> {
    let t = v.tensor(op)?;
    match t.shape() {
        [n, blocks, spatial @ .., block] if !spatial.is_empty() => Ok((t, *n, *blocks, spatial, *block)),
        s => Err(Error::shape(op, format!("expects a blocked value [N, C/b, spatial.., b], got {s:?}"))),
    }
}

impl Blocked {
    /// The input whose buffer the output may take where the step reads it for the last
    /// time: a convolution's residual, summed in place.
    pub fn reusable_input(&self) -> Option<usize> {
        match self {
            Blocked::Conv { conv, .. } if conv.residual => Some(3),
            _ => None,
        }
    }

    /// Runs it on its inputs (as [`super::Op::run`]), with the [`Blocked::reusable_input`]
    /// given by value as `reused` (then absent from `inputs`; ignored by an operator that
    /// takes none).
    pub fn run(&self, inputs: &[Option<&Value>], reused: Option<Value>) -> Result<Vec<Value>> {
        let input = |i: usize| {
            inputs
                .get(i)
                .copied()
                .flatten()
                .ok_or_else(|| Error::shape("blocked", format!("input {} is missing", i + 1)))
        };
        let x = input(0)?;
        Ok(vec![match self {
            Blocked::ToBlocked { block } => {
                let t = x.tensor("Reorder")?;
                let [n, c, spatial @ ..] = t.shape() else {
                    return Err(Error::shape("Reorder", format!("expects N x C x spatial, got {:?}", t.shape())));
                };
                let mut shape = vec![*n, c.div_ceil(*block)];
                shape.extend_from_slice(spatial);
                shape.push(*block);
                check_output("Reorder", &shape)?;
                let s: usize = spatial.iter().product();
                x.like(Tensor::from_parts(shape, blocked::to_blocked(t.data(), *n, *c, s, *block)))
            }
            Blocked::ToPlanar { block, channels } => {
                let (t, n, blocks, spatial, b) = parts("Reorder", x)?;
                if b != *block || blocks != channels.div_ceil(b) {
                    return Err(Error::shape("Reorder", format!("{:?} is not {channels} channels", t.shape())));
                }
                let mut shape = vec![n, *channels];
                shape.extend_from_slice(spatial);
                let s: usize = spatial.iter().product();
                x.like(Tensor::from_parts(shape, blocked::to_planar(t.data(), n, *channels, s, b)))
            }
            Blocked::Conv { conv, packed, winograd, x_blocked } => run_conv(
                conv,
                packed,
                winograd.as_deref(),
                *x_blocked,
                x,
                input(1)?,
                inputs.get(2).copied().flatten(),
                reused.map(Cow::Owned).or(inputs.get(3).copied().flatten().map(Cow::Borrowed)),
            )?,
            Blocked::Pool { pool, block } => {
                let (t, n, blocks, spatial, b) = parts("Pool", x)?;
                let mut logical = vec![n, blocks * b];
                logical.extend_from_slice(spatial);
                let Some((g, pooling)) = pool.blocked(&logical, n * blocks).filter(|_| b == *block) else {
                    return Err(Error::shape("Pool", format!("blocked pooling does not take {:?}", t.shape())));
                };
                let shape = vec![n, blocks, g.output[1], g.output[2], b];
                check_output("Pool", &shape)?;
                x.like(Tensor::from_parts(shape, blocked::pool(&g, pooling, b, t.data())))
            }
            Blocked::GlobalPool { max, keepdims, block, channels } => {
                let (t, n, blocks, spatial, b) = parts("GlobalPool", x)?;
                if b != *block || blocks != channels.div_ceil(b) {
                    return Err(Error::shape("GlobalPool", format!("{:?} is not {channels} channels", t.shape())));
                }
                let s: usize = spatial.iter().product();
                let y = blocked::global_pool(t.data(), n, *channels, s, b, *max);
                let mut shape = vec![n, *channels];
                if *keepdims {
                    shape.extend(spatial.iter().map(|_| 1));
                }
                x.like(Tensor::from_parts(shape, y))
            }
        }])
    }
}

/// A blocked convolution: `x` blocked or not, weights `w`, optional bias, and the residual
/// (blocked) as the fourth input where the convolution has one; by Winograd's algorithm
/// where its weights are given and fit.
#[allow(clippy::too_many_arguments)]
fn run_conv(
    conv: &Conv,
    packed: &PackedWeights,
    winograd: Option<&WinogradWeights>,
    x_blocked: bool,
    x: &Value,
    w: &Value,
    b: Option<&Value>,
    residual: Option<Cow<Value>>,
) -> Result<Value> {
    let w = w.tensor("Conv")?;
    let (x, logical) = if x_blocked {
        let (t, n, _, spatial, _) = parts("Conv", x)?;
        let mut logical = vec![n, w.shape().get(1).copied().unwrap_or(0)];
        logical.extend_from_slice(spatial);
        (t, logical)
    } else {
        let t = x.tensor("Conv")?;
        (t, t.shape().to_vec())
    };
    let g = conv.geometry(&logical, w.shape())?;
    if !packed.fit_blocked(&g) {
        return Err(Error::shape("Conv", format!("the blocked kernel does not take input {logical:?}")));
    }
    let block = blocked::block().unwrap_or(1);
    let in_len = if x_blocked { blocked_len(g.batch, g.c_in, g.in_spatial(), block) } else { logical.iter().product() };
    if x.numel() != in_len {
        return Err(Error::shape("Conv", format!("input {:?} is not blocked for input {logical:?}", x.shape())));
    }
    let bias = super::conv::bias_of(&g, b)?;
    let n = logical.len() - 2;
    let mut shape = vec![g.batch, g.c_out.div_ceil(block)];
    shape.extend_from_slice(&g.output[3 - n..]);
    shape.push(block);
    let len = check_output("Conv", &shape)?;
    let residual = match residual {
        Some(r) if conv.residual => {
            let got = r.tensor("Conv")?.shape();
            if got != shape.as_slice() {
                return Err(Error::shape("Conv", format!("residual {got:?} for output {shape:?}")));
            }
            Some(match r {
                // (a value shared with another variable is copied)
                Cow::Owned(Value::Float { tensor, .. }) => Cow::Owned(tensor.into_vec()),
                Cow::Owned(_) => unreachable!("a float residual"),
                Cow::Borrowed(r) => Cow::Borrowed(r.tensor("Conv")?.data()),
            })
        }
        _ => None,
    };
    let (clamp, then) = match conv.activation {
        None => (None, None),
        Some(Activation::Relu) => (Some([0.0, f32::INFINITY]), None),
        Some(Activation::Clip(lo, hi)) => (Some([lo, hi]), None),
        Some(f) => (None, Some(f)),
    };
    let apply = |_: usize, run: &mut [f32]| {
        if let Some(f) = then {
            f.apply_slice(run)
        }
    };
    let then = then.is_some().then_some(&apply as crate::kernels::conv::Epilogue);
    let y = match winograd.filter(|w| x_blocked && w.fit(&g)) {
        Some(w) => winograd::forward(&g, x.data(), w, bias, residual, clamp, then),
        None => conv_forward_blocked(&g, x.data(), x_blocked, packed, bias, residual, clamp, then),
    };
    debug_assert_eq!(y.len(), len);
    Ok(Value::float(Tensor::from_parts(shape, y)))
}
