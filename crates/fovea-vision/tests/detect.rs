//! Detection building blocks against the reference implementations
//! (`tools/gen_detect_fixtures.py`): torchvision's IoU and non-max suppression.

use fovea::Tensor;
use fovea_vision::detect::{iou_matrix, nms, BBox, Corners, Detection, NmsOptions};
use std::collections::BTreeMap;
use std::path::Path;

fn fixtures() -> BTreeMap<String, Tensor> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/detect.safetensors");
    fovea::io::read_safetensors(&path).unwrap().0.into_iter().collect()
}

fn boxes(t: &Tensor) -> Vec<BBox> {
    t.data().chunks(4).map(|c| Corners { x0: c[0], y0: c[1], x1: c[2], y1: c[3] }.center_form()).collect()
}

#[test]
fn iou_matrix_matches_torchvision() {
    let f = fixtures();
    let got = iou_matrix(&boxes(&f["iou.a"]), &boxes(&f["iou.b"]));
    let want = f["iou.out"].data();
    let err = got.iter().zip(want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err < 1e-5, "IoU differs from torchvision's by {err}");
    assert!(want.iter().filter(|&&v| v > 0.0).count() > 20, "the fixture has overlapping boxes");
}

#[test]
fn nms_keeps_what_torchvision_keeps() {
    let f = fixtures();
    let classes = f["nms.classes"].data();
    let detections: Vec<Detection> = boxes(&f["nms.boxes"])
        .into_iter()
        .zip(f["nms.scores"].data())
        .zip(classes)
        .map(|((bbox, &score), &class)| Detection { bbox, class: class as usize, score })
        .collect();
    let keep = nms(&detections, &NmsOptions { max_detections: usize::MAX, ..Default::default() });
    let want: Vec<usize> = f["nms.keep"].data().iter().map(|&v| v as usize).collect();
    assert_eq!(keep, want);
}
