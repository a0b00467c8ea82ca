//! ResNet-18/34/50/101/152 in torchvision's layout (He et al. 2015, with the stride of
//! bottleneck blocks on the 3x3 convolution, "ResNet v1.5").

use fovea::graph::export::{self, Exporter};
use fovea::nn::init::Init;
use fovea::nn::{
    join_name, Activation, AdaptiveAvgPool, BatchNorm, Conv, Flatten, LayerShape, Linear, Mode, Module, Pool,
    Sequential, ShapeHook, TensorKind,
};
use fovea::ops::{self, ConvOptions, Padding, PoolOptions};
use fovea::{Error, Result, Rng, Var};

/// What a block adds to its main path.
enum Shortcut {
    /// Nothing: the block of a plain network.
    Plain,
    /// The input, or where the shape changes a strided 1x1 convolution with batch norm
    /// (`downsample`; He et al.'s option B, torchvision's ResNets).
    Projection(Option<Sequential>),
    /// The input, subsampled by `stride` and padded with `extra` zero channels where the
    /// shape changes: no parameters (option A, He et al.'s CIFAR networks).
    ZeroPad { stride: usize, extra: usize },
}

/// A residual block: `relu(main(x) + shortcut(x))`; `relu(main(x))` in a plain network.
pub struct Residual {
    main: Sequential,
    shortcut: Shortcut,
}

