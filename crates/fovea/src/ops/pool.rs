//! Max and average pooling (1/2/3-D), adaptive and global average pooling. No parameters.
//!
//! Output size: `floor((n + 2p - f) / s) + 1`, or with `ceil_mode` the ceiling, dropping
//! a last window that would start in the right padding (PyTorch's rule).

use super::conv::{per_dim, to3};
use crate::autograd::{is_grad_enabled, Var};
use crate::error::{Error, Result};
use crate::kernels::pool::{
    adaptive_avg_backward, adaptive_avg_forward, avg_pool_backward, avg_pool_forward, max_pool_backward,
    max_pool_forward, max_pool_values, PoolGeometry,
};
use crate::tensor::{fmt_shape, Tensor};

/// Options of max and average pooling (PyTorch's `MaxPool2d` / `AvgPool2d` arguments).
/// Per-dimension values given once apply to every dimension.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolOptions {
    /// window size per spatial dimension (or one value for all)
    pub kernel: Vec<usize>,
    /// defaults to the kernel size
    pub stride: Option<Vec<usize>>,
    /// symmetric padding per spatial dimension (or one value for all)
    pub padding: Vec<usize>,
    /// round the output size up rather than down (PyTorch's `ceil_mode`)
    pub ceil_mode: bool,
    /// average pooling only: count padded positions in the divisor (PyTorch's default)
    pub count_include_pad: bool,
}

impl PoolOptions {
    /// A `kernel`-sized window in every dimension, stride = kernel, no padding, output size
    /// rounded down.
    pub fn new(kernel: usize) -> Self {
        PoolOptions { kernel: vec![kernel], stride: None, padding: vec![0], ceil_mode: false, count_include_pad: true }
    }
    /// With stride `s` in every dimension.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = Some(vec![s]);
        self
    }
    /// With padding `p` on both sides of every dimension.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = vec![p];
        self
    }
    /// With the output size rounded up (`true`) or down.
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
    /// With padded positions counted in the average's divisor (`true`) or not.
    pub fn count_include_pad(mut self, on: bool) -> Self {
        self.count_include_pad = on;
        self
    }

    /// The output shape of max or average pooling of an input of shape `input`, or the
    /// error pooling would give; computes nothing.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.geometry("pool", input).map(|(_, shape)| shape)
    }

    fn geometry(&self, op: &'static str, shape: &[usize]) -> Result<(PoolGeometry, Vec<usize>)> {
        if !(3..=5).contains(&shape.len()) {
            return Err(Error::shape(
                op,
                format!("expected [N, C, *spatial] with 1 to 3 spatial dimensions, got {}", fmt_shape(shape)),
            ));
        }
        if shape.contains(&0) {
            return Err(Error::shape(op, format!("input {} must not have empty dimensions", fmt_shape(shape))));
        }
        let nd = shape.len() - 2;
        let kernel = per_dim("kernel size", &self.kernel, nd)?;
        let stride = per_dim("stride", self.stride.as_ref().unwrap_or(&self.kernel), nd)?;
        let pad = match self.padding.len() {
            1 => vec![self.padding[0]; nd],
            n if n == nd => self.padding.clone(),
            n => return Err(Error::Invalid(format!("{op}: padding has {n} entries for {nd} spatial dimensions"))),
        };
        let mut out = Vec::with_capacity(nd);
        for i in 0..nd {
            let n = shape[2 + i];
            if pad[i] > kernel[i] / 2 {
                return Err(Error::Invalid(format!(
                    "{op}: padding {} is more than half the kernel size {}",
                    pad[i], kernel[i]
                )));
            }
            let span = n.checked_add(2 * pad[i]).and_then(|v| v.checked_sub(kernel[i])).ok_or_else(|| {
                Error::shape(op, format!("input {} is smaller than the window {:?}", fmt_shape(shape), kernel))
            })?;
            let mut o = if self.ceil_mode { span.div_ceil(stride[i]) + 1 } else { span / stride[i] + 1 };
            if self.ceil_mode && (o - 1) * stride[i] >= n + pad[i] {
                o -= 1;
            }
            out.push(o);
        }
        let geom = PoolGeometry {
            planes: shape[0] * shape[1],
            input: to3(&shape[2..], 1),
            kernel: to3(&kernel, 1),
            stride: to3(&stride, 1),
            pad: to3(&pad, 0),
            output: to3(&out, 1),
        };
        let mut out_shape = shape[..2].to_vec();
        out_shape.extend(out);
        crate::tensor::shape_numel(op, &out_shape)?;
        Ok((geom, out_shape))
    }
}

