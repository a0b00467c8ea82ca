//! Neural style transfer's costs (Gatys et al. 2015, as the notes write them): a content
//! cost at one layer, style matrices (Gram matrices) and a style cost over several layers,
//! and their weighted sum J(G) = α J_content + β J_style. All are differentiable in the
//! generated picture's activations, so the picture itself can be optimised.

use crate::models::MobileNetV1;
use fovea::nn::Sequential;
use fovea::optim::{Optimizer, OptimizerConfig};
use fovea::{no_grad, ops, Error, Result, Rng, Tensor, Var};
use std::collections::BTreeMap;
use std::path::Path;

/// The smallest picture side style transfer takes (MobileNet halves it four times by conv9).
const MIN_SIDE: usize = 32;

/// `[C, H, W]` or `[1, C, H, W]` activations as `[C, H W]`.
fn channels_by_positions(a: &Var) -> Result<Var> {
    let s = a.shape();
    let (c, hw) = match s.as_slice() {
        [c, h, w] | [1, c, h, w] => (*c, h * w),
        _ => {
            return Err(Error::shape("style", format!("activations {s:?} are not [C, H, W] or [1, C, H, W]")));
        }
    };
    ops::reshape(a, &[c, hw])
}

/// The style matrix G_kk' = Σ_i Σ_j a_ijk a_ijk' of one layer's activations (`[C, H, W]`
/// or `[1, C, H, W]`): `[C, C]`.
pub fn gram_matrix(a: &Var) -> Result<Var> {
    let m = channels_by_positions(a)?;
    // M Mᵀ: linear multiplies by the transpose without copying it
    ops::linear(&m, &m, None)
}

/// J_content = ‖a(C) - a(G)‖², the squared distance between the content picture's
/// activations and the generated one's at the same layer.
pub fn content_cost(content: &Tensor, generated: &Var) -> Result<Var> {
    if content.shape() != generated.shape().as_slice() {
        return Err(Error::shape(
            "content_cost",
            format!("activations {:?} and {:?} differ", content.shape(), generated.shape()),
        ));
    }
    let d = ops::sub(&Var::constant(content.clone()), generated)?;
    ops::sum(&ops::pow_scalar(&d, 2.0)?)
}

/// One layer's style cost: ‖G(S) - G(G)‖²_F / (2 nH nW nC)², with G(S) the style
/// picture's Gram matrix (computed once) and the generated picture's activations.
pub fn layer_style_cost(style_gram: &Tensor, generated: &Var) -> Result<Var> {
    let s = generated.shape();
    let n: usize = s.iter().product();
    let g = gram_matrix(generated)?;
    if style_gram.shape() != g.shape().as_slice() {
        return Err(Error::shape(
            "style_cost",
            format!("a style matrix {:?} for activations {s:?}", style_gram.shape()),
        ));
    }
    let d = ops::sub(&Var::constant(style_gram.clone()), &g)?;
    let norm = (2.0 * n as f64).powi(2);
    ops::mul_scalar(&ops::sum(&ops::pow_scalar(&d, 2.0)?)?, (1.0 / norm) as f32)
}

/// J_style = Σ_l λ\[l\] J_style\[l\] over `(λ, style Gram matrix, generated activations)`.
pub fn style_cost(layers: &[(f32, Tensor, Var)]) -> Result<Var> {
    let mut total = Var::constant(Tensor::scalar(0.0));
    for (lambda, gram, a) in layers {
        total = ops::add(&total, &ops::mul_scalar(&layer_style_cost(gram, a)?, *lambda)?)?;
    }
    Ok(total)
}

/// J(G) = α J_content + β J_style.
pub fn total_cost(alpha: f32, content: &Var, beta: f32, style: &Var) -> Result<Var> {
    ops::add(&ops::mul_scalar(content, alpha)?, &ops::mul_scalar(style, beta)?)
}

/// The pretrained network whose activations style transfer compares: MobileNetV1 from
/// face-api's SSD weights (layers `conv0` ... `conv13`), or a VGG's `features` from a
/// torchvision state_dict (layers `conv1_1` ... `conv5_x`, each a convolution's ReLU).
pub enum Features {
    /// MobileNetV1 from face-api's SSD weights (layers `conv0` ... `conv13`).
    MobileNet(MobileNetV1),
    /// A VGG's `features` from torchvision's weights (layers `conv1_1` ... `conv5_x`).
    Vgg {
        /// VGG's `features`, without batch norm
        net: Sequential,
        /// each layer's name and the position in `net` of its ReLU
        names: Vec<(String, usize)>,
    },
}

