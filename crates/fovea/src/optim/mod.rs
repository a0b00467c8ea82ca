//! Optimizers with PyTorch's update rules, so a run matches PyTorch step for step:
//! SGD (momentum, dampening, Nesterov, L2 weight decay), Adam (L2 weight decay) and
//! AdamW (decoupled weight decay). Frozen parameters (no gradient) are skipped.

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub enum OptimizerConfig {
    Sgd { lr: f32, momentum: f32, dampening: f32, nesterov: bool, weight_decay: f32 },
    Adam { lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32, decoupled: bool },
}

impl OptimizerConfig {
    pub fn sgd(lr: f32, momentum: f32, weight_decay: f32) -> Self {
        OptimizerConfig::Sgd { lr, momentum, dampening: 0.0, nesterov: false, weight_decay }
    }
    pub fn adam(lr: f32, weight_decay: f32) -> Self {
        OptimizerConfig::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, decoupled: false }
    }
    pub fn adamw(lr: f32, weight_decay: f32) -> Self {
        OptimizerConfig::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, decoupled: true }
    }
    pub fn lr(&self) -> f32 {
        match self {
            OptimizerConfig::Sgd { lr, .. } | OptimizerConfig::Adam { lr, .. } => *lr,
        }
    }
}

/// Per-parameter state: momentum buffer (SGD) or first/second moments (Adam).
#[derive(Clone, Default)]
struct Slot {
    first: Option<Tensor>,
    second: Option<Tensor>,
}

pub struct Optimizer {
    pub config: OptimizerConfig,
    params: Vec<(String, Var)>,
    slots: Vec<Slot>,
    /// Number of steps taken (Adam's bias correction).
    pub steps: u64,
}

impl Optimizer {
    pub fn new(config: OptimizerConfig, params: Vec<(String, Var)>) -> Result<Optimizer> {
        let lr = config.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::Invalid(format!("learning rate must be positive, got {lr}")));
        }
        let slots = vec![Slot::default(); params.len()];
        Ok(Optimizer { config, params, slots, steps: 0 })
    }

    pub fn set_lr(&mut self, new_lr: f32) {
        match &mut self.config {
            OptimizerConfig::Sgd { lr, .. } | OptimizerConfig::Adam { lr, .. } => *lr = new_lr,
        }
    }

    pub fn zero_grad(&self) {
        self.params.iter().for_each(|(_, p)| p.zero_grad());
    }

    /// Applies one update from the accumulated gradients.
    pub fn step(&mut self) {
        self.steps += 1;
        let t = self.steps as i32;
        for ((_, p), slot) in self.params.iter().zip(self.slots.iter_mut()) {
            let Some(grad) = p.grad() else { continue };
            if !p.requires_grad() {
                continue;
            }
            let g = grad.data();
            p.update(|w| {
                let w = w.data_mut();
                match self.config {
                    OptimizerConfig::Sgd { lr, momentum, dampening, nesterov, weight_decay } => {
                        let d: Vec<f32> = g.iter().zip(w.iter()).map(|(&g, &w)| g + weight_decay * w).collect();
                        let step: Vec<f32> = if momentum != 0.0 {
                            let buf = match slot.first.take() {
                                None => d.clone(),
                                Some(b) => b
                                    .data()
                                    .iter()
                                    .zip(&d)
                                    .map(|(&b, &d)| momentum * b + (1.0 - dampening) * d)
                                    .collect(),
                            };
                            let s = if nesterov {
                                d.iter().zip(&buf).map(|(&d, &b)| d + momentum * b).collect()
                            } else {
                                buf.clone()
                            };
                            slot.first = Some(Tensor::new(&[buf.len()], buf).expect("shape"));
                            s
                        } else {
                            d
                        };
                        w.iter_mut().zip(&step).for_each(|(w, s)| *w -= lr * s);
                    }
                    OptimizerConfig::Adam { lr, beta1, beta2, eps, weight_decay, decoupled } => {
                        if decoupled {
                            w.iter_mut().for_each(|w| *w *= 1.0 - lr * weight_decay);
                        }
                        let n = w.len();
                        let m = slot.first.get_or_insert_with(|| Tensor::zeros(&[n])).data_mut();
                        let v = slot.second.get_or_insert_with(|| Tensor::zeros(&[n])).data_mut();
                        let bc1 = 1.0 - beta1.powi(t);
                        let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt();
                        let step_size = lr / bc1;
                        for i in 0..n {
                            let gi = if decoupled { g[i] } else { g[i] + weight_decay * w[i] };
                            // lerp form, as PyTorch computes it
                            m[i] += (1.0 - beta1) * (gi - m[i]);
                            v[i] = beta2 * v[i] + (1.0 - beta2) * gi * gi;
                            let denom = v[i].sqrt() / bc2_sqrt + eps;
                            w[i] -= step_size * m[i] / denom;
                        }
                    }
                }
            });
        }
    }

    /// State tensors by name (`<param>.momentum_buffer`, `<param>.exp_avg`, `<param>.exp_avg_sq`).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let (a, b) = match self.config {
            OptimizerConfig::Sgd { .. } => ("momentum_buffer", ""),
            OptimizerConfig::Adam { .. } => ("exp_avg", "exp_avg_sq"),
        };
        let mut out = Vec::new();
        for ((name, p), slot) in self.params.iter().zip(&self.slots) {
            let shape = p.shape();
            if let Some(t) = &slot.first {
                out.push((format!("{name}.{a}"), t.reshape(&shape).expect("same size")));
            }
            if let Some(t) = &slot.second {
                out.push((format!("{name}.{b}"), t.reshape(&shape).expect("same size")));
            }
        }
        out
    }

    /// Restores state saved by [`Optimizer::state`].
    pub fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>, steps: u64) -> Result<()> {
        let (a, b) = match self.config {
            OptimizerConfig::Sgd { .. } => ("momentum_buffer", ""),
            OptimizerConfig::Adam { .. } => ("exp_avg", "exp_avg_sq"),
        };
        for ((name, p), slot) in self.params.iter().zip(self.slots.iter_mut()) {
            let n = p.value().numel();
            let get = |suffix: &str| -> Result<Option<Tensor>> {
                match tensors.get(&format!("{name}.{suffix}")) {
                    None => Ok(None),
                    Some(t) if t.numel() == n => Ok(Some(t.reshape(&[n])?)),
                    Some(t) => Err(Error::Checkpoint(format!(
                        "optimizer state {name}.{suffix} has shape {:?}, parameter has {:?}",
                        t.shape(),
                        p.shape()
                    ))),
                }
            };
            slot.first = get(a)?;
            slot.second = if b.is_empty() { None } else { get(b)? };
        }
        self.steps = steps;
        Ok(())
    }
}
