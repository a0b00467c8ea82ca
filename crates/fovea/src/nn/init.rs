//! Weight initialisation. Shapes are PyTorch's: `[out, in]` for linear weights and
//! `[out, in/groups, *kernel]` for convolutions, so fan-in = in·kernel, fan-out = out·kernel.

use crate::error::Result;
use crate::tensor::Tensor;
use crate::Rng;

/// How a layer's weights (and biases, see [`Init::bias`]) are initialised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// PyTorch's default for Linear and Conv: U(-1/√fan_in, 1/√fan_in).
    PytorchDefault,
    /// He/Kaiming normal (for ReLU): N(0, 2/fan_in).
    HeNormal,
    /// He/Kaiming uniform: U(-√(6/fan_in), √(6/fan_in)).
    HeUniform,
    /// He/Kaiming normal scaled by fan-out, N(0, 2/fan_out): torchvision's choice for the
    /// convolutions of VGG and ResNet.
    HeNormalFanOut,
    /// N(0, std²), e.g. VGG's linear layers (0.01).
    Normal(f32),
    /// Xavier/Glorot uniform: U(-√(6/(fan_in+fan_out)), ...).
    XavierUniform,
    /// Xavier/Glorot normal: N(0, 2/(fan_in+fan_out)).
    XavierNormal,
}

/// (fan_in, fan_out) of a weight shape.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    let receptive: usize = shape.iter().skip(2).product();
    let fan_in = shape.get(1).copied().unwrap_or(1) * receptive;
    let fan_out = shape.first().copied().unwrap_or(1) * receptive;
    (fan_in.max(1), fan_out.max(1))
}

impl Init {
    /// A weight of `shape`, refused if its size is over the memory budget.
    pub fn weight(self, shape: &[usize], rng: &mut Rng) -> Result<Tensor> {
        crate::tensor::checked_numel("weight", shape)?;
        let (fi, fo) = fans(shape);
        let (fi, fo) = (fi as f32, fo as f32);
        Ok(match self {
            Init::PytorchDefault => {
                let b = 1.0 / fi.sqrt();
                Tensor::rand_uniform(shape, -b, b, rng)
            }
            Init::HeNormal => Tensor::randn(shape, (2.0 / fi).sqrt(), rng),
            Init::HeNormalFanOut => Tensor::randn(shape, (2.0 / fo).sqrt(), rng),
            Init::Normal(std) => Tensor::randn(shape, std, rng),
            Init::HeUniform => {
                let b = (6.0 / fi).sqrt();
                Tensor::rand_uniform(shape, -b, b, rng)
            }
            Init::XavierUniform => {
                let b = (6.0 / (fi + fo)).sqrt();
                Tensor::rand_uniform(shape, -b, b, rng)
            }
            Init::XavierNormal => Tensor::randn(shape, (2.0 / (fi + fo)).sqrt(), rng),
        })
    }

    /// Bias for a weight of shape `weight_shape`: PyTorch's U(-1/√fan_in, 1/√fan_in) for
    /// the default, zeros otherwise.
    pub fn bias(self, weight_shape: &[usize], rng: &mut Rng) -> Tensor {
        let out = weight_shape[0];
        match self {
            Init::PytorchDefault => {
                let b = 1.0 / (fans(weight_shape).0 as f32).sqrt();
                Tensor::rand_uniform(&[out], -b, b, rng)
            }
            _ => Tensor::zeros(&[out]),
        }
    }
}