/// Max pooling over `x [N, C, *spatial]`.
pub fn max_pool(x: &Var, opts: &PoolOptions) -> Result<Var> {
    let tx = x.tensor();
    let (geom, out_shape) = opts.geometry("max_pool", tx.shape())?;
    let n = out_shape.iter().product();
    if !is_grad_enabled() || !x.requires_grad() {
        // nothing will flow back: the winners' positions are not needed
        let mut y = vec![0.0f32; n];
        max_pool_values(&geom, tx.data(), &mut y);
        return Ok(Var::constant(Tensor::new(&out_shape, y)?));
    }
    let (mut y, mut argmax) = (vec![0.0f32; n], vec![0u32; n]);
    max_pool_forward(&geom, tx.data(), &mut y, &mut argmax);
    let in_shape = tx.shape().to_vec();
    Ok(Var::from_op(
        Tensor::new(&out_shape, y)?,
        &[x],
        Box::new(move |g, _| {
            let mut dx = vec![0.0f32; in_shape.iter().product()];
            max_pool_backward(&geom, g.data(), &argmax, &mut dx);
            vec![Some(Tensor::new(&in_shape, dx).expect("shape"))]
        }),
    ))
}

/// Average pooling over `x [N, C, *spatial]`.
pub fn avg_pool(x: &Var, opts: &PoolOptions) -> Result<Var> {
    let tx = x.tensor();
    let (geom, out_shape) = opts.geometry("avg_pool", tx.shape())?;
    let mut y = vec![0.0f32; out_shape.iter().product()];
    let include = opts.count_include_pad;
    avg_pool_forward(&geom, tx.data(), &mut y, include);
    let in_shape = tx.shape().to_vec();
    Ok(Var::from_op(
        Tensor::new(&out_shape, y)?,
        &[x],
        Box::new(move |g, _| {
            let mut dx = vec![0.0f32; in_shape.iter().product()];
            avg_pool_backward(&geom, g.data(), &mut dx, include);
            vec![Some(Tensor::new(&in_shape, dx).expect("shape"))]
        }),
    ))
}

/// Adaptive average pooling of `x [N, C, *spatial]` to the spatial size `out`.
pub fn adaptive_avg_pool(x: &Var, out: &[usize]) -> Result<Var> {
    let shape = x.shape();
    let out_shape = adaptive_avg_pool_shape(&shape, out)?;
    crate::tensor::checked_numel("adaptive_avg_pool", &out_shape)?;
    let (planes, input, out3) = (shape[0] * shape[1], to3(&shape[2..], 1), to3(out, 1));
    let y = adaptive_avg_forward(planes, input, out3, x.value().data());
    Ok(Var::from_op(
        Tensor::new(&out_shape, y)?,
        &[x],
        Box::new(move |g, _| {
            let dx = adaptive_avg_backward(planes, input, out3, g.data());
            vec![Some(Tensor::new(&shape, dx).expect("shape"))]
        }),
    ))
}

/// The output shape of [`adaptive_avg_pool`] of an input of shape `input` to the spatial
/// size `out`, or its error; computes nothing.
pub fn adaptive_avg_pool_shape(input: &[usize], out: &[usize]) -> Result<Vec<usize>> {
    let op = "adaptive_avg_pool";
    if !(3..=5).contains(&input.len()) || out.len() != input.len() - 2 || out.contains(&0) || input.contains(&0) {
        return Err(Error::shape(op, format!("cannot pool input {} to spatial size {out:?}", fmt_shape(input))));
    }
    let mut out_shape = input[..2].to_vec();
    out_shape.extend(out);
    crate::tensor::shape_numel(op, &out_shape)?;
    Ok(out_shape)
}

/// Global average pooling: `[N, C, *spatial] -> [N, C]`.
pub fn global_avg_pool(x: &Var) -> Result<Var> {
    let shape = x.shape();
    if shape.len() < 3 {
        return Err(Error::shape("global_avg_pool", format!("expected [N, C, *spatial], got {}", fmt_shape(&shape))));
    }
    let pooled = adaptive_avg_pool(x, &vec![1; shape.len() - 2])?;
    super::reshape(&pooled, &shape[..2])
}
