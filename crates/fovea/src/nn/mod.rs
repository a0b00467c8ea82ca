//! Layers and containers. A layer owns its parameters as named leaf `Var`s; names follow
//! PyTorch's `state_dict` keys (`conv1.weight`, `bn1.running_mean`, ...), so checkpoints
//! interchange with PyTorch without renaming.

pub mod init;
mod layers;
mod norm;
pub mod summary;

pub use layers::{
    Activation, AdaptiveAvgPool, Conv, ConvConfig, Dropout, Flatten, Linear, LinearConfig, Pool, PoolKind,
};
pub use norm::BatchNorm;

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::graph::export::Exporter;
use crate::tensor::{fmt_shape, Tensor};
use std::collections::BTreeMap;

/// Whether a named tensor is trained (a parameter) or only tracked (a buffer, such as
/// batch norm's running statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// Trained by the optimizer (`weight`, `bias`).
    Param,
    /// Tracked and saved but not trained (`running_mean`, `running_var`, `num_batches_tracked`).
    Buffer,
}

/// How a forward pass runs. An argument rather than a layer's state, so that one model can
/// serve several threads in evaluation mode while nothing flips a flag behind their backs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Batch norm normalises with its running statistics; dropout passes its input through.
    Eval,
    /// Batch norm normalises with the batch's statistics and updates its running ones;
    /// dropout draws its masks from a generator seeded by `seed`, so a step is reproducible.
    Train {
        /// Seed of this forward pass's dropout masks.
        seed: u64,
        /// The index of the batch's first picture in the global batch: a process that trains
        /// on part of it ([`crate::dist`]) draws the dropout masks of its own pictures.
        first_row: u64,
    },
}

impl Mode {
    /// Training mode with dropout masks drawn from `seed`.
    pub fn train(seed: u64) -> Mode {
        Mode::Train { seed, first_row: 0 }
    }
    /// Training mode for the pictures from `first_row` on of a global batch whose dropout
    /// masks are drawn from `seed`.
    pub fn train_shard(seed: u64, first_row: u64) -> Mode {
        Mode::Train { seed, first_row }
    }
    /// Whether this is training mode.
    pub fn is_train(self) -> bool {
        matches!(self, Mode::Train { .. })
    }
    /// The mode for a container's `i`-th child: the same, with the child's own dropout seed
    /// (two dropout layers of one network draw different masks).
    pub fn child(self, i: usize) -> Mode {
        match self {
            Mode::Eval => Mode::Eval,
            Mode::Train { seed, first_row } => {
                Mode::Train { seed: crate::Rng::derive(seed, i as u64).next_u64(), first_row }
            }
        }
    }
}

/// What a leaf layer reports of itself in a shape pass ([`Module::shapes`]): the summary
/// table is made of these reports.
#[derive(Clone, Copy, Debug)]
pub struct LayerShape<'a> {
    /// Dotted path, as in parameter names (`conv1`, `layer1.0.conv2`).
    pub name: &'a str,
    /// Layer type: `Conv2d`, `Linear`, `MaxPool`, `BatchNorm`, `Inception`, ...
    pub kind: &'static str,
    /// The output shape, batch axis first.
    pub output: &'a [usize],
    /// Parameters (not buffers), frozen ones included.
    pub params: usize,
    /// Multiply-adds of the whole batch.
    pub macs: usize,
}

/// The callback of a shape pass, called once per leaf layer in forward order.
pub type ShapeHook<'h> = dyn FnMut(LayerShape<'_>) + 'h;

/// A layer or a network: a forward pass, its tensors, and its shapes. Models are
/// `Send + Sync`: one loaded model can sit in an `Arc` and run on many threads at once in
/// evaluation mode.
pub trait Module: Send + Sync {
    /// The forward pass in the given mode.
    fn forward_mode(&self, x: &Var, mode: Mode) -> Result<Var>;

    /// The shape pass: the output shape for an input of shape `input` (batch axis first),
    /// or the error [`Module::forward_mode`] would give for it, from shapes alone (nothing is
    /// allocated or computed). Each leaf layer reports itself to `hook` under its path from
    /// `name` (see [`report`]); containers pass the hook on to their children. A summary is
    /// such a hook, so that no layer describes itself in prose to be parsed.
    fn shapes(&self, name: &str, input: &[usize], hook: &mut ShapeHook<'_>) -> Result<Vec<usize>>;

    /// Calls `f` on each named parameter and buffer, in `state_dict` order.
    fn visit(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Var, TensorKind)) {}

