//! Detection building blocks against the reference implementations
//! (`tools/gen_detect_fixtures.py`): torchvision's IoU and non-max suppression, and the
//! notes' YOLO encoding and loss and localization losses written independently in PyTorch,
//! and the PASCAL VOC devkit's mAP.

use fovea::{Tensor, Var};
use fovea_vision::detect::{
    iou_matrix, localization_loss, localization_loss_squared, mean_average_precision, nms, BBox, Corners, Detection,
    NmsOptions, Object, Scored, Truth, YoloGrid,
};
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

#[test]
fn yolo_targets_loss_and_gradient_match_the_reference() {
    let f = fixtures();
    let anchors: Vec<(f32, f32)> = f["yolo.anchors"].data().chunks(2).map(|a| (a[0], a[1])).collect();
    let grid = YoloGrid::new(4, anchors, 3).unwrap();
    let objects = f["yolo.objects"].data();
    let mut targets = Vec::new();
    let mut dropped = 0;
    for picture in 0..2 {
        let mine: Vec<Object> = objects
            .chunks(6)
            .filter(|o| o[5] as usize == picture)
            .map(|o| Object { bbox: BBox::new(o[0], o[1], o[2], o[3]), class: o[4] as usize })
            .collect();
        let (y, d) = grid.encode(&mine).unwrap();
        targets.extend_from_slice(y.data());
        dropped += d;
    }
    assert_eq!(dropped, 1, "the third object of picture 0 collides with the first");
    let target = Tensor::new(&[2, 4, 4, 3, 8], targets).unwrap();
    assert!(target.max_abs_diff(&f["yolo.target"]) < 1e-6, "the encoded targets differ");

    let output = Var::param(f["yolo.output"].clone());
    let loss = grid.loss(&output, &target).unwrap();
    let (got, want) = (loss.value().item().unwrap(), f["yolo.loss"].data()[0]);
    assert!((got - want).abs() <= 1e-5 * want, "loss {got} vs {want}");
    loss.backward().unwrap();
    let want = &f["yolo.grad"];
    let scale = want.data().iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = output.grad().unwrap().max_abs_diff(want) / scale;
    assert!(err < 1e-5, "gradient differs by {err:e} (relative)");
}

#[test]
fn localization_losses_match_pytorch() {
    let f = fixtures();
    for (name, loss) in [
        ("squared", localization_loss_squared as fn(&Var, &Tensor) -> fovea::Result<Var>),
        ("better", localization_loss),
    ] {
        let pred = Var::param(f["loc.pred"].clone());
        let l = loss(&pred, &f["loc.target"]).unwrap();
        let (got, want) = (l.value().item().unwrap(), f[&format!("loc.{name}")].data()[0]);
        assert!((got - want).abs() <= 1e-5 * want, "{name}: loss {got} vs {want}");
        l.backward().unwrap();
        let err = pred.grad().unwrap().max_abs_diff(&f[&format!("loc.{name}_grad")]);
        assert!(err < 1e-5, "{name}: gradient differs by {err}");
    }
}

#[test]
fn map_matches_the_voc_devkit() {
    let f = fixtures();
    let corners = |r: &[f32]| Corners { x0: r[1], y0: r[2], x1: r[3], y1: r[4] }.center_form();
    let truths: Vec<Truth> = f["map.truths"]
        .data()
        .chunks(6)
        .map(|r| Truth { image: r[0] as usize, bbox: corners(r), class: r[5] as usize })
        .collect();
    let detections: Vec<Scored> = f["map.detections"]
        .data()
        .chunks(7)
        .map(|r| Scored {
            image: r[0] as usize,
            detection: Detection { bbox: corners(r), class: r[5] as usize, score: r[6] },
        })
        .collect();
    let report = mean_average_precision(&detections, &truths, 3, 0.5, 0.0);
    let want = f["map.ap"].data();
    for (c, w) in report.per_class.iter().zip(want) {
        assert!((c.ap.unwrap() - *w as f64).abs() < 1e-6, "AP {:?} vs VOC's {w}", c.ap);
    }
    let mean = want.iter().map(|&v| v as f64).sum::<f64>() / 3.0;
    assert!((report.map - mean).abs() < 1e-6);
}
