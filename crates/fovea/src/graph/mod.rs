//! Inference graphs: a static list of operators with their weights, built once from an
//! ONNX model and run many times.
//!
//! Loading does the work that would otherwise be repeated on every run:
//! - every node's attributes are parsed and checked into an [`Op`];
//! - nodes whose inputs are all constant are computed once (constant folding); with the
//!   input shapes known (declared in the file, or given), a trial run on zeros gives
//!   every value's shape, so that `Shape` nodes become constants too and the
//!   shape-computing subgraphs PyTorch exports (Shape → Gather → Concat → Reshape) fold
//!   away;
//! - batch normalization after a convolution is folded into its weights, and an
//!   activation after a convolution is applied by the convolution itself;
//! - constant convolution weights are packed once for the kernel that takes them;
//! - a second plan keeps activations in the channel-blocked layout where the operators
//!   that read them take it ([`blocked`](self) module), for runs at the level it was made
//!   for;
//! - each value is dropped after its last use (liveness), so a run holds only the values
//!   still needed.
//!
//! An unsupported operator is reported with every other unsupported one in the file, by
//! name and opset, in one error.

mod blocked;
pub mod export;
pub mod ops;
pub mod value;

pub use ops::Op;
pub use value::Value;

use crate::io::onnx::{self, Dim, Model};
use crate::{Error, Result, Tensor};
use std::collections::HashMap;

/// Where a step reads a value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Slot {
    /// a constant (initializer or folded)
    Const(usize),
    /// a value computed at run time (graph inputs first)
    Var(usize),
}

/// One operator of the graph with where its inputs come from and its outputs go.
#[derive(Clone, Debug)]
pub struct Step {
    /// the node's name (or its first output's, if it has none)
    pub name: String,
    /// the ONNX operator type
    pub op_type: String,
    /// the operator
    pub op: Op,
    inputs: Vec<Option<Slot>>,
    /// the variable each output is written to (`None`: not used)
    outputs: Vec<Option<usize>>,
    /// variables last read by this step, dropped after it
    free: Vec<usize>,
    /// the input handed to the operator by value, its last use ([`Op::reusable_input`])
    reuse: Option<usize>,
    /// the shapes of its outputs from the trial run, where the input shapes are known
    pub output_shapes: Vec<Option<Vec<usize>>>,
}

/// A graph input: its name, element type and shape (`None` for a dimension that may vary).
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    /// the name
    pub name: String,
    /// the ONNX element type
    pub elem: i32,
    /// the shape, if known: each dimension fixed or free
    pub shape: Option<Vec<Option<usize>>>,
}

/// An inference graph.
#[derive(Clone, Debug)]
pub struct Graph {
    inputs: Vec<Input>,
    outputs: Vec<(String, Slot)>,
    steps: Vec<Step>,
    /// the steps again with activations in the channel-blocked layout
    blocked: Option<blocked::BlockedPlan>,
    constants: Vec<Value>,
    vars: usize,
}

