//! Model zoo: the notes' case studies. Parameter names equal torchvision's `state_dict`
//! keys, so torchvision weights saved as safetensors load without renaming.

mod alexnet;
mod conv1d3d;
mod inception;
mod lenet;
mod mobilenet;
mod pretrained;
mod resnet;
mod vgg;

pub use alexnet::alexnet;
pub use conv1d3d::{cnn5, ecg_cnn, volume_cnn};
pub use inception::{GoogLeNet, Inception, InceptionWidths};
pub use lenet::{cnn_bn, lenet5};
pub(crate) use mobilenet::pointwise;
pub use mobilenet::MobileNetV1;
pub use pretrained::{Prediction, PretrainedNet};
pub use resnet::{cifar_resnet, resnet, Residual};
pub use vgg::{vgg, vgg_depth_from_last_conv, vgg_features, vgg_layer_names};

use fovea::nn::{load_state_dict, Module};
use fovea::{Error, Result, Rng, Tensor};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where the pretrained networks fovea reads live (face-api's in its `face-api` folder):
/// `FOVEA_MODELS` if set, else the repository's `models`.
pub fn pretrained_dir() -> PathBuf {
    match std::env::var("FOVEA_MODELS") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"),
    }
}

/// What to build: the class count, and GoogLeNet's options (ignored by the others).
#[derive(Clone, Copy, Debug)]
struct Spec {
    /// Outputs of the classifier.
    pub classes: usize,
    /// GoogLeNet's auxiliary classifiers (training only).
    pub aux_classifiers: bool,
    /// GoogLeNet's [`GoogLeNet::transform_input`].
    pub transform_input: bool,
}

/// An architecture of the zoo: the one table of names, inputs, classifier heads and
/// constructors that [`build`], [`from_state_dict`] and the summaries read.
pub struct Architecture {
    /// The name: torchvision's, or `lenet5`, `cnn-bn`, `cnn5`, `googlenet-paper`
    /// (GoogLeNet with the paper's 5x5 convolutions), `cifar-resnet<D>`, `cifar-plain<D>`.
    pub name: &'static str,
    /// The input of one sample it is designed for, channels first.
    pub input: [usize; 3],
    /// The classifier's weight, whose first dimension is the number of classes.
    pub head: &'static str,
    /// Builds it from its full name (`vgg16_bn`, `cifar-resnet20`) and a [`Spec`].
    make: fn(&str, Spec, &mut Rng) -> Result<Box<dyn Module>>,
}

impl Architecture {
    /// The classes of its usual dataset: 10 for the Fashion-MNIST models, 1000 for ImageNet's.
    pub fn default_classes(&self) -> usize {
        if self.input[0] == 1 {
            10
        } else {
            1000
        }
    }
}

const FASHION: [usize; 3] = [1, 28, 28];
const IMAGENET: [usize; 3] = [3, 224, 224];

macro_rules! arch {
    ($name:literal, $input:expr, $head:literal, $make:expr) => {
        Architecture { name: $name, input: $input, head: $head, make: $make }
    };
}

fn vgg_named(name: &str, s: Spec, rng: &mut Rng) -> Result<Box<dyn Module>> {
    let depth = name.trim_start_matches("vgg").trim_end_matches("_bn").parse().unwrap_or(0);
    Ok(Box::new(vgg(depth, name.ends_with("_bn"), s.classes, rng)?))
}

fn resnet_named(name: &str, s: Spec, rng: &mut Rng) -> Result<Box<dyn Module>> {
    Ok(Box::new(resnet(name.trim_start_matches("resnet").parse().unwrap_or(0), s.classes, rng)?))
}

fn googlenet_named(name: &str, s: Spec, rng: &mut Rng) -> Result<Box<dyn Module>> {
    let fifth_kernel = if name == "googlenet" { 3 } else { 5 };
    let mut net = GoogLeNet::new(s.classes, s.aux_classifiers, fifth_kernel, rng)?;
    net.transform_input = s.transform_input;
    Ok(Box::new(net))
}