impl Module for Residual {
    fn forward_mode(&self, x: &Var, mode: Mode) -> Result<Var> {
        let y = self.main.forward_mode(x, mode.child(0))?;
        let shortcut = match &self.shortcut {
            Shortcut::Plain => return ops::relu(&y),
            Shortcut::Projection(Some(d)) => d.forward_mode(x, mode.child(1))?,
            Shortcut::Projection(None) | Shortcut::ZeroPad { stride: 1, extra: 0 } => x.clone(),
            &Shortcut::ZeroPad { stride, extra } => {
                // a 1x1 window with a stride keeps every stride-th position
                let sub = ops::avg_pool(x, &PoolOptions::new(1).stride(stride))?;
                ops::pad(&sub, &[(extra / 2, extra - extra / 2), (0, 0), (0, 0)], 0.0)?
            }
        };
        ops::relu(&ops::add(&y, &shortcut)?)
    }
    /// The block's layers, then its addition and ReLU as a row of their own.
    fn shapes(&self, prefix: &str, input: &[usize], hook: &mut ShapeHook<'_>) -> Result<Vec<usize>> {
        let y = self.main.shapes(prefix, input, hook)?;
        let shortcut = match &self.shortcut {
            Shortcut::Plain => {
                hook(LayerShape { name: prefix, kind: "ReLU", output: &y, params: 0, macs: 0 });
                return Ok(y);
            }
            Shortcut::Projection(Some(d)) => d.shapes(&join_name(prefix, "downsample"), input, hook)?,
            Shortcut::Projection(None) => input.to_vec(),
            &Shortcut::ZeroPad { stride, extra } => {
                let mut s = PoolOptions::new(1).stride(stride).output_shape(input)?;
                s[1] += extra;
                s
            }
        };
        if shortcut != y {
            return Err(Error::shape(
                "residual",
                format!("the block's output {y:?} and its shortcut {shortcut:?} differ for input {input:?}"),
            ));
        }
        hook(LayerShape { name: prefix, kind: "Add+ReLU", output: &y, params: 0, macs: 0 });
        Ok(y)
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var, TensorKind)) {
        self.main.visit(prefix, f);
        if let Shortcut::Projection(Some(d)) = &self.shortcut {
            d.visit(&join_name(prefix, "downsample"), f);
        }
    }
    fn export(&self, prefix: &str, x: &str, input: &[usize], ex: &mut Exporter) -> Result<String> {
        let y = self.main.export(prefix, x, input, ex)?;
        let shortcut = match &self.shortcut {
            Shortcut::Plain => return Ok(ex.node("Relu", &join_name(prefix, "relu"), &[&y], vec![])),
            Shortcut::Projection(Some(d)) => d.export(&join_name(prefix, "downsample"), x, input, ex)?,
            Shortcut::Projection(None) | Shortcut::ZeroPad { stride: 1, extra: 0 } => x.to_string(),
            &Shortcut::ZeroPad { stride, extra } => {
                let k = vec![1; input.len() - 2];
                let s = vec![stride; input.len() - 2];
                let sub = ex.node(
                    "AveragePool",
                    &join_name(prefix, "subsample"),
                    &[x],
                    vec![("kernel_shape", export::ints(k)), ("strides", export::ints(s))],
                );
                // zero channels before and after: pads for N, C, then the spatial axes
                let mut pads = vec![0i64; 2 * input.len()];
                pads[1] = (extra / 2) as i64;
                pads[input.len() + 1] = (extra - extra / 2) as i64;
                let pads = ex.ints(&join_name(prefix, "pads"), &pads);
                ex.node("Pad", &join_name(prefix, "pad"), &[&sub, &pads], vec![])
            }
        };
        let sum = ex.node("Add", &join_name(prefix, "add"), &[&y, &shortcut], vec![]);
        Ok(ex.node("Relu", &join_name(prefix, "relu"), &[&sum], vec![]))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Block {
    /// Two 3x3 convolutions (ResNet-18/34).
    Basic,
    /// 1x1 down to `width`, 3x3, 1x1 up to 4·`width` (ResNet-50 and deeper).
    Bottleneck,
}

fn conv(c_in: usize, c_out: usize, k: usize, stride: usize, rng: &mut Rng) -> Result<Conv> {
    let opts = ConvOptions::default().stride(stride).padding(Padding::symmetric(k / 2));
    Conv::config(c_in, c_out, &[k, k]).options(opts).bias(false).init(Init::HeNormalFanOut).build(rng)
}

/// How blocks get their shortcut (see [`Shortcut`]).
#[derive(Clone, Copy, PartialEq)]
enum ShortcutKind {
    Plain,
    Projection,
    ZeroPad,
}

fn block(kind: Block, c_in: usize, width: usize, stride: usize, sk: ShortcutKind, rng: &mut Rng) -> Result<Residual> {
    let c_out = if kind == Block::Basic { width } else { 4 * width };
    let main = match kind {
        Block::Basic => Sequential::new()
            .add("conv1", conv(c_in, width, 3, stride, rng)?)
            .add("bn1", BatchNorm::new(width))
            .add("relu1", Activation::Relu)
            .add("conv2", conv(width, width, 3, 1, rng)?)
            .add("bn2", BatchNorm::new(width)),
        Block::Bottleneck => Sequential::new()
            .add("conv1", conv(c_in, width, 1, 1, rng)?)
            .add("bn1", BatchNorm::new(width))
            .add("relu1", Activation::Relu)
            .add("conv2", conv(width, width, 3, stride, rng)?)
            .add("bn2", BatchNorm::new(width))
            .add("relu2", Activation::Relu)
            .add("conv3", conv(width, c_out, 1, 1, rng)?)
            .add("bn3", BatchNorm::new(c_out)),
    };
    let changes = stride != 1 || c_in != c_out;
    let shortcut = match sk {
        ShortcutKind::Plain => Shortcut::Plain,
        ShortcutKind::Projection if changes => Shortcut::Projection(Some(
            Sequential::new().push(conv(c_in, c_out, 1, stride, rng)?).push(BatchNorm::new(c_out)),
        )),
        ShortcutKind::Projection => Shortcut::Projection(None),
        ShortcutKind::ZeroPad => Shortcut::ZeroPad { stride, extra: c_out.saturating_sub(c_in) },
    };
    Ok(Residual { main, shortcut })
}

/// ResNet-`depth` (18, 34, 50, 101 or 152) with a `classes`-way `fc`, freshly initialised;
/// where the shape changes, the shortcut is a 1x1 projection (option B).
pub fn resnet(depth: usize, classes: usize, rng: &mut Rng) -> Result<Sequential> {
    let (kind, counts) = match depth {
        18 => (Block::Basic, [2, 2, 2, 2]),
        34 => (Block::Basic, [3, 4, 6, 3]),
        50 => (Block::Bottleneck, [3, 4, 6, 3]),
        101 => (Block::Bottleneck, [3, 4, 23, 3]),
        152 => (Block::Bottleneck, [3, 8, 36, 3]),
        d => return Err(Error::Invalid(format!("ResNet comes in depths 18, 34, 50, 101 and 152, not {d}"))),
    };
    let mut net = Sequential::new()
        .add("conv1", conv(3, 64, 7, 2, rng)?)
        .add("bn1", BatchNorm::new(64))
        .add("relu", Activation::Relu)
        .add("maxpool", Pool::max(PoolOptions::new(3).stride(2).padding(1)));
    let mut c_in = 64;
    for (stage, (count, width)) in counts.into_iter().zip([64, 128, 256, 512]).enumerate() {
        let mut layer = Sequential::new();
        for i in 0..count {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let b = block(kind, c_in, width, stride, ShortcutKind::Projection, rng)?;
            c_in = if kind == Block::Basic { width } else { 4 * width };
            layer = layer.push(b);
        }
        net = net.add(&format!("layer{}", stage + 1), layer);
    }
    Ok(net
        .add("avgpool", AdaptiveAvgPool(vec![1, 1]))
        .add("flatten", Flatten)
        .add("fc", Linear::config(c_in, classes).build(rng)?))
}

/// He et al.'s CIFAR-10 networks (section 4.2), for `c_in`-channel images as small as
/// Fashion-MNIST's: a 3x3 convolution to 16 channels, three stages of `n` basic blocks
/// (16, 32, 64 channels; stride 2 where a stage starts), global average pooling and the
/// classifier: `6n + 2` layers with weights. Shortcuts are parameter-free (option A), so
/// `plain`, which drops them, gives the same layers and parameters without the skips: the
/// plain network whose training error the notes' degradation plot shows.
pub fn cifar_resnet(depth: usize, plain: bool, c_in: usize, classes: usize, rng: &mut Rng) -> Result<Sequential> {
    if depth < 8 || !(depth - 2).is_multiple_of(6) {
        return Err(Error::Invalid(format!(
            "CIFAR-style networks have 6n+2 layers (8, 14, 20, 32, 44, 56, ...), not {depth}"
        )));
    }
    // two 3x3 convolutions a block, n blocks a stage: about 18n(16² + 32² + 64²) weights
    let n = (depth - 2) as u64 / 6;
    fovea::budget::check(&format!("a {depth}-layer network's weights"), n.saturating_mul(18 * 5376 * 4))?;
    let mut net = Sequential::new()
        .add("conv1", conv(c_in, 16, 3, 1, rng)?)
        .add("bn1", BatchNorm::new(16))
        .add("relu", Activation::Relu);
    let mut width_in = 16;
    for (stage, width) in [16, 32, 64].into_iter().enumerate() {
        let mut layer = Sequential::new();
        for i in 0..(depth - 2) / 6 {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let sk = if plain { ShortcutKind::Plain } else { ShortcutKind::ZeroPad };
            layer = layer.push(block(Block::Basic, width_in, width, stride, sk, rng)?);
            width_in = width;
        }
        net = net.add(&format!("layer{}", stage + 1), layer);
    }
    Ok(net
        .add("avgpool", AdaptiveAvgPool(vec![1, 1]))
        .add("flatten", Flatten)
        .add("fc", Linear::config(64, classes).build(rng)?))
}
