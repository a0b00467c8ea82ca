//! The blocked plan: the graph's steps again, with activations kept in the channel-blocked
//! layout ([`crate::kernels::blocked`]) wherever the operators that read them take it, as
//! onnxruntime's CPU provider does. Convolutions then store their register blocks where
//! they belong (no transpose, no patch matrix; 1x1 ones read their input as it is),
//! residual sums are read inside the kernel, and pooling runs along whole vectors.
//!
//! The plan is made at load for the kernel level of the moment and used by runs at that
//! level; a run at another level ([`crate::kernels::scoped`]) takes the plain steps. It
//! shares the constants and the packed weights of the plain steps.
//!
//! What runs blocked: one-group 1-D and 2-D convolutions (and 3-D ones of depth one),
//! with at least a block of output channels, the last block padded where the channels
//! do not fill it
//! (reading blocked input, or `[N, C, H, W]` input for kernels larger than 1x1:
//! a 1x1 convolution of plain input stays with the GEMM, which reads it as it lies),
//! 2-D MaxPool and AveragePool, global pooling (also ReduceMean or ReduceMax over the
//! spatial axes; it ends the region), activations, and
//! Concat along channels of whole blocks. A value that another operator or the graph's
//! output needs is reordered back to `[N, C, ..]` once, where first needed.

use super::ops::blocked::Blocked;
use super::ops::layout::Layout;
use super::ops::Op;
use super::{Graph, Slot, Step};
use crate::kernels::conv::{winograd, PackedWeights, WinogradWeights};
use crate::kernels::{blocked, isa, Isa};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The steps of the blocked plan and the level it was made for.
#[derive(Clone, Debug)]
pub(super) struct BlockedPlan {
    pub(super) level: Isa,
    pub(super) steps: Vec<Step>,
    /// the variables it writes (more than the plain steps: the blocked forms)
    pub(super) vars: usize,
}

/// A blocked convolution's weights: packed, for Winograd's algorithm (where it takes
/// them), and whether its input is blocked.
type ConvWeights = (Arc<PackedWeights>, Option<Arc<WinogradWeights>>, bool);

/// What the planner knows while it walks the steps.
struct Planner<'a> {
    graph: &'a Graph,
    block: usize,
    steps: Vec<Step>,
    vars: usize,
    /// the logical shape of each variable, where the trial run knew it
    shapes: HashMap<usize, Vec<usize>>,
    /// the variable holding each variable's blocked form, and its channels
    blocked: HashMap<usize, (usize, usize)>,
    /// the variables present in their own (plain) form
    plain: HashSet<usize>,
}

impl Graph {
    /// The blocked plan of this graph at the current level; `None` where no kernel takes
    /// the layout or no step would run blocked.
    pub(super) fn plan_blocked(&self) -> Option<BlockedPlan> {
        let block = blocked::block()?;
        let mut shapes = HashMap::new();
        for (v, input) in self.inputs.iter().enumerate() {
            if let Some(s) = input.shape.as_ref().and_then(|s| s.iter().copied().collect::<Option<Vec<usize>>>()) {
                shapes.insert(v, s);
            }
        }
        for step in &self.steps {
            for (o, s) in step.outputs.iter().zip(&step.output_shapes) {
                if let (Some(o), Some(s)) = (o, s) {
                    shapes.insert(*o, s.clone());
                }
            }
        }
        let mut p = Planner {
            graph: self,
            block,
            steps: Vec::new(),
            vars: self.vars,
            shapes,
            blocked: HashMap::new(),
            plain: (0..self.inputs.len()).collect(),
        };
        let mut any = false;
        for step in &self.steps {
            any |= p.step(step);
        }
        for (_, slot) in &self.outputs {
            if let Slot::Var(v) = slot {
                p.make_plain(*v);
            }
        }
        any.then_some(BlockedPlan { level: isa::current(), steps: p.steps, vars: p.vars })
    }

    /// The steps that run at the current level: the blocked plan where it was made for it.
    pub(super) fn plan(&self) -> &[Step] {
        match &self.blocked {
            Some(b) if b.level == isa::current() => &b.steps,
            _ => &self.steps,
        }
    }
}

