//! face-api (issue 4): fovea's TF.js manifest loader reads the four shipped networks as
//! TensorFlow.js decodes them (tools/faceapi/gen_weights.js: tf.io.decodeWeights): the
//! same tensors and shapes, every sampled value bit for bit, the same sums. And the
//! reference answers on the sample photos (tools/faceapi/gen_faces.js) were computed on
//! fovea's pixels.

use std::path::Path;

#[test]
fn face_api_weights_decode_as_tfjs_decodes_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("crates/fovea-vision/tests/fixtures/faceapi_weights.json")).unwrap(),
    )
    .unwrap();
    let step = fixture["step"].as_u64().unwrap() as usize;
    for (model, count) in
        [("tiny_face_detector", 19), ("ssd_mobilenetv1", 151), ("face_landmark_68", 49), ("face_recognition", 117)]
    {
        let path = root.join(format!("models/face-api/{model}_model-weights_manifest.json"));
        let ours = fovea::io::read_tfjs_manifest(&path).unwrap();
        let theirs = fixture["models"][model].as_object().unwrap();
        assert_eq!((ours.len(), theirs.len()), (count, count), "{model}");
        for (name, t) in theirs {
            let got = &ours[name];
            let shape: Vec<usize> =
                t["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            assert_eq!(got.shape(), shape, "{model} {name}");
            let sampled: Vec<f32> = got.data().iter().step_by(step).copied().collect();
            let want: Vec<f32> = t["sampled"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            assert_eq!(sampled, want, "{model} {name}: sampled values");
            let sum: f64 = got.data().iter().map(|&v| v as f64).sum();
            let want_sum = t["sum"].as_f64().unwrap();
            assert!(
                (sum - want_sum).abs() <= 1e-9 * want_sum.abs().max(1.0),
                "{model} {name}: sum {sum} vs {want_sum}"
            );
        }
    }
    // graph constants stored as quantised int32 come out as integers
    let ssd = fovea::io::read_tfjs_manifest(&root.join("models/face-api/ssd_mobilenetv1_model-weights_manifest.json"))
        .unwrap();
    assert_eq!(ssd["Postprocessor/Slice/begin"].data(), [0.0, 0.0, 1.0]);
    assert_eq!(ssd["Output/extra_dim"].shape(), [1, 5118, 4]);
}

/// face-api's answers on the sample photos (tools/faceapi/gen_faces.js) were computed on
/// fovea's own decoding of them: the same sizes and pixel sums, so later comparisons of
/// boxes, landmarks and descriptors compare like with like.
#[test]
fn the_face_fixture_was_made_from_foveas_pixels() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("crates/fovea-vision/tests/fixtures/faceapi_faces.json")).unwrap(),
    )
    .unwrap();
    let images = fixture["images"].as_object().unwrap();
    assert_eq!(images.len(), 6);
    for (name, want) in images {
        let rgb = fovea_vision::image::load_rgb(&root.join(format!("data/faces/{name}.jpg"))).unwrap();
        let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
        let sum: u64 = rgb.data().iter().map(|&v| (v * 255.0).round() as u64).sum();
        assert_eq!(
            (w as u64, h as u64, sum),
            (want["width"].as_u64().unwrap(), want["height"].as_u64().unwrap(), want["pixel_sum"].as_u64().unwrap()),
            "{name}"
        );
        for detector in ["tiny", "ssd"] {
            for face in want[detector].as_array().unwrap() {
                assert_eq!(face["landmarks"].as_array().unwrap().len(), 68);
                assert_eq!(face["descriptor"].as_array().unwrap().len(), 128);
            }
        }
    }
}

fn faces_fixture() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/faceapi_faces.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `detect` finds face-api's faces (fixture key `key`) on every sample photo, in its order,
/// with its boxes (within 0.01 px) and scores (within 1e-5).
fn check_detector(key: &str, detect: impl Fn(&fovea::Tensor) -> Vec<fovea_vision::face::Detection>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (name, want) in faces_fixture()["images"].as_object().unwrap() {
        let rgb = fovea_vision::image::load_rgb(&root.join(format!("data/faces/{name}.jpg"))).unwrap();
        let got = detect(&rgb);
        let want = want[key].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name} {key}: {got:?}");
        for (g, w) in got.iter().zip(want) {
            let b = &w["box"];
            let f = |k: &str| b[k].as_f64().unwrap();
            let err = [(g.x, f("x")), (g.y, f("y")), (g.width, f("width")), (g.height, f("height"))]
                .iter()
                .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(err < 0.01, "{name} {key}: box {g:?} vs {b} ({err} px)");
            let score = w["score"].as_f64().unwrap();
            assert!((g.score - score).abs() < 1e-5, "{name} {key}: score {} vs {score}", g.score);
        }
    }
}

