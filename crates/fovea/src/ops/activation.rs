//! Activations, softmax / log-softmax along a dimension, and dropout.

use super::arith::unary;
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::tensor::{resolve_dim, Tensor};
use crate::Rng;

/// ReLU, max(0, x); NaN stays NaN, as in PyTorch.
pub fn relu(x: &Var) -> Result<Var> {
    // `v.max(0.0)` would turn NaN into 0; PyTorch's ReLU keeps NaN (so a diverged run shows)
    unary(x, |v| if v < 0.0 { 0.0 } else { v }, |x, _| if x > 0.0 { 1.0 } else { 0.0 })
}

/// Leaky ReLU: x for x > 0, else `slope` · x.
pub fn leaky_relu(x: &Var, slope: f32) -> Result<Var> {
    unary(x, move |v| if v > 0.0 { v } else { v * slope }, move |x, _| if x > 0.0 { 1.0 } else { slope })
}

/// ReLU6, min(max(0, x), 6).
pub fn relu6(x: &Var) -> Result<Var> {
    unary(x, |v| v.clamp(0.0, 6.0), |x, _| if x > 0.0 && x < 6.0 { 1.0 } else { 0.0 })
}

/// The logistic sigmoid, 1 / (1 + e^-x).
pub fn sigmoid(x: &Var) -> Result<Var> {
    unary(x, |v| 1.0 / (1.0 + (-v).exp()), |_, y| y * (1.0 - y))
}

/// The hyperbolic tangent.
pub fn tanh(x: &Var) -> Result<Var> {
    unary(x, f32::tanh, |_, y| 1.0 - y * y)
}

/// log-softmax along `dim` in the stable form x - max - log Σ exp(x - max).
fn log_softmax_values(x: &Tensor, d: usize) -> Tensor {
    let (outer, len, inner) = x.split_at_dim(d);
    let src = x.data();
    let mut out = vec![0.0f32; src.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * len + k) * inner + i;
            let m = (0..len).map(|k| src[at(k)]).fold(f32::NEG_INFINITY, f32::max);
            if m == f32::INFINITY {
                // the limit for logits that overflowed: the infinite ones share everything
                let ties = (0..len).filter(|&k| src[at(k)] == m).count() as f32;
                for k in 0..len {
                    out[at(k)] = if src[at(k)] == m { -ties.ln() } else { f32::NEG_INFINITY };
                }
                continue;
            }
            let s: f32 = (0..len).map(|k| (src[at(k)] - m).exp()).sum();
            let lse = m + s.ln();
            for k in 0..len {
                out[at(k)] = src[at(k)] - lse;
            }
        }
    }
    Tensor::new(x.shape(), out).expect("shape")
}

/// log-softmax along `dim` (`-1` = last), in the stable form; logits of +∞ share the
/// probability equally.
pub fn log_softmax(x: &Var, dim: isize) -> Result<Var> {
    let tx = x.tensor();
    let d = resolve_dim("log_softmax", dim, tx.ndim())?;
    let y = log_softmax_values(&tx, d);
    let ty = y.clone();
    Ok(Var::from_op(
        y,
        &[x],
        Box::new(move |g, _| {
            // dx = g - softmax · Σ g
            let (outer, len, inner) = g.split_at_dim(d);
            let (gd, yd) = (g.data(), ty.data());
            let mut dx = vec![0.0f32; gd.len()];
            for o in 0..outer {
                for i in 0..inner {
                    let at = |k: usize| (o * len + k) * inner + i;
                    let s: f32 = (0..len).map(|k| gd[at(k)]).sum();
                    for k in 0..len {
                        dx[at(k)] = gd[at(k)] - yd[at(k)].exp() * s;
                    }
                }
            }
            vec![Some(Tensor::new(g.shape(), dx).expect("shape"))]
        }),
    ))
}

/// Softmax along `dim` (`-1` = last), the exponential of the stable log-softmax.
pub fn softmax(x: &Var, dim: isize) -> Result<Var> {
    let tx = x.tensor();
    let d = resolve_dim("softmax", dim, tx.ndim())?;
    let y = log_softmax_values(&tx, d).map(f32::exp);
    let ty = y.clone();
    Ok(Var::from_op(
        y,
        &[x],
        Box::new(move |g, _| {
            // dx = y · (g - Σ g·y)
            let (outer, len, inner) = g.split_at_dim(d);
            let (gd, yd) = (g.data(), ty.data());
            let mut dx = vec![0.0f32; gd.len()];
            for o in 0..outer {
                for i in 0..inner {
                    let at = |k: usize| (o * len + k) * inner + i;
                    let s: f32 = (0..len).map(|k| gd[at(k)] * yd[at(k)]).sum();
                    for k in 0..len {
                        dx[at(k)] = yd[at(k)] * (gd[at(k)] - s);
                    }
                }
            }
            vec![Some(Tensor::new(g.shape(), dx).expect("shape"))]
        }),
    ))
}

/// Inverted dropout (training): zeroes each element with probability `p` and scales the
/// rest by 1/(1-p). The mask of row `i` (along the first axis) is drawn from
/// `Rng::derive(seed, first_row + i)`, so a batch split between processes
/// ([`crate::dist`]), each passing its shard's first row, draws the masks the whole batch would.
pub fn dropout(x: &Var, p: f32, seed: u64, first_row: u64) -> Result<Var> {
    if !(0.0..1.0).contains(&p) {
        return Err(Error::Invalid(format!("dropout probability must be in [0, 1), got {p}")));
    }
    if p == 0.0 {
        return Ok(x.clone());
    }
    let scale = 1.0 / (1.0 - p);
    let tx = x.tensor();
    let row = tx.numel() / tx.shape().first().copied().unwrap_or(1).max(1);
    let mut mask = Vec::with_capacity(tx.numel());
    for i in 0..tx.numel().div_ceil(row.max(1)) {
        let mut rng = Rng::derive(seed, first_row + i as u64);
        mask.extend((0..row).map(|_| if rng.uniform() < p { 0.0 } else { scale }));
    }
    let y: Vec<f32> = tx.data().iter().zip(&mask).map(|(a, m)| a * m).collect();
    let shape = tx.shape().to_vec();
    Ok(Var::from_op(
        Tensor::new(&shape, y)?,
        &[x],
        Box::new(move |g, _| {
            let d = g.data().iter().zip(&mask).map(|(g, m)| g * m).collect();
            vec![Some(Tensor::new(&shape, d).expect("shape"))]
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_stays_finite_for_huge_and_overflowed_logits() {
        let x =
            Var::constant(Tensor::new(&[2, 3], vec![3e38, 1e38, -3e38, f32::INFINITY, f32::INFINITY, 1.0]).unwrap());
        assert_eq!(softmax(&x, 1).unwrap().value().data(), &[1.0, 0.0, 0.0, 0.5, 0.5, 0.0]);
        let l = log_softmax(&x, 1).unwrap().tensor();
        assert_eq!(l.data()[0], 0.0);
        assert!(l.data()[1].is_finite() && l.data()[1] < -1e38, "{}", l.data()[1]);
        assert_eq!(l.data()[3], -(2f32.ln()));
    }
}