impl Features {
    /// MobileNetV1 from face-api's SSD weights in [`crate::models::pretrained_dir`].
    pub fn mobilenet() -> Result<Features> {
        let manifest = crate::models::pretrained_dir().join("face-api/ssd_mobilenetv1_model-weights_manifest.json");
        Ok(Features::MobileNet(MobileNetV1::load(&manifest)?))
    }

    /// A VGG-11/13/16/19 (without batch norm) from a safetensors file with torchvision's
    /// names: the `features.*` tensors are used, anything else (the classifier) is ignored.
    pub fn vgg(path: &Path) -> Result<Features> {
        let (tensors, _) = fovea::io::read_safetensors(path)?;
        let features: BTreeMap<String, Tensor> =
            tensors.into_iter().filter_map(|(n, t)| Some((n.strip_prefix("features.")?.to_string(), t))).collect();
        let last_conv = features.keys().filter_map(|k| k.strip_suffix(".weight")?.parse::<usize>().ok()).max();
        let depth = last_conv.and_then(crate::models::vgg_depth_from_last_conv).ok_or_else(|| {
            Error::format(path, "is not a VGG-11/13/16/19 state_dict (torchvision names, features.N.weight)")
        })?;
        let net = crate::models::vgg_features(depth, false, &mut Rng::new(0))?;
        fovea::nn::load_state_dict(&net, &features)?;
        Ok(Features::Vgg { net, names: crate::models::vgg_layer_names(depth)? })
    }

    /// The names of the layers whose activations can be compared, in order.
    pub fn layer_names(&self) -> Vec<String> {
        match self {
            Features::MobileNet(_) => (0..MobileNetV1::LAYERS).map(|i| format!("conv{i}")).collect(),
            Features::Vgg { names, .. } => names.iter().map(|(n, _)| n.clone()).collect(),
        }
    }

    /// The content layer and the style layers by name as indices; `None` and an empty list
    /// stand for [`Features::default_layers`].
    pub fn layers(&self, content: Option<&str>, style: &[String]) -> Result<(usize, Vec<usize>)> {
        let (default_content, default_style) = self.default_layers();
        let content = self.layer_index(content.unwrap_or(&default_content))?;
        let style = if style.is_empty() { &default_style } else { style };
        Ok((content, style.iter().map(|l| self.layer_index(l)).collect::<Result<_>>()?))
    }

    /// A layer name as its index in [`Features::layer_names`]; the error lists them.
    pub fn layer_index(&self, name: &str) -> Result<usize> {
        let names = self.layer_names();
        names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| Error::Invalid(format!("no layer '{name}' (the layers are {})", names.join(", "))))
    }

    /// The usual choice: content layer and style layers (Gatys et al.'s conv4_2 and
    /// conv1_1 ... conv5_1 for VGG; their counterparts at the same scales for MobileNet).
    pub fn default_layers(&self) -> (String, Vec<String>) {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        match self {
            Features::MobileNet(_) => ("conv5".into(), v(&["conv1", "conv3", "conv5", "conv7", "conv9"])),
            Features::Vgg { .. } => ("conv4_2".into(), v(&["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"])),
        }
    }

    /// The activations of layers 0 ..= `last` (indices into [`Features::layer_names`]) for
    /// a picture `[1, 3, H, W]` in 0..1, differentiable in the picture.
    pub fn extract(&self, picture: &Var, last: usize) -> Result<Vec<Var>> {
        match self {
            // MobileNet takes -1..1
            Features::MobileNet(net) => net.layers(&picture.mul_scalar(2.0)?.add_scalar(-1.0)?, last),
            Features::Vgg { net, names } => {
                // torchvision's ImageNet normalisation
                let mean = Var::constant(Tensor::new(&[1, 3, 1, 1], vec![0.485, 0.456, 0.406])?);
                let std = Var::constant(Tensor::new(&[1, 3, 1, 1], vec![0.229, 0.224, 0.225])?);
                let mut h = ops::div(&ops::sub(picture, &mean)?, &std)?;
                let mut out = Vec::new();
                for (i, (_, layer)) in net.layers().iter().enumerate() {
                    h = layer.forward(&h)?;
                    if names.get(out.len()).is_some_and(|(_, at)| *at == i) {
                        out.push(h.clone());
                        if out.len() > last {
                            break;
                        }
                    }
                }
                Ok(out)
            }
        }
    }
}

/// How the generated picture starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Start {
    /// uniform noise
    Noise,
    /// the content picture
    Content,
    /// the content picture with 50% noise mixed in
    Mix,
}

