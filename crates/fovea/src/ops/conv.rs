//! Convolution in 1, 2 or 3 spatial dimensions, with stride, padding (valid, same,
//! explicit, asymmetric), dilation, groups, and optional kernel flipping.
//!
//! Output size per spatial dimension: `floor((n + p_before + p_after - d·(f-1) - 1) / s) + 1`,
//! which for d = 1 is the notes' `floor((n + 2p - f) / s + 1)`.

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::kernels::conv::{conv_backward_bias, conv_backward_input, conv_backward_weight, conv_forward, ConvGeometry};
use crate::tensor::{fmt_shape, Tensor};

/// How a convolution or pooling window is padded.
#[derive(Clone, Debug, PartialEq)]
pub enum Padding {
    /// No padding: the output shrinks by d·(f-1).
    Valid,
    /// Enough zero padding that the output size is ceil(n / stride) (n itself for stride 1);
    /// an odd total puts the extra row/column after, as TensorFlow and PyTorch do.
    Same,
    /// `(before, after)` per spatial dimension, or one pair for all of them.
    Explicit(Vec<(usize, usize)>),
}

/// `valid`, `same`, or a number of zero rows and columns on each side.
impl std::str::FromStr for Padding {
    type Err = Error;
    fn from_str(s: &str) -> Result<Padding> {
        match s.trim() {
            "valid" => Ok(Padding::Valid),
            "same" => Ok(Padding::Same),
            n => n
                .parse()
                .map(Padding::symmetric)
                .map_err(|_| Error::Invalid(format!("padding must be valid, same or a number, got '{n}'"))),
        }
    }
}

impl Padding {
    /// The same padding `p` on both sides of every spatial dimension.
    pub fn symmetric(p: usize) -> Padding {
        Padding::Explicit(vec![(p, p)])
    }

    /// `(before, after)` for each spatial dimension of sizes `input`.
    pub fn resolve(
        &self,
        input: &[usize],
        kernel: &[usize],
        stride: &[usize],
        dilation: &[usize],
    ) -> Result<Vec<(usize, usize)>> {
        let nd = input.len();
        match self {
            Padding::Valid => Ok(vec![(0, 0); nd]),
            Padding::Same => (0..nd)
                .map(|i| {
                    let extent = dilation[i].checked_mul(kernel[i].max(1) - 1).and_then(|e| e.checked_add(1));
                    let out = input[i].div_ceil(stride[i].max(1)).max(1);
                    let total = extent
                        .and_then(|e| ((out - 1) * stride[i]).checked_add(e))
                        .ok_or_else(|| Error::Invalid(format!("'same' padding overflows for dilation {dilation:?}")))?
                        .saturating_sub(input[i]);
                    Ok((total / 2, total - total / 2))
                })
                .collect(),
            Padding::Explicit(p) if p.len() == 1 => Ok(vec![p[0]; nd]),
            Padding::Explicit(p) if p.len() == nd => Ok(p.clone()),
            Padding::Explicit(p) => Err(Error::Invalid(format!(
                "padding has {} entries but the convolution has {nd} spatial dimensions",
                p.len()
            ))),
        }
    }
}

/// Options of a convolution. Per-dimension values given once apply to every dimension.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvOptions {
    /// Step of the window per spatial dimension, or one value for all (default 1).
    pub stride: Vec<usize>,
    /// Default [`Padding::Valid`].
    pub padding: Padding,
    /// Spacing between kernel taps per spatial dimension, or one value for all (default 1).
    pub dilation: Vec<usize>,
    /// Channel groups, each convolved on its own (default 1; `c_in` for depthwise).
    pub groups: usize,
    /// True convolution: flip the kernel along every spatial dimension first.
    pub flip: bool,
}

impl Default for ConvOptions {
    fn default() -> Self {
        ConvOptions { stride: vec![1], padding: Padding::Valid, dilation: vec![1], groups: 1, flip: false }
    }
}

impl ConvOptions {
    /// With stride `s` in every dimension.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = vec![s];
        self
    }
    /// With padding `p`.
    pub fn padding(mut self, p: Padding) -> Self {
        self.padding = p;
        self
    }
    /// With dilation `d` in every dimension.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = vec![d];
        self
    }
    /// With `g` channel groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    /// With the kernel flipped (`true`: true convolution) or not.
    pub fn flip(mut self, f: bool) -> Self {
        self.flip = f;
        self
    }
}

