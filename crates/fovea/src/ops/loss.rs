//! Losses, each the mean over the batch: softmax cross-entropy from logits, binary
//! cross-entropy with logits, mean squared error, triplet loss.

use super::activation::log_softmax;
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::tensor::{fmt_shape, Tensor};

/// Softmax cross-entropy of `logits [N, C]` against class indices `targets` (length N).
pub fn cross_entropy(logits: &Var, targets: &[usize]) -> Result<Var> {
    let shape = logits.shape();
    if shape.len() != 2 || shape[0] != targets.len() {
        return Err(Error::shape(
            "cross_entropy",
            format!("logits {} do not fit {} targets (expected [N, C])", fmt_shape(&shape), targets.len()),
        ));
    }
    let (n, c) = (shape[0], shape[1]);
    if let Some(&bad) = targets.iter().find(|&&t| t >= c) {
        return Err(Error::Invalid(format!("cross_entropy: target class {bad} is out of range for {c} classes")));
    }
    let logp = log_softmax(logits, 1)?;
    let lp = logp.tensor();
    let loss = -targets.iter().enumerate().map(|(i, &t)| lp.data()[i * c + t] as f64).sum::<f64>() / n as f64;
    let targets = targets.to_vec();
    Ok(Var::from_op(
        Tensor::scalar(loss as f32),
        &[&logp],
        Box::new(move |g, _| {
            let mut d = vec![0.0f32; n * c];
            let s = -g.data()[0] / n as f32;
            for (i, &t) in targets.iter().enumerate() {
                d[i * c + t] = s;
            }
            vec![Some(Tensor::new(&[n, c], d).expect("shape"))]
        }),
    ))
}

fn same_shape(op: &'static str, a: &Var, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::shape(
            op,
            format!("input {} and target {} differ", fmt_shape(&a.shape()), fmt_shape(b.shape())),
        ));
    }
    Ok(())
}

/// mean(max(x, 0) - x·t + log(1 + exp(-|x|))), the stable form of BCE(sigmoid(x), t).
pub fn bce_with_logits(logits: &Var, target: &Tensor) -> Result<Var> {
    same_shape("bce_with_logits", logits, target)?;
    let x = logits.tensor();
    let n = x.numel().max(1) as f64;
    let loss: f64 = x
        .data()
        .iter()
        .zip(target.data())
        .map(|(&x, &t)| (x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()) as f64)
        .sum::<f64>()
        / n;
    let t = target.clone();
    Ok(Var::from_op(
        Tensor::scalar(loss as f32),
        &[logits],
        Box::new(move |g, _| {
            let s = g.data()[0] / n as f32;
            let d = x.data().iter().zip(t.data()).map(|(&x, &t)| s * (1.0 / (1.0 + (-x).exp()) - t)).collect();
            vec![Some(Tensor::new(x.shape(), d).expect("shape"))]
        }),
    ))
}

/// mean((x - t)²).
pub fn mse_loss(x: &Var, target: &Tensor) -> Result<Var> {
    same_shape("mse_loss", x, target)?;
    let tx = x.tensor();
    let n = tx.numel().max(1) as f64;
    let loss = tx.data().iter().zip(target.data()).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum::<f64>() / n;
    let t = target.clone();
    Ok(Var::from_op(
        Tensor::scalar(loss as f32),
        &[x],
        Box::new(move |g, _| {
            let s = 2.0 * g.data()[0] / n as f32;
            let d = tx.data().iter().zip(t.data()).map(|(&a, &b)| s * (a - b)).collect();
            vec![Some(Tensor::new(tx.shape(), d).expect("shape"))]
        }),
    ))
}

/// The notes' triplet loss, mean over the rows of `[N, D]` embeddings:
/// max(|a - p|² - |a - n|² + margin, 0). Distances are squared, as FaceNet's (PyTorch's
/// `triplet_margin_loss` uses plain ones).
pub fn triplet_loss(anchor: &Var, positive: &Var, negative: &Var, margin: f32) -> Result<Var> {
    let shape = anchor.shape();
    if shape.len() != 2 || shape[0] == 0 || positive.shape() != shape || negative.shape() != shape {
        return Err(Error::shape(
            "triplet_loss",
            format!(
                "anchor {}, positive {} and negative {} must be the same [N, D], N >= 1",
                fmt_shape(&shape),
                fmt_shape(&positive.shape()),
                fmt_shape(&negative.shape())
            ),
        ));
    }
    // the differences and their squares, kept for backward: a few [N, D] at once
    crate::tensor::checked_numel("triplet_loss", &[8, shape[0], shape[1]])?;
    let squared_distance = |a: &Var, b: &Var| a.sub(b)?.pow_scalar(2.0)?.sum_dim(1, false);
    let positive = squared_distance(anchor, positive)?;
    let negative = squared_distance(anchor, negative)?;
    positive.sub(&negative)?.add_scalar(margin)?.relu()?.mean()
}