/// How [`stylize`] optimises the picture.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct StyleConfig {
    /// Adam steps on the picture
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = StyleConfig::default().steps))]
    pub steps: usize,
    /// Weight α of the content cost
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::non_negative::<f32>, long, default_value_t = StyleConfig::default().alpha))]
    pub alpha: f32,
    /// Weight β of the style cost
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::non_negative::<f32>, long, default_value_t = StyleConfig::default().beta))]
    pub beta: f32,
    /// The content layer (default: conv5 for MobileNet, conv4_2 for VGG)
    #[cfg_attr(feature = "cli", arg(long))]
    pub content_layer: Option<String>,
    /// The style layers, each weighted λ = 1 / their count (default: conv1,conv3,conv5,conv7,conv9
    /// for MobileNet, conv1_1,conv2_1,conv3_1,conv4_1,conv5_1 for VGG)
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub style_layers: Vec<String>,
    /// Adam's step on the pixels (0..1): above 0, at most 1
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::learning_rate_on_pixels, long, default_value_t = StyleConfig::default().lr))]
    pub lr: f32,
    /// Shift the picture by up to this many pixels at random each step, so that no pixel keeps
    /// one place in the strided convolutions' grid: removes the fine grid MobileNet leaves,
    /// at the cost of a slower fall of the style cost (e.g. 2 with 1500 steps)
    #[cfg_attr(feature = "cli", arg(long, default_value_t = StyleConfig::default().jitter))]
    pub jitter: usize,
    /// How the generated picture starts
    #[cfg_attr(feature = "cli", arg(long = "init", value_enum, default_value_t = StyleConfig::default().start))]
    pub start: Start,
    /// Random seed: the starting noise and the jitter's offsets
    #[cfg_attr(feature = "cli", arg(long, default_value_t = StyleConfig::default().seed))]
    pub seed: u64,
}

impl Default for StyleConfig {
    /// `fovea stylize`'s: 300 steps from the content picture, α = 1e-3, β = 1e6, the
    /// network's usual layers, Adam at 0.02, no jitter.
    fn default() -> Self {
        StyleConfig {
            steps: 300,
            alpha: 1e-3,
            beta: 1e6,
            content_layer: None,
            style_layers: Vec::new(),
            lr: 0.02,
            jitter: 0,
            start: Start::Content,
            seed: 0,
        }
    }
}

/// The three costs after a step.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct StepCosts {
    /// step number, from 1
    pub step: usize,
    /// J_content
    pub content_cost: f32,
    /// J_style
    pub style_cost: f32,
    /// J(G) = α J_content + β J_style
    pub total_cost: f32,
}

/// J_style of `picture` against `style` (both `[3, H, W]` in 0..1) at `layers`, λ = 1 / their
/// count: how far the picture's Gram matrices are from the style picture's.
pub fn picture_style_cost(net: &Features, picture: &Tensor, style: &Tensor, layers: &[usize]) -> Result<f32> {
    let last = layers.iter().copied().max().unwrap_or(0);
    let batch = |t: &Tensor| t.reshape(&[1, 3, t.shape()[1], t.shape()[2]]);
    no_grad(|| {
        let p = net.extract(&Var::constant(batch(picture)?), last)?;
        let s = net.extract(&Var::constant(batch(style)?), last)?;
        let lambda = 1.0 / layers.len().max(1) as f32;
        let terms: Vec<(f32, Tensor, Var)> =
            layers.iter().map(|&l| Ok((lambda, gram_matrix(&s[l])?.tensor(), p[l].clone()))).collect::<Result<_>>()?;
        style_cost(&terms)?.value().item()
    })
}

/// The content picture of `content` resized so that its longer side is `size`, and the
/// style picture of `style` resized to the same width and height (`[3, H, W]` in 0..1).
pub fn load_pictures(content: &Path, style: &Path, size: usize) -> Result<(Tensor, Tensor)> {
    let c =
        crate::image::resize_longer_side(&crate::image::load_rgb(content)?, size).map_err(|e| e.in_file(content))?;
    let s = crate::image::resize_bilinear(&crate::image::load_rgb(style)?, c.shape()[1], c.shape()[2])
        .map_err(|e| e.in_file(style))?;
    Ok((c, s))
}

/// What style transfer did: the costs at its first and last steps, and how far the result's
/// and the content picture's Gram matrices are from the style picture's.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StyleReport {
    /// The picture's width.
    pub width: usize,
    /// Its height.
    pub height: usize,
    /// The costs after the first step.
    pub first: StepCosts,
    /// The costs after the last step.
    pub last: StepCosts,
    /// J_style of the result.
    pub result_style_cost: f32,
    /// J_style of the content picture itself, for comparison.
    pub content_picture_style_cost: f32,
}

