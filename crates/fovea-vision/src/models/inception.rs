//! The inception module and GoogLeNet (Inception v1, Szegedy et al. 2014) in torchvision's
//! layout: every convolution is conv + batch norm (eps 1e-3) + ReLU, two auxiliary
//! classifiers hang off inception 4a and 4d and are used in training only.
//!
//! torchvision's third branch uses a 3x3 convolution where the paper has 5x5 (a slip kept
//! for its pretrained weights); `googlenet` follows torchvision, `googlenet-paper` the
//! paper, whose table of multiply-adds the notes reproduce.

use fovea::graph::export::Exporter;
use fovea::io::onnx::AttributeValue;
use fovea::nn::init::Init;
use fovea::nn::{
    join_name, Activation, AdaptiveAvgPool, BatchNorm, Conv, Dropout, Flatten, LayerShape, Linear, Mode, Module, Pool,
    Sequential, ShapeHook, TensorKind,
};
use fovea::ops::{self, ConvOptions, Padding, PoolOptions};
use fovea::tensor::Tensor;
use fovea::{Error, Result, Rng, Var};

/// Convolution (no bias) + batch norm + ReLU: torchvision's `BasicConv2d`.
fn basic_conv(c_in: usize, c_out: usize, k: usize, stride: usize, rng: &mut Rng) -> Result<Sequential> {
    let opts = ConvOptions::default().stride(stride).padding(Padding::symmetric(k / 2));
    Ok(Sequential::new()
        .add("conv", Conv::config(c_in, c_out, &[k, k]).options(opts).bias(false).init(Init::Normal(0.01)).build(rng)?)
        .add("bn", BatchNorm::new(c_out).with_eps(1e-3))
        .add("relu", Activation::Relu))
}

/// Channel counts of an inception module, in the paper's column order.
#[derive(Clone, Copy, Debug)]
pub struct InceptionWidths {
    /// 1x1 branch
    pub c1x1: usize,
    /// 1x1 bottleneck before the 3x3
    pub c3x3_reduce: usize,
    /// 3x3 branch
    pub c3x3: usize,
    /// 1x1 bottleneck before the 5x5 (3x3 in torchvision)
    pub c5x5_reduce: usize,
    /// 5x5 branch (3x3 in torchvision)
    pub c5x5: usize,
    /// 1x1 projection after the max pool
    pub pool_proj: usize,
}

/// Four branches side by side, concatenated on channels: 1x1; 1x1 bottleneck then 3x3;
/// 1x1 bottleneck then 5x5 (or 3x3); 3x3 max pool (stride 1) then 1x1 projection.
/// In a summary it is one row with the parameters and multiply-adds of all four.
pub struct Inception {
    branches: [Sequential; 4],
}

impl Inception {
    /// `fifth_kernel` is the third branch's kernel: 5 as in the paper, 3 in torchvision.
    pub fn new(c_in: usize, w: InceptionWidths, fifth_kernel: usize, rng: &mut Rng) -> Result<Inception> {
        let pool = PoolOptions::new(3).stride(1).padding(1).ceil_mode(true);
        let branches = [
            basic_conv(c_in, w.c1x1, 1, 1, rng)?,
            Sequential::new().push(basic_conv(c_in, w.c3x3_reduce, 1, 1, rng)?).push(basic_conv(
                w.c3x3_reduce,
                w.c3x3,
                3,
                1,
                rng,
            )?),
            Sequential::new().push(basic_conv(c_in, w.c5x5_reduce, 1, 1, rng)?).push(basic_conv(
                w.c5x5_reduce,
                w.c5x5,
                fifth_kernel,
                1,
                rng,
            )?),
            Sequential::new().push(Pool::max(pool)).push(basic_conv(c_in, w.pool_proj, 1, 1, rng)?),
        ];
        Ok(Inception { branches })
    }
}

