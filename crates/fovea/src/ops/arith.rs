//! Elementwise arithmetic with broadcasting, reductions and shape operations.

use crate::autograd::Var;
use crate::error::Result;
use crate::kernels::par_elementwise;
use crate::tensor::Tensor;

fn binary(
    op: &'static str,
    a: &Var,
    b: &Var,
    f: impl Fn(f32, f32) -> f32 + Sync,
    grads: impl Fn(&Tensor, &Tensor, &Tensor, &[bool]) -> (Option<Tensor>, Option<Tensor>) + Send + 'static,
) -> Result<Var> {
    let (ta, tb) = (a.tensor(), b.tensor());
    let out = ta.zip_broadcast(&tb, op, f)?;
    Ok(Var::from_op(
        out,
        &[a, b],
        Box::new(move |g, needs| {
            let (ga, gb) = grads(g, &ta, &tb, needs);
            let reduce =
                |grad: Option<Tensor>, shape: &[usize]| grad.map(|t| t.sum_to_shape(shape).expect("broadcast"));
            vec![reduce(ga, ta.shape()), reduce(gb, tb.shape())]
        }),
    ))
}

/// `a + b` elementwise, with broadcasting.
pub fn add(a: &Var, b: &Var) -> Result<Var> {
    binary("add", a, b, |x, y| x + y, |g, _, _, n| (n[0].then(|| g.clone()), n[1].then(|| g.clone())))
}

/// `a - b` elementwise, with broadcasting.
pub fn sub(a: &Var, b: &Var) -> Result<Var> {
    binary("sub", a, b, |x, y| x - y, |g, _, _, n| (n[0].then(|| g.clone()), n[1].then(|| g.scale(-1.0))))
}

/// `a · b` elementwise, with broadcasting.
pub fn mul(a: &Var, b: &Var) -> Result<Var> {
    binary(
        "mul",
        a,
        b,
        |x, y| x * y,
        |g, ta, tb, n| {
            let ga = n[0].then(|| g.zip_broadcast(tb, "mul", |g, y| g * y).expect("broadcast"));
            let gb = n[1].then(|| g.zip_broadcast(ta, "mul", |g, x| g * x).expect("broadcast"));
            (ga, gb)
        },
    )
}

/// `a / b` elementwise, with broadcasting.
pub fn div(a: &Var, b: &Var) -> Result<Var> {
    binary(
        "div",
        a,
        b,
        |x, y| x / y,
        |g, ta, tb, n| {
            let ga = n[0].then(|| g.zip_broadcast(tb, "div", |g, y| g / y).expect("broadcast"));
            let gb = n[1].then(|| {
                let q = ta.zip_broadcast(tb, "div", |x, y| -x / (y * y)).expect("broadcast");
                g.zip_broadcast(&q, "div", |g, q| g * q).expect("broadcast")
            });
            (ga, gb)
        },
    )
}

/// `f` elementwise, with derivative `df(x, y)` from input and output.
pub(crate) fn unary(
    x: &Var,
    f: impl Fn(f32) -> f32 + Sync,
    df: impl Fn(f32, f32) -> f32 + Send + Sync + 'static,
) -> Result<Var> {
    // the output (and, for backward, the input gradient) is the input's size; the message
    // is formatted only when refusing, as this runs on every activation
    let bytes = 4 * x.value().numel() as u64;
    if bytes.saturating_add(crate::budget::in_use()) > crate::budget::limit()? {
        crate::tensor::checked_numel("elementwise op", &x.shape())?;
    }
    let tx = x.tensor();
    let out = tx.map(f);
    let ty = out.clone();
    Ok(Var::from_op(
        out,
        &[x],
        Box::new(move |g, _| {
            let d = par_elementwise(g.numel(), |r, out| {
                let inputs = g.data()[r.clone()].iter().zip(&tx.data()[r.clone()]).zip(&ty.data()[r]);
                out.iter_mut().zip(inputs).for_each(|(o, ((&g, &x), &y))| {
                    o.write(g * df(x, y));
                })
            });
            vec![Some(Tensor::new(g.shape(), d).expect("same shape"))]
        }),
    ))
}

/// `x + s` elementwise.
pub fn add_scalar(x: &Var, s: f32) -> Result<Var> {
    unary(x, move |v| v + s, |_, _| 1.0)
}
/// `x · s` elementwise.
pub fn mul_scalar(x: &Var, s: f32) -> Result<Var> {
    unary(x, move |v| v * s, move |_, _| s)
}
/// `-x` elementwise.
pub fn neg(x: &Var) -> Result<Var> {
    mul_scalar(x, -1.0)
}
/// e^x elementwise.
pub fn exp(x: &Var) -> Result<Var> {
    unary(x, f32::exp, |_, y| y)
}
/// Natural logarithm, elementwise.
pub fn log(x: &Var) -> Result<Var> {
    unary(x, f32::ln, |x, _| 1.0 / x)
}
/// Square root, elementwise.
pub fn sqrt(x: &Var) -> Result<Var> {
    unary(x, f32::sqrt, |_, y| 0.5 / y)
}
/// `x^p` elementwise.
pub fn pow_scalar(x: &Var, p: f32) -> Result<Var> {
    if p == 2.0 {
        // squares are most of the uses (losses, norms): a product, not a powf call
        return unary(x, |v| v * v, |x, _| 2.0 * x);
    }
    if p == 0.0 {
        // a constant 1: its gradient is 0 everywhere, also at 0 (where p x^(p-1) is 0 * inf)
        return unary(x, |_| 1.0, |_, _| 0.0);
    }
    unary(x, move |v| v.powf(p), move |x, _| p * x.powf(p - 1.0))
}