impl Graph {
    /// Builds the graph of `model`. `shapes` fixes the shapes of inputs (by name) whose
    /// file declares them with free dimensions (a batch size, say), so that everything
    /// computed from shapes folds at load.
    pub fn from_onnx(model: &Model, shapes: &[(String, Vec<usize>)]) -> Result<Graph> {
        check_supported(model)?;
        model.graph.check().map_err(Error::Invalid)?;
        let opset = model.opset("").unwrap_or(1);
        let g = &model.graph;
        let mut builder = Builder::default();
        for t in &g.initializers {
            let v = Value::from_onnx(t)?;
            builder.constant(&t.name, v);
        }
        let mut inputs = Vec::new();
        for info in g.runtime_inputs() {
            let declared: Option<Vec<Option<usize>>> = info.dims.as_ref().map(|dims| {
                dims.iter().map(|d| if let Dim::Value(v) = d { usize::try_from(*v).ok() } else { None }).collect()
            });
            let shape = match shapes.iter().find(|(n, _)| *n == info.name) {
                Some((_, s)) => {
                    if let Some(d) = &declared {
                        let fits = d.len() == s.len() && d.iter().zip(s).all(|(d, &s)| d.is_none_or(|d| d == s));
                        if !fits {
                            return Err(Error::Invalid(format!(
                                "input {:?}: shape {s:?} does not fit the declared {}",
                                info.name,
                                fmt_dims(d)
                            )));
                        }
                    }
                    Some(s.iter().map(|&d| Some(d)).collect())
                }
                None => declared,
            };
            let elem = if info.elem_type == 0 { onnx::data_type::FLOAT } else { info.elem_type };
            value::check_elem(elem).map_err(|e| Error::Invalid(format!("input {:?}: {e}", info.name)))?;
            let var = builder.var(&info.name);
            let probe = match &shape {
                Some(s) if s.iter().all(Option::is_some) => {
                    let s: Vec<usize> = s.iter().map(|d| d.unwrap_or(0)).collect();
                    crate::budget::check_shape(&format!("input {:?} {s:?}", info.name), &s)?;
                    Some(zeros(elem, s))
                }
                _ => None,
            };
            builder.probes.insert(var, probe);
            inputs.push(Input { name: info.name.clone(), elem, shape });
        }
        for (i, node) in g.nodes.iter().enumerate() {
            for name in &node.inputs {
                builder.last_reader.insert(name.clone(), i);
            }
        }
        for (i, node) in g.nodes.iter().enumerate() {
            builder.node(node, i, opset).map_err(|e| {
                let name = if node.name.is_empty() {
                    node.outputs.first().cloned().unwrap_or_default()
                } else {
                    node.name.clone()
                };
                Error::Invalid(format!("{} node {name:?}: {e}", node.op_type))
            })?;
        }
        if g.outputs.is_empty() {
            return Err(Error::Invalid("the graph has no outputs".into()));
        }
        if let Some((name, _)) = shapes.iter().find(|(n, _)| !g.inputs.iter().any(|i| i.name == *n)) {
            return Err(Error::Invalid(format!("a shape is given for {name:?}, which is not an input of the model")));
        }
        let mut outputs = Vec::new();
        for o in &g.outputs {
            let slot = *builder
                .names
                .get(&o.name)
                .ok_or_else(|| Error::Invalid(format!("output {:?} is never made", o.name)))?;
            outputs.push((o.name.clone(), slot));
        }
        let mut graph = Graph {
            inputs,
            outputs,
            steps: builder.steps,
            blocked: None,
            constants: builder.constants,
            vars: builder.vars,
        };
        graph.fuse();
        graph.pack_weights();
        graph.blocked = graph.plan_blocked();
        graph.vars = graph.vars.max(graph.blocked.as_ref().map_or(0, |b| b.vars));
        graph.plan_liveness();
        Ok(graph)
    }

    /// Reads and builds the ONNX model at `path` (see [`Graph::from_onnx`]); errors name
    /// the file.
    pub fn load(path: &std::path::Path, shapes: &[(String, Vec<usize>)]) -> Result<Graph> {
        let model = onnx::load(path)?;
        Graph::from_onnx(&model, shapes).map_err(|e| e.in_file(path))
    }