impl Module for Inception {
    fn export(&self, prefix: &str, x: &str, input: &[usize], ex: &mut Exporter) -> Result<String> {
        let outs = self
            .branches
            .iter()
            .enumerate()
            .map(|(i, b)| b.export(&join_name(prefix, &format!("branch{}", i + 1)), x, input, ex))
            .collect::<Result<Vec<_>>>()?;
        let outs: Vec<&str> = outs.iter().map(String::as_str).collect();
        Ok(ex.node("Concat", &join_name(prefix, "concat"), &outs, vec![("axis", AttributeValue::Int(1))]))
    }
    fn forward_mode(&self, x: &Var, mode: Mode) -> Result<Var> {
        let outs = self
            .branches
            .iter()
            .enumerate()
            .map(|(i, b)| b.forward_mode(x, mode.child(i)))
            .collect::<Result<Vec<_>>>()?;
        ops::concat(&outs.iter().collect::<Vec<_>>(), 1)
    }
    /// One row for the whole module (as the notes' table), with its branches' costs.
    fn shapes(&self, prefix: &str, input: &[usize], hook: &mut ShapeHook<'_>) -> Result<Vec<usize>> {
        let (mut params, mut macs) = (0, 0);
        let mut add = |l: LayerShape<'_>| {
            params += l.params;
            macs += l.macs;
        };
        let outs = self.branches.iter().map(|b| b.shapes("", input, &mut add)).collect::<Result<Vec<_>>>()?;
        let mut y = outs[0].clone();
        for o in &outs[1..] {
            if o.len() != y.len() || o[0] != y[0] || o[2..] != y[2..] {
                return Err(Error::shape("inception", format!("branch outputs {outs:?} cannot be concatenated")));
            }
            y[1] += o[1];
        }
        hook(LayerShape { name: prefix, kind: "Inception", output: &y, params, macs });
        Ok(y)
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var, TensorKind)) {
        for (i, b) in self.branches.iter().enumerate() {
            b.visit(&join_name(prefix, &format!("branch{}", i + 1)), f);
        }
    }
}

/// An auxiliary classifier: 4x4 average pool, 1x1 conv to 128, FC 1024, dropout 0.7, FC.
fn inception_aux(c_in: usize, classes: usize, rng: &mut Rng) -> Result<Sequential> {
    let init = Init::Normal(0.01);
    Ok(Sequential::new()
        .add("pool", AdaptiveAvgPool(vec![4, 4]))
        .add("conv", basic_conv(c_in, 128, 1, 1, rng)?)
        .add("flatten", Flatten)
        .add("fc1", Linear::config(128 * 4 * 4, 1024).init(init).build(rng)?)
        .add("relu", Activation::Relu)
        .add("dropout", Dropout::new(0.7)?)
        .add("fc2", Linear::config(1024, classes).init(init).build(rng)?))
}

/// GoogLeNet. The auxiliary classifiers run only through [`Module::forward_aux`], which
/// training uses; `forward` is the main classifier alone.
pub struct GoogLeNet {
    /// From `conv1` to the dropout before `fc`.
    trunk: Sequential,
    aux1: Option<Sequential>,
    aux2: Option<Sequential>,
    fc: Linear,
    /// Maps inputs normalised with ImageNet's mean and std to the `(x - 0.5) / 0.5`
    /// scaling that torchvision's pretrained GoogLeNet weights were trained on.
    pub transform_input: bool,
}

/// Kind of pooling between GoogLeNet's stages: 3x3 stride 2 (or 2x2), rounding up.
fn ceil_pool(k: usize) -> Pool {
    Pool::max(PoolOptions::new(k).stride(2).ceil_mode(true))
}

impl GoogLeNet {
    /// `aux`: build the auxiliary classifiers; `fifth_kernel`: 3 (torchvision) or 5 (paper).
    pub fn new(classes: usize, aux: bool, fifth_kernel: usize, rng: &mut Rng) -> Result<GoogLeNet> {
        let w = |c1x1, c3x3_reduce, c3x3, c5x5_reduce, c5x5, pool_proj| InceptionWidths {
            c1x1,
            c3x3_reduce,
            c3x3,
            c5x5_reduce,
            c5x5,
            pool_proj,
        };
        let mut inception = |c_in, widths| Inception::new(c_in, widths, fifth_kernel, rng);
        let blocks = [
            ("inception3a", inception(192, w(64, 96, 128, 16, 32, 32))?),
            ("inception3b", inception(256, w(128, 128, 192, 32, 96, 64))?),
            ("inception4a", inception(480, w(192, 96, 208, 16, 48, 64))?),
            ("inception4b", inception(512, w(160, 112, 224, 24, 64, 64))?),
            ("inception4c", inception(512, w(128, 128, 256, 24, 64, 64))?),
            ("inception4d", inception(512, w(112, 144, 288, 32, 64, 64))?),
            ("inception4e", inception(528, w(256, 160, 320, 32, 128, 128))?),
            ("inception5a", inception(832, w(256, 160, 320, 32, 128, 128))?),
            ("inception5b", inception(832, w(384, 192, 384, 48, 128, 128))?),
        ];
        let mut trunk = Sequential::new()
            .add("conv1", basic_conv(3, 64, 7, 2, rng)?)
            .add("maxpool1", ceil_pool(3))
            .add("conv2", basic_conv(64, 64, 1, 1, rng)?)
            .add("conv3", basic_conv(64, 192, 3, 1, rng)?)
            .add("maxpool2", ceil_pool(3));
        for (name, block) in blocks {
            trunk = trunk.add(name, block);
            match name {
                "inception3b" => trunk = trunk.add("maxpool3", ceil_pool(3)),
                "inception4e" => trunk = trunk.add("maxpool4", ceil_pool(2)),
                _ => {}
            }
        }
        let trunk = trunk
            .add("avgpool", AdaptiveAvgPool(vec![1, 1]))
            .add("flatten", Flatten)
            .add("dropout", Dropout::new(0.2)?);
        let (aux1, aux2) = if aux {
            (Some(inception_aux(512, classes, rng)?), Some(inception_aux(528, classes, rng)?))
        } else {
            (None, None)
        };
        let fc = Linear::config(1024, classes).init(Init::Normal(0.01)).build(rng)?;
        Ok(GoogLeNet { trunk, aux1, aux2, fc, transform_input: false })
    }

