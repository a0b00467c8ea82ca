//! Numerical gradient check: compares `backward()` with central finite differences.

use super::Var;
use crate::error::Result;
use crate::tensor::Tensor;
use crate::Rng;

/// The worst disagreement found by [`gradcheck`].
#[derive(Debug)]
pub struct GradcheckReport {
    /// Largest |analytic - numeric| / max(1, |numeric|) over all checked entries.
    pub max_error: f32,
    /// (input index, element index) where it occurred.
    pub worst_at: (usize, usize),
    /// Elements checked.
    pub checked: usize,
    /// Elements skipped because the function is not smooth there (a ReLU kink or a max-pool
    /// tie within `eps`): differences with `eps` and `eps/2` disagree.
    pub skipped: usize,
}

/// Checks the gradients of `f` with respect to every input. The output of `f` is reduced
/// to a scalar by a fixed random projection so that every output element matters.
/// At most `max_checks` elements per input are perturbed (spread evenly).
/// Points where the function is not smooth within `eps` are skipped and counted.
pub fn gradcheck(
    inputs: &[Tensor],
    f: impl Fn(&[Var]) -> Result<Var>,
    eps: f32,
    max_checks: usize,
) -> Result<GradcheckReport> {
    let vars: Vec<Var> = inputs.iter().map(|t| Var::param(t.clone())).collect();
    let out = f(&vars)?;
    let projection = Tensor::rand_uniform(&out.shape(), -1.0, 1.0, &mut Rng::new(7));
    let project =
        |y: &Tensor| -> f64 { y.data().iter().zip(projection.data()).map(|(&a, &b)| a as f64 * b as f64).sum() };
    out.backward_with(projection.clone())?;

    let mut report = GradcheckReport { max_error: 0.0, worst_at: (0, 0), checked: 0, skipped: 0 };
    for (i, input) in inputs.iter().enumerate() {
        let analytic = vars[i].grad().unwrap_or_else(|| Tensor::zeros(input.shape()));
        let n = input.numel();
        let step = (n / max_checks.max(1)).max(1);
        for j in (0..n).step_by(step) {
            let eval = |delta: f32| -> Result<f64> {
                let mut perturbed = input.clone();
                perturbed.data_mut()[j] += delta;
                let vs: Vec<Var> = inputs
                    .iter()
                    .enumerate()
                    .map(|(k, t)| Var::constant(if k == i { perturbed.clone() } else { t.clone() }))
                    .collect();
                Ok(project(&f(&vs)?.value()))
            };
            let numeric = ((eval(eps)? - eval(-eps)?) / (2.0 * eps as f64)) as f32;
            let half = ((eval(eps / 2.0)? - eval(-eps / 2.0)?) / eps as f64) as f32;
            if (numeric - half).abs() > (0.05 * numeric.abs()).max(2e-3) {
                report.skipped += 1;
                continue;
            }
            report.checked += 1;
            let err = (analytic.data()[j] - numeric).abs() / numeric.abs().max(1.0);
            if err > report.max_error {
                report.max_error = err;
                report.worst_at = (i, j);
            }
        }
    }
    Ok(report)
}
