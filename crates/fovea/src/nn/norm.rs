//! Batch normalisation layer (1-D over `[N, C]` or `[N, C, L]`, 2-D, 3-D alike).

use super::{join_name, report, Mode, Module, ShapeHook, TensorKind};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::graph::export::Exporter;
use crate::io::onnx::AttributeValue;
use crate::ops;
use crate::tensor::{fmt_shape, Tensor};

/// Parameters `weight`, `bias`; buffers `running_mean`, `running_var`, `num_batches_tracked`
/// (PyTorch's names; `momentum` 0.1 and `eps` 1e-5 by default).
pub struct BatchNorm {
    /// Scale γ `[C]`, ones at first.
    pub weight: Var,
    /// Shift β `[C]`, zeros at first.
    pub bias: Var,
    /// Running mean `[C]`, used in evaluation mode.
    pub running_mean: Var,
    /// Running variance `[C]` (of unbiased batch variances, as in PyTorch), used in evaluation mode.
    pub running_var: Var,
    /// Training batches seen, a scalar (PyTorch's buffer, saved in checkpoints; nothing reads it).
    pub num_batches_tracked: Var,
    /// Weight of each batch in the running statistics: running = (1 - momentum) · running + momentum · batch.
    pub momentum: f32,
    /// Added to the variance before its square root.
    pub eps: f32,
}

impl BatchNorm {
    /// Batch norm over `channels` channels: γ = 1, β = 0, running mean 0, running variance 1.
    pub fn new(channels: usize) -> BatchNorm {
        BatchNorm {
            weight: Var::param(Tensor::ones(&[channels])),
            bias: Var::param(Tensor::zeros(&[channels])),
            running_mean: Var::constant(Tensor::zeros(&[channels])),
            running_var: Var::constant(Tensor::ones(&[channels])),
            num_batches_tracked: Var::constant(Tensor::scalar(0.0)),
            momentum: 0.1,
            eps: 1e-5,
        }
    }
    /// With a different epsilon (GoogLeNet uses 1e-3).
    pub fn with_eps(mut self, eps: f32) -> BatchNorm {
        self.eps = eps;
        self
    }
}

impl Module for BatchNorm {
    fn export(&self, name: &str, x: &str, _input: &[usize], ex: &mut Exporter) -> Result<String> {
        let mut inputs = vec![x.to_string()];
        for (part, v) in [
            ("weight", &self.weight),
            ("bias", &self.bias),
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
        ] {
            inputs.push(ex.weight(&join_name(name, part), &v.value()));
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(ex.node(
            "BatchNormalization",
            name,
            &inputs,
            vec![
                ("epsilon", AttributeValue::Float(self.eps)),
                ("momentum", AttributeValue::Float(1.0 - self.momentum)),
            ],
        ))
    }
    fn forward_mode(&self, x: &Var, mode: Mode) -> Result<Var> {
        let training = mode.is_train();
        let y = ops::batch_norm(
            x,
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            training,
            self.momentum,
            self.eps,
        )?;
        // counted once the batch is taken (a refused input is not a batch)
        if training {
            self.num_batches_tracked.update(|t| t.data_mut()[0] += 1.0);
        }
        Ok(y)
    }
    fn shapes(&self, name: &str, input: &[usize], hook: &mut ShapeHook<'_>) -> Result<Vec<usize>> {
        let c = self.weight.value().numel();
        if input.len() < 2 || input[1] != c {
            return Err(Error::shape(
                "batch_norm",
                format!("input {} does not have the {c} channels of this layer", fmt_shape(input)),
            ));
        }
        report(self, hook, name, "BatchNorm", input.to_vec(), 0)
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var, TensorKind)) {
        f(&join_name(prefix, "weight"), &self.weight, TensorKind::Param);
        f(&join_name(prefix, "bias"), &self.bias, TensorKind::Param);
        f(&join_name(prefix, "running_mean"), &self.running_mean, TensorKind::Buffer);
        f(&join_name(prefix, "running_var"), &self.running_var, TensorKind::Buffer);
        f(&join_name(prefix, "num_batches_tracked"), &self.num_batches_tracked, TensorKind::Buffer);
    }
}