/// The zoo, in the order `fovea summary` lists it.
pub const ZOO: [Architecture; 21] = [
    arch!("lenet5", FASHION, "fc5.weight", |_, s, rng| Ok(Box::new(lenet5(s.classes, rng)?))),
    arch!("cnn-bn", FASHION, "fc2.weight", |_, s, rng| Ok(Box::new(cnn_bn(s.classes, rng)?))),
    arch!("cnn5", FASHION, "fc.weight", |_, s, rng| Ok(Box::new(cnn5(s.classes, rng)?))),
    arch!("alexnet", IMAGENET, "classifier.6.weight", |_, s, rng| Ok(Box::new(alexnet(s.classes, rng)?))),
    arch!("vgg11", IMAGENET, "classifier.6.weight", vgg_named),
    arch!("vgg11_bn", IMAGENET, "classifier.6.weight", vgg_named),
    arch!("vgg13", IMAGENET, "classifier.6.weight", vgg_named),
    arch!("vgg13_bn", IMAGENET, "classifier.6.weight", vgg_named),
    arch!("vgg16", IMAGENET, "classifier.6.weight", vgg_named),
    arch!("vgg16_bn", IMAGENET, "classifier.6.weight", vgg_named),
    arch!("vgg19", IMAGENET, "classifier.6.weight", vgg_named),
    arch!("vgg19_bn", IMAGENET, "classifier.6.weight", vgg_named),
    arch!("resnet18", IMAGENET, "fc.weight", resnet_named),
    arch!("resnet34", IMAGENET, "fc.weight", resnet_named),
    arch!("resnet50", IMAGENET, "fc.weight", resnet_named),
    arch!("resnet101", IMAGENET, "fc.weight", resnet_named),
    arch!("resnet152", IMAGENET, "fc.weight", resnet_named),
    arch!("googlenet", IMAGENET, "fc.weight", googlenet_named),
    arch!("googlenet-paper", IMAGENET, "fc.weight", googlenet_named),
    // He et al.'s small CIFAR-style networks for 28x28 grey images, for depths D = 6n + 2
    // (20, 32, 44, 56, ...); `plain`: the same without shortcuts
    arch!("cifar-resnet<D>", FASHION, "fc.weight", |name, s, rng| {
        Ok(Box::new(cifar_resnet(cifar_depth(name, "cifar-resnet"), false, 1, s.classes, rng)?))
    }),
    arch!("cifar-plain<D>", FASHION, "fc.weight", |name, s, rng| {
        Ok(Box::new(cifar_resnet(cifar_depth(name, "cifar-plain"), true, 1, s.classes, rng)?))
    }),
];

/// The depth in `cifar-resnet20`; 0 (refused by [`cifar_resnet`]) if there is none.
fn cifar_depth(name: &str, family: &str) -> usize {
    name.strip_prefix(family).and_then(|d| d.parse().ok()).unwrap_or(0)
}

/// The architecture `name` (`cifar-resnet20` is the family `cifar-resnet<D>`); an unknown
/// name is refused with the list of known ones.
pub fn architecture(name: &str) -> Result<&'static Architecture> {
    let family = |a: &Architecture| {
        a.name.strip_suffix("<D>").and_then(|f| name.strip_prefix(f)).is_some_and(|d| d.parse::<usize>().is_ok())
    };
    ZOO.iter().find(|a| (a.name == name && !name.ends_with("<D>")) || family(a)).ok_or_else(|| {
        let names: Vec<&str> = ZOO.iter().map(|a| a.name).collect();
        Error::Invalid(format!("unknown model '{name}' (known: {})", names.join(", ")))
    })
}

/// Builds the model `name` with a `classes`-way classifier, freshly initialised
/// (GoogLeNet with its auxiliary classifiers).
pub fn build(name: &str, classes: usize, rng: &mut Rng) -> Result<Box<dyn Module>> {
    let arch = architecture(name)?;
    if classes == 0 {
        return Err(Error::Invalid("a classifier needs at least one class".into()));
    }
    (arch.make)(name, Spec { classes, aux_classifiers: true, transform_input: false }, rng)
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
    let arch = architecture(name)?;
    let classes = tensors.get(arch.head).and_then(|t| t.shape().first().copied()).unwrap_or(1000);
    if classes == 0 {
        return Err(Error::Invalid(format!("{} has no classes", arch.head)));
    }
    let spec = Spec { classes, aux_classifiers: tensors.contains_key("aux1.conv.conv.weight"), transform_input };
    let model = (arch.make)(name, spec, &mut Rng::new(0))?;
    load_state_dict(model.as_ref(), tensors)?;
    Ok(model)
}