    /// The forward pass in evaluation mode (inference). Training loops call
    /// [`Module::forward_mode`] with [`Mode::Train`].
    fn forward(&self, x: &Var) -> Result<Var> {
        self.forward_mode(x, Mode::Eval)
    }

    /// The output shape for `input` (batch axis first): [`Module::shapes`] without a hook.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.shapes("", input, &mut |_| {})
    }

    /// The output and the outputs of auxiliary classifiers (GoogLeNet's side branches),
    /// whose losses training adds to the main one. `forward` skips them.
    fn forward_aux(&self, x: &Var, mode: Mode) -> Result<(Var, Vec<Var>)> {
        Ok((self.forward_mode(x, mode)?, Vec::new()))
    }

    /// Writes the layer as ONNX nodes reading the value named `x`, of shape `input` (batch
    /// first), into `ex`, its parameters under their `state_dict` names from `name`;
    /// returns the name of its output ([`crate::graph::export`]).
    fn export(&self, name: &str, _x: &str, _input: &[usize], _ex: &mut Exporter) -> Result<String> {
        let name = if name.is_empty() { "the model" } else { name };
        Err(Error::Invalid(format!("{name}: this layer has no ONNX form")))
    }

    /// The layer as `Any`, for code that rewrites or inspects networks (fully connected
    /// layers into convolutions, receptive fields); `None` for the layers nothing needs to
    /// recognise.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// Reports a leaf layer to a shape pass's `hook`, with its parameter count, and returns its
/// `output` shape: the last step of a leaf's [`Module::shapes`].
pub fn report(
    layer: &dyn Module,
    hook: &mut ShapeHook<'_>,
    name: &str,
    kind: &'static str,
    output: Vec<usize>,
    macs: usize,
) -> Result<Vec<usize>> {
    hook(LayerShape { name, kind, output: &output, params: parameter_count(layer), macs });
    Ok(output)
}

