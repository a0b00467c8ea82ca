//! Optimizers with PyTorch's update rules, so a run matches PyTorch step for step:
//! SGD (momentum, dampening, Nesterov, L2 weight decay), Adam (L2 weight decay) and
//! AdamW (decoupled weight decay). Frozen parameters (no gradient) are skipped.

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::collections::BTreeMap;

/// An update rule and its hyperparameters, named as in PyTorch.
#[derive(Clone, Debug, PartialEq)]
pub enum OptimizerConfig {
    /// `torch.optim.SGD`.
    Sgd {
        /// Learning rate.
        lr: f32,
        /// Momentum factor (0: plain SGD, no momentum buffer).
        momentum: f32,
        /// Dampening of the gradient in the momentum buffer (not on the first step, as in PyTorch).
        dampening: f32,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 penalty, added to the gradient as `weight_decay · w`.
        weight_decay: f32,
    },
    /// `torch.optim.Adam`, or `AdamW` when `decoupled`.
    Adam {
        /// Learning rate.
        lr: f32,
        /// Decay rate of the first moment (mean of the gradients).
        beta1: f32,
        /// Decay rate of the second moment (mean of the squared gradients).
        beta2: f32,
        /// Added to the denominator for numerical stability.
        eps: f32,
        /// L2 penalty added to the gradient; with `decoupled`, the weights' shrinkage instead:
        /// w ← (1 - lr · weight_decay) · w each step.
        weight_decay: f32,
        /// AdamW's decoupled weight decay.
        decoupled: bool,
    },
}

impl OptimizerConfig {
    /// SGD with `momentum` and L2 `weight_decay`; no dampening, no Nesterov.
    pub fn sgd(lr: f32, momentum: f32, weight_decay: f32) -> Self {
        OptimizerConfig::Sgd { lr, momentum, dampening: 0.0, nesterov: false, weight_decay }
    }
    /// Adam with PyTorch's defaults (betas 0.9 and 0.999, eps 1e-8) and L2 `weight_decay`.
    pub fn adam(lr: f32, weight_decay: f32) -> Self {
        OptimizerConfig::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, decoupled: false }
    }
    /// AdamW with PyTorch's default betas and eps and decoupled `weight_decay`.
    pub fn adamw(lr: f32, weight_decay: f32) -> Self {
        OptimizerConfig::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, decoupled: true }
    }
    /// The learning rate.
    pub fn lr(&self) -> f32 {
        match self {
            OptimizerConfig::Sgd { lr, .. } | OptimizerConfig::Adam { lr, .. } => *lr,
        }
    }
}

/// Per-parameter state: momentum buffer (SGD) or first/second moments and the number of
/// updates this parameter received (Adam's bias correction counts per parameter, as
/// PyTorch does, so a parameter without a gradient in some steps is corrected right).
#[derive(Clone, Default)]
struct Slot {
    first: Option<Tensor>,
    second: Option<Tensor>,
    updates: u64,
}

/// An optimizer over named parameters, with each parameter's state.
pub struct Optimizer {
    /// The rule and its hyperparameters (change the rate with [`Optimizer::set_lr`]).
    pub config: OptimizerConfig,
    params: Vec<(String, Var)>,
    slots: Vec<Slot>,
    /// Number of calls to [`Optimizer::step`].
    pub steps: u64,
}