    /// The output and, `with_aux`, the auxiliary classifiers' outputs.
    fn run(&self, x: &Var, mode: Mode, with_aux: bool) -> Result<(Var, Vec<Var>)> {
        let mut h = if self.transform_input { transform_input(x)? } else { x.clone() };
        let mut aux = Vec::new();
        let trunk_mode = mode.child(0);
        for (i, (name, layer)) in self.trunk.layers().iter().enumerate() {
            h = layer.forward_mode(&h, trunk_mode.child(i))?;
            let (head, index) = match name.as_str() {
                "inception4a" => (&self.aux1, 1),
                "inception4d" => (&self.aux2, 2),
                _ => (&None, 0),
            };
            if let (true, Some(head)) = (with_aux, head) {
                aux.push(head.forward_mode(&h, mode.child(index))?);
            }
        }
        Ok((self.fc.forward(&h)?, aux))
    }
}

/// `x * std / 0.5 + (mean - 0.5) / 0.5` per channel, as torchvision's `_transform_input`.
fn transform_input(x: &Var) -> Result<Var> {
    use crate::data::imagenet::{MEAN, STD};
    let scale = Tensor::new(&[1, 3, 1, 1], STD.iter().map(|s| s / 0.5).collect())?;
    let shift = Tensor::new(&[1, 3, 1, 1], MEAN.iter().map(|m| (m - 0.5) / 0.5).collect())?;
    ops::add(&ops::mul(x, &Var::constant(scale))?, &Var::constant(shift))
}

impl Module for GoogLeNet {
    fn forward_mode(&self, x: &Var, mode: Mode) -> Result<Var> {
        Ok(self.run(x, mode, false)?.0)
    }
    /// The main output and `[aux1, aux2]` (empty when built without them).
    fn forward_aux(&self, x: &Var, mode: Mode) -> Result<(Var, Vec<Var>)> {
        self.run(x, mode, true)
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var, TensorKind)) {
        // torchvision's state_dict order: trunk, aux1, aux2, fc
        self.trunk.visit(prefix, f);
        for (name, head) in [("aux1", &self.aux1), ("aux2", &self.aux2)] {
            if let Some(h) = head {
                h.visit(&join_name(prefix, name), f);
            }
        }
        self.fc.visit(&join_name(prefix, "fc"), f);
    }
    /// The trunk and `fc` (the auxiliary classifiers are training-only).
    fn export(&self, prefix: &str, x: &str, input: &[usize], ex: &mut Exporter) -> Result<String> {
        if self.transform_input {
            return Err(Error::Invalid("googlenet with transform_input has no ONNX form; export it without".into()));
        }
        let h = self.trunk.export(prefix, x, input, ex)?;
        let shape = self.trunk.output_shape(input)?;
        self.fc.export(&join_name(prefix, "fc"), &h, &shape, ex)
    }
    /// The trunk's and `fc`'s rows; the auxiliary classifiers are training-only.
    fn shapes(&self, prefix: &str, input: &[usize], hook: &mut ShapeHook<'_>) -> Result<Vec<usize>> {
        if input.get(1) != Some(&3) && self.transform_input {
            return Err(Error::shape("googlenet", format!("transform_input needs 3 channels, got {input:?}")));
        }
        let h = self.trunk.shapes(prefix, input, hook)?;
        self.fc.shapes(&join_name(prefix, "fc"), &h, hook)
    }
}
