//! Convolution, linear, pooling, activation, flatten and dropout layers.

use super::init::Init;
use super::{join_name, report, Mode, Module, ShapeHook, TensorKind};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::graph::export::{self, Exporter};
use crate::io::onnx::AttributeValue;
use crate::ops::per_dim;
use crate::ops::{self, ConvOptions, PoolOptions};
use crate::{Rng, Tensor};

/// Visits `weight` and the optional `bias` under PyTorch's names.
fn visit_weight_bias(prefix: &str, weight: &Var, bias: Option<&Var>, f: &mut dyn FnMut(&str, &Var, TensorKind)) {
    f(&join_name(prefix, "weight"), weight, TensorKind::Param);
    if let Some(b) = bias {
        f(&join_name(prefix, "bias"), b, TensorKind::Param);
    }
}

/// A 1-, 2- or 3-D convolution layer: weight `[out, in/groups, *kernel]`, optional bias `[out]`.
pub struct Conv {
    /// `[out, in/groups, *kernel]`.
    pub weight: Var,
    /// `[out]`, if the layer has one.
    pub bias: Option<Var>,
    /// Stride, padding, dilation, groups and flipping.
    pub options: ConvOptions,
}

impl Conv {
    /// The settings of a convolution from `c_in` to `c_out` channels with a `kernel` of one
    /// size per spatial dimension (1 to 3: `&[5, 5]` for conv2d). PyTorch's defaults (stride
    /// 1, no padding, a bias, its default initialisation) until changed; `build` draws the
    /// weights: `Conv::config(1, 6, &[5, 5]).padding(Padding::Same).build(&mut rng)?`.
    pub fn config(c_in: usize, c_out: usize, kernel: &[usize]) -> ConvConfig {
        ConvConfig {
            c_in,
            c_out,
            kernel: kernel.to_vec(),
            options: ConvOptions::default(),
            bias: true,
            init: Init::PytorchDefault,
        }
    }
}

/// A [`Conv`] layer's settings, made by [`Conv::config`].
#[derive(Clone, Debug)]
pub struct ConvConfig {
    c_in: usize,
    c_out: usize,
    kernel: Vec<usize>,
    options: ConvOptions,
    bias: bool,
    init: Init,
}

impl ConvConfig {
    /// The same stride along every spatial axis.
    pub fn stride(mut self, s: usize) -> Self {
        self.options = self.options.stride(s);
        self
    }
    /// Zero padding.
    pub fn padding(mut self, p: ops::Padding) -> Self {
        self.options = self.options.padding(p);
        self
    }
    /// The same dilation along every spatial axis.
    pub fn dilation(mut self, d: usize) -> Self {
        self.options = self.options.dilation(d);
        self
    }
    /// Groups of channels convolved apart (`c_in` for a depthwise convolution).
    pub fn groups(mut self, g: usize) -> Self {
        self.options = self.options.groups(g);
        self
    }
    /// Stride, padding, dilation and groups at once.
    pub fn options(mut self, options: ConvOptions) -> Self {
        self.options = options;
        self
    }
    /// Whether the layer adds a bias (default: yes).
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
    /// How the weights (and bias) are drawn (default: PyTorch's).
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }
    /// The layer, its weights drawn from `rng`; an error if the kernel has no or more than
    /// three sizes, or the groups do not divide the channels.
    pub fn build(&self, rng: &mut Rng) -> Result<Conv> {
        let (c_in, c_out, kernel, g) = (self.c_in, self.c_out, &self.kernel, self.options.groups);
        if kernel.is_empty() || kernel.len() > 3 || kernel.contains(&0) {
            return Err(Error::Invalid(format!("convolution kernel {kernel:?} must have 1 to 3 positive sizes")));
        }
        if g == 0 || !c_in.is_multiple_of(g) || !c_out.is_multiple_of(g) {
            return Err(Error::Invalid(format!("groups={g} must divide in_channels={c_in} and out_channels={c_out}")));
        }
        let mut shape = vec![c_out, c_in / g];
        shape.extend(kernel);
        let weight = Var::param(self.init.weight(&shape, rng)?);
        let bias = self.bias.then(|| Var::param(self.init.bias(&shape, rng)));
        Ok(Conv { weight, bias, options: self.options.clone() })
    }
}