/// Joins a prefix and a name with a dot (`""` + `weight` = `weight`, `conv1` + `""` = `conv1`).
pub fn join_name(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else if name.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Parameters that are trained (not frozen, not buffers), with their names.
pub fn trainable_parameters(m: &dyn Module) -> Vec<(String, Var)> {
    let mut out = Vec::new();
    m.visit("", &mut |name, v, kind| {
        if kind == TensorKind::Param && v.requires_grad() {
            out.push((name.to_string(), v.clone()));
        }
    });
    out
}

/// Every parameter and buffer, with its name, in `state_dict` order.
pub fn state_dict(m: &dyn Module) -> Vec<(String, Var)> {
    let mut out = Vec::new();
    m.visit("", &mut |name, v, _| out.push((name.to_string(), v.clone())));
    out
}

/// The buffers (batch norm's running statistics), with their names, in `state_dict` order.
pub fn buffers(m: &dyn Module) -> Vec<(String, Var)> {
    let mut out = Vec::new();
    m.visit("", &mut |name, v, kind| {
        if kind == TensorKind::Buffer {
            out.push((name.to_string(), v.clone()));
        }
    });
    out
}

/// Number of parameters (not buffers).
pub fn parameter_count(m: &dyn Module) -> usize {
    let mut n = 0;
    m.visit("", &mut |_, v, kind| {
        if kind == TensorKind::Param {
            n += v.value().numel();
        }
    });
    n
}

/// Freezes (or unfreezes) every parameter whose name starts with one of `prefixes`.
pub fn set_frozen(m: &dyn Module, prefixes: &[&str], frozen: bool) {
    m.visit("", &mut |name, v, kind| {
        if kind == TensorKind::Param && prefixes.iter().any(|p| name == *p || name.starts_with(&format!("{p}."))) {
            v.set_requires_grad(!frozen);
        }
    });
}

/// Copies tensors into the model by name. Every model tensor must be present with the
/// right shape and no unknown tensor may be given; otherwise the error lists the missing,
/// unexpected and mis-shaped names and nothing is changed.
pub fn load_state_dict(m: &dyn Module, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
    let own = state_dict(m);
    let mut missing = Vec::new();
    let mut misshaped = Vec::new();
    for (name, v) in &own {
        match tensors.get(name) {
            None => missing.push(name.clone()),
            Some(t) if t.shape() != v.shape().as_slice() => misshaped.push(format!(
                "{name} is {} in the file but {} in the model",
                fmt_shape(t.shape()),
                fmt_shape(&v.shape())
            )),
            Some(_) => {}
        }
    }
    let unexpected: Vec<String> = tensors.keys().filter(|k| !own.iter().any(|(n, _)| n == *k)).cloned().collect();
    if !missing.is_empty() || !unexpected.is_empty() || !misshaped.is_empty() {
        return Err(Error::StateDict { missing, unexpected, wrong_shape: misshaped });
    }
    // NaN or infinite weights would only make NaN predictions (a diverged run's, or a damaged file's)
    if let Some((name, _)) = own.iter().find(|(name, _)| tensors[name].data().iter().any(|v| !v.is_finite())) {
        return Err(Error::Invalid(format!("{name} holds NaN or infinite values; the weights are not usable")));
    }
    for (name, v) in &own {
        v.set_value(tensors[name].clone());
    }
    Ok(())
}

/// Layers applied in order. Children are named (`conv1`, `fc3`, ...) or numbered (`0`, `1`, ...).
#[derive(Default)]
pub struct Sequential {
    layers: Vec<(String, Box<dyn Module>)>,
}

impl Sequential {
    /// An empty sequence.
    pub fn new() -> Self {
        Sequential::default()
    }
    /// Appends a layer named after its position.
    pub fn push(mut self, layer: impl Module + 'static) -> Self {
        let name = self.layers.len().to_string();
        self.layers.push((name, Box::new(layer)));
        self
    }
    /// Appends a named layer.
    pub fn add(mut self, name: &str, layer: impl Module + 'static) -> Self {
        self.layers.push((name.to_string(), Box::new(layer)));
        self
    }
    /// Appends a named layer that is already boxed.
    pub fn add_boxed(mut self, name: &str, layer: Box<dyn Module>) -> Self {
        self.layers.push((name.to_string(), layer));
        self
    }
    /// The named layers, in order.
    pub fn layers(&self) -> &[(String, Box<dyn Module>)] {
        &self.layers
    }
    /// The named layers, in order, taken out of the container.
    pub fn into_layers(self) -> Vec<(String, Box<dyn Module>)> {
        self.layers
    }
}

/// A run of named layers applied in order, borrowed: a [`Sequential`]'s, or part of them
/// (the layers after a frozen prefix, trained on their own).
pub struct Layers<'a>(pub &'a [(String, Box<dyn Module>)]);

impl Module for Layers<'_> {
    fn forward_mode(&self, x: &Var, mode: Mode) -> Result<Var> {
        let mut h = x.clone();
        for (i, (_, layer)) in self.0.iter().enumerate() {
            h = layer.forward_mode(&h, mode.child(i))?;
        }
        Ok(h)
    }
    fn shapes(&self, prefix: &str, input: &[usize], hook: &mut ShapeHook<'_>) -> Result<Vec<usize>> {
        let mut shape = input.to_vec();
        for (name, layer) in self.0 {
            shape = layer.shapes(&join_name(prefix, name), &shape, hook)?;
        }
        Ok(shape)
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var, TensorKind)) {
        for (name, layer) in self.0 {
            layer.visit(&join_name(prefix, name), f);
        }
    }
    fn export(&self, prefix: &str, x: &str, input: &[usize], ex: &mut Exporter) -> Result<String> {
        let (mut h, mut shape) = (x.to_string(), input.to_vec());
        for (name, layer) in self.0 {
            h = layer.export(&join_name(prefix, name), &h, &shape, ex)?;
            shape = layer.output_shape(&shape)?;
        }
        Ok(h)
    }
}

impl Module for Sequential {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn forward_mode(&self, x: &Var, mode: Mode) -> Result<Var> {
        Layers(&self.layers).forward_mode(x, mode)
    }
    fn shapes(&self, prefix: &str, input: &[usize], hook: &mut ShapeHook<'_>) -> Result<Vec<usize>> {
        Layers(&self.layers).shapes(prefix, input, hook)
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var, TensorKind)) {
        Layers(&self.layers).visit(prefix, f)
    }
    fn export(&self, prefix: &str, x: &str, input: &[usize], ex: &mut Exporter) -> Result<String> {
        Layers(&self.layers).export(prefix, x, input, ex)
    }
}
