//! Object localization, the notes' first step: one object (or none) per picture, and a
//! network that outputs y = [pc, bx, by, bh, bw, c1 .. cC] with the box relative to the
//! picture.

use fovea::{ops, Error, Result, Tensor, Var};

fn check(op: &'static str, pred: &Var, target: &Tensor) -> Result<(usize, usize)> {
    let shape = pred.shape();
    if shape.len() != 2 || shape[1] < 6 || target.shape() != shape {
        return Err(Error::shape(
            op,
            format!("prediction {shape:?} and target {:?} must both be [N, 5 + C]", target.shape()),
        ));
    }
    Ok((shape[0], shape[1]))
}

/// The notes' loss, averaged over the batch: the squared error of all 5 + C values where
/// the target has pc = 1, of pc alone where pc = 0.
pub fn localization_loss_squared(pred: &Var, target: &Tensor) -> Result<Var> {
    let (n, d) = check("localization_loss_squared", pred, target)?;
    let mask: Vec<f32> = target
        .data()
        .chunks(d)
        .flat_map(|y| (0..d).map(move |j| if y[0] == 1.0 || j == 0 { 1.0 } else { 0.0 }))
        .collect();
    let diff = ops::sub(pred, &Var::constant(target.clone()))?;
    let masked = ops::mul(&ops::pow_scalar(&diff, 2.0), &Var::constant(Tensor::new(&[n, d], mask)?))?;
    Ok(ops::mul_scalar(&ops::sum(&masked), 1.0 / n as f32))
}

/// The better variant the notes mention, averaged over the batch: the logistic loss of pc
/// (the prediction's first value is its logit) for every picture; where pc = 1, plus the
/// squared error of the four box values and the log loss of the class (softmax over the
/// class logits).
pub fn localization_loss(pred: &Var, target: &Tensor) -> Result<Var> {
    let (n, d) = check("localization_loss", pred, target)?;
    let y = target.data();
    let pc = Tensor::new(&[n, 1], y.chunks(d).map(|r| r[0]).collect())?;
    let mut total = ops::mul_scalar(&ops::bce_with_logits(&ops::narrow(pred, 1, 0, 1)?, &pc)?, n as f32);
    let objects: Vec<usize> = (0..n).filter(|&i| y[i * d] == 1.0).collect();
    if !objects.is_empty() {
        let m = objects.len();
        let picked = ops::index_select(pred, 0, &objects)?;
        let boxes = Tensor::new(&[m, 4], objects.iter().flat_map(|&i| y[i * d + 1..i * d + 5].to_vec()).collect())?;
        let classes: Vec<usize> =
            objects.iter().map(|&i| y[i * d + 5..(i + 1) * d].iter().position(|&c| c == 1.0).unwrap_or(0)).collect();
        let box_loss = ops::mul_scalar(&ops::mse_loss(&ops::narrow(&picked, 1, 1, 4)?, &boxes)?, 4.0 * m as f32);
        let class_loss = ops::mul_scalar(&ops::cross_entropy(&ops::narrow(&picked, 1, 5, d - 5)?, &classes)?, m as f32);
        total = ops::add(&total, &ops::add(&box_loss, &class_loss)?)?;
    }
    Ok(ops::mul_scalar(&total, 1.0 / n as f32))
}
