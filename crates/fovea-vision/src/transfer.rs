//! Transfer learning, as the notes describe it: take a network trained on one task, keep
//! its layers, replace the classifier head, freeze a prefix of the layers, and train the
//! rest on the new task; with few labels, precompute the frozen prefix's activations once
//! and train the head on them.

use fovea::nn::{state_dict, Layers, Mode, Module, Sequential, ShapeHook, TensorKind};
use fovea::{no_grad, Error, Result, Tensor, Var};
use std::collections::BTreeMap;

/// The layers whose outputs are class scores, which transfer learning replaces: the layer
/// with the model's last parameters (`fc5` in LeNet-5, `classifier.6` in VGG), and the last
/// layer of each auxiliary classifier (GoogLeNet's `aux1.fc2`, `aux2.fc2`).
pub fn head_layers(model: &dyn Module) -> Vec<String> {
    let mut last = None;
    let mut aux: Vec<(String, String)> = Vec::new();
    model.visit("", &mut |name, _, kind| {
        if kind == TensorKind::Param {
            let layer = name.rsplit_once('.').map_or("", |(layer, _)| layer).to_string();
            let branch = layer.split('.').next().unwrap_or("").to_string();
            if branch.starts_with("aux") {
                match aux.iter_mut().find(|(b, _)| *b == branch) {
                    Some(entry) => entry.1 = layer.clone(),
                    None => aux.push((branch, layer.clone())),
                }
            }
            last = Some(layer);
        }
    });
    last.into_iter().chain(aux.into_iter().map(|(_, layer)| layer)).collect()
}

/// Copies pretrained `tensors` into every layer of `model` except its head, which keeps its
/// fresh initialisation (it may have another number of classes). Every other tensor of the
/// model must be in `tensors` with its shape; otherwise the error names the layers that
/// differ and those that would be kept, and nothing is changed. Returns how many tensors
/// were copied and the head's layers.
pub fn load_pretrained(model: &dyn Module, tensors: &BTreeMap<String, Tensor>) -> Result<(usize, String)> {
    let heads = head_layers(model);
    if heads.is_empty() {
        return Err(Error::Invalid("the model has no parameters to transfer".into()));
    }
    let in_head = |name: &str| heads.iter().any(|h| name.starts_with(&format!("{h}.")));
    let layer_of = |name: &str| name.rsplit_once('.').map_or(name, |(layer, _)| layer).to_string();
    let (mut kept, mut differ, mut differing_layers) = (Vec::new(), Vec::new(), Vec::new());
    for (name, v) in state_dict(model) {
        if in_head(&name) {
            continue;
        }
        match tensors.get(&name) {
            Some(t) if t.shape() == v.shape().as_slice() => {
                kept.push((name, v, t.clone()));
                continue;
            }
            Some(t) => differ.push(format!("{} ({:?} in the file, {:?} in the model)", name, t.shape(), v.shape())),
            None => differ.push(format!("{name} (not in the file)")),
        }
        differing_layers.push(layer_of(&name));
    }
    if !differ.is_empty() {
        let mut layers: Vec<String> =
            kept.iter().map(|(n, _, _)| layer_of(n)).filter(|l| !differing_layers.contains(l)).collect();
        layers.dedup();
        let shown = differ.len().min(6);
        return Err(Error::Checkpoint(format!(
            "pretrained weights: {} tensors differ: {}{}; the layers that would be kept: {}",
            differ.len(),
            differ[..shown].join(", "),
            if differ.len() > shown { ", ..." } else { "" },
            if layers.is_empty() { "none".into() } else { layers.join(", ") }
        )));
    }
    if let Some((name, _, _)) = kept.iter().find(|(_, _, t)| !t.all_finite()) {
        return Err(Error::Invalid(format!("{name} holds NaN or infinite values; the weights are not usable")));
    }
    for (_, v, t) in &kept {
        v.set_value(t.clone());
    }
    Ok((kept.len(), heads.join(", ")))
}

/// A sequential network split after one of its layers: the frozen prefix, run in
/// evaluation mode without gradients (its batch norms use their running statistics, so its
/// output is a fixed function of the picture and can be cached), and the tail that trains.
/// As a [`Module`] it is the whole network whose tensors are the tail's: the optimizer gets
/// only those, and the checkpoint, written from the network itself, holds every tensor once.
pub struct Frozen<'a> {
    layers: &'a [(String, Box<dyn Module>)],
    /// layers `..at` are frozen
    at: usize,
}