impl Module for Conv {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn export(&self, name: &str, x: &str, input: &[usize], ex: &mut Exporter) -> Result<String> {
        let w = self.weight.value().clone();
        let kernel = w.shape()[2..].to_vec();
        let nd = kernel.len();
        let o = &self.options;
        let (stride, dilation) = (per_dim("stride", &o.stride, nd)?, per_dim("dilation", &o.dilation, nd)?);
        let pads = o.padding.resolve(&input[2..], &kernel, &stride, &dilation)?;
        // a true convolution is a correlation with the kernel turned: exported turned
        let w = if o.flip { flip_spatial(&w)? } else { w };
        let weight = ex.weight(&join_name(name, "weight"), &w);
        let bias = self.bias.as_ref().map(|b| ex.weight(&join_name(name, "bias"), &b.value()));
        let inputs: Vec<&str> = [x, &weight].into_iter().chain(bias.as_deref()).collect();
        let pads = pads.iter().map(|p| p.0).chain(pads.iter().map(|p| p.1));
        Ok(ex.node(
            "Conv",
            name,
            &inputs,
            vec![
                ("kernel_shape", export::ints(kernel)),
                ("strides", export::ints(stride)),
                ("dilations", export::ints(dilation)),
                ("pads", export::ints(pads)),
                ("group", AttributeValue::Int(o.groups as i64)),
            ],
        ))
    }
    fn forward_mode(&self, x: &Var, _mode: Mode) -> Result<Var> {
        ops::conv(x, &self.weight, self.bias.as_ref(), &self.options)
    }
    fn shapes(&self, name: &str, input: &[usize], hook: &mut ShapeHook<'_>) -> Result<Vec<usize>> {
        let w = self.weight.shape();
        let bias = self.bias.as_ref().map(|b| b.shape());
        let y = ops::conv_output_shape(input, &w, bias.as_deref(), &self.options)?;
        // each output value: one multiply-add per weight of its filter
        let macs = y.iter().product::<usize>() * w[1..].iter().product::<usize>();
        let kind = ["Conv1d", "Conv2d", "Conv3d"][w.len() - 3];
        report(self, hook, name, kind, y, macs)
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var, TensorKind)) {
        visit_weight_bias(prefix, &self.weight, self.bias.as_ref(), f);
    }
}

/// A fully connected layer: weight `[out, in]`, optional bias `[out]`.
pub struct Linear {
    /// `[out, in]`.
    pub weight: Var,
    /// `[out]`, if the layer has one.
    pub bias: Option<Var>,
}

impl Linear {
    /// The settings of a `c_in -> c_out` layer: a bias and PyTorch's default initialisation
    /// until changed; `build` draws the weights.
    pub fn config(c_in: usize, c_out: usize) -> LinearConfig {
        LinearConfig { c_in, c_out, bias: true, init: Init::PytorchDefault }
    }
}

/// A [`Linear`] layer's settings, made by [`Linear::config`].
#[derive(Clone, Copy, Debug)]
pub struct LinearConfig {
    c_in: usize,
    c_out: usize,
    bias: bool,
    init: Init,
}

impl LinearConfig {
    /// Whether the layer adds a bias (default: yes).
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
    /// How the weights (and bias) are drawn (default: PyTorch's).
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }
    /// The layer, its weights drawn from `rng`.
    pub fn build(&self, rng: &mut Rng) -> Result<Linear> {
        let shape = [self.c_out, self.c_in];
        let weight = Var::param(self.init.weight(&shape, rng)?);
        let bias = self.bias.then(|| Var::param(self.init.bias(&shape, rng)));
        Ok(Linear { weight, bias })
    }
}

impl Module for Linear {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn export(&self, name: &str, x: &str, input: &[usize], ex: &mut Exporter) -> Result<String> {
        if input.len() != 2 {
            return Err(Error::Invalid(format!(
                "{name}: a linear layer on a {}-D input has no Gemm form",
                input.len()
            )));
        }
        let weight = ex.weight(&join_name(name, "weight"), &self.weight.value());
        let bias = self.bias.as_ref().map(|b| ex.weight(&join_name(name, "bias"), &b.value()));
        let inputs: Vec<&str> = [x, &weight].into_iter().chain(bias.as_deref()).collect();
        Ok(ex.node("Gemm", name, &inputs, vec![("transB", AttributeValue::Int(1))]))
    }
    fn forward_mode(&self, x: &Var, _mode: Mode) -> Result<Var> {
        ops::linear(x, &self.weight, self.bias.as_ref())
    }
    fn shapes(&self, name: &str, input: &[usize], hook: &mut ShapeHook<'_>) -> Result<Vec<usize>> {
        let w = self.weight.shape();
        let bias = self.bias.as_ref().map(|b| b.shape());
        let y = ops::linear_output_shape(input, &w, bias.as_deref())?;
        let macs = y.iter().product::<usize>() * w[1];
        report(self, hook, name, "Linear", y, macs)
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var, TensorKind)) {
        visit_weight_bias(prefix, &self.weight, self.bias.as_ref(), f);
    }
}

/// Which pooling a [`Pool`] layer does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoolKind {
    /// The maximum of each window.
    Max,
    /// The mean of each window.
    Avg,
}

/// Max or average pooling (1/2/3-D, from the input's rank).
pub struct Pool {
    /// Max or average.
    pub kind: PoolKind,
    /// Window, stride, padding and rounding.
    pub options: PoolOptions,
}