    /// The inputs a run takes, in order.
    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    /// The names of the outputs a run returns, in order.
    pub fn output_names(&self) -> Vec<&str> {
        self.outputs.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The steps, in the order they run at the current kernel level.
    pub fn steps(&self) -> &[Step] {
        self.plan()
    }

    /// The number of values each step's constant float inputs hold (its weights),
    /// counting each constant once, at the first step that reads it.
    pub fn step_parameters(&self) -> Vec<usize> {
        let mut seen = vec![false; self.constants.len()];
        self.steps
            .iter()
            .map(|s| {
                s.inputs
                    .iter()
                    .filter_map(|i| match i {
                        // weights are floats; integer constants are shapes and axes
                        Some(Slot::Const(c))
                            if value::is_float(self.constants[*c].elem())
                                && !std::mem::replace(&mut seen[*c], true) =>
                        {
                            Some(self.constants[*c].len())
                        }
                        _ => None,
                    })
                    .sum()
            })
            .collect()
    }

    /// A row per step for one sample, as `fovea summary` shows the zoo's layers: output
    /// shape, parameters (the step's constant inputs) and multiply-adds (convolutions and
    /// matrix products). Needs the input shapes fixed at load; the first dimension of
    /// every shape is taken as the batch.
    pub fn summary(&self) -> Result<crate::nn::summary::Summary> {
        use crate::nn::summary::{LayerSummary, Summary};
        let first = self.inputs.first().and_then(|i| i.shape.clone()).unwrap_or_default();
        let input: Vec<usize> = first.iter().skip(1).map(|d| d.unwrap_or(0)).collect();
        let batch = first.first().copied().flatten().unwrap_or(1).max(1);
        let params = self.step_parameters();
        // each variable's shape from the trial run, filled in step by step
        let mut var_shapes: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, input) in self.inputs.iter().enumerate() {
            if let Some(s) = input.shape.as_ref().and_then(|s| s.iter().copied().collect::<Option<Vec<usize>>>()) {
                var_shapes.insert(i, s);
            }
        }
        let mut layers = Vec::new();
        for (step, params) in self.steps.iter().zip(params) {
            let out = step.output_shapes.first().cloned().flatten().ok_or_else(|| {
                Error::Invalid(format!(
                    "{} node {:?}: its shape is not known; give the input shape",
                    step.op_type, step.name
                ))
            })?;
            let shape = |i: usize| match step.inputs.get(i).copied().flatten() {
                Some(Slot::Const(c)) => self.constants[c].shape().to_vec(),
                Some(Slot::Var(v)) => var_shapes.get(&v).cloned().unwrap_or_default(),
                None => Vec::new(),
            };
            let macs = match &step.op {
                Op::Conv(c) => c.geometry(&shape(0), &shape(1)).map(|g| g.macs()).unwrap_or(0),
                // every input value meets every kernel tap of one group's outputs
                Op::ConvTranspose(_) => {
                    let w = shape(1);
                    shape(0).iter().product::<usize>() * w[1..].iter().product::<usize>()
                }
                Op::Gemm(_) | Op::MatMul => {
                    let a = shape(0);
                    out.iter().product::<usize>()
                        * if a.len() == 2 && matches!(step.op, Op::Gemm(_)) {
                            // k is A's dimension that B' does not keep
                            let w = shape(1);
                            w.iter().product::<usize>() / out.last().copied().unwrap_or(1).max(1)
                        } else {
                            a.last().copied().unwrap_or(0)
                        }
                }
                _ => 0,
            };
            let kind = step.op_type.clone()
                + match &step.op {
                    Op::Conv(c) => {
                        (if c.residual { "+Add" } else { "" }).to_string()
                            + &c.activation.map_or(String::new(), |a| format!("+{}", a.name()))
                    }
                    _ => String::new(),
                }
                .as_str();
            for (o, s) in step.outputs.iter().zip(&step.output_shapes) {
                if let (Some(o), Some(s)) = (o, s) {
                    var_shapes.insert(*o, s.clone());
                }
            }
            let per_sample = out.get(1..).unwrap_or_default().to_vec();
            layers.push(LayerSummary {
                name: step.name.clone(),
                kind,
                activation_size: per_sample.iter().product(),
                output_shape: per_sample,
                params,
                macs: macs / batch,
            });
        }
        let total_params = layers.iter().map(|l| l.params).sum();
        let total_macs = layers.iter().map(|l| l.macs).sum();
        Ok(Summary { input, layers, total_params, training_only_params: 0, total_macs })
    }