impl StyleReport {
    /// The report on `picture`, made from `content` in the style of `style` with `config`,
    /// whose steps cost `costs`.
    pub fn new(
        net: &Features,
        picture: &Tensor,
        (content, style): (&Tensor, &Tensor),
        config: &StyleConfig,
        costs: &[StepCosts],
    ) -> Result<StyleReport> {
        let (Some(&first), Some(&last)) = (costs.first(), costs.last()) else {
            return Err(Error::Invalid("no step of style transfer ran".into()));
        };
        let (_, style_layers) = net.layers(config.content_layer.as_deref(), &config.style_layers)?;
        Ok(StyleReport {
            width: picture.shape()[2],
            height: picture.shape()[1],
            first,
            last,
            result_style_cost: picture_style_cost(net, picture, style, &style_layers)?,
            content_picture_style_cost: picture_style_cost(net, content, style, &style_layers)?,
        })
    }
}

impl std::fmt::Display for StyleReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (first, last) = (self.first, self.last);
        let (result, content) = (self.result_style_cost, self.content_picture_style_cost);
        writeln!(
            f,
            "{}x{} after {} steps: style cost {:.3e} -> {:.3e} ({:.0}x lower), content cost {:.3e} -> {:.3e}",
            self.width,
            self.height,
            last.step,
            first.style_cost,
            last.style_cost,
            first.style_cost / last.style_cost.max(f32::MIN_POSITIVE),
            first.content_cost,
            last.content_cost,
        )?;
        write!(
            f,
            "the result's Gram matrices are {:.1}x closer to the style picture's than the content picture's are \
             (style cost {result:.3e} against {content:.3e})",
            content / result.max(f32::MIN_POSITIVE),
        )
    }
}