#[test]
fn tiny_face_detector_equals_face_api() {
    fovea::kernels::for_each_level(&[2], |_, _| {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/face-api");
        let detector =
            fovea_vision::face::TinyFaceDetector::load(&models.join("tiny_face_detector_model-weights_manifest.json"))
                .unwrap();
        check_detector("tiny", |rgb| detector.detect(rgb, 416, 0.5).unwrap());
    });
}

#[test]
fn ssd_face_detector_equals_face_api() {
    fovea::kernels::for_each_level(&[2], |_, _| {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/face-api");
        let detector =
            fovea_vision::face::SsdMobilenetV1::load(&models.join("ssd_mobilenetv1_model-weights_manifest.json"))
                .unwrap();
        check_detector("ssd", |rgb| detector.detect(rgb, 0.5, 100).unwrap());
    });
}

/// The 68 landmarks of every face either detector finds equal face-api's (within
/// 0.01 px), chained as face-api chains them (crop, net, shift by the box corner).
#[test]
fn landmarks_equal_face_api() {
    fovea::kernels::for_each_level(&[2], |_, _| {
        use fovea_vision::face::{FaceLandmarkNet, SsdMobilenetV1, TinyFaceDetector};
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let models = root.join("models/face-api");
        let tiny = TinyFaceDetector::load(&models.join("tiny_face_detector_model-weights_manifest.json")).unwrap();
        let ssd = SsdMobilenetV1::load(&models.join("ssd_mobilenetv1_model-weights_manifest.json")).unwrap();
        let net = FaceLandmarkNet::load(&models.join("face_landmark_68_model-weights_manifest.json")).unwrap();
        let mut compared = 0;
        for (name, want) in faces_fixture()["images"].as_object().unwrap() {
            let rgb = fovea_vision::image::load_rgb(&root.join(format!("data/faces/{name}.jpg"))).unwrap();
            for (detector, faces) in
                [("tiny", tiny.detect(&rgb, 416, 0.5).unwrap()), ("ssd", ssd.detect(&rgb, 0.5, 100).unwrap())]
            {
                for (det, w) in faces.iter().zip(want[detector].as_array().unwrap()) {
                    let got = net.landmarks(&rgb, det).unwrap();
                    let want = w["landmarks"].as_array().unwrap();
                    assert_eq!(got.len(), 68);
                    for (g, p) in got.iter().zip(want) {
                        let err = (g[0] - p[0].as_f64().unwrap()).abs().max((g[1] - p[1].as_f64().unwrap()).abs());
                        compared += 1;
                        assert!(err < 0.01, "{name} {detector}: {g:?} vs {p} ({err} px)");
                    }
                }
            }
        }
        // 20 faces from the tiny detector and 22 from SSD, 68 points each
        assert_eq!(compared, 42 * 68);
    });
}

/// The whole chain (`Pipeline`: detector, landmarks, dlib-aligned crop, recognition net)
/// gives each face's 128-D descriptor within 1e-4 per element of face-api's.
#[test]
fn descriptors_equal_face_api() {
    fovea::kernels::for_each_level(&[2], |_, _| {
        use fovea_vision::face::{Detector, Pipeline, Stage};
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let models = root.join("models/face-api");
        let mut compared = 0;
        for (detector, key) in
            [(Detector::Tiny { input_size: 416 }, "tiny"), (Detector::Ssd { max_results: 100 }, "ssd")]
        {
            let pipeline = Pipeline::load(&models, detector, Stage::Embed).unwrap();
            for (name, want) in faces_fixture()["images"].as_object().unwrap() {
                let rgb = fovea_vision::image::load_rgb(&root.join(format!("data/faces/{name}.jpg"))).unwrap();
                let faces = pipeline.run(&rgb, 0.5).unwrap();
                let want = want[key].as_array().unwrap();
                assert_eq!(faces.len(), want.len(), "{name} {key}");
                for (got, w) in faces.iter().zip(want) {
                    let want: Vec<f64> =
                        w["descriptor"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                    let err = got.descriptor.iter().zip(&want).fold(0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
                    assert!(err < 1e-4, "{name} {key}: descriptor differs by {err}");
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, 42);
    });
}