impl Pool {
    /// Max pooling with `options`.
    pub fn max(options: PoolOptions) -> Pool {
        Pool { kind: PoolKind::Max, options }
    }
    /// Average pooling with `options`.
    pub fn avg(options: PoolOptions) -> Pool {
        Pool { kind: PoolKind::Avg, options }
    }
}

impl Module for Pool {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn export(&self, name: &str, x: &str, input: &[usize], ex: &mut Exporter) -> Result<String> {
        let nd = input.len().saturating_sub(2);
        let o = &self.options;
        let kernel = per_dim("kernel", &o.kernel, nd)?;
        let stride = per_dim("stride", o.stride.as_deref().unwrap_or(&o.kernel), nd)?;
        let pad = match o.padding.len() {
            1 => vec![o.padding[0]; nd],
            _ => o.padding.clone(),
        };
        let mut attributes = vec![
            ("kernel_shape", export::ints(kernel)),
            ("strides", export::ints(stride)),
            ("pads", export::ints(pad.iter().chain(&pad).copied())),
            ("ceil_mode", AttributeValue::Int(o.ceil_mode as i64)),
        ];
        let op = match self.kind {
            PoolKind::Max => "MaxPool",
            PoolKind::Avg => {
                attributes.push(("count_include_pad", AttributeValue::Int(o.count_include_pad as i64)));
                "AveragePool"
            }
        };
        Ok(ex.node(op, name, &[x], attributes))
    }
    fn forward_mode(&self, x: &Var, _mode: Mode) -> Result<Var> {
        match self.kind {
            PoolKind::Max => ops::max_pool(x, &self.options),
            PoolKind::Avg => ops::avg_pool(x, &self.options),
        }
    }
    fn shapes(&self, name: &str, input: &[usize], hook: &mut ShapeHook<'_>) -> Result<Vec<usize>> {
        let kind = match self.kind {
            PoolKind::Max => "MaxPool",
            PoolKind::Avg => "AvgPool",
        };
        report(self, hook, name, kind, self.options.output_shape(input)?, 0)
    }
}

/// Adaptive average pooling to a fixed spatial size (`[1, 1]` = global average pooling).
pub struct AdaptiveAvgPool(pub Vec<usize>);

impl Module for AdaptiveAvgPool {
    /// Global average pooling, or average pooling where the output divides the input.
    fn export(&self, name: &str, x: &str, input: &[usize], ex: &mut Exporter) -> Result<String> {
        let sp = &input[2.min(input.len())..];
        if self.0.iter().all(|&o| o == 1) {
            return Ok(ex.node("GlobalAveragePool", name, &[x], vec![]));
        }
        let out = per_dim("output size", &self.0, sp.len())?;
        if sp.iter().zip(&out).all(|(&i, &o)| i % o == 0) {
            let k: Vec<usize> = sp.iter().zip(&out).map(|(&i, &o)| i / o).collect();
            let attributes = vec![("kernel_shape", export::ints(k.clone())), ("strides", export::ints(k))];
            return Ok(ex.node("AveragePool", name, &[x], attributes));
        }
        // uneven windows (or more outputs than inputs): the mean over a window is
        // separable, rows then columns, each a product with a matrix of bin weights
        let [h, w] = sp[..] else {
            return Err(Error::Invalid(format!("{name}: adaptive pooling from {sp:?} to {out:?} has uneven windows")));
        };
        let bins = |n: usize, o: usize| {
            let mut m = vec![0.0f32; o * n];
            for (i, (a, b)) in crate::kernels::pool::adaptive_bins(n, o).into_iter().enumerate() {
                m[i * n + a..i * n + b].fill(1.0 / (b - a) as f32);
            }
            m
        };
        let rows = ex.weight(&join_name(name, "rows"), &Tensor::new(&[out[0], h], bins(h, out[0]))?);
        // columns: [w, ow], the transpose of the bins
        let cb = bins(w, out[1]);
        let cols_t: Vec<f32> = (0..w * out[1]).map(|k| cb[(k % out[1]) * w + k / out[1]]).collect();
        let cols = ex.weight(&join_name(name, "columns"), &Tensor::new(&[w, out[1]], cols_t)?);
        let y = ex.node("MatMul", &join_name(name, "over_rows"), &[&rows, x], vec![]);
        Ok(ex.node("MatMul", name, &[&y, &cols], vec![]))
    }
    fn forward_mode(&self, x: &Var, _mode: Mode) -> Result<Var> {
        ops::adaptive_avg_pool(x, &self.0)
    }
    fn shapes(&self, name: &str, input: &[usize], hook: &mut ShapeHook<'_>) -> Result<Vec<usize>> {
        report(self, hook, name, "AdaptiveAvgPool", ops::adaptive_avg_pool_shape(input, &self.0)?, 0)
    }
}