/// Expands a per-dimension option given once to `nd` dimensions; values must be >= 1.
pub(crate) fn per_dim(name: &str, v: &[usize], nd: usize) -> Result<Vec<usize>> {
    let out = match v.len() {
        1 => vec![v[0]; nd],
        n if n == nd => v.to_vec(),
        n => return Err(Error::Invalid(format!("{name} has {n} entries for {nd} spatial dimensions"))),
    };
    if out.contains(&0) {
        return Err(Error::Invalid(format!("{name} must be at least 1, got {v:?}")));
    }
    Ok(out)
}

/// Output length along one dimension (the notes' formula, with dilation and asymmetric padding).
/// `None` if the (dilated) kernel does not fit or the sizes overflow.
pub fn conv_output_size(n: usize, f: usize, pad_total: usize, stride: usize, dilation: usize) -> Option<usize> {
    let extent = dilation.checked_mul(f.max(1) - 1)?.checked_add(1)?;
    n.checked_add(pad_total)?.checked_sub(extent).map(|r| r / stride.max(1) + 1)
}

/// Left-pads a spatial shape with 1s to three dimensions.
pub(crate) fn to3(v: &[usize], fill: usize) -> [usize; 3] {
    let mut out = [fill; 3];
    out[3 - v.len()..].copy_from_slice(v);
    out
}

/// The output shape of [`conv`] for an input of shape `input`, a weight of shape `weight`
/// and an optional bias of shape `bias`, or the error `conv` would give; computes nothing.
pub fn conv_output_shape(
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    opts: &ConvOptions,
) -> Result<Vec<usize>> {
    conv_geometry(input, weight, bias, opts).map(|(_, _, shape)| shape)
}

/// Checks the shapes of a convolution: its op name, geometry and output shape.
fn conv_geometry(
    sx: &[usize],
    sw: &[usize],
    bias: Option<&[usize]>,
    opts: &ConvOptions,
) -> Result<(&'static str, ConvGeometry, Vec<usize>)> {
    let op = match sw.len() {
        3 => "conv1d",
        4 => "conv2d",
        5 => "conv3d",
        _ => "conv",
    };
    if !(3..=5).contains(&sw.len()) || sx.len() != sw.len() {
        return Err(Error::shape(op, format!("input {} and weight {} must both be [N, C, *spatial] / [O, C/groups, *kernel] with 1 to 3 spatial dimensions", fmt_shape(sx), fmt_shape(sw))));
    }
    if sx.contains(&0) || sw.contains(&0) {
        return Err(Error::shape(
            op,
            format!("input {} and weight {} must not have empty dimensions", fmt_shape(sx), fmt_shape(sw)),
        ));
    }
    let nd = sw.len() - 2;
    let groups = opts.groups;
    if groups == 0 {
        return Err(Error::Invalid(format!("{op}: groups must be at least 1")));
    }
    if !sw[0].is_multiple_of(groups) || sx[1] != sw[1] * groups {
        return Err(Error::shape(
            op,
            format!(
                "input {} has {} channels but weight {} with groups={groups} expects {}",
                fmt_shape(sx),
                sx[1],
                fmt_shape(sw),
                sw[1] * groups
            ),
        ));
    }
    if let Some(sb) = bias {
        if sb != [sw[0]] {
            return Err(Error::shape(op, format!("bias {} does not fit weight {}", fmt_shape(sb), fmt_shape(sw))));
        }
    }
    let stride = per_dim("stride", &opts.stride, nd)?;
    let dilation = per_dim("dilation", &opts.dilation, nd)?;
    let spatial = &sx[2..];
    let kernel = &sw[2..];
    let pads = opts.padding.resolve(spatial, kernel, &stride, &dilation)?;
    let mut out_sp = Vec::with_capacity(nd);
    for i in 0..nd {
        let total_pad = pads[i].0.saturating_add(pads[i].1);
        let o = conv_output_size(spatial[i], kernel[i], total_pad, stride[i], dilation[i]).ok_or_else(|| {
            Error::shape(
                op,
                format!(
                    "input {} is smaller than the (dilated) kernel {} after padding, or the sizes overflow",
                    fmt_shape(sx),
                    fmt_shape(sw)
                ),
            )
        })?;
        out_sp.push(o);
    }
    let geom = ConvGeometry {
        batch: sx[0],
        c_in: sx[1],
        c_out: sw[0],
        groups,
        input: to3(spatial, 1),
        kernel: to3(kernel, 1),
        stride: to3(&stride, 1),
        dilation: to3(&dilation, 1),
        pad: to3(&pads.iter().map(|p| p.0).collect::<Vec<_>>(), 0),
        output: to3(&out_sp, 1),
    };
    let mut out_shape = vec![sx[0], sw[0]];
    out_shape.extend(&out_sp);
    crate::tensor::shape_numel(op, &out_shape)?;
    Ok((op, geom, out_shape))
}

