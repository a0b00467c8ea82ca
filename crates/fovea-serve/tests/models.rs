//! Object detection and scene classification over HTTP answer as the library does: a YOLO
//! run and a classifier run, trained briefly here, served and compared with the library's
//! own calls on the same pictures.

mod common;

use common::*;
use fovea_serve::{ServeConfig, Service};
use fovea_vision::detect::dataset::write_shapes;
use fovea_vision::detect::{detector, train_yolo, NmsOptions, YoloConfig};
use fovea_vision::run::{Classifier, Run, RunConfig};
use serde_json::json;

#[test]
fn detection_custom_models_and_scene_answer_as_the_library_does() {
    let dir = tempfile::tempdir().unwrap();
    let shapes = dir.path().join("shapes");
    write_shapes(&shapes, 40, 3, &Default::default(), false).unwrap();
    let models = dir.path().join("models");
    let yolo = YoloConfig { data: Some(shapes.clone()), epochs: 1, ..YoloConfig::default() };
    train_yolo(&yolo, &models.join("shapes"), false, &mut ()).unwrap();
    let fashion = dir.path().join("fashion");
    let run = RunConfig { train_size: Some(300), epochs: 1, ..RunConfig::default() };
    Run::start(&run, &fashion, false, &mut ()).unwrap().fit(&mut ()).unwrap();

    let config = ServeConfig {
        detector_models: Some(models.clone()),
        detector: Some("shapes".into()),
        classifier: Some(fashion.clone()),
        ..config(dir.path())
    };
    let server = Server::start(&config);
    let picture = shapes.join("images/000001.png");
    let bytes = std::fs::read(&picture).unwrap();

    // the library's answer on the same picture, at the same threshold
    let (run, net) = detector::load_detector(&models.join("shapes")).unwrap();
    let rgb = fovea_vision::image::load_rgb(&picture).unwrap();
    let options = NmsOptions { score_threshold: 0.01, ..NmsOptions::default() };
    let expected = detector::detect_picture(&run, &net, &rgb, &options).unwrap();
    assert!(!expected.is_empty());
    for path in ["/v1/vision/detection", "/v1/vision/custom/shapes"] {
        let (s, answer) =
            post(&server, path, &[Part::Text("min_confidence", "0.01"), Part::File("image", "p.png", bytes.clone())]);
        assert_eq!(s, 200, "{answer}");
        let found = answer["predictions"].as_array().unwrap();
        assert_eq!(found.len(), expected.len(), "{answer}");
        for (f, e) in found.iter().zip(&expected) {
            assert_eq!(f["label"], e.class.as_str());
            assert!((f["confidence"].as_f64().unwrap() - e.score as f64).abs() < 1e-6);
            let b = e.bbox;
            assert_eq!(f["x_min"], b.x.floor() as i64, "{f}");
            assert_eq!(f["y_min"], b.y.floor() as i64, "{f}");
            assert_eq!(f["x_max"], (b.x + b.width).ceil() as i64, "{f}");
            assert_eq!(f["y_max"], (b.y + b.height).ceil() as i64, "{f}");
        }
    }
    // DeepStack's default min_confidence, 0.40, keeps only the surer ones
    let (_, answer) = post(&server, "/v1/vision/detection", &[Part::File("image", "p.png", bytes.clone())]);
    let sure = expected.iter().filter(|e| e.score > 0.40).count();
    assert_eq!(answer["predictions"].as_array().unwrap().len(), sure, "{answer}");
    let (_, list) = post(&server, "/v1/vision/custom/list", &[]);
    assert_eq!(list["models"], json!(["shapes"]));

    // the scene endpoint: the classifier run's top class
    let coffee = repo("data/images/coffee.png");
    let top = Classifier::load(&fashion).unwrap().classify_file(&coffee, 1).unwrap().remove(0);
    let (s, answer) =
        post(&server, "/v1/vision/scene", &[Part::File("image", "c.png", std::fs::read(&coffee).unwrap())]);
    assert_eq!(s, 200, "{answer}");
    assert_eq!(answer["label"], top.name.as_str());
    assert!((answer["confidence"].as_f64().unwrap() - top.probability as f64).abs() < 1e-6, "{answer}");

    // an ONNX classifier answers the scene endpoint too, as the library classifies
    let onnx = dir.path().join("r18.onnx");
    let net = fovea_vision::models::build("resnet18", 1000, &mut fovea::Rng::new(0)).unwrap();
    fovea::io::onnx::save(&onnx, &fovea::graph::export::export(net.as_ref(), &[3, 64, 64], "test").unwrap()).unwrap();
    let (pretrained, side) = fovea_vision::models::PretrainedNet::load_onnx_classifier(&onnx).unwrap();
    assert_eq!(side, 64);
    let rgb = fovea_vision::image::load_rgb(&coffee).unwrap();
    let top = pretrained.classify(&rgb, 73, 64, 1).unwrap().remove(0);
    let onnx_server = Server::start(&ServeConfig { classifier: Some(onnx), ..config.clone() });
    let (s, answer) =
        post(&onnx_server, "/v1/vision/scene", &[Part::File("image", "c.png", std::fs::read(&coffee).unwrap())]);
    assert_eq!(s, 200, "{answer}");
    assert_eq!(answer["label"], top.name.as_str());
    assert!((answer["confidence"].as_f64().unwrap() - top.probability as f64).abs() < 1e-6, "{answer}");

    // a --detector that is not among the runs, and a folder with no runs, are refused at start
    let wrong = ServeConfig { detector: Some("people".into()), ..config.clone() };
    let err = Service::load(&wrong).err().unwrap().to_string();
    assert!(err.contains("no YOLO run called \"people\"") && err.contains("found: shapes"), "{err}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let none = ServeConfig { detector_models: Some(empty), detector: None, ..config };
    let err = Service::load(&none).err().unwrap().to_string();
    assert!(err.contains("empty") && err.contains("holds no YOLO runs"), "{err}");
}