impl Planner<'_> {
    /// Adds `step`, blocked if it can be; returns whether it is.
    fn step(&mut self, step: &Step) -> bool {
        // (the blocked form of a value knows its channels from its shape)
        let output_known = step.output_shapes.first().is_some_and(|s| s.as_ref().is_some_and(|s| s.len() >= 3));
        let first_var = match step.inputs.first() {
            Some(Some(Slot::Var(v))) => Some(*v),
            _ => None,
        };
        let first_blocked = first_var.is_some_and(|v| self.blocked.contains_key(&v));
        let shape = first_var.and_then(|v| self.shapes.get(&v)).filter(|s| s.len() >= 3).cloned();
        let blocked_op = match (&step.op, shape) {
            // as global pooling (torch.onnx exports adaptive average pooling to 1x1 so), whose
            // output is plain, of any rank
            (Op::Reduce(r), Some(shape)) if first_blocked && shape[2..].iter().all(|&d| d > 0) => {
                // (axes computed at run time stay with the plain reduction)
                let axes = match step.inputs.get(1) {
                    Some(Some(Slot::Const(c))) => Some(Some(&self.graph.constants[*c])),
                    Some(Some(Slot::Var(_))) => None,
                    _ => Some(None),
                };
                axes.and_then(|a| r.global_pool(a, shape.len())).map(|(max, keepdims)| Blocked::GlobalPool {
                    max,
                    keepdims,
                    block: self.block,
                    channels: shape[1],
                })
            }
            _ if !output_known => None,
            (Op::Conv(c), _) => self.conv(step, c).map(|(packed, winograd, x_blocked)| {
                let conv = c.clone();
                Blocked::Conv { conv, packed, winograd, x_blocked }
            }),
            (Op::Pool(pool), Some(shape)) if first_blocked => {
                let (block, channels) = (self.block, shape[1]);
                if pool.is_global() {
                    Some(Blocked::GlobalPool { max: pool.is_global_max(), keepdims: true, block, channels })
                } else {
                    let planes = shape[0] * channels.div_ceil(block);
                    pool.blocked(&shape, planes).map(|_| Blocked::Pool { pool: pool.clone(), block })
                }
            }
            _ => None,
        };
        if let Some(op) = blocked_op {
            let global = matches!(op, Blocked::GlobalPool { .. });
            self.push_blocked(step, Op::Blocked(op), !global);
            return true;
        }
        let elementwise = match &step.op {
            _ if !output_known => None,
            Op::Unary(_) if first_blocked => Some(step.op.clone()),
            Op::Layout(Layout::Concat(axis)) if self.concat_blocks(step, *axis) => Some(Op::Layout(Layout::Concat(1))),
            _ => None,
        };
        if let Some(op) = elementwise {
            self.push_blocked(step, op, true);
            return true;
        }
        for v in step.inputs.iter().flatten() {
            if let Slot::Var(v) = v {
                self.make_plain(*v);
            }
        }
        self.steps.push(step.clone());
        for o in step.outputs.iter().flatten() {
            self.plain.insert(*o);
        }
        false
    }

    /// Adds `step` as `op` reading the blocked form of every variable that has one (the
    /// rest as they are); its output is blocked if `blocked_output`, else plain.
    fn push_blocked(&mut self, step: &Step, op: Op, blocked_output: bool) {
        let mut s = step.clone();
        s.op = op;
        for slot in s.inputs.iter_mut().flatten() {
            if let Slot::Var(v) = slot {
                if let Some(&(b, _)) = self.blocked.get(v) {
                    *v = b;
                }
            }
        }
        let channels = step.output_shapes.first().cloned().flatten().and_then(|s| s.get(1).copied());
        match (s.outputs.first_mut(), channels) {
            (Some(Some(out)), Some(channels)) if blocked_output => {
                self.blocked.insert(*out, (self.vars, channels));
                *out = self.vars;
                self.vars += 1;
            }
            (Some(Some(out)), _) if !blocked_output => {
                self.plain.insert(*out);
            }
            _ => {}
        }
        self.steps.push(s);
    }

    /// The packed weights of convolution `c` of `step`, its weights for Winograd's
    /// algorithm where that takes it, and whether its input is blocked, if it runs
    /// blocked: constant weights and bias, a sum with a variable, sizes the kernel takes.
    fn conv(&mut self, step: &Step, c: &super::ops::conv::Conv) -> Option<ConvWeights> {
        let (Some(Some(Slot::Var(x))), Some(Some(Slot::Const(w)))) = (step.inputs.first(), step.inputs.get(1)) else {
            return None;
        };
        let constant_bias = !matches!(step.inputs.get(2), Some(Some(Slot::Var(_))));
        // a sum with a value of the output's own shape (a broadcast sum stays plain)
        let residual = match step.inputs.get(3) {
            Some(Some(Slot::Var(r))) if c.residual => Some(*r),
            _ if c.residual => return None,
            _ => None,
        };
        let output = step.output_shapes.first()?.as_ref()?;
        if !constant_bias || residual.is_some_and(|r| self.shapes.get(&r) != Some(output)) {
            return None;
        }
        let w = self.graph.constants[*w].tensor("Conv").ok()?;
        let g = c.geometry(self.shapes.get(x)?, w.shape()).ok()?;
        // a 1x1 convolution of plain input stays with the GEMM, which reads it as it lies
        if !self.blocked.contains_key(x) && g.kernel == [1, 1, 1] {
            return None;
        }
        let packed = match &c.packed {
            Some(p) if p.fit_blocked(&g) => p.clone(),
            // (1x1 weights are packed for the blocked plan alone)
            _ => Arc::new(PackedWeights::new(g.c_out, w.data()).filter(|p| p.fit_blocked(&g))?),
        };
        if let Some(r) = residual {
            self.make_blocked(r);
        }
        // (after the residual's reorder: x may be that value)
        let x_blocked = self.blocked.contains_key(x);
        let winograd = (x_blocked && winograd::applies(&g))
            .then(|| WinogradWeights::new(g.c_out, g.c_in, w.data()))
            .flatten()
            .map(Arc::new);
        Some((packed, winograd, x_blocked))
    }

    /// Whether Concat `step` along `axis` joins blocked values along their channels, each
    /// of whole blocks.
    fn concat_blocks(&self, step: &Step, axis: i64) -> bool {
        !step.inputs.is_empty()
            && step.inputs.iter().all(|s| match s {
                Some(Slot::Var(v)) => {
                    let shape = self.shapes.get(v);
                    self.blocked.contains_key(v)
                        && shape.is_some_and(|s| {
                            s.len() >= 3 && (axis == 1 || axis + s.len() as i64 == 1) && s[1].is_multiple_of(self.block)
                        })
                }
                _ => false,
            })
    }

    /// Reorders variable `v` back to its plain form where that is not there yet.
    fn make_plain(&mut self, v: usize) {
        if self.plain.contains(&v) {
            return;
        }
        // (every variable is plain or blocked: the step that made it was one or the other)
        if let Some(&(b, channels)) = self.blocked.get(&v) {
            self.reorder(Blocked::ToPlanar { block: self.block, channels }, b, v);
            self.plain.insert(v);
        }
    }

    /// Gives variable `v` (plain, of a shape with channels) a blocked form where it has
    /// none.
    fn make_blocked(&mut self, v: usize) {
        if self.blocked.contains_key(&v) {
            return;
        }
        let channels = self.shapes.get(&v).and_then(|s| s.get(1)).copied().unwrap_or(0);
        self.reorder(Blocked::ToBlocked { block: self.block }, v, self.vars);
        self.blocked.insert(v, (self.vars, channels));
        self.vars += 1;
    }

    fn reorder(&mut self, op: Blocked, from: usize, to: usize) {
        self.steps.push(Step {
            name: format!("reorder #{to}"),
            op_type: "Reorder".into(),
            op: Op::Blocked(op),
            inputs: vec![Some(Slot::Var(from))],
            outputs: vec![Some(to)],
            free: Vec::new(),
            reuse: None,
            output_shapes: vec![None],
        });
    }
}
