//! Style-transfer costs against PyTorch (`tools/gen_style_fixtures.py`): J_content, the
//! weighted style cost over two layers and J, and the gradient of J with respect to the
//! generated picture's activations; plus a numerical gradient check.

use fovea::autograd::gradcheck;
use fovea::{Tensor, Var};
use fovea_vision::style::{content_cost, style_cost, total_cost};
use std::collections::BTreeMap;
use std::path::Path;

fn fixtures() -> BTreeMap<String, Tensor> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/style.safetensors");
    fovea::io::read_safetensors(&path).unwrap().0.into_iter().collect()
}

/// (J_content, J_style, J) of the generated activations.
fn costs(f: &BTreeMap<String, Tensor>, g: &[Var]) -> fovea::Result<(Var, Var, Var)> {
    let w = f["weights"].data();
    let jc = content_cost(&f["content"], &g[0])?;
    let js =
        style_cost(&[(w[2], f["style_gram0"].clone(), g[0].clone()), (w[3], f["style_gram1"].clone(), g[1].clone())])?;
    let j = total_cost(w[0], &jc, w[1], &js)?;
    Ok((jc, js, j))
}

#[test]
fn style_transfer_costs_match_pytorch() {
    let f = fixtures();
    fovea::kernels::for_each_level(&[2], |_, _| costs_match_pytorch(&f));
}

fn costs_match_pytorch(f: &BTreeMap<String, Tensor>) {
    let g = [Var::param(f["generated0"].clone()), Var::param(f["generated1"].clone())];
    let (jc, js, j) = costs(f, &g).unwrap();
    for (name, v) in [("j_content", &jc), ("j_style", &js), ("total", &j)] {
        let (got, want) = (v.value().item().unwrap(), f[name].data()[0]);
        assert!((got - want).abs() <= 1e-5 * want.abs(), "{name}: {got} vs PyTorch {want}");
    }
    j.backward().unwrap();
    for (i, gi) in g.iter().enumerate() {
        let want = &f[&format!("grad{i}")];
        let scale = want.data().iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = gi.grad().unwrap().max_abs_diff(want) / scale;
        assert!(err < 1e-5, "dJ/dG{i} differs by {err:e} (relative)");
    }
}

#[test]
fn style_transfer_costs_pass_a_numerical_gradient_check() {
    let f = fixtures();
    let inputs = [f["generated0"].clone(), f["generated1"].clone()];
    let report = gradcheck(&inputs, |g| Ok(costs(&f, g)?.2), 1e-2, 40).unwrap();
    assert!(report.max_error < 2e-2, "gradient check error {}", report.max_error);
}