/// Style transfer (the notes: G := G - dJ/dG, here with Adam): a picture with the content
/// of `content` and the style of `style` (both `[3, H, W]` in 0..1, the same size).
/// `on_step` sees the costs and the picture after every step, to report or save frames.
pub fn stylize(
    net: &Features,
    content: &Tensor,
    style: &Tensor,
    config: &StyleConfig,
    on_step: &mut dyn FnMut(&StepCosts, &Tensor) -> Result<()>,
) -> Result<Tensor> {
    if content.shape() != style.shape() || content.ndim() != 3 || content.shape()[0] != 3 {
        return Err(Error::shape(
            "stylize",
            format!("content {:?} and style {:?} must both be [3, H, W]", content.shape(), style.shape()),
        ));
    }
    if config.steps == 0 {
        return Err(Error::setting("steps", "style transfer needs at least one step"));
    }
    if config.alpha == 0.0 && config.beta == 0.0 {
        return Err(Error::setting(
            "alpha",
            "0 and beta 0 leave nothing to optimise; give one of them a weight above 0",
        ));
    }
    let (content_layer, style_layers) = net.layers(config.content_layer.as_deref(), &config.style_layers)?;
    // Adam moves each pixel by about lr a step, and pixels live in 0..1
    if !(config.lr > 0.0 && config.lr <= 1.0) {
        return Err(Error::Invalid(format!(
            "a learning rate of {} is outside (0, 1]: Adam moves each pixel (0..1) by about that much a step",
            config.lr
        )));
    }
    let last = style_layers.iter().copied().chain([content_layer]).max().unwrap_or(0);
    let batch = |t: &Tensor| t.reshape(&[1, 3, t.shape()[1], t.shape()[2]]);
    let (h, w) = (content.shape()[1], content.shape()[2]);
    // MobileNet's strided convolutions need some pixels to work on
    for (what, t) in [("content", content), ("style", style)] {
        let (th, tw) = (t.shape()[1], t.shape()[2]);
        if th.min(tw) < MIN_SIDE {
            return Err(Error::Invalid(format!(
                "the {what} picture is {tw}x{th}; style transfer needs at least {MIN_SIDE}x{MIN_SIDE} pixels"
            )));
        }
    }
    let jitter = config.jitter;
    if jitter > 0 && jitter >= h.min(w) / 2 {
        let most = (h.min(w) / 2).saturating_sub(1);
        return Err(Error::setting(
            "jitter",
            format!("jitter {jitter} is too large for a {w}x{h} picture: at most {most}"),
        ));
    }
    // each step sees the picture cut to (h - jitter) x (w - jitter) at a random offset
    let crop = |t: &Var, dy: usize, dx: usize| -> Result<Var> {
        if jitter == 0 {
            return Ok(t.clone()); // no copies forward and back on every step
        }
        ops::narrow(&ops::narrow(t, 2, dy, h - jitter)?, 3, dx, w - jitter)
    };
    let style_grams = no_grad(|| -> Result<Vec<Tensor>> {
        let s = net.extract(&crop(&Var::constant(batch(style)?), 0, 0)?, last)?;
        style_layers.iter().map(|&l| Ok(gram_matrix(&s[l])?.tensor())).collect()
    })?;
    // the content picture's activations, per offset, as the steps need them
    let mut content_targets: Vec<Option<Tensor>> = vec![None; (jitter + 1) * (jitter + 1)];
    let mut rng = Rng::new(config.seed);
    let noise = Tensor::rand_uniform(&[1, 3, content.shape()[1], content.shape()[2]], 0.0, 1.0, &mut rng);
    let start = match config.start {
        Start::Noise => noise,
        Start::Content => batch(content)?,
        Start::Mix => {
            let c = batch(content)?;
            Tensor::new(c.shape(), c.data().iter().zip(noise.data()).map(|(a, b)| 0.5 * a + 0.5 * b).collect())?
        }
    };
    let g = Var::param(start);
    let mut optimizer = Optimizer::new(OptimizerConfig::adam(config.lr, 0.0), vec![("picture".into(), g.clone())])?;
    let lambda = 1.0 / style_layers.len() as f32;
    for step in 1..=config.steps {
        let (dy, dx) = if jitter > 0 { (rng.below(jitter + 1), rng.below(jitter + 1)) } else { (0, 0) };
        let target = match &mut content_targets[dy * (jitter + 1) + dx] {
            Some(t) => t.clone(),
            slot => {
                let c = no_grad(|| net.extract(&crop(&Var::constant(batch(content)?), dy, dx)?, content_layer))?;
                slot.insert(c[content_layer].tensor()).clone()
            }
        };
        let a = net.extract(&crop(&g, dy, dx)?, last)?;
        let jc = content_cost(&target, &a[content_layer])?;
        let layers: Vec<(f32, Tensor, Var)> =
            style_layers.iter().zip(&style_grams).map(|(&l, gram)| (lambda, gram.clone(), a[l].clone())).collect();
        let js = style_cost(&layers)?;
        let j = total_cost(config.alpha, &jc, config.beta, &js)?;
        let costs = StepCosts {
            step,
            content_cost: jc.value().item()?,
            style_cost: js.value().item()?,
            total_cost: j.value().item()?,
        };
        if !costs.total_cost.is_finite() {
            return Err(Error::Invalid(format!(
                "the cost became {} at step {step}; lower the learning rate",
                costs.total_cost
            )));
        }
        optimizer.zero_grad();
        j.backward()?;
        optimizer.step()?;
        // pixels stay pixels
        g.update(|t| t.data_mut().iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0)));
        on_step(&costs, &g.value().reshape(content.shape())?)?;
    }
    let picture = g.tensor().reshape(content.shape());
    picture
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_by_hand() {
        // two channels over a 1x2 picture: channel 0 = (1, 2), channel 1 = (3, 4)
        let a = Var::constant(Tensor::new(&[2, 1, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap());
        // G = [[1+4, 3+8], [3+8, 9+16]]
        assert_eq!(gram_matrix(&a).unwrap().tensor().data(), &[5.0, 11.0, 11.0, 25.0]);
        let c = Tensor::new(&[2, 1, 2], vec![1.0, 0.0, 3.0, 6.0]).unwrap();
        // (2 - 0)^2 + (4 - 6)^2
        assert_eq!(content_cost(&c, &a).unwrap().value().item().unwrap(), 8.0);
        // against a zero style matrix: (25 + 121 + 121 + 625) / (2 * 1 * 2 * 2)^2
        let s = Tensor::zeros(&[2, 2]);
        let j = layer_style_cost(&s, &a).unwrap().value().item().unwrap();
        assert!((j - 892.0 / 64.0).abs() < 1e-5, "{j}");
        let both = style_cost(&[(0.5, s.clone(), a.clone()), (0.5, s, a.clone())]).unwrap().value().item().unwrap();
        assert!((both - j).abs() < 1e-5);
        let t = total_cost(10.0, &content_cost(&c, &a).unwrap(), 2.0, &Var::constant(Tensor::scalar(j))).unwrap();
        assert!((t.value().item().unwrap() - (80.0 + 2.0 * j)).abs() < 1e-4);
        assert!(gram_matrix(&Var::constant(Tensor::zeros(&[2, 2]))).is_err());
        assert!(content_cost(&Tensor::zeros(&[2, 2, 1]), &a).is_err());
    }
}