    /// Runs the graph on `inputs` (one per [`Graph::inputs`], in order), returning the
    /// outputs in order.
    pub fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>> {
        crate::kernels::with_warm_threads(|| self.run_timed(inputs, None))
    }

    /// [`Graph::run`], also returning how long each of [`Graph::steps`] took (a profile).
    pub fn run_profiled(&self, inputs: Vec<Value>) -> Result<(Vec<Value>, Vec<std::time::Duration>)> {
        let mut times = Vec::with_capacity(self.steps.len());
        let outputs = crate::kernels::with_warm_threads(|| self.run_timed(inputs, Some(&mut times)))?;
        Ok((outputs, times))
    }

    fn run_timed(&self, inputs: Vec<Value>, mut times: Option<&mut Vec<std::time::Duration>>) -> Result<Vec<Value>> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::Invalid(format!("the model takes {} inputs, got {}", self.inputs.len(), inputs.len())));
        }
        let mut vars: Vec<Option<Value>> = vec![None; self.vars];
        for (i, (v, input)) in inputs.into_iter().zip(&self.inputs).enumerate() {
            input.check(&v)?;
            vars[i] = Some(v);
        }
        for step in self.plan() {
            let started = times.is_some().then(std::time::Instant::now);
            let reused = match step.reuse.and_then(|i| step.inputs[i]) {
                Some(Slot::Var(v)) => vars[v].take(),
                _ => None,
            };
            let args: Vec<Option<&Value>> = step
                .inputs
                .iter()
                .map(|s| match s {
                    Some(Slot::Const(c)) => Some(&self.constants[*c]),
                    Some(Slot::Var(v)) => vars[*v].as_ref(),
                    None => None,
                })
                .collect();
            let results = match reused {
                Some(value) => step.op.run_reusing(&args, value),
                None => step.op.run(&args),
            }
            .map_err(|e| Error::Invalid(format!("{} node {:?}: {e}", step.op_type, step.name)))?;
            drop(args);
            for (slot, value) in step.outputs.iter().zip(results) {
                if let Some(slot) = slot {
                    vars[*slot] = Some(value);
                }
            }
            for &v in &step.free {
                vars[v] = None;
            }
            if let (Some(times), Some(started)) = (times.as_deref_mut(), started) {
                times.push(started.elapsed());
            }
        }
        self.outputs
            .iter()
            .map(|(name, slot)| match slot {
                Slot::Const(c) => Ok(self.constants[*c].clone()),
                Slot::Var(v) => {
                    vars[*v].clone().ok_or_else(|| Error::Invalid(format!("output {name:?} was not computed")))
                }
            })
            .collect()
    }

    /// Folds batch normalization into the convolution before it and fuses a sum with
    /// another value (a residual connection) and activations into the convolution before
    /// them, where nothing else reads the convolution's output.
    fn fuse(&mut self) {
        let mut i = 0;
        while i + 1 < self.steps.len() {
            let Some(Some(conv_out)) = self.steps[i].outputs.first().copied() else {
                i += 1;
                continue;
            };
            let is_conv = matches!(&self.steps[i].op, Op::Conv(c) if c.activation.is_none());
            let sums = matches!(&self.steps[i].op, Op::Conv(c) if !c.residual);
            let readers: Vec<usize> = (i + 1..self.steps.len())
                .filter(|&j| self.steps[j].inputs.contains(&Some(Slot::Var(conv_out))))
                .collect();
            let is_output = self.outputs.iter().any(|(_, s)| *s == Slot::Var(conv_out));
            if !is_conv || readers.len() != 1 || is_output {
                i += 1;
                continue;
            }
            let j = readers[0];
            use ops::elementwise::{Activation, Binary, BinaryKind};
            // conv + other: the other value becomes the convolution's fourth input
            if sums
                && matches!(self.steps[j].op, Op::Binary(Binary(BinaryKind::Add)))
                && self.steps[j].inputs.len() == 2
            {
                let other = self.steps[j].inputs.iter().flatten().find(|s| **s != Slot::Var(conv_out)).copied();
                let known = |k: usize| self.steps[k].output_shapes.first().cloned().flatten();
                let same_shape = known(i).is_some() && known(i) == known(j);
                // the other value must exist when the convolution runs (a shortcut's own
                // convolution may come later: then the sum goes into that one)
                let ready = match other {
                    Some(Slot::Var(v)) => {
                        v < self.inputs.len() || self.steps[..i].iter().any(|s| s.outputs.contains(&Some(v)))
                    }
                    _ => true,
                };
                if let (Some(other), true, true) = (other, same_shape, ready) {
                    if let Op::Conv(c) = &mut self.steps[i].op {
                        c.residual = true;
                    }
                    let inputs = &mut self.steps[i].inputs;
                    inputs.resize(3, None);
                    inputs.push(Some(other));
                    self.merge(i, j);
                    continue;
                }
            }
            if self.steps[j].inputs.first() != Some(&Some(Slot::Var(conv_out))) {
                i += 1;
                continue;
            }
            let activation = match &self.steps[j].op {
                // not after a fused sum: the batch norm would apply to conv + r, not conv
                Op::BatchNorm(bn) if sums && self.steps[j].outputs.iter().skip(1).all(Option::is_none) => {
                    let bn = bn.clone();
                    if !self.fold_batch_norm(i, j, bn) {
                        i += 1;
                        continue;
                    }
                    None
                }
                Op::Unary(f) if f.fusable() => Some(*f),
                Op::Clip => match self.constant_bounds(j) {
                    Some((lo, hi)) => Some(Activation::Clip(lo, hi)),
                    None => {
                        i += 1;
                        continue;
                    }
                },
                _ => {
                    i += 1;
                    continue;
                }
            };
            if let (Some(f), Op::Conv(c)) = (activation, &mut self.steps[i].op) {
                c.activation = Some(f);
            }
            self.merge(i, j);
        }
    }

    /// Packs the constant weights of convolutions for their kernel, once.
    fn pack_weights(&mut self) {
        for step in &mut self.steps {
            if let (Op::Conv(c), Some(Some(Slot::Const(w)))) = (&mut step.op, step.inputs.get(1)) {
                if let Ok(w) = self.constants[*w].tensor("Conv") {
                    c.pack(w);
                }
            }
        }
    }

    /// Removes step `j`, fused into step `i`: `i` now writes `j`'s output.
    fn merge(&mut self, i: usize, j: usize) {
        let removed = self.steps.remove(j);
        self.steps[i].outputs[0] = removed.outputs[0];
        self.steps[i].output_shapes[0] = removed.output_shapes[0].clone();
        self.steps[i].name = format!("{}+{}", self.steps[i].name, removed.name);
    }

    /// Clip's bounds, if they are constants (or absent).
    fn constant_bounds(&self, step: usize) -> Option<(f32, f32)> {
        let bound = |k: usize, default: f32| match self.steps[step].inputs.get(k).copied().flatten() {
            None => Some(default),
            Some(Slot::Const(c)) if self.constants[c].len() == 1 => Some(self.constants[c].to_f64s()[0] as f32),
            _ => None,
        };
        Some((bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?))
    }

    /// Folds the batch norm of step `j` into the convolution of step `i` when the
    /// weights, bias and statistics are constants: `w' = w·m`, `b' = b·m + o`.
    fn fold_batch_norm(&mut self, i: usize, j: usize, bn: ops::conv::BatchNorm) -> bool {
        let consts: Option<Vec<&Value>> = (1..5)
            .map(|k| match self.steps[j].inputs.get(k).copied().flatten() {
                Some(Slot::Const(c)) => Some(&self.constants[c]),
                _ => None,
            })
            .collect();
        let weight = match self.steps[i].inputs.get(1).copied().flatten() {
            Some(Slot::Const(c)) => &self.constants[c],
            _ => return false,
        };
        let bias = match self.steps[i].inputs.get(2).copied().flatten() {
            Some(Slot::Const(c)) => Some(&self.constants[c]),
            None => None,
            _ => return false,
        };
        let (Some(consts), Ok(w)) = (consts, weight.tensor("Conv")) else { return false };
        let Ok(params) = consts.iter().map(|v| v.tensor("BatchNormalization")).collect::<Result<Vec<_>>>() else {
            return false;
        };
        let c_out = w.shape()[0];
        if params.iter().any(|p| p.numel() != c_out) || bias.is_some_and(|b| b.len() != c_out) || bn.training() {
            return false;
        }
        let (m, o) = bn.affine(params[0].data(), params[1].data(), params[2].data(), params[3].data());
        let per = w.numel() / c_out.max(1);
        let w2: Vec<f32> = w.data().iter().enumerate().map(|(k, &v)| v * m[k / per]).collect();
        let b0 = bias.and_then(|b| b.tensor("Conv").ok()).map(|b| b.data().to_vec()).unwrap_or(vec![0.0; c_out]);
        let b2: Vec<f32> = b0.iter().zip(&m).zip(&o).map(|((&b, &m), &o)| b * m + o).collect();
        let w_slot = self.push_constant(Value::float(Tensor::from_parts(w.shape().to_vec(), w2)));
        let b_slot = self.push_constant(Value::float(Tensor::from_parts(vec![c_out], b2)));
        let inputs = &mut self.steps[i].inputs;
        inputs.resize(3, None);
        inputs[1] = Some(w_slot);
        inputs[2] = Some(b_slot);
        true
    }

    fn push_constant(&mut self, v: Value) -> Slot {
        self.constants.push(v);
        Slot::Const(self.constants.len() - 1)
    }

    /// Marks, for each step of each plan, the variables it reads for the last time;
    /// unread constants (folded away) are dropped.
    fn plan_liveness(&mut self) {
        mark_last_uses(&mut self.steps, self.vars, &self.outputs);
        if let Some(b) = &mut self.blocked {
            mark_last_uses(&mut b.steps, self.vars, &self.outputs);
        }
        // constants no step or output reads (inputs of folded nodes) are released
        let mut used = vec![false; self.constants.len()];
        let blocked = self.blocked.iter().flat_map(|b| &b.steps);
        let inputs = self.steps.iter().chain(blocked).flat_map(|s| s.inputs.iter().flatten());
        for s in inputs.chain(self.outputs.iter().map(|(_, s)| s)) {
            if let Slot::Const(c) = s {
                used[*c] = true;
            }
        }
        for (c, used) in used.iter().enumerate() {
            if !used {
                self.constants[c] = zeros(onnx::data_type::FLOAT, vec![0]);
            }
        }
    }
}

