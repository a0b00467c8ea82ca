//! Batch normalisation over `[N, C, *spatial]`, statistics per channel.
//!
//! Training: normalise with the batch mean and biased variance, and move the running
//! statistics by `momentum` (the running variance uses the unbiased estimate, as PyTorch).
//! Evaluation: normalise with the running statistics.

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::tensor::{fmt_shape, Tensor};

/// Batch norm of `x` with optional affine `weight`/`bias` `[C]` and running statistics `[C]`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    x: &Var,
    weight: Option<&Var>,
    bias: Option<&Var>,
    running_mean: Option<&Var>,
    running_var: Option<&Var>,
    training: bool,
    momentum: f32,
    eps: f32,
) -> Result<Var> {
    let tx = x.tensor();
    let shape = tx.shape().to_vec();
    if shape.len() < 2 {
        return Err(Error::shape("batch_norm", format!("expected [N, C, ...], got {}", fmt_shape(&shape))));
    }
    let (n, c) = (shape[0], shape[1]);
    let s: usize = shape[2..].iter().product();
    for (name, v) in [("weight", weight), ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)]
    {
        if let Some(v) = v {
            if v.shape() != [c] {
                return Err(Error::shape(
                    "batch_norm",
                    format!(
                        "{name} {} does not fit input {} with {c} channels",
                        fmt_shape(&v.shape()),
                        fmt_shape(&shape)
                    ),
                ));
            }
        }
    }
    let m = n * s;
    if training && m <= 1 {
        return Err(Error::shape(
            "batch_norm",
            format!("training needs more than one value per channel, input is {}", fmt_shape(&shape)),
        ));
    }
    let xd = tx.data();
    let at = move |ni: usize, ci: usize| (ni * c + ci) * s;
    let (mean, var): (Vec<f32>, Vec<f32>) = if training {
        (0..c)
            .map(|ci| {
                let (mut sum, mut sq) = (0.0f64, 0.0f64);
                for ni in 0..n {
                    for &v in &xd[at(ni, ci)..at(ni, ci) + s] {
                        sum += v as f64;
                    }
                }
                let mu = sum / m as f64;
                for ni in 0..n {
                    for &v in &xd[at(ni, ci)..at(ni, ci) + s] {
                        sq += (v as f64 - mu) * (v as f64 - mu);
                    }
                }
                (mu as f32, (sq / m as f64) as f32)
            })
            .unzip()
    } else {
        let rm =
            running_mean.ok_or_else(|| Error::Invalid("batch_norm: evaluation needs running statistics".into()))?;
        let rv = running_var.ok_or_else(|| Error::Invalid("batch_norm: evaluation needs running statistics".into()))?;
        let (rm, rv) = (rm.tensor(), rv.tensor());
        (rm.data().to_vec(), rv.data().to_vec())
    };
    if training {
        let unbias = m as f32 / (m as f32 - 1.0);
        if let Some(rm) = running_mean {
            rm.update(|t| {
                t.data_mut().iter_mut().zip(&mean).for_each(|(r, &b)| *r = (1.0 - momentum) * *r + momentum * b)
            });
        }
        if let Some(rv) = running_var {
            rv.update(|t| {
                t.data_mut().iter_mut().zip(&var).for_each(|(r, &b)| *r = (1.0 - momentum) * *r + momentum * b * unbias)
            });
        }
    }
    let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let gamma = weight.map(|w| w.tensor().data().to_vec()).unwrap_or_else(|| vec![1.0; c]);
    let beta = bias.map(|b| b.tensor().data().to_vec()).unwrap_or_else(|| vec![0.0; c]);
    let mut xhat = vec![0.0f32; xd.len()];
    let mut y = vec![0.0f32; xd.len()];
    for ni in 0..n {
        for ci in 0..c {
            let r = at(ni, ci)..at(ni, ci) + s;
            for ((h, o), &v) in xhat[r.clone()].iter_mut().zip(&mut y[r.clone()]).zip(&xd[r]) {
                *h = (v - mean[ci]) * inv_std[ci];
                *o = gamma[ci] * *h + beta[ci];
            }
        }
    }
    let mut parents = vec![x];
    parents.extend(weight);
    parents.extend(bias);
    let (has_w, has_b) = (weight.is_some(), bias.is_some());
    Ok(Var::from_op(
        Tensor::new(&shape, y)?,
        &parents,
        Box::new(move |g, needs| {
            let gd = g.data();
            // per channel: Σ g and Σ g·x̂
            let mut sum_g = vec![0.0f64; c];
            let mut sum_gx = vec![0.0f64; c];
            for ni in 0..n {
                for ci in 0..c {
                    let r = at(ni, ci)..at(ni, ci) + s;
                    for (&gv, &h) in gd[r.clone()].iter().zip(&xhat[r]) {
                        sum_g[ci] += gv as f64;
                        sum_gx[ci] += (gv * h) as f64;
                    }
                }
            }
            let gx = needs[0].then(|| {
                let mut dx = vec![0.0f32; gd.len()];
                for ni in 0..n {
                    for ci in 0..c {
                        let r = at(ni, ci)..at(ni, ci) + s;
                        let k = gamma[ci] * inv_std[ci];
                        if training {
                            let (mg, mgx) = ((sum_g[ci] / m as f64) as f32, (sum_gx[ci] / m as f64) as f32);
                            for ((d, &gv), &h) in dx[r.clone()].iter_mut().zip(&gd[r.clone()]).zip(&xhat[r]) {
                                *d = k * (gv - mg - h * mgx);
                            }
                        } else {
                            for (d, &gv) in dx[r.clone()].iter_mut().zip(&gd[r]) {
                                *d = k * gv;
                            }
                        }
                    }
                }
                Tensor::new(&shape, dx).expect("shape")
            });
            let to_tensor = |v: &[f64]| Tensor::new(&[c], v.iter().map(|&x| x as f32).collect()).expect("shape");
            let mut grads = vec![gx];
            let mut i = 1;
            if has_w {
                grads.push(needs[i].then(|| to_tensor(&sum_gx)));
                i += 1;
            }
            if has_b {
                grads.push(needs[i].then(|| to_tensor(&sum_g)));
            }
            grads
        }),
    ))
}
