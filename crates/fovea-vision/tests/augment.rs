//! Augmentation geometry against PyTorch and numpy (`tools/gen_augment_fixtures.py`):
//! pictures resampled through rotation, shear, crop and mirror maps equal
//! `grid_sample(align_corners=False)`, and the PCA colour axes equal `numpy.linalg.eigh`.

use fovea::Tensor;
use fovea_vision::augment::{warp_affine, Affine, ColorPca};
use std::collections::BTreeMap;
use std::path::Path;

fn fixtures() -> BTreeMap<String, Tensor> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/augment.safetensors");
    fovea::io::read_safetensors(&path).unwrap().0.into_iter().collect()
}

#[test]
fn affine_resampling_matches_grid_sample() {
    // at every level: the AVX2 level gathers eight pixels at a time
    let f = fixtures();
    fovea::kernels::for_each_level(&[1], |_, _| {
        for name in ["rotate", "shear", "crop", "mirror"] {
            let m: [f32; 6] = f[&format!("{name}_map")].data().try_into().unwrap();
            let got = warp_affine(&f["picture"], &Affine(m)).unwrap();
            let err = got.max_abs_diff(&f[&format!("{name}_out")]);
            assert!(err < 1e-5, "{name}: differs from grid_sample by {err}");
        }
    });
}

#[test]
fn color_pca_matches_numpy() {
    let f = fixtures();
    let pca = ColorPca::fit(&f["pca_pixels"]).unwrap();
    for (i, (std, axis)) in pca.std.iter().zip(&pca.axes).enumerate() {
        let want_std = f["pca_std"].data()[i];
        assert!((std - want_std).abs() < 1e-4 * want_std.max(1e-2), "sigma {i}: {std} vs {want_std}");
        // eigenvectors are defined up to sign
        let want = &f["pca_axes"].data()[i * 3..i * 3 + 3];
        let dot: f32 = axis.iter().zip(want).map(|(a, b)| a * b).sum();
        assert!((dot.abs() - 1.0).abs() < 1e-4, "axis {i}: {axis:?} vs {want:?}");
    }
}
