//! Model zoo: the notes' case studies. Parameter names equal torchvision's `state_dict`
//! keys, so torchvision weights saved as safetensors load without renaming.

mod alexnet;
mod conv1d3d;
mod inception;
mod lenet;
mod resnet;
mod vgg;

pub use alexnet::alexnet;
pub use conv1d3d::{cnn5, ecg_cnn, volume_cnn};
pub use inception::{GoogLeNet, Inception, InceptionWidths};
pub use lenet::{cnn_bn, lenet5};
pub use resnet::{cifar_resnet, resnet, Residual};
pub use vgg::{vgg, vgg_depth_from_last_conv, vgg_features, vgg_layer_names};

use fovea::nn::{load_state_dict, Module};
use fovea::{Error, Result, Rng, Tensor};
use std::collections::BTreeMap;

/// Names accepted by [`build`]: torchvision's, plus `lenet5`, `cnn-bn` and
/// `googlenet-paper` (GoogLeNet with the paper's 5x5 convolutions).
pub const MODEL_NAMES: [&str; 19] = [
    "lenet5",
    "cnn-bn",
    "cnn5",
    "alexnet",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "googlenet",
    "googlenet-paper",
];

/// He et al.'s small CIFAR-style networks, for 28x28 grey images: `cifar-resnet<D>` and the
/// same without shortcuts, `cifar-plain<D>`, for depths D = 6n + 2 (20, 32, 44, 56, ...).
fn cifar_depth(name: &str) -> Option<(usize, bool)> {
    let (rest, plain) = match name.strip_prefix("cifar-resnet") {
        Some(rest) => (rest, false),
        None => (name.strip_prefix("cifar-plain")?, true),
    };
    Some((rest.parse().ok()?, plain))
}

/// Builds the model `name` with a `classes`-way classifier, freshly initialised
/// (GoogLeNet with its auxiliary classifiers).
pub fn build(name: &str, classes: usize, rng: &mut Rng) -> Result<Box<dyn Module>> {
    if classes == 0 {
        return Err(Error::Invalid("a classifier needs at least one class".into()));
    }
    if let Some((depth, plain)) = cifar_depth(name) {
        return Ok(Box::new(cifar_resnet(depth, plain, 1, classes, rng)?));
    }
    let depth = |prefix: &str| name.strip_prefix(prefix).and_then(|d| d.trim_end_matches("_bn").parse::<usize>().ok());
    Ok(match name {
        _ if !MODEL_NAMES.contains(&name) => {
            return Err(Error::Invalid(format!(
                "unknown model '{name}' (known: {}, and cifar-resnet<D>, cifar-plain<D> for D = 20, 32, 44, 56, ...)",
                MODEL_NAMES.join(", ")
            )))
        }
        "lenet5" => Box::new(lenet5(classes, rng)?),
        "cnn-bn" => Box::new(cnn_bn(classes, rng)?),
        "cnn5" => Box::new(cnn5(classes, rng)?),
        "alexnet" => Box::new(alexnet(classes, rng)?),
        "googlenet" => Box::new(GoogLeNet::new(classes, true, 3, rng)?),
        "googlenet-paper" => Box::new(GoogLeNet::new(classes, true, 5, rng)?),
        _ if name.starts_with("vgg") => Box::new(vgg(depth("vgg").unwrap_or(0), name.ends_with("_bn"), classes, rng)?),
        _ => Box::new(resnet(depth("resnet").unwrap_or(0), classes, rng)?),
    })
}

/// The input one sample of `name` is designed for, channels first: 1x28x28 for the
/// Fashion-MNIST models, 3x224x224 for the ImageNet ones.
pub fn default_input(name: &str) -> [usize; 3] {
    match name {
        "lenet5" | "cnn-bn" | "cnn5" => [1, 28, 28],
        _ if cifar_depth(name).is_some() => [1, 28, 28],
        _ => [3, 224, 224],
    }
}

/// Classes of the dataset `name` is designed for: 10 (Fashion-MNIST) or 1000 (ImageNet).
pub fn default_classes(name: &str) -> usize {
    if default_input(name)[0] == 1 {
        10
    } else {
        1000
    }
}

/// The classifier's weight, whose first dimension is the number of classes.
fn head_weight(name: &str) -> &'static str {
    match name {
        "lenet5" => "fc5.weight",
        "cnn-bn" => "fc2.weight",
        _ if name == "alexnet" || name.starts_with("vgg") => "classifier.6.weight",
        _ => "fc.weight",
    }
}

/// Builds `name` to fit `tensors` (a torchvision `state_dict`: the class count is read from
/// the classifier, GoogLeNet's auxiliary classifiers are built if present) and loads them.
/// A file for another architecture fails naming the first missing, unexpected or
/// mis-shaped tensors. `transform_input` applies to GoogLeNet only (see
/// [`GoogLeNet::transform_input`]; torchvision sets it for its pretrained weights).
pub fn from_state_dict(
    name: &str,
    tensors: &BTreeMap<String, Tensor>,
    transform_input: bool,
) -> Result<Box<dyn Module>> {
    let classes = tensors.get(head_weight(name)).and_then(|t| t.shape().first().copied()).unwrap_or(1000);
    let mut rng = Rng::new(0);
    let model: Box<dyn Module> = match name {
        "googlenet" | "googlenet-paper" => {
            let aux = tensors.contains_key("aux1.conv.conv.weight");
            let mut net = GoogLeNet::new(classes, aux, if name == "googlenet" { 3 } else { 5 }, &mut rng)?;
            net.transform_input = transform_input;
            Box::new(net)
        }
        _ => build(name, classes, &mut rng)?,
    };
    load_state_dict(model.as_ref(), tensors)?;
    Ok(model)
}
