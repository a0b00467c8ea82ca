//! A zoo network with torchvision's ImageNet weights, classifying pictures as torchvision's
//! reference scripts do: what `fovea classify` and `fovea run` use.

use crate::data::imagenet;
use fovea::nn::summary::fmt_dims;
use fovea::nn::Module;
use fovea::{Error, Result, Tensor, Var};
use std::path::Path;

/// One of the most likely classes of a picture.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// The class's index.
    pub class: usize,
    /// Its name (ImageNet's, for 1000 classes; else `class N`).
    pub name: String,
    /// The softmax probability, 0..1.
    pub probability: f32,
}

/// A zoo architecture with pretrained weights, in evaluation mode.
pub struct PretrainedNet {
    /// The architecture's name (`resnet50`, `googlenet`, ...).
    pub arch: String,
    model: Box<dyn Module>,
}

impl PretrainedNet {
    /// `arch` built around the torchvision `state_dict` saved as safetensors in `weights`.
    /// `transform_input`: GoogLeNet's re-scaling of ImageNet-normalised inputs, which
    /// torchvision's pretrained weights expect.
    pub fn load(arch: &str, weights: &Path, transform_input: bool) -> Result<PretrainedNet> {
        super::architecture(arch)?;
        let (tensors, _) = fovea::io::read_safetensors(weights)?;
        let model = super::from_state_dict(arch, &tensors, transform_input)
            .map_err(|e| Error::format(weights, format!("does not hold {arch} weights: {e}")))?;
        Ok(PretrainedNet { arch: arch.to_string(), model })
    }

    /// The raw outputs for a batch `x` (`[N, C, H, W]`); an input the network cannot take
    /// is refused naming the shape it is designed for.
    pub fn forward(&self, x: Tensor) -> Result<Tensor> {
        let shape = x.shape().to_vec();
        let designed = super::architecture(&self.arch)?.input;
        let y = fovea::no_grad(|| self.model.forward(&Var::constant(x))).map_err(|e| {
            Error::Invalid(format!(
                "{} cannot take an input of shape {} (it is designed for Nx{}): {e}",
                self.arch,
                fmt_dims(&shape),
                fmt_dims(&designed)
            ))
        })?;
        Ok(y.tensor())
    }

    /// The `top` most likely classes of the picture `rgb` (`[3, H, W]` in 0..1), resized so
    /// that its shorter side is `resize` and centre-cropped to `crop` (torchvision's
    /// ImageNet evaluation transform).
    pub fn classify(&self, rgb: &Tensor, resize: usize, crop: usize, top: usize) -> Result<Vec<Prediction>> {
        let x = imagenet::preprocess(rgb, resize, crop)?.reshape(&[1, 3, crop, crop])?;
        let logits = self.forward(x)?;
        let classes = logits.shape()[1];
        let names = imagenet::class_names();
        let best = crate::train::top_k(&Var::constant(logits), top.min(classes))?.remove(0);
        Ok(best
            .into_iter()
            .map(|(class, probability)| Prediction {
                class,
                name: if classes == names.len() { names[class].to_string() } else { format!("class {class}") },
                probability,
            })
            .collect())
    }
}