/// An elementwise activation as a layer (no parameters).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// max(0, x) ([`ops::relu`]).
    Relu,
    /// x for x > 0, else slope · x, with the given slope ([`ops::leaky_relu`]).
    LeakyRelu(f32),
    /// min(max(0, x), 6) ([`ops::relu6`]).
    Relu6,
    /// 1 / (1 + e^-x) ([`ops::sigmoid`]).
    Sigmoid,
    /// tanh x ([`ops::tanh`]).
    Tanh,
}

impl Module for Activation {
    fn export(&self, name: &str, x: &str, _input: &[usize], ex: &mut Exporter) -> Result<String> {
        Ok(match *self {
            Activation::Relu => ex.node("Relu", name, &[x], vec![]),
            Activation::LeakyRelu(s) => ex.node("LeakyRelu", name, &[x], vec![("alpha", AttributeValue::Float(s))]),
            Activation::Relu6 => {
                let lo = ex.weight(&join_name(name, "min"), &Tensor::scalar(0.0));
                let hi = ex.weight(&join_name(name, "max"), &Tensor::scalar(6.0));
                ex.node("Clip", name, &[x, &lo, &hi], vec![])
            }
            Activation::Sigmoid => ex.node("Sigmoid", name, &[x], vec![]),
            Activation::Tanh => ex.node("Tanh", name, &[x], vec![]),
        })
    }
    fn forward_mode(&self, x: &Var, _mode: Mode) -> Result<Var> {
        Ok(match *self {
            Activation::Relu => ops::relu(x)?,
            Activation::LeakyRelu(s) => ops::leaky_relu(x, s)?,
            Activation::Relu6 => ops::relu6(x)?,
            Activation::Sigmoid => ops::sigmoid(x)?,
            Activation::Tanh => ops::tanh(x)?,
        })
    }
    fn shapes(&self, name: &str, input: &[usize], hook: &mut ShapeHook<'_>) -> Result<Vec<usize>> {
        let kind = match self {
            Activation::Relu => "Relu",
            Activation::LeakyRelu(_) => "LeakyRelu",
            Activation::Relu6 => "Relu6",
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
        };
        report(self, hook, name, kind, input.to_vec(), 0)
    }
}

/// `[N, ...] -> [N, rest]`.
pub struct Flatten;

impl Module for Flatten {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn export(&self, name: &str, x: &str, _input: &[usize], ex: &mut Exporter) -> Result<String> {
        Ok(ex.node("Flatten", name, &[x], vec![("axis", AttributeValue::Int(1))]))
    }
    fn forward_mode(&self, x: &Var, _mode: Mode) -> Result<Var> {
        ops::flatten(x)
    }
    fn shapes(&self, name: &str, input: &[usize], hook: &mut ShapeHook<'_>) -> Result<Vec<usize>> {
        let y = match input {
            [] => return Err(Error::shape("flatten", "cannot flatten a scalar")),
            [n, rest @ ..] => vec![*n, rest.iter().product()],
        };
        report(self, hook, name, "Flatten", y, 0)
    }
}

/// Inverted dropout: in training mode each value is zeroed with probability `p` and the
/// rest scaled by 1/(1-p), with masks drawn from the mode's seed.
pub struct Dropout {
    /// Probability of zeroing a value, in [0, 1).
    pub p: f32,
}

impl Dropout {
    /// A dropout layer; `p` must be in [0, 1).
    pub fn new(p: f32) -> Result<Dropout> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::Invalid(format!("dropout probability must be in [0, 1), got {p}")));
        }
        Ok(Dropout { p })
    }
}

impl Module for Dropout {
    /// Nothing: an exported model is for inference.
    fn export(&self, _name: &str, x: &str, _input: &[usize], _ex: &mut Exporter) -> Result<String> {
        Ok(x.to_string())
    }
    fn forward_mode(&self, x: &Var, mode: Mode) -> Result<Var> {
        match mode {
            Mode::Eval => Ok(x.clone()),
            Mode::Train { seed, first_row } => ops::dropout(x, self.p, seed, first_row),
        }
    }
    fn shapes(&self, name: &str, input: &[usize], hook: &mut ShapeHook<'_>) -> Result<Vec<usize>> {
        report(self, hook, name, "Dropout", input.to_vec(), 0)
    }
}

/// `w` (`[out, in, *kernel]`) turned by 180° in every spatial dimension.
fn flip_spatial(w: &Tensor) -> Result<Tensor> {
    let shape = w.shape();
    let plane: usize = shape[2..].iter().product();
    let mut v = w.data().to_vec();
    // reversing a whole kernel reverses every spatial axis at once
    v.chunks_mut(plane.max(1)).for_each(|k| k.reverse());
    Tensor::new(shape, v)
}
