//! The mined triplet losses against PyTorch (`tools/gen_triplet_fixtures.py`): loss and
//! gradient with respect to the raw embeddings, through the L2 normalisation. The gradient
//! only matches if both pick the same triplets.

use fovea::autograd::gradcheck;
use fovea::{ops, Tensor, Var};
use fovea_vision::face::triplet::{batch_triplet_loss, Mining};
use std::collections::BTreeMap;
use std::path::Path;

fn fixtures() -> BTreeMap<String, Tensor> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/triplet.safetensors");
    fovea::io::read_safetensors(&path).unwrap().0.into_iter().collect()
}

fn loss(raw: &Var, labels: &[usize], mining: Mining, margin: f32) -> fovea::Result<Var> {
    let e = ops::l2_normalize(raw, 1, 1e-12)?;
    Ok(batch_triplet_loss(&e, labels, mining, margin)?.expect("the batch has triplets").0)
}

#[test]
fn mined_triplet_losses_match_pytorch() {
    let f = fixtures();
    let labels: Vec<usize> = f["labels"].data().iter().map(|&v| v as usize).collect();
    let margin = f["margin"].data()[0];
    for (name, mining) in [("batch_hard", Mining::BatchHard), ("semi_hard", Mining::SemiHard)] {
        let raw = Var::param(f["raw"].clone());
        let l = loss(&raw, &labels, mining, margin).unwrap();
        let (got, want) = (l.value().item().unwrap(), f[&format!("{name}.loss")].data()[0]);
        assert!((got - want).abs() <= 1e-5 * want.abs(), "{name}: loss {got} vs PyTorch {want}");
        l.backward().unwrap();
        let want = &f[&format!("{name}.grad")];
        let scale = want.data().iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = raw.grad().unwrap().max_abs_diff(want) / scale;
        assert!(err < 1e-4, "{name}: gradient differs from PyTorch's by {err:e} (relative)");
    }
}

#[test]
fn mined_triplet_losses_pass_a_numerical_gradient_check() {
    let f = fixtures();
    let labels: Vec<usize> = f["labels"].data().iter().map(|&v| v as usize).collect();
    for mining in [Mining::BatchHard, Mining::SemiHard] {
        let report = gradcheck(&[f["raw"].clone()], |x| loss(&x[0], &labels, mining, 0.2), 1e-3, 40).unwrap();
        assert!(report.max_error < 2e-2, "{mining:?}: gradient check error {}", report.max_error);
    }
}