impl<'a> Frozen<'a> {
    /// Freezes `model`'s layers up to and including `up_to` (a top-level layer name).
    pub fn new(model: &'a dyn Module, up_to: &str) -> Result<Frozen<'a>> {
        let net = model
            .as_any()
            .and_then(|a| a.downcast_ref::<Sequential>())
            .ok_or_else(|| Error::setting("freeze", "needs a sequential network (lenet5, cnn-bn, vgg*, alexnet)"))?;
        let layers = net.layers();
        let names: Vec<&str> = layers.iter().map(|(n, _)| n.as_str()).collect();
        let i = names.iter().position(|n| *n == up_to).ok_or_else(|| {
            Error::Invalid(format!("no layer '{up_to}' to freeze up to (the layers are {})", names.join(", ")))
        })?;
        if i + 1 == layers.len() {
            return Err(Error::Invalid(format!("freezing up to '{up_to}' leaves nothing to train")));
        }
        let frozen = Frozen { layers, at: i + 1 };
        frozen.visit_frozen(&mut |_, v| v.set_requires_grad(false));
        Ok(frozen)
    }

    /// Calls `f` on every tensor of the frozen layers.
    pub fn visit_frozen(&self, f: &mut dyn FnMut(&str, &Var)) {
        for (name, layer) in &self.layers[..self.at] {
            layer.visit(name, &mut |n, v, _| f(n, v));
        }
    }

    /// The frozen prefix's output for `x`, in evaluation mode, without a graph.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        no_grad(|| {
            let mut h = Var::constant(x.clone());
            for (_, layer) in &self.layers[..self.at] {
                h = layer.forward(&h)?;
            }
            Ok(h.tensor())
        })
    }

    /// [`Frozen::features`] of every row of `x`, in batches of `batch_size`.
    pub fn features_all(&self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        let n = x.shape()[0];
        let mut parts = Vec::new();
        for start in (0..n).step_by(batch_size.max(1)) {
            parts.push(self.features(&x.narrow(0, start, batch_size.min(n - start))?)?);
        }
        let refs: Vec<&Tensor> = parts.iter().collect();
        Tensor::concat(&refs, 0)
    }

    /// The layers after the frozen prefix, as a network of their own (the head trained on
    /// cached features).
    pub fn tail(&self) -> Layers<'_> {
        Layers(&self.layers[self.at..])
    }
}

impl Module for Frozen<'_> {
    /// The frozen prefix always runs in evaluation mode (its batch norms keep their
    /// statistics); the tail runs in `mode`.
    fn forward_mode(&self, x: &Var, mode: Mode) -> Result<Var> {
        self.tail().forward_mode(&Var::constant(self.features(&x.tensor())?), mode)
    }
    fn shapes(&self, prefix: &str, input: &[usize], hook: &mut ShapeHook<'_>) -> Result<Vec<usize>> {
        Layers(self.layers).shapes(prefix, input, hook)
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var, TensorKind)) {
        self.tail().visit(prefix, f)
    }
    fn export(
        &self,
        prefix: &str,
        x: &str,
        input: &[usize],
        ex: &mut fovea::graph::export::Exporter,
    ) -> Result<String> {
        Layers(self.layers).export(prefix, x, input, ex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::build;
    use fovea::nn::trainable_parameters;
    use fovea::Rng;

    #[test]
    fn pretrained_weights_load_into_all_but_a_new_head() {
        let source = build("lenet5", 10, &mut Rng::new(1)).unwrap();
        let tensors: BTreeMap<String, Tensor> =
            state_dict(source.as_ref()).into_iter().map(|(n, v)| (n, v.tensor())).collect();
        let target = build("lenet5", 5, &mut Rng::new(2)).unwrap();
        let (copied, head) = load_pretrained(target.as_ref(), &tensors).unwrap();
        assert_eq!((copied, head.as_str()), (8, "fc5"));
        let own: BTreeMap<String, Tensor> =
            state_dict(target.as_ref()).into_iter().map(|(n, v)| (n, v.tensor())).collect();
        assert_eq!(own["conv1.weight"].data(), tensors["conv1.weight"].data());
        assert_eq!(own["fc5.weight"].shape(), [5, 84]);
        // weights that do not fit: the error names what differs and what would be kept
        let mut other = tensors.clone();
        other.insert("conv2.weight".into(), Tensor::zeros(&[16, 6, 3, 3]));
        other.remove("fc4.bias");
        let err = load_pretrained(target.as_ref(), &other).unwrap_err().to_string();
        assert!(err.contains("2 tensors differ"), "{err}");
        assert!(err.contains("conv2.weight ([16, 6, 3, 3] in the file, [16, 6, 5, 5] in the model)"), "{err}");
        assert!(err.contains("fc4.bias (not in the file)") && err.ends_with("kept: conv1, fc3"), "{err}");
    }

    #[test]
    fn googlenet_auxiliary_classifiers_are_heads_too() {
        let model = build("googlenet", 3, &mut Rng::new(0)).unwrap();
        assert_eq!(head_layers(model.as_ref()), ["fc", "aux1.fc2", "aux2.fc2"]);
    }

    #[test]
    fn frozen_prefix_gets_no_gradient_and_its_features_feed_the_tail() {
        let model = build("lenet5", 10, &mut Rng::new(1)).unwrap();
        let frozen = Frozen::new(model.as_ref(), "pool2").unwrap();
        let trainable: Vec<String> = trainable_parameters(&frozen).into_iter().map(|(n, _)| n).collect();
        assert_eq!(trainable, ["fc3.weight", "fc3.bias", "fc4.weight", "fc4.bias", "fc5.weight", "fc5.bias"]);
        assert!(trainable_parameters(model.as_ref()).iter().all(|(n, _)| n.starts_with("fc")));
        let x = Tensor::rand_uniform(&[3, 1, 28, 28], 0.0, 1.0, &mut Rng::new(0));
        let whole = model.forward(&Var::constant(x.clone())).unwrap().tensor();
        let split = frozen.tail().forward(&Var::constant(frozen.features_all(&x, 2).unwrap())).unwrap().tensor();
        assert!(whole.max_abs_diff(&split) < 1e-6);
        let err = Frozen::new(model.as_ref(), "conv9").err().unwrap().to_string();
        assert!(err.contains("no layer 'conv9'") && err.contains("pool2"), "{err}");
        assert!(Frozen::new(model.as_ref(), "fc5").is_err(), "nothing left to train");
    }
}