/// Sets each step's `free`: the variables it reads for the last time, and outputs nobody
/// reads; never the graph's outputs. Sets its `reuse` where its operator can take one of
/// those by value ([`Op::reusable_input`]) that no other of its inputs reads.
fn mark_last_uses(steps: &mut [Step], vars: usize, outputs: &[(String, Slot)]) {
    let mut last = vec![None; vars];
    for (k, step) in steps.iter().enumerate() {
        for s in step.inputs.iter().flatten() {
            if let Slot::Var(v) = s {
                last[*v] = Some(k);
            }
        }
        // an output nobody reads is dropped at once
        for o in step.outputs.iter().flatten() {
            if last[*o].is_none() {
                last[*o] = Some(k);
            }
        }
    }
    for (_, s) in outputs {
        if let Slot::Var(v) = s {
            last[*v] = None;
        }
    }
    for step in steps.iter_mut() {
        step.free.clear();
    }
    for (v, k) in last.iter().enumerate() {
        if let Some(k) = k {
            steps[*k].free.push(v);
        }
    }
    for step in steps.iter_mut() {
        step.reuse = step.op.reusable_input().filter(|&i| match step.inputs.get(i) {
            Some(Some(Slot::Var(v))) => {
                step.free.contains(v) && step.inputs.iter().filter(|s| **s == Some(Slot::Var(*v))).count() == 1
            }
            _ => false,
        });
    }
}