impl Optimizer {
    /// An optimizer for `params` (name, parameter); refuses a learning rate that is not positive
    /// or hyperparameters out of range.
    pub fn new(config: OptimizerConfig, params: Vec<(String, Var)>) -> Result<Optimizer> {
        let lr = config.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::Invalid(format!("learning rate must be positive, got {lr}")));
        }
        let check = |name: &str, v: f32, lo: f32, hi: f32| {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(Error::Invalid(format!("{name} must be in [{lo}, {hi}], got {v}")))
            }
        };
        match config {
            OptimizerConfig::Sgd { momentum, dampening, weight_decay, .. } => {
                check("momentum", momentum, 0.0, 1.0)?;
                check("dampening", dampening, 0.0, 1.0)?;
                check("weight decay", weight_decay, 0.0, 1e3)?;
            }
            OptimizerConfig::Adam { beta1, beta2, eps, weight_decay, .. } => {
                check("beta1", beta1, 0.0, 0.999_999)?;
                check("beta2", beta2, 0.0, 0.999_999_9)?;
                check("eps", eps, 0.0, 1.0)?;
                check("weight decay", weight_decay, 0.0, 1e3)?;
            }
        }
        let slots = vec![Slot::default(); params.len()];
        Ok(Optimizer { config, params, slots, steps: 0 })
    }

    /// Sets the learning rate of the next steps (e.g. from an [`LrSchedule`]).
    pub fn set_lr(&mut self, new_lr: f32) {
        match &mut self.config {
            OptimizerConfig::Sgd { lr, .. } | OptimizerConfig::Adam { lr, .. } => *lr = new_lr,
        }
    }

    /// Clears the gradients of all parameters.
    pub fn zero_grad(&self) {
        self.params.iter().for_each(|(_, p)| p.zero_grad());
    }

    /// Applies one update from the accumulated gradients, in place (`backward()` has freed
    /// the graph's copies of the weights). An update that leaves a weight NaN or infinite
    /// (training diverged) is an error naming the parameter; stop training then.
    pub fn step(&mut self) -> Result<()> {
        self.steps += 1;
        let mut diverged = None;
        for ((name, p), slot) in self.params.iter().zip(self.slots.iter_mut()) {
            let Some(grad) = p.grad() else { continue };
            if !p.requires_grad() {
                continue;
            }
            slot.updates += 1;
            let g = grad.data();
            let n = g.len();
            p.update(|w| {
                let w = w.data_mut();
                match self.config {
                    OptimizerConfig::Sgd { lr, momentum, dampening, nesterov, weight_decay } => {
                        if momentum == 0.0 {
                            for (w, &g) in w.iter_mut().zip(g) {
                                *w -= lr * (g + weight_decay * *w);
                            }
                            return;
                        }
                        let first_update = slot.first.is_none();
                        let buf = slot.first.get_or_insert_with(|| Tensor::zeros(&[n])).data_mut();
                        for ((w, &g), b) in w.iter_mut().zip(g).zip(buf.iter_mut()) {
                            let d = g + weight_decay * *w;
                            *b = if first_update { d } else { momentum * *b + (1.0 - dampening) * d };
                            *w -= lr * if nesterov { d + momentum * *b } else { *b };
                        }
                    }
                    OptimizerConfig::Adam { lr, beta1, beta2, eps, weight_decay, decoupled } => {
                        let t = slot.updates.min(i32::MAX as u64) as i32;
                        let m = slot.first.get_or_insert_with(|| Tensor::zeros(&[n])).data_mut();
                        let v = slot.second.get_or_insert_with(|| Tensor::zeros(&[n])).data_mut();
                        let bc1 = 1.0 - beta1.powi(t);
                        let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt();
                        let step_size = lr / bc1;
                        // AdamW shrinks the weights, Adam adds the decay to the gradient;
                        // either way one branch-free loop, which vectorises
                        let (shrink, grad_decay) =
                            if decoupled { (1.0 - lr * weight_decay, 0.0) } else { (1.0, weight_decay) };
                        for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                            *w *= shrink;
                            let g = g + grad_decay * *w;
                            // lerp form, as PyTorch computes it
                            *m += (1.0 - beta1) * (g - *m);
                            *v = beta2 * *v + (1.0 - beta2) * g * g;
                            let denom = v.sqrt() / bc2_sqrt + eps;
                            *w -= step_size * *m / denom;
                        }
                    }
                }
            });
            if diverged.is_none() && !p.value().all_finite() {
                diverged = Some(name);
            }
        }
        match diverged {
            Some(name) => Err(Error::Invalid(format!(
                "{name} became NaN or infinite in update {}: training diverged; lower the learning rate",
                self.steps
            ))),
            None => Ok(()),
        }
    }

    /// Names of the two state slots, as PyTorch calls them.
    fn slot_names(&self) -> (&'static str, &'static str) {
        match self.config {
            OptimizerConfig::Sgd { .. } => ("momentum_buffer", ""),
            OptimizerConfig::Adam { .. } => ("exp_avg", "exp_avg_sq"),
        }
    }

    /// State tensors by name (`<param>.momentum_buffer`, or `<param>.exp_avg`,
    /// `<param>.exp_avg_sq` and `<param>.step`).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let (a, b) = self.slot_names();
        let mut out = Vec::new();
        for ((name, p), slot) in self.params.iter().zip(&self.slots) {
            let shape = p.shape();
            if let Some(t) = &slot.first {
                out.push((format!("{name}.{a}"), t.reshape(&shape).expect("same size")));
            }
            if let Some(t) = &slot.second {
                out.push((format!("{name}.{b}"), t.reshape(&shape).expect("same size")));
            }
            if slot.updates > 0 {
                out.push((format!("{name}.step"), Tensor::scalar(slot.updates as f32)));
            }
        }
        out
    }

    /// Restores state saved by [`Optimizer::state`].
    pub fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>, steps: u64) -> Result<()> {
        let (a, b) = self.slot_names();
        let keeps_state = match self.config {
            OptimizerConfig::Sgd { momentum, .. } => momentum != 0.0,
            OptimizerConfig::Adam { .. } => true,
        };
        for ((name, p), slot) in self.params.iter().zip(self.slots.iter_mut()) {
            let n = p.value().numel();
            let get = |suffix: &str| -> Result<Option<Tensor>> {
                match tensors.get(&format!("{name}.{suffix}")) {
                    None => Ok(None),
                    Some(t) if t.numel() == n && t.all_finite() => Ok(Some(t.reshape(&[n])?)),
                    Some(t) => Err(Error::Checkpoint(format!(
                        "optimizer state {name}.{suffix} has shape {:?} (parameter: {:?}) or is not finite",
                        t.shape(),
                        p.shape()
                    ))),
                }
            };
            slot.first = get(a)?;
            slot.second = if b.is_empty() { None } else { get(b)? };
            slot.updates = match tensors.get(&format!("{name}.step")) {
                Some(t) if t.numel() == 1 && t.data()[0] >= 0.0 => t.data()[0] as u64,
                Some(_) => return Err(Error::Checkpoint(format!("optimizer state {name}.step is not a step count"))),
                None => steps,
            };
            // without it, the next steps would not be the ones the run would have taken
            if keeps_state && slot.updates > 0 && (slot.first.is_none() || (!b.is_empty() && slot.second.is_none())) {
                return Err(Error::Checkpoint(format!(
                    "the optimizer state of {name} after {} updates is missing",
                    slot.updates
                )));
            }
        }
        self.steps = steps;
        Ok(())
    }
}

