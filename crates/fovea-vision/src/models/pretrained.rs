//! A pretrained classifier (a zoo network with torchvision's ImageNet weights, or an ONNX
//! model), classifying pictures as torchvision's reference scripts do: what
//! `fovea classify` and `fovea run` use.

use crate::data::imagenet;
use fovea::graph::{Graph, Value};
use fovea::io::onnx::Dim;
use fovea::nn::summary::fmt_dims;
use fovea::nn::Module;
use fovea::{Error, Result, Tensor, Var};
use std::path::Path;

/// One of the most likely classes of a picture.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// The class's index.
    pub class: usize,
    /// Its name (from the labels given, else ImageNet's for 1000 classes, else `class N`).
    pub name: String,
    /// The softmax probability, 0..1.
    pub probability: f32,
}

/// A zoo architecture with pretrained weights, in evaluation mode, or an ONNX model.
pub struct PretrainedNet {
    /// The architecture's name (`resnet50`, `googlenet`, ...; an ONNX model's file name).
    pub arch: String,
    network: Network,
    labels: Option<Vec<String>>,
}

/// A classifier's one input (what is not a weight).
fn single_input<'m>(path: &Path, model: &'m fovea::io::onnx::Model) -> Result<&'m fovea::io::onnx::ValueInfo> {
    match model.graph.runtime_inputs()[..] {
        [input] => Ok(input),
        _ => Err(Error::format(path, "does not take exactly one input; a classifier takes one batch of pictures")),
    }
}

enum Network {
    Zoo(Box<dyn Module>),
    Onnx(Graph),
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
        Ok(PretrainedNet { arch: arch.to_string(), network: Network::Zoo(model), labels: None })
    }

    /// The ONNX model at `path`, which must take one input: a batch of pictures of
    /// `shape` (`[N, C, H, W]`, fixed at load so that the model's shape arithmetic folds).
    pub fn load_onnx(path: &Path, shape: &[usize]) -> Result<PretrainedNet> {
        let model = fovea::io::onnx::load(path)?;
        Self::from_onnx(path, &model, shape)
    }

    /// The ONNX classifier at `path` for square pictures of the side its input declares
    /// (224 where it leaves the side free), with that side.
    pub fn load_onnx_classifier(path: &Path) -> Result<(PretrainedNet, usize)> {
        let model = fovea::io::onnx::load(path)?;
        let input = single_input(path, &model)?;
        let side = match input.dims.as_deref() {
            Some([_, _, Dim::Value(h), Dim::Value(w)]) if h == w && *h > 0 => *h as usize,
            _ => 224,
        };
        Ok((Self::from_onnx(path, &model, &[1, 3, side, side])?, side))
    }

    fn from_onnx(path: &Path, model: &fovea::io::onnx::Model, shape: &[usize]) -> Result<PretrainedNet> {
        let input = single_input(path, model)?;
        let graph = Graph::from_onnx(model, &[(input.name.clone(), shape.to_vec())]).map_err(|e| e.in_file(path))?;
        let arch = path.file_stem().map_or("model".into(), |s| s.to_string_lossy().into_owned());
        Ok(PretrainedNet { arch, network: Network::Onnx(graph), labels: None })
    }

    /// Names its classes (one per output, in order) instead of ImageNet's.
    pub fn with_labels(mut self, labels: Vec<String>) -> PretrainedNet {
        self.labels = Some(labels);
        self
    }

    /// The raw outputs for a batch `x` (`[N, C, H, W]`); an input the network cannot take
    /// is refused naming the shape it is designed for.
    pub fn forward(&self, x: Tensor) -> Result<Tensor> {
        let shape = x.shape().to_vec();
        let model = match &self.network {
            Network::Zoo(model) => model,
            Network::Onnx(graph) => {
                let y = graph.run(vec![Value::float(x)])?.swap_remove(0);
                return Ok(y.tensor("the model's output")?.clone());
            }
        };
        let designed = super::architecture(&self.arch)?.input;
        // (many short parallel kernels in a row: the pool's threads kept awake between them)
        let forward = || model.forward(&Var::constant(x));
        let y = fovea::no_grad(|| fovea::kernels::with_warm_threads(forward)).map_err(|e| {
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
        if logits.ndim() != 2 {
            return Err(Error::Invalid(format!(
                "{} gives outputs of shape {}, not one row of class scores per picture",
                self.arch,
                fmt_dims(logits.shape())
            )));
        }
        let classes = logits.shape()[1];
        let names = match &self.labels {
            Some(labels) if labels.len() != classes => {
                return Err(Error::Invalid(format!("{} labels for {} classes", labels.len(), classes)))
            }
            Some(labels) => labels.iter().map(String::as_str).collect(),
            None => imagenet::class_names(),
        };
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