impl Input {
    /// Refuses a value of another type or shape.
    fn check(&self, v: &Value) -> Result<()> {
        if v.elem() != self.elem {
            return Err(Error::Invalid(format!(
                "input {:?} should be {}, got {}",
                self.name,
                value::elem_name(self.elem),
                value::elem_name(v.elem())
            )));
        }
        if let Some(s) = &self.shape {
            let fits = s.len() == v.shape().len() && s.iter().zip(v.shape()).all(|(d, &x)| d.is_none_or(|d| d == x));
            if !fits {
                return Err(Error::Invalid(format!(
                    "input {:?} should have shape {}, got {:?}",
                    self.name,
                    fmt_dims(s),
                    v.shape()
                )));
            }
        }
        Ok(())
    }
}

/// A shape with free dimensions written as `?`.
pub fn fmt_dims(dims: &[Option<usize>]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| d.map_or("?".into(), |d| d.to_string())).collect();
    format!("[{}]", parts.join(", "))
}

/// A value of zeros.
fn zeros(elem: i32, shape: Vec<usize>) -> Value {
    let n = shape.iter().product();
    if value::is_float(elem) {
        Value::Float { elem, tensor: Tensor::from_parts(shape, vec![0.0; n]) }
    } else {
        Value::Int { elem, shape, values: vec![0; n] }
    }
}