/// Sum of all elements (a scalar).
pub fn sum(x: &Var) -> Result<Var> {
    let shape = x.shape();
    let out = Tensor::scalar(x.value().sum_all());
    Ok(Var::from_op(out, &[x], Box::new(move |g, _| vec![Some(Tensor::full(&shape, g.data()[0]))])))
}

/// Mean of all elements (a scalar).
pub fn mean(x: &Var) -> Result<Var> {
    let n = x.value().numel().max(1) as f32;
    mul_scalar(&sum(x)?, 1.0 / n)
}

/// Sum over one dimension.
pub fn sum_dim(x: &Var, dim: isize, keepdim: bool) -> Result<Var> {
    let shape = x.shape();
    let out = x.value().sum_dim(dim, keepdim)?;
    let d = crate::tensor::resolve_dim("sum", dim, shape.len())?;
    Ok(Var::from_op(
        out,
        &[x],
        Box::new(move |g, _| {
            let mut kept = shape.clone();
            kept[d] = 1;
            let g = g.reshape(&kept).expect("same size");
            vec![Some(Tensor::zeros(&shape).zip_broadcast(&g, "sum", |_, g| g).expect("broadcast"))]
        }),
    ))
}

/// The same values with another shape of the same size.
pub fn reshape(x: &Var, shape: &[usize]) -> Result<Var> {
    let in_shape = x.shape();
    let out = x.value().reshape(shape)?;
    Ok(Var::from_op(out, &[x], Box::new(move |g, _| vec![Some(g.reshape(&in_shape).expect("same size"))])))
}

/// `[N, ...] -> [N, rest]`, as before the first fully connected layer.
pub fn flatten(x: &Var) -> Result<Var> {
    let s = x.shape();
    let n = *s.first().ok_or_else(|| crate::Error::shape("flatten", "cannot flatten a scalar"))?;
    reshape(x, &[n, s[1..].iter().product()])
}

/// Reorders dimensions: output dimension `i` is input dimension `dims[i]` (PyTorch's `permute`).
pub fn permute(x: &Var, dims: &[usize]) -> Result<Var> {
    let out = x.value().permute(dims)?;
    let mut inverse = vec![0; dims.len()];
    for (i, &d) in dims.iter().enumerate() {
        inverse[d] = i;
    }
    Ok(Var::from_op(out, &[x], Box::new(move |g, _| vec![Some(g.permute(&inverse).expect("permutation"))])))
}

/// Joins `xs` along `dim` (PyTorch's `cat`); all other dimensions must agree.
pub fn concat(xs: &[&Var], dim: isize) -> Result<Var> {
    let tensors: Vec<Tensor> = xs.iter().map(|x| x.tensor()).collect();
    let refs: Vec<&Tensor> = tensors.iter().collect();
    let out = Tensor::concat(&refs, dim)?;
    let d = crate::tensor::resolve_dim("concat", dim, out.ndim())?;
    let sizes: Vec<usize> = tensors.iter().map(|t| t.shape()[d]).collect();
    Ok(Var::from_op(
        out,
        xs,
        Box::new(move |g, needs| {
            let mut start = 0;
            sizes
                .iter()
                .zip(needs)
                .map(|(&len, &need)| {
                    let part = need.then(|| g.narrow(d as isize, start, len).expect("in range"));
                    start += len;
                    part
                })
                .collect()
        }),
    ))
}

/// `len` entries of dimension `dim` starting at `start` (PyTorch's `narrow`).
pub fn narrow(x: &Var, dim: isize, start: usize, len: usize) -> Result<Var> {
    let out = x.value().narrow(dim, start, len)?;
    let shape = x.shape();
    let d = crate::tensor::resolve_dim("narrow", dim, shape.len())?;
    Ok(Var::from_op(
        out,
        &[x],
        Box::new(move |g, _| {
            let mut pads = vec![(0, 0); shape.len() - d];
            pads[0] = (start, shape[d] - start - len);
            vec![Some(g.pad(&pads, 0.0).expect("valid padding"))]
        }),
    ))
}

/// The entries `indices` of dimension `dim` (repeats allowed); the gradient of a repeated
/// entry is the sum over its copies.
pub fn index_select(x: &Var, dim: isize, indices: &[usize]) -> Result<Var> {
    let out = x.value().index_select(dim, indices)?;
    let size = x.shape()[crate::tensor::resolve_dim("index_select", dim, x.shape().len())?];
    let indices = indices.to_vec();
    Ok(Var::from_op(
        out,
        &[x],
        Box::new(move |g, _| vec![Some(g.index_add(dim, &indices, size).expect("indices were checked"))]),
    ))
}

/// Pads the trailing dimensions: `pads[i] = (before, after)`.
pub fn pad(x: &Var, pads: &[(usize, usize)], value: f32) -> Result<Var> {
    let out = x.value().pad(pads, value)?;
    let shape = x.shape();
    let pads = pads.to_vec();
    Ok(Var::from_op(
        out,
        &[x],
        Box::new(move |g, _| {
            let first = shape.len() - pads.len();
            let mut t = g.clone();
            for (i, &(b, _)) in pads.iter().enumerate() {
                t = t.narrow((first + i) as isize, b, shape[first + i]).expect("in range");
            }
            vec![Some(t)]
        }),
    ))
}
