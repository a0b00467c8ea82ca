//! Batch normalisation over `[N, C, *spatial]`, statistics per channel; L2 normalisation.
//!
//! Training: normalise with the batch mean and biased variance, and move the running
//! statistics by `momentum` (the running variance uses the unbiased estimate, as PyTorch).
//! Evaluation: normalise with the running statistics.

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::kernels::norm::{channel_grad_sums, channel_stats, channel_sums, input_grad, scale_shift, InputGrad};
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
    // synchronised batch norm: the statistics of the global batch, over every rank's shard
    let world = crate::dist::world();
    let synced = training && world.size() > 1 && world.syncs_batch_norm();
    let xd = tx.data();
    // the values per channel (in the global batch), and their sums
    let (m, sums) = match synced {
        true => {
            let mut sums = channel_sums(xd, (n, c, s), None);
            sums.push((n * s) as f64);
            world.sum_f64(&mut sums, "synchronised batch norm")?;
            (sums.pop().expect("pushed") as usize, sums)
        }
        false => (n * s, Vec::new()),
    };
    if training && m <= 1 {
        return Err(Error::shape(
            "batch_norm",
            format!("training needs more than one value per channel, input is {}", fmt_shape(&shape)),
        ));
    }
    let (mean, var): (Vec<f32>, Vec<f32>) = if synced {
        // two passes, as channel_stats: the mean, then the deviations from it
        let mean: Vec<f32> = sums.iter().map(|v| (v / m as f64) as f32).collect();
        let mut squares = channel_sums(xd, (n, c, s), Some(&mean));
        world.sum_f64(&mut squares, "synchronised batch norm")?;
        (mean, squares.iter().map(|v| (v / m as f64) as f32).collect())
    } else if training {
        channel_stats(xd, (n, c, s))
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
    // y = x·α + β per channel, α = γ/σ, β = b - μ·α (PyTorch's form)
    let alpha: Vec<f32> = (0..c).map(|ci| gamma[ci] * inv_std[ci]).collect();
    let shift: Vec<f32> = (0..c).map(|ci| beta[ci] - mean[ci] * alpha[ci]).collect();
    let y = scale_shift(xd, (n, c, s), &alpha, &shift);
    let mut parents = vec![x];
    parents.extend(weight);
    parents.extend(bias);
    let (has_w, has_b) = (weight.is_some(), bias.is_some());
    Ok(Var::from_op(
        Tensor::new(&shape, y)?,
        &parents,
        Box::new(move |g, needs| {
            let (gd, xd) = (g.data(), tx.data());
            // per channel: Σ g and Σ g·x̂, with x̂ = (x - μ)/σ recomputed rather than stored
            let (sum_g, sum_gx) = channel_grad_sums(gd, xd, (n, c, s), &mean, &inv_std);
            // synchronised: the input's gradient takes the global batch's sums (γ's and β's
            // are this shard's, summed over the ranks with the other gradients)
            let mut global = [sum_g.clone(), sum_gx.clone()].concat();
            if synced {
                // a failed sum leaves the world broken, and the step fails when it waits for
                // its gradients: what this gradient holds then does not matter
                let _ = crate::dist::world().sum_f64(&mut global, "synchronised batch norm");
            }
            let (global_g, global_gx) = global.split_at(c);
            let gx = needs[0].then(|| {
                let channels: Vec<InputGrad> = (0..c)
                    .map(|ci| {
                        let (mean_g, mean_gx) = if training {
                            ((global_g[ci] / m as f64) as f32, (global_gx[ci] / m as f64) as f32)
                        } else {
                            (0.0, 0.0)
                        };
                        InputGrad { mu: mean[ci], inv_std: inv_std[ci], k: gamma[ci] * inv_std[ci], mean_g, mean_gx }
                    })
                    .collect();
                Tensor::new(&shape, input_grad(gd, xd, (n, c, s), &channels)).expect("shape")
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

/// `x / sqrt(|x|² + eps²)` along `dim`: unit-length rows (FaceNet's embeddings live on the
/// unit hypersphere). Equal to PyTorch's `F.normalize(x, dim, eps)` wherever |x| >> eps,
/// and smooth at 0.
pub fn l2_normalize(x: &Var, dim: isize, eps: f32) -> Result<Var> {
    let norm = x.pow_scalar(2.0)?.sum_dim(dim, true)?.add_scalar(eps * eps)?.sqrt()?;
    x.div(&norm)
}