/// Refuses a model with operators fovea does not run, naming all of them at once.
fn check_supported(model: &Model) -> Result<()> {
    let mut missing = Vec::new();
    for (domain, op) in model.operators() {
        let onnx = domain.is_empty() || domain == "ai.onnx";
        if !onnx || !ops::SUPPORTED.contains(&op.as_str()) {
            let d = if onnx { String::new() } else { format!("{domain}.") };
            let opset = model.opset(&domain).map_or("no opset imported".into(), |v| format!("opset {v}"));
            missing.push(format!("{d}{op} ({opset})"));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid(format!("unsupported operators: {}", missing.join(", "))))
}

/// What the graph builder keeps while it reads the nodes.
#[derive(Default)]
struct Builder {
    names: HashMap<String, Slot>,
    constants: Vec<Value>,
    vars: usize,
    steps: Vec<Step>,
    /// the trial run's value for each variable (`None` where a shape is unknown)
    probes: HashMap<usize, Option<Value>>,
    /// the index of the last node that reads each value (its probe is dropped after it)
    last_reader: HashMap<String, usize>,
}

impl Builder {
    fn constant(&mut self, name: &str, v: Value) {
        self.constants.push(v);
        self.names.insert(name.to_string(), Slot::Const(self.constants.len() - 1));
    }

    fn var(&mut self, name: &str) -> usize {
        self.vars += 1;
        self.names.insert(name.to_string(), Slot::Var(self.vars - 1));
        self.vars - 1
    }

    fn node(&mut self, node: &onnx::Node, index: usize, opset: i64) -> Result<()> {
        self.add_node(node, index, opset)?;
        for name in &node.inputs {
            if let (Some(&i), Some(Slot::Var(v))) = (self.last_reader.get(name), self.names.get(name)) {
                if i == index {
                    self.probes.remove(v);
                }
            }
        }
        Ok(())
    }

    fn add_node(&mut self, node: &onnx::Node, index: usize, opset: i64) -> Result<()> {
        if node.op_type == "Constant" {
            let v = constant_value(node)?;
            if let Some(out) = node.outputs.first() {
                self.constant(out, v);
            }
            return Ok(());
        }
        let op = Op::from_node(node, opset)?;
        let inputs: Vec<Option<Slot>> = node
            .inputs
            .iter()
            .map(|n| {
                if n.is_empty() {
                    Ok(None)
                } else {
                    self.names
                        .get(n)
                        .copied()
                        .map(Some)
                        .ok_or_else(|| Error::Invalid(format!("input {n:?} is never made")))
                }
            })
            .collect::<Result<_>>()?;
        // constant where every input is, or is read for its shape alone and the trial run
        // knows that (a Shape of a value of known shape, say)
        let constant_inputs = self.known_args(&inputs, |i| op.reads_only_shape(i));
        if let Some(args) = constant_inputs {
            let results = op.run(&args)?;
            for (name, v) in node.outputs.iter().zip(results) {
                if !name.is_empty() {
                    self.constant(name, v);
                }
            }
            return Ok(());
        }
        // the trial run, where every input's shape is known and no run-time value decides
        // an output's shape
        let probe_args = self.known_args(&inputs, |i| !op.decides_shape(i));
        let probes: Option<Vec<Value>> = probe_args.map(|args| op.run(&args)).transpose()?;
        let mut outputs = Vec::new();
        let mut output_shapes = Vec::new();
        for (k, name) in node.outputs.iter().enumerate() {
            if name.is_empty() {
                outputs.push(None);
                output_shapes.push(None);
                continue;
            }
            let var = self.var(name);
            let probe = probes.as_ref().and_then(|p| p.get(k).cloned());
            output_shapes.push(probe.as_ref().map(|p| p.shape().to_vec()));
            self.probes.insert(var, probe);
            outputs.push(Some(var));
        }
        let name = if node.name.is_empty() {
            node.outputs.first().cloned().unwrap_or(format!("#{index}"))
        } else {
            node.name.clone()
        };
        self.steps.push(Step {
            name,
            op_type: node.op_type.clone(),
            op,
            inputs,
            outputs,
            free: Vec::new(),
            reuse: None,
            output_shapes,
        });
        Ok(())
    }
}

impl Builder {
    /// The values of `inputs` where each is known: constants, and the trial run's value of
    /// a variable where `probe(position)` allows it; `None` if any is not.
    fn known_args(&self, inputs: &[Option<Slot>], probe: impl Fn(usize) -> bool) -> Option<Vec<Option<&Value>>> {
        inputs
            .iter()
            .enumerate()
            .map(|(i, s)| match s {
                None => Some(None),
                Some(Slot::Const(c)) => Some(Some(&self.constants[*c])),
                Some(Slot::Var(v)) if probe(i) => self.probes.get(v).and_then(|p| p.as_ref()).map(Some),
                Some(Slot::Var(_)) => None,
            })
            .collect()
    }
}

/// The value of a `Constant` node.
fn constant_value(node: &onnx::Node) -> Result<Value> {
    let a = ops::Attrs(node);
    if let Some(t) = a.tensor("value")? {
        return Value::from_onnx(t);
    }
    if let Some(v) = node.attribute("value_float").map(|_| a.float("value_float", 0.0)).transpose()? {
        return Ok(Value::float(Tensor::from_parts(vec![], vec![v])));
    }
    if let Some(v) = a.floats("value_floats")? {
        return Ok(Value::float(Tensor::from_parts(vec![v.len()], v)));
    }
    if let Some(v) = node.attribute("value_int").map(|_| a.int("value_int", 0)).transpose()? {
        return Ok(Value::int64(vec![], vec![v]));
    }
    if let Some(v) = a.ints("value_ints")? {
        return Ok(Value::int64(vec![v.len()], v));
    }
    Err(a.invalid("has no value fovea reads (value, value_float(s), value_int(s))"))
}
