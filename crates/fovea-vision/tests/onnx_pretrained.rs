//! Real pretrained CNNs from PyPI, run by fovea's ONNX runtime, equal onnxruntime's
//! outputs on the same pictures (tools/gen_onnx_pretrained.py): PaddleOCR's PP-OCRv4 text
//! detector and recogniser and its direction classifier, from rapidocr-onnxruntime's
//! wheel (Apache License 2.0). The models are fetched into target/onnx-models/ppocr by
//! `python3 tools/gen_onnx_pretrained.py --fetch-only` (as .ci/run does); without them
//! the test says so and passes, unless FOVEA_REQUIRE_CLIENTS is set.

#[path = "common/torchvision_fixture.rs"]
mod fixture;

use fovea::graph::{Graph, Value};
use std::path::{Path, PathBuf};

fn models() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/onnx-models/ppocr");
    if dir.join("ch_PP-OCRv4_det_infer.onnx").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("FOVEA_REQUIRE_CLIENTS").is_none(),
        "no models in {}: python3 tools/gen_onnx_pretrained.py --fetch-only",
        dir.display()
    );
    eprintln!("skipped: no models in {} (python3 tools/gen_onnx_pretrained.py --fetch-only)", dir.display());
    None
}

/// The model `file` on the picture `key`.png, preprocessed as rapidocr does, against
/// onnxruntime's output.
fn check(file: &str, key: &str) {
    let Some(dir) = models() else { return };
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx_pretrained");
    let rgb = fovea_vision::image::load_rgb(&fixtures.join(format!("{key}.png"))).unwrap();
    let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
    let x = rgb.map(|v| (v - 0.5) / 0.5).reshape(&[1, 3, h, w]).unwrap();
    let graph = Graph::load(&dir.join(file), &[("x".to_string(), vec![1, 3, h, w])]).unwrap();
    let want = &fovea::io::read_safetensors(&fixtures.join("outputs.safetensors")).unwrap().0[key];
    fovea::kernels::for_each_level(&[2], |_, _| {
        let y = graph.run(vec![Value::float(x.clone())]).unwrap().remove(0);
        let y = y.tensor("output").unwrap();
        fixture::assert_close_to_largest(file, y, want, 1e-4);
    });
}

#[test]
fn ppocr_text_detector_equals_onnxruntime() {
    check("ch_PP-OCRv4_det_infer.onnx", "det");
}

#[test]
fn ppocr_text_recogniser_equals_onnxruntime() {
    check("ch_PP-OCRv4_rec_infer.onnx", "rec");
}

#[test]
fn ppocr_direction_classifier_equals_onnxruntime() {
    check("ch_ppocr_mobile_v2.0_cls_infer.onnx", "cls");
}