/// A learning rate that changes epoch by epoch, as PyTorch's schedulers do: the rate for
/// epoch `t` (counted from 0) given the base rate. Set it with [`Optimizer::set_lr`] before
/// each epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrSchedule {
    /// The base rate throughout.
    Constant,
    /// `StepLR`: base · gamma^⌊t / step_size⌋.
    Step {
        /// Epochs between two decays.
        step_size: usize,
        /// Factor of each decay.
        gamma: f32,
    },
    /// `CosineAnnealingLR`: from the base rate down to `eta_min` along half a cosine over
    /// `t_max` epochs, eta_min + (base − eta_min)(1 + cos(π t / t_max)) / 2.
    Cosine {
        /// Epochs from the base rate down to `eta_min`.
        t_max: usize,
        /// The rate at epoch `t_max`, the lowest.
        eta_min: f32,
    },
    /// `LinearLR`, a warm-up: base · (start_factor + (1 − start_factor) · min(t, total_iters)
    /// / total_iters), rising to the base rate.
    Linear {
        /// Fraction of the base rate at epoch 0.
        start_factor: f32,
        /// Epochs until the base rate is reached.
        total_iters: usize,
    },
}

impl LrSchedule {
    /// The rate for epoch `t` (0 for the first).
    pub fn rate(&self, base: f32, t: usize) -> f32 {
        match *self {
            LrSchedule::Constant => base,
            LrSchedule::Step { step_size, gamma } => {
                base * gamma.powi((t / step_size.max(1)).min(i32::MAX as usize) as i32)
            }
            LrSchedule::Cosine { t_max, eta_min } => {
                let progress = t as f32 / t_max.max(1) as f32;
                (base - eta_min) * 0.5 * (1.0 + (std::f32::consts::PI * progress).cos()) + eta_min
            }
            LrSchedule::Linear { start_factor, total_iters } => {
                let done = t.min(total_iters) as f32 / total_iters.max(1) as f32;
                base * (start_factor + (1.0 - start_factor) * done)
            }
        }
    }
}
