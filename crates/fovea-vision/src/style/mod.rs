//! Neural style transfer's costs (Gatys et al. 2015, as the notes write them): a content
//! cost at one layer, style matrices (Gram matrices) and a style cost over several layers,
//! and their weighted sum J(G) = α J_content + β J_style. All are differentiable in the
//! generated picture's activations, so the picture itself can be optimised.

use fovea::{ops, Error, Result, Tensor, Var};

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
    ops::matmul(&m, &ops::permute(&m, &[1, 0])?)
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
    Ok(ops::sum(&ops::pow_scalar(&d, 2.0)))
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
    Ok(ops::mul_scalar(&ops::sum(&ops::pow_scalar(&d, 2.0)), (1.0 / norm) as f32))
}

/// J_style = Σ_l λ[l] J_style[l] over `(λ, style Gram matrix, generated activations)`.
pub fn style_cost(layers: &[(f32, Tensor, Var)]) -> Result<Var> {
    let mut total = Var::constant(Tensor::scalar(0.0));
    for (lambda, gram, a) in layers {
        total = ops::add(&total, &ops::mul_scalar(&layer_style_cost(gram, a)?, *lambda))?;
    }
    Ok(total)
}

/// J(G) = α J_content + β J_style.
pub fn total_cost(alpha: f32, content: &Var, beta: f32, style: &Var) -> Result<Var> {
    ops::add(&ops::mul_scalar(content, alpha), &ops::mul_scalar(style, beta))
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