/// Convolution of `x [N, C, *spatial]` with `w [O, C/groups, *kernel]` plus optional `b [O]`.
pub fn conv(x: &Var, w: &Var, b: Option<&Var>, opts: &ConvOptions) -> Result<Var> {
    let (tx, tw0) = (x.tensor(), w.tensor());
    let tb = b.map(|b| b.tensor());
    let (op, geom, out_shape) = conv_geometry(tx.shape(), tw0.shape(), tb.as_ref().map(|t| t.shape()), opts)?;
    crate::tensor::checked_numel(op, &out_shape)?;
    let spatial_dims: Vec<usize> = (2..tw0.ndim()).collect();
    let tw = if opts.flip { tw0.flip(&spatial_dims)? } else { tw0 };
    let mut y = crate::kernels::par_zeros(out_shape.iter().product());
    conv_forward(&geom, tx.data(), tw.data(), tb.as_ref().map(|t| t.data()), &mut y);

    let mut parents = vec![x, w];
    parents.extend(b);
    let flip = opts.flip;
    Ok(Var::from_op(
        Tensor::new(&out_shape, y)?,
        &parents,
        Box::new(move |g, needs| {
            let gx = needs[0].then(|| {
                let mut dx = crate::kernels::par_zeros(tx.numel());
                conv_backward_input(&geom, tw.data(), g.data(), &mut dx);
                Tensor::new(tx.shape(), dx).expect("shape")
            });
            let gw = needs[1].then(|| {
                let mut dw = crate::kernels::par_zeros(tw.numel());
                conv_backward_weight(&geom, tx.data(), g.data(), &mut dw);
                let dw = Tensor::new(tw.shape(), dw).expect("shape");
                if flip {
                    dw.flip(&spatial_dims).expect("dims")
                } else {
                    dw
                }
            });
            let mut grads = vec![gx, gw];
            if needs.len() > 2 {
                grads.push(needs[2].then(|| {
                    let db = conv_backward_bias(&geom, g.data());
                    Tensor::new(&[geom.c_out], db).expect("shape")
                }));
            }
            grads
        }),
    ))
}

fn check_rank(op: &'static str, x: &Var, rank: usize) -> Result<()> {
    if x.shape().len() != rank {
        return Err(Error::shape(op, format!("expected a {rank}-D input, got {}", fmt_shape(&x.shape()))));
    }
    Ok(())
}

/// `x [N, C, L]`, `w [O, C/g, k]`.
pub fn conv1d(x: &Var, w: &Var, b: Option<&Var>, opts: &ConvOptions) -> Result<Var> {
    check_rank("conv1d", x, 3)?;
    conv(x, w, b, opts)
}
/// `x [N, C, H, W]`, `w [O, C/g, kH, kW]`.
pub fn conv2d(x: &Var, w: &Var, b: Option<&Var>, opts: &ConvOptions) -> Result<Var> {
    check_rank("conv2d", x, 4)?;
    conv(x, w, b, opts)
}
/// `x [N, C, D, H, W]`, `w [O, C/g, kD, kH, kW]`.
pub fn conv3d(x: &Var, w: &Var, b: Option<&Var>, opts: &ConvOptions) -> Result<Var> {
    check_rank("conv3d", x, 5)?;
    conv(x, w, b, opts)
}
