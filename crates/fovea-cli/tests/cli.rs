//! Runs the real `fovea` binary in temporary folders.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn fovea(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fovea")).args(args).output().expect("runs")
}

fn ok(args: &[&str]) -> String {
    let out = fovea(args);
    assert!(out.status.success(), "fovea {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = fovea(args);
    assert!(!out.status.success(), "fovea {args:?} should have failed");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("panicked"), "fovea {args:?} panicked: {err}");
    err
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Epoch metrics without the timings, which legitimately vary.
fn metrics(v: &Value) -> Vec<String> {
    ["epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy"].iter().map(|k| v[k].to_string()).collect()
}

#[test]
fn version_names_the_kernel_level_and_bad_levels_are_refused() {
    use fovea::runtime::Isa;
    let version = |level: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fovea"));
        cmd.arg("--version").env_remove("FOVEA_ISA");
        if let Some(l) = level {
            cmd.env("FOVEA_ISA", l);
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    let text = version(None);
    assert!(text.contains(&format!("kernels: {} (this CPU: {}", Isa::detected(), Isa::detected())), "{text}");
    assert!(version(Some("scalar")).contains("kernels: scalar"));
    // a level the CPU lacks caps at the CPU's; an unknown one is refused, naming it
    assert!(ok(&["--isa", "avx512", "summary", "lenet5"]).contains("61,706"));
    let err = fails(&["--isa", "avx3", "summary", "lenet5"]);
    assert!(err.contains("avx3") && err.contains("scalar, avx2 or avx512"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_fovea"))
        .args(["summary", "lenet5"])
        .env("FOVEA_ISA", "sse9")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("FOVEA_ISA") && err.contains("sse9"), "{err}");
}

#[test]
fn training_is_reproducible_and_resume_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).display().to_string();
    let common = ["train", "--train-size", "1500", "--batch-size", "50", "--seed", "7", "--json", "--threads", "2"];
    let run = |out: &str, extra: &[&str]| json_lines(&ok(&[&common[..], &["--out", out], extra].concat()));

    let full = run(&d("a"), &["--epochs", "2", "--model", "cnn-bn"]);
    let again = run(&d("b"), &["--epochs", "2", "--model", "cnn-bn"]);
    assert_eq!(metrics(&full[1]), metrics(&again[1]), "same seed, same threads, same metrics");

    let first = run(&d("c"), &["--epochs", "1", "--model", "cnn-bn"]);
    assert_eq!(metrics(&first[0]), metrics(&full[0]));
    let resumed = json_lines(&ok(&["train", "--resume", &d("c"), "--epochs", "2", "--json", "--threads", "2"]));
    // the run's --train-size, --batch-size and --seed come back without being repeated
    assert_eq!(metrics(&resumed[0]), metrics(&full[1]), "resumed epoch 2 equals the uninterrupted epoch 2");

    let last = full.last().unwrap();
    assert_eq!(last["final"], Value::Bool(true));
    for key in ["epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds", "images_per_second"] {
        assert!(last[key].is_number(), "final JSON lacks {key}");
    }
    // the kernel level and thread count the epochs ran with
    let level = last["isa"].as_str().unwrap();
    assert!(level.parse::<fovea::runtime::Isa>().is_ok(), "isa {level}");
    assert!(last["threads"].as_u64().unwrap() >= 1);
    let run_dir = dir.path().join("a");
    for file in ["checkpoint.safetensors", "checkpoint.json", "metrics.csv", "plot.png"] {
        assert!(run_dir.join(file).exists(), "run folder lacks {file}");
    }
    let csv = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.lines().next().unwrap().ends_with(",isa,threads"), "{csv}");

    // eval and predict on the trained run
    let eval: Value = serde_json::from_str(&ok(&["eval", "--checkpoint", &d("a"), "--json"])).unwrap();
    let (acc, want) = (eval["accuracy"].as_f64().unwrap(), full[1]["test_accuracy"].as_f64().unwrap());
    assert!((acc - want).abs() < 1e-6, "eval accuracy {acc} vs training's {want}");
    assert_eq!(eval["confusion_matrix"].as_array().unwrap().len(), 10);
    assert!(run_dir.join("confusion.png").exists());
    let text = ok(&["eval", "--checkpoint", &d("a")]);
    assert!(text.contains("confusion matrix") && text.contains("Ankle boot"));
}

#[test]
fn predict_gives_top3_for_a_picture() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run").display().to_string();
    ok(&["train", "--train-size", "3000", "--epochs", "1", "--out", &run, "--json"]);
    // a test image of class 1 (trouser) written as a PNG
    let fm = fovea_vision::data::FashionMnist::default_dir();
    let test = fovea_vision::data::FashionMnist::load(&fm, fovea_vision::data::Split::Test).unwrap();
    let i = test.labels.iter().position(|&l| l == 1).unwrap();
    let (img, _) = test.batch(&[i]);
    let png = dir.path().join("trouser.png");
    fovea_vision::image::save_gray_png(&png, &img.reshape(&[28, 28]).unwrap().scale(255.0), false).unwrap();
    let out: Value =
        serde_json::from_str(ok(&["predict", "--checkpoint", &run, png.to_str().unwrap(), "--json"]).trim()).unwrap();
    let top = out["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    // the picture goes through PNG decoding and resizing; the answer must be what the model
    // says about the original pixels
    let ckpt = fovea_vision::train::load_checkpoint(Path::new(&run)).unwrap();
    let model = fovea_vision::train::model_from_checkpoint(&ckpt).unwrap();
    let logits = model.forward(&fovea::Var::constant(img)).unwrap();
    let expected = fovea_vision::train::top_k(&logits, 3).unwrap()[0].clone();
    for (t, (class, p)) in top.iter().zip(expected) {
        assert_eq!(t["class"].as_u64().unwrap() as usize, class);
        assert!((t["probability"].as_f64().unwrap() - p as f64).abs() < 1e-3);
    }
    let p: f64 = top.iter().map(|t| t["probability"].as_f64().unwrap()).sum();
    assert!(p <= 1.0 + 1e-6);

    let garbage = dir.path().join("garbage.png");
    std::fs::write(&garbage, b"\x89PNG not really").unwrap();
    let err = fails(&["predict", "--checkpoint", &run, garbage.to_str().unwrap()]);
    assert!(err.contains("garbage.png") && err.contains("decode"), "{err}");

    // the trained network as ONNX: the same logits from fovea's ONNX runtime
    let onnx = dir.path().join("model.onnx").display().to_string();
    ok(&["export", "--checkpoint", &run, "--out", &onnx]);
    let x = dir.path().join("x.npy");
    let y = dir.path().join("y.npy");
    fovea::io::write_npy(&x, &test.batch(&[i]).0).unwrap();
    ok(&["run", "--onnx", &onnx, "--input", x.to_str().unwrap(), "--output", y.to_str().unwrap()]);
    let got = fovea::io::read_npy(&y).unwrap();
    assert!(got.max_abs_diff(&logits.tensor()) < 1e-5, "{got:?} vs {:?}", logits.tensor());
    // an output over an input is refused, and the input survives
    let err = fails(&["export", "--checkpoint", &run, "--out", &format!("{run}/checkpoint.safetensors")]);
    assert!(err.contains("inputs"), "{err}");
    fovea_vision::train::load_checkpoint(Path::new(&run)).unwrap();
}

#[test]
fn nan_loss_stops_training_and_keeps_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run").display().to_string();
    ok(&["train", "--train-size", "500", "--epochs", "1", "--out", &run, "--json"]);
    let before = std::fs::read(Path::new(&run).join("checkpoint.safetensors")).unwrap();
    let err = fails(&["train", "--train-size", "500", "--epochs", "1", "--out", &run]);
    assert!(err.contains("already holds a run"), "{err}");
    let err = fails(&["train", "--resume", &run, "--epochs", "2", "--lr", "1e30", "--train-size", "500", "--json"]);
    assert!(err.contains("loss became") && err.contains("the checkpoint of epoch 1"), "{err}");
    assert_eq!(std::fs::read(Path::new(&run).join("checkpoint.safetensors")).unwrap(), before);
}

#[test]
fn conv_playground_and_general_conv2d() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.txt");
    std::fs::write(&m, "3 0 1 2 7 4\n1 5 8 9 3 1\n2 7 2 5 1 3\n0 1 3 1 7 8\n4 2 1 6 2 8\n2 4 5 2 3 9\n").unwrap();
    let m = m.to_str().unwrap();
    let out = ok(&["conv", m, "--filter", "vertical"]);
    assert_eq!(out.lines().next().unwrap().split_whitespace().collect::<Vec<_>>(), ["-5", "-4", "0", "8"]);
    let same = ok(&["conv", m, "--filter", "sobel-h", "--padding", "same", "--json"]);
    let v: Value = serde_json::from_str(same.trim()).unwrap();
    assert_eq!(v["shape"], serde_json::json!([6, 6]));
    let png = dir.path().join("edges.png");
    ok(&["conv", m, "--filter", "scharr-v", "--output", png.to_str().unwrap()]);
    assert!(png.exists());

    // general conv2d on .npy: NCHW input, OIHW weights
    let x = fovea::Tensor::new(&[1, 2, 5, 5], (0..50).map(|v| v as f32).collect()).unwrap();
    let w = fovea::Tensor::new(&[3, 2, 3, 3], (0..54).map(|v| (v % 5) as f32 - 2.0).collect()).unwrap();
    let (xp, wp, yp) = (dir.path().join("x.npy"), dir.path().join("w.npy"), dir.path().join("y.npy"));
    fovea::io::write_npy(&xp, &x).unwrap();
    fovea::io::write_npy(&wp, &w).unwrap();
    let (xs, ws, ys) = (xp.to_str().unwrap(), wp.to_str().unwrap(), yp.to_str().unwrap());
    ok(&["conv", xs, "--weight", ws, "--stride", "2", "--padding", "1", "--output", ys]);
    assert_eq!(fovea::io::read_npy(&yp).unwrap().shape(), &[1, 3, 3, 3]);

    // bad input: channel mismatch, malformed .npy, unknown filter
    fovea::io::write_npy(&wp, &fovea::Tensor::zeros(&[3, 4, 3, 3])).unwrap();
    let err = fails(&["conv", xs, "--weight", ws]);
    assert!(err.contains("conv2d") && err.contains("[1, 2, 5, 5]") && err.contains("[3, 4, 3, 3]"), "{err}");
    std::fs::write(&wp, b"\x93NUMPY\x01\x00garbage").unwrap();
    assert!(fails(&["conv", xs, "--weight", ws]).contains("w.npy"));
    assert!(fails(&["conv", m, "--filter", "nope"]).contains("sobel-v"));
    fails(&["conv", m, "--padding", "99999999999999"]);
    fails(&["conv", m, "--dilation", "1000000000000"]);
    fails(&["conv", m, "--stride", "0"]);
}

#[test]
fn missing_or_corrupt_data_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let runs = tempfile::tempdir().unwrap();
    let out = runs.path().join("new/run").display().to_string();
    let err = fails(&["train", "--data", &data, "--epochs", "1", "--out", &out]);
    assert!(err.contains("train-images-idx3-ubyte.gz"), "{err}");
    // the run failed before writing anything: it leaves no empty folder behind
    assert!(!runs.path().join("new").exists());
    // a truncated copy of the real label file
    let src = fovea_vision::data::FashionMnist::default_dir();
    for f in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let bytes = std::fs::read(src.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&["train", "--data", &data, "--epochs", "1", "--train-size", "100"]);
    assert!(err.contains("t10k-labels") && (err.contains("corrupt") || err.contains("truncated")), "{err}");
    let err = fails(&["predict", "--checkpoint", &data, "nothing.png"]);
    assert!(err.contains("checkpoint.safetensors: not found"), "{err}");
    let err = fails(&["train", "--model", "resnet9000"]);
    assert!(err.contains("lenet5"), "{err}");
}

#[test]
fn summary_prints_the_lenet5_table_and_the_dense_comparison() {
    let table = ok(&["summary", "lenet5"]);
    assert!(table.contains("conv1    Conv2d   6x28x28         4,704         156"), "{table}");
    assert!(table.contains("total: 61,706 parameters"), "{table}");
    let v: Value = serde_json::from_str(&ok(&["summary", "lenet5", "--json"])).unwrap();
    assert_eq!(v["total_params"], 61_706);
    assert_eq!(v["input"], serde_json::json!([1, 28, 28]));
    let fc3 = v["layers"].as_array().unwrap().iter().find(|l| l["name"] == "fc3").unwrap();
    assert_eq!((fc3["params"].as_u64(), fc3["macs"].as_u64()), (Some(48_120), Some(48_000)));

    let dense: Value = serde_json::from_str(&ok(&["summary", "--compare-dense", "39x39x3:10:3", "--json"])).unwrap();
    assert_eq!(dense["conv_params"], 280);
    assert_eq!(dense["output"], serde_json::json!([37, 37, 10]));
    assert!(ok(&["summary", "--compare-dense", "39x39x3:10:3"]).contains("about 62 million"));

    assert!(fails(&["summary", "vgg99"]).contains("known: lenet5"));
    assert!(fails(&["summary", "lenet5", "--input", "3x28x28"]).contains("3 channels"));
    assert!(fails(&["summary", "--compare-dense", "39x39:10:3"]).contains("HxWxC"));
}

#[path = "../../fovea-vision/tests/common/torchvision_fixture.rs"]
mod torchvision_fixture;

#[test]
fn classify_and_run_agree_with_torchvision() {
    use torchvision_fixture::{input, meta, outputs, state_dict};
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let (meta, outputs) = (meta(), outputs());
    let tensors: Vec<(String, fovea::Tensor)> = state_dict(&meta, "resnet18").into_iter().collect();
    fovea::io::write_safetensors(Path::new(&p("w.safetensors")), &tensors, Default::default()).unwrap();
    let photos = ["chelsea", "coffee"].map(|n| format!("{}/../../data/images/{n}.png", env!("CARGO_MANIFEST_DIR")));
    let args = ["classify", "--arch", "resnet18", "--weights", &p("w.safetensors"), "--top", "5", "--json"];
    let lines = json_lines(&ok(&[&args[..], &[&photos[0], &photos[1]]].concat()));
    let names = fovea_vision::data::imagenet::class_names();
    for (line, photo) in lines.iter().zip(["chelsea", "coffee"]) {
        // torchvision's preprocessing and logits for the photo, softmax-ed here
        let logits = outputs[&format!("{photo}.resnet18")].data().to_vec();
        let max = logits.iter().fold(f32::MIN, |m, &v| m.max(v));
        let total: f64 = logits.iter().map(|&v| ((v - max) as f64).exp()).sum();
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let top = line["top"].as_array().unwrap();
        assert_eq!(top.len(), 5);
        for (got, &want) in top.iter().zip(&order) {
            assert_eq!(got["class"], want, "{photo}");
            assert_eq!(got["name"], names[want]);
            let p_want = ((logits[want] - max) as f64).exp() / total;
            assert!((got["probability"].as_f64().unwrap() - p_want).abs() < 1e-4, "{photo}: {got} vs {p_want}");
        }
    }
    let text = ok(&[&args[..5], &[&photos[0]]].concat());
    assert!(text.contains("chelsea.png") && text.contains("  1. "), "{text}");

    // fovea run: the raw forward pass on an .npy batch
    fovea::io::write_npy(Path::new(&p("x.npy")), &input(&meta).tensor()).unwrap();
    let run = ["run", "--arch", "resnet18", "--weights", &p("w.safetensors")];
    ok(&[&run[..], &["--input", &p("x.npy"), "--output", &p("y.npy")]].concat());
    let (y, want) = (fovea::io::read_npy(Path::new(&p("y.npy"))).unwrap(), &outputs["resnet18"]);
    assert!(y.max_abs_diff(want) < 1e-4 * want.data().iter().fold(0f32, |m, v| m.max(v.abs())));

    // bad input: unknown architecture, weights of another one, a truncated file, a wrong shape
    let err = fails(&["run", "--arch", "resnet19", "--weights", "w", "--input", "x", "--output", "y"]);
    assert!(err.contains("unknown model 'resnet19'") && err.contains("resnet18"), "{err}");
    let err = fails(&["classify", "--arch", "resnet34", "--weights", &p("w.safetensors"), &photos[0]]);
    assert!(
        err.contains("does not hold resnet34 weights") && err.contains("missing (") && err.contains("layer1.2"),
        "{err}"
    );
    let bytes = std::fs::read(p("w.safetensors")).unwrap();
    std::fs::write(p("cut.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&["classify", "--arch", "resnet18", "--weights", &p("cut.safetensors"), &photos[0]]);
    assert!(err.contains("cut.safetensors"), "{err}");
    fovea::io::write_npy(Path::new(&p("bad.npy")), &fovea::Tensor::zeros(&[1, 1, 64, 64])).unwrap();
    let err = fails(&[&run[..], &["--input", &p("bad.npy"), "--output", &p("y.npy")]].concat());
    assert!(err.contains("designed for Nx3x224x224"), "{err}");
}

/// The ONNX paths of `classify`, `run` and `summary` on torchvision's ResNet-18 exported by
/// torch.onnx.export (its graph from fovea-vision's fixture, the hash weights put back),
/// against torchvision's outputs.
#[test]
fn onnx_classify_run_and_summary_agree_with_torchvision() {
    use torchvision_fixture::{input, meta, outputs, pattern};
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fovea-vision/tests/fixtures/onnx_torchvision");
    let onnx_meta: Value = serde_json::from_str(&std::fs::read_to_string(fixtures.join("meta.json")).unwrap()).unwrap();
    let mut model = fovea::io::onnx::load(&fixtures.join("resnet18.onnx")).unwrap();
    for w in onnx_meta["models"]["resnet18"]["weights"].as_array().unwrap() {
        let name = w[0].as_str().unwrap();
        let shape: Vec<usize> = w[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        model.graph.initializers.push(fovea::io::onnx::TensorData::from_tensor(name, &pattern(name, &shape)));
    }
    // exported at 64x64: free height and width, so that it takes the photo's 224x224 too
    use fovea::io::onnx::Dim;
    model.graph.inputs[0].dims =
        Some(vec![Dim::Param("batch".into()), Dim::Value(3), Dim::Param("h".into()), Dim::Unknown]);
    fovea::io::onnx::save(Path::new(&p("r18.onnx")), &model).unwrap();
    let (meta, outputs) = (meta(), outputs());

    // classify: torchvision's preprocessing, then the ONNX graph, against torchvision's logits
    let photo = format!("{}/../../data/images/chelsea.png", env!("CARGO_MANIFEST_DIR"));
    let line = &json_lines(&ok(&["classify", "--onnx", &p("r18.onnx"), "--top", "3", "--json", &photo]))[0];
    let logits = outputs["chelsea.resnet18"].data().to_vec();
    let max = logits.iter().fold(f32::MIN, |m, &v| m.max(v));
    let total: f64 = logits.iter().map(|&v| ((v - max) as f64).exp()).sum();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    for (got, &want) in line["top"].as_array().unwrap().iter().zip(&order) {
        assert_eq!(got["class"], want);
        let p_want = ((logits[want] - max) as f64).exp() / total;
        assert!((got["probability"].as_f64().unwrap() - p_want).abs() < 1e-4, "{got} vs {p_want}");
    }
    // with labels of its own, and labels that do not fit
    let labels: Vec<String> = (0..1000).map(|i| format!("thing {i}")).collect();
    std::fs::write(p("labels.txt"), labels.join("\n")).unwrap();
    let text = ok(&["classify", "--onnx", &p("r18.onnx"), "--labels", &p("labels.txt"), &photo]);
    assert!(text.contains(&format!("thing {}", order[0])), "{text}");
    std::fs::write(p("three.txt"), "a\nb\nc\n").unwrap();
    let err = fails(&["classify", "--onnx", &p("r18.onnx"), "--labels", &p("three.txt"), &photo]);
    assert!(err.contains("3 labels for 1000 classes"), "{err}");

    // run: the raw forward pass, by position and by name
    fovea::io::write_npy(Path::new(&p("x.npy")), &input(&meta).tensor()).unwrap();
    ok(&["run", "--onnx", &p("r18.onnx"), "--input", &p("x.npy"), "--output", &p("y.npy")]);
    ok(&[
        "run",
        "--onnx",
        &p("r18.onnx"),
        "--input",
        &format!("input={}", p("x.npy")),
        "--output",
        &format!("logits={}", p("z.npy")),
    ]);
    let want = &outputs["resnet18"];
    for out in ["y.npy", "z.npy"] {
        let y = fovea::io::read_npy(Path::new(&p(out))).unwrap();
        assert!(y.max_abs_diff(want) < 1e-4 * want.data().iter().fold(0f32, |m, v| m.max(v.abs())), "{out}");
    }
    let err =
        fails(&["run", "--onnx", &p("r18.onnx"), "--input", &format!("image={}", p("x.npy")), "--output", &p("y.npy")]);
    assert!(err.contains("no input \"image\"") && err.contains("input"), "{err}");
    fovea::io::write_npy(Path::new(&p("bad.npy")), &fovea::Tensor::zeros(&[1, 1, 64, 64])).unwrap();
    let err = fails(&["run", "--onnx", &p("r18.onnx"), "--input", &p("bad.npy"), "--output", &p("y.npy")]);
    assert!(err.contains("r18.onnx") && err.contains("[1, 1, 64, 64]"), "{err}");

    // summary: one row per step, batch norm and ReLU folded into the convolutions
    let table = ok(&["summary", &p("r18.onnx"), "--input", "3x224x224"]);
    assert!(
        table.contains("input 3x224x224") && table.contains("Conv+Relu") && table.contains("64x112x112"),
        "{table}"
    );
    assert!(!table.contains("BatchNormalization"), "{table}");
    let err = fails(&["summary", &p("r18.onnx")]);
    assert!(err.contains("free dimensions") || err.contains("--input"), "{err}");

    // a file that is not a model, cut short
    let bytes = std::fs::read(p("r18.onnx")).unwrap();
    std::fs::write(p("cut.onnx"), &bytes[..bytes.len() / 3]).unwrap();
    let err = fails(&["run", "--onnx", &p("cut.onnx"), "--input", &p("x.npy"), "--output", &p("y.npy")]);
    assert!(err.contains("cut.onnx"), "{err}");
}

#[test]
fn zoo_models_train_on_an_image_folder() {
    // bags and trousers from Fashion-MNIST, written as PNG files in train/ and val/
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    let data = fovea_vision::data::FashionMnist::load(
        &fovea_vision::data::FashionMnist::default_dir(),
        fovea_vision::data::Split::Test,
    )
    .unwrap();
    let mut written = std::collections::HashMap::new();
    for (i, &label) in data.labels.iter().enumerate() {
        let (class, split) = match (label, written.get(&label).copied().unwrap_or(0)) {
            (8, n) | (1, n) if n < 24 => {
                (if label == 8 { "bag" } else { "trouser" }, if n < 16 { "train" } else { "val" })
            }
            _ => continue,
        };
        let n = written.entry(label).or_insert(0);
        let folder = root.join(split).join(class);
        std::fs::create_dir_all(&folder).unwrap();
        let px = data.images.data()[i * 784..(i + 1) * 784].iter().map(|v| v * 255.0).collect();
        let img = fovea::Tensor::new(&[28, 28], px).unwrap();
        fovea_vision::image::save_gray_png(&folder.join(format!("{n}.png")), &img, false).unwrap();
        *n += 1;
    }
    let run = dir.path().join("run").display().to_string();
    let root_s = root.display().to_string();
    let args = ["train", "--model", "resnet18", "--data", &root_s, "--image-size", "32", "--epochs", "2"];
    let lines =
        json_lines(&ok(&[&args[..], &["--batch-size", "8", "--json", "--out", &run, "--threads", "2"]].concat()));
    assert_eq!(lines.len(), 3);
    let eval: Value = serde_json::from_str(&ok(&["eval", "--checkpoint", &run, "--json"])).unwrap();
    assert_eq!(eval["per_class_accuracy"].as_array().unwrap().len(), 2);
    assert_eq!(eval["accuracy"], lines[2]["test_accuracy"]);
    let picture = root.join("val/bag/20.png").display().to_string();
    let pred: Value = serde_json::from_str(&ok(&["predict", "--checkpoint", &run, &picture, "--json"])).unwrap();
    let total: f64 = pred["top"].as_array().unwrap().iter().map(|t| t["probability"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-5, "two classes, all of the probability: {pred}");

    // resuming takes the run's data folder, model and image size, and refuses others
    let resumed = json_lines(&ok(&["train", "--resume", &run, "--epochs", "3", "--json"]));
    assert_eq!(resumed[0]["epoch"], 3);
    let err = fails(&["train", "--resume", &run, "--epochs", "4", "--model", "vgg11"]);
    assert!(err.contains("trains resnet18"), "{err}");
    let err = fails(&["train", "--resume", &run, "--epochs", "4", "--image-size", "48"]);
    assert!(err.contains("32x32"), "{err}");
    // an image size the network cannot take is refused before any data is read
    let err = fails(&["train", "--model", "lenet5", "--image-size", "32", "--out", &format!("{run}3")]);
    assert!(err.contains("lenet5 cannot take 32x32 images"), "{err}");

    // a class folder without pictures is named
    std::fs::create_dir_all(root.join("train/sandal")).unwrap();
    let err = fails(&[&args[..], &["--out", &format!("{run}2")]].concat());
    assert!(err.contains("sandal") && err.contains("no PNG or JPEG"), "{err}");
}

#[test]
fn plain_vs_residual_experiment_runs_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let args = ["experiment", "plain-vs-residual", "--depth", "8", "--epochs", "2", "--train-size", "256"];
    let lines = json_lines(&ok(&[&args[..], &["--test-size", "100", "--out", &out, "--json"]].concat()));
    let models: Vec<&str> = lines.iter().map(|l| l["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["cifar-plain8", "cifar-plain8", "cifar-resnet8", "cifar-resnet8"]);
    // the plot: training and test error side by side
    let png = fovea_vision::image::load_rgb(&dir.path().join("plain-vs-residual.png")).unwrap();
    assert_eq!(png.shape(), [3, 380, 960]);
    let err = fails(&["experiment", "plain-vs-residual", "--depth", "9", "--out", &out]);
    assert!(err.contains("already holds files") && err.contains("--force"), "{err}");
    let err = fails(&["experiment", "plain-vs-residual", "--depth", "9", "--out", &out, "--force"]);
    assert!(err.contains("6n+2"), "{err}");
}

#[test]
fn faces_detect_finds_the_sample_faces_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let photo = format!("{}/../../data/faces/sample1.jpg", env!("CARGO_MANIFEST_DIR"));
    let out: Value =
        serde_json::from_str(&ok(&["faces", "detect", &photo, "--json", "--output", &p("f.png")])).unwrap();
    assert_eq!((out["width"].as_u64(), out["height"].as_u64()), (Some(1920), Some(1280)));
    // face-api's three faces (the box agreement itself is tests/face_api.rs in fovea-vision)
    assert_eq!(out["faces"].as_array().unwrap().len(), 3);
    assert_eq!(fovea_vision::image::load_rgb(Path::new(&p("f.png"))).unwrap().shape(), [3, 1280, 1920]);
    let out: Value =
        serde_json::from_str(&ok(&["faces", "detect", &photo, "--detector", "ssd", "--json", "--output", &p("s.png")]))
            .unwrap();
    assert_eq!(out["faces"].as_array().unwrap().len(), 3);
    // no face: an empty answer, not an error
    let coffee = format!("{}/../../data/images/coffee.png", env!("CARGO_MANIFEST_DIR"));
    let out: Value =
        serde_json::from_str(&ok(&["faces", "detect", &coffee, "--json", "--output", &p("c.png")])).unwrap();
    assert_eq!(out["faces"].as_array().unwrap().len(), 0);
    std::fs::write(p("not.jpg"), b"not a picture").unwrap();
    let err = fails(&["faces", "detect", &p("not.jpg"), "--output", &p("g.png")]);
    assert!(err.contains("not.jpg"), "{err}");
    // the whole chain: 68 landmarks and a 128-D descriptor per face
    let out: Value = serde_json::from_str(&ok(&["faces", "embed", &photo, "--json", "--output", &p("e.png")])).unwrap();
    for face in out["faces"].as_array().unwrap() {
        assert_eq!(
            (face["landmarks"].as_array().unwrap().len(), face["descriptor"].as_array().unwrap().len()),
            (68, 128)
        );
    }
    let same: Value = serde_json::from_str(&ok(&["faces", "verify", &photo, &photo, "--json"])).unwrap();
    assert_eq!((same["distance"].as_f64(), same["same"].as_bool()), (Some(0.0), Some(true)));
    let err = fails(&["faces", "verify", &photo, &coffee]);
    assert!(err.contains("no face found") && err.contains("coffee.png"), "{err}");
    let err = fails(&["faces", "detect", &photo, "--input-size", "400", "--output", &p("g.png")]);
    assert!(err.contains("multiple of 32"), "{err}");
    let err = fails(&["faces", "detect", &photo, "--models", &p("nowhere"), "--output", &p("g.png")]);
    assert!(err.contains("tiny_face_detector_model-weights_manifest.json"), "{err}");
}

/// `[x0, y0, x1, y1)` of a `[3, H, W]` picture in 0..1, saved as PNG.
fn save_crop(rgb: &fovea::Tensor, (x0, y0, x1, y1): (usize, usize, usize, usize), path: &Path) {
    let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
    let mut bytes = Vec::new();
    for y in y0..y1 {
        for x in x0..x1 {
            bytes.extend((0..3).map(|c| (rgb.data()[(c * h + y) * w + x] * 255.0).round() as u8));
        }
    }
    fovea_vision::image::save_rgb_png(path, (x1 - x0) as u32, (y1 - y0) as u32, bytes).unwrap();
}

#[test]
fn face_database_enrolls_identifies_and_survives_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let photo = format!("{}/../../data/faces/sample1.jpg", env!("CARGO_MANIFEST_DIR"));
    let rgb = fovea_vision::image::load_rgb(Path::new(&photo)).unwrap();
    // one person per picture: two faces of sample1 cut out
    save_crop(&rgb, (650, 320, 1220, 820), Path::new(&p("alice.png")));
    save_crop(&rgb, (1150, 0, 1920, 800), Path::new(&p("bob.png")));
    let db = p("faces.db");
    // two processes enrolling at the same time: neither is lost
    let spawn = |name: &str, picture: String| {
        Command::new(env!("CARGO_BIN_EXE_fovea"))
            .args(["faces", "enroll", "--db", &db, name, &picture])
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn("alice", p("alice.png")), spawn("bob", p("bob.png")));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let people: Value = serde_json::from_str(&ok(&["faces", "list", "--db", &db, "--json"])).unwrap();
    assert_eq!(people, serde_json::json!([{"name": "alice", "descriptors": 1}, {"name": "bob", "descriptors": 1}]));
    // the group photo: alice, bob, and someone never enrolled
    let out: Value =
        serde_json::from_str(&ok(&["faces", "identify", "--db", &db, &photo, "--json", "--output", &p("id.png")]))
            .unwrap();
    let names: Vec<&Value> = out["faces"].as_array().unwrap().iter().map(|f| &f["name"]).collect();
    assert_eq!(names, [&Value::from("alice"), &Value::from("bob"), &Value::Null]);
    ok(&["faces", "remove", "--db", &db, "bob"]);
    let err = fails(&["faces", "remove", "--db", &db, "bob"]);
    assert!(err.contains("no one called bob"), "{err}");
    // a picture without a face enrols nothing
    let coffee = format!("{}/../../data/images/coffee.png", env!("CARGO_MANIFEST_DIR"));
    let err = fails(&["faces", "enroll", "--db", &db, "carol", &coffee]);
    assert!(err.contains("no face found"), "{err}");
    // not a database, and someone else's database
    std::fs::write(p("junk.db"), b"this is not SQLite at all, not even close.....").unwrap();
    let err = fails(&["faces", "list", "--db", &p("junk.db")]);
    assert!(err.contains("not a face database"), "{err}");
    let other = rusqlite::Connection::open(p("other.db")).unwrap();
    other.execute_batch("CREATE TABLE songs (title TEXT)").unwrap();
    drop(other);
    let err = fails(&["faces", "list", "--db", &p("other.db")]);
    assert!(err.contains("not one of fovea's face databases"), "{err}");
}

#[test]
fn faces_refuse_truncated_and_absurd_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    // a JPEG cut in half
    let jpeg = std::fs::read(format!("{}/../../data/faces/sample2.jpg", env!("CARGO_MANIFEST_DIR"))).unwrap();
    std::fs::write(p("cut.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    let err = fails(&["faces", "detect", &p("cut.jpg"), "--output", &p("o.png")]);
    assert!(err.contains("cut.jpg") && err.contains("truncated JPEG"), "{err}");
    // a PNG declaring 100000 x 100000 pixels: refused before anything is allocated
    let chunk = |kind: &[u8], data: &[u8]| {
        // length, type, data, CRC-32 of type and data
        let mut c = 0xffff_ffffu32;
        for &b in kind.iter().chain(data) {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        [&(data.len() as u32).to_be_bytes()[..], kind, data, &(!c).to_be_bytes()].concat()
    };
    let ihdr = [&100_000u32.to_be_bytes()[..], &100_000u32.to_be_bytes(), &[8, 2, 0, 0, 0]].concat();
    let empty_zlib = [0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01];
    let png = [&b"\x89PNG\r\n\x1a\n"[..], &chunk(b"IHDR", &ihdr), &chunk(b"IDAT", &empty_zlib), &chunk(b"IEND", &[])]
        .concat();
    std::fs::write(p("huge.png"), &png).unwrap();
    let err = fails(&["faces", "detect", &p("huge.png"), "--output", &p("o.png")]);
    assert!(err.contains("huge.png: 100000x100000 pixels") && err.contains("memory budget"), "{err}");
}

#[test]
fn triplet_embedding_learns_one_shot_and_the_verifier_trains_on_its_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("emb").display().to_string();
    let args = ["faces", "train-embedding", "--model", "lenet5", "--mining", "semi-hard", "--epochs", "2"];
    let small = ["--train-size", "3000", "--test-size", "1000", "--trials", "5", "--threads", "2", "--json"];
    let lines = json_lines(&ok(&[&args[..], &small[..], &["--out", &run]].concat()));
    assert_eq!(lines.len(), 4, "baselines, two epochs, result");
    assert_eq!(lines[0]["held_out"], serde_json::json!(["Sneaker", "Bag", "Ankle boot"]));
    let chance = lines[0]["baselines"]["chance"].as_f64().unwrap();
    assert!((chance - 1.0 / 3.0).abs() < 1e-12);
    let last = &lines[3];
    assert_eq!(last["final"], true);
    let acc = last["one_shot_accuracy"].as_f64().unwrap();
    assert!(acc > chance + 0.15, "one-shot accuracy {acc} is not far above chance");
    assert_eq!(last["one_shot_accuracy"], lines[2]["one_shot_accuracy"]);
    // the same seed gives the same run
    let again = json_lines(&ok(&[&args[..], &small[..], &["--out", &format!("{run}2")]].concat()));
    for (a, b) in lines[1..3].iter().zip(&again[1..3]) {
        assert_eq!((&a["loss"], &a["one_shot_accuracy"]), (&b["loss"], &b["one_shot_accuracy"]));
    }

    let v: Value = serde_json::from_str(&ok(&[
        "faces",
        "train-verifier",
        "--embedding",
        &run,
        "--pairs",
        "2000",
        "--epochs",
        "10",
        "--json",
    ]))
    .unwrap();
    for k in ["threshold", "logistic_abs_diff", "logistic_chi_square"] {
        let test = v[k]["test_accuracy"].as_f64().unwrap();
        assert!(test > 0.6 && test <= 1.0, "{k}: pair accuracy {test}");
    }

    // exported: the same unit-length embeddings from the ONNX graph
    let onnx = format!("{run}/embedding.onnx");
    ok(&["export", "--checkpoint", &run, "--out", &onnx]);
    let (emb_run, net) = fovea_vision::face::triplet::load_embedding_run(Path::new(&run)).unwrap();
    let mut shape = vec![2];
    shape.extend(&emb_run.input);
    let x = fovea::Tensor::rand_uniform(&shape, 0.0, 1.0, &mut fovea::Rng::new(3));
    fovea::io::write_npy(Path::new(&format!("{run}/x.npy")), &x).unwrap();
    ok(&["run", "--onnx", &onnx, "--input", &format!("{run}/x.npy"), "--output", &format!("{run}/e.npy")]);
    let got = fovea::io::read_npy(Path::new(&format!("{run}/e.npy"))).unwrap();
    let want = fovea_vision::face::triplet::embed(net.as_ref(), &fovea::Var::constant(x), fovea::nn::Mode::Eval)
        .unwrap()
        .tensor();
    assert!(got.max_abs_diff(&want) < 1e-5, "{got:?} vs {want:?}");

    // bad input: unknown or too many held-out identities, a margin out of range, no embedding
    let err = fails(&[&args[..], &["--held-out", "Sandal,Hat", "--out", &run]].concat());
    assert!(err.contains("no identity 'Hat'") && err.contains("Sandal"), "{err}");
    let err = fails(&[&args[..], &["--held-out", "0,1,2,3,4,5,6,7,8", "--out", &run]].concat());
    assert!(err.contains("two or more"), "{err}");
    let err = fails(&[&args[..], &["--margin", "5", "--out", &run]].concat());
    assert!(err.contains("--margin"), "{err}");
    let err = fails(&["faces", "train-verifier", "--embedding", &dir.path().display().to_string()]);
    assert!(err.contains("not found") && err.contains("fovea faces train-embedding"), "{err}");

    // a folder of identities (one sub-folder each; every 10th picture is a test picture)
    let people = dir.path().join("people");
    let data = fovea_vision::data::FashionMnist::load(
        &fovea_vision::data::FashionMnist::default_dir(),
        fovea_vision::data::Split::Test,
    )
    .unwrap();
    let names = ["ann", "bob", "cy", "di", "ed"];
    let mut written = [0usize; 5];
    for (i, &label) in data.labels.iter().enumerate() {
        if label >= 5 || written[label] == 20 {
            continue;
        }
        let folder = people.join(names[label]);
        std::fs::create_dir_all(&folder).unwrap();
        let px = data.images.data()[i * 784..(i + 1) * 784].iter().map(|v| v * 255.0).collect();
        let img = fovea::Tensor::new(&[28, 28], px).unwrap();
        fovea_vision::image::save_gray_png(&folder.join(format!("{}.png", written[label])), &img, false).unwrap();
        written[label] += 1;
    }
    let people_s = people.display().to_string();
    let run2 = dir.path().join("people-run").display().to_string();
    let lines = json_lines(&ok(&[
        &args[..],
        &["--data", &people_s, "--held-out", "di,ed", "--per-identity", "4", "--json", "--out", &run2],
    ]
    .concat()));
    assert_eq!(lines[0]["held_out"], serde_json::json!(["di", "ed"]));
    assert_eq!(lines[0]["test_pictures"], 4, "two test pictures of each held-out person");
    let v: Value =
        serde_json::from_str(&ok(&["faces", "train-verifier", "--embedding", &run2, "--pairs", "20", "--json"]))
            .unwrap();
    assert!((0.0..=1.0).contains(&v["logistic_abs_diff"]["test_accuracy"].as_f64().unwrap()), "{v}");
}

#[test]
fn detection_from_scratch_shapes_anchors_yolo_and_sliding_windows() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    // a synthetic dataset in the darknet layout, the same bytes for the same seed
    ok(&["data", "shapes", "--out", &p("train"), "--count", "120", "--seed", "4"]);
    ok(&["data", "shapes", "--out", &p("again"), "--count", "3", "--seed", "4"]);
    let read = |d: &str, f: &str| std::fs::read(dir.path().join(d).join(f)).unwrap();
    assert_eq!(read("train", "images/000002.png"), read("again", "images/000002.png"));
    assert_eq!(read("train", "labels/000002.txt"), read("again", "labels/000002.txt"));
    assert_eq!(String::from_utf8(read("train", "classes.txt")).unwrap(), "pedestrian\ncar\nmotorcycle\n");

    let a: Value =
        serde_json::from_str(&ok(&["detect", "anchors", "--data", &p("train"), "-k", "4", "--json"])).unwrap();
    let ious: Vec<f64> = a["mean_iou_per_k"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(ious.len(), 4);
    assert!(ious[3] > ious[0] && ious[3] > 0.6, "{ious:?}");

    // YOLO: train briefly on the folder (every 10th picture validates), detect, evaluate
    let run = p("yolo");
    let lines = json_lines(&ok(&[
        "yolo",
        "train",
        "--data",
        &p("train"),
        "--epochs",
        "2",
        "--anchors",
        "3",
        "--out",
        &run,
        "--json",
    ]));
    assert_eq!(lines.len(), 3);
    let map = lines[2]["val_map50"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&map));
    assert!(lines[1]["loss"].as_f64().unwrap() < lines[0]["loss"].as_f64().unwrap(), "the loss falls: {lines:?}");
    // with boxes moved by mirrored and cropped copies of the pictures, reproducibly
    let augmented = |out: &str| {
        let args = ["yolo", "train", "--data", &p("train"), "--epochs", "2", "--anchors", "3", "--json"];
        json_lines(&ok(&[&args[..], &["--augment", "mirror,crop:0.7,color", "--out", &p(out)]].concat()))
    };
    let (a1, a2) = (augmented("ya"), augmented("yb"));
    assert_eq!(a1[1]["loss"], a2[1]["loss"]);
    assert_ne!(a1[1]["loss"], lines[1]["loss"]);
    assert!(fails(&["yolo", "train", "--augment", "flip", "--out", &p("y5")]).contains("unknown augmentation"));
    // exported: the same grid of predictions from the ONNX graph
    ok(&["export", "--checkpoint", &run, "--out", &p("detector.onnx")]);
    let (det_run, net) = fovea_vision::detect::detector::load_detector(Path::new(&run)).unwrap();
    let x = fovea::Tensor::rand_uniform(&[1, 3, det_run.input, det_run.input], 0.0, 1.0, &mut fovea::Rng::new(4));
    fovea::io::write_npy(Path::new(&p("dx.npy")), &x).unwrap();
    ok(&["run", "--onnx", &p("detector.onnx"), "--input", &p("dx.npy"), "--output", &p("dy.npy")]);
    let got = fovea::io::read_npy(Path::new(&p("dy.npy"))).unwrap();
    let want = fovea::nn::Module::forward(&net, &fovea::Var::constant(x)).unwrap().tensor();
    assert!(got.max_abs_diff(&want) < 1e-4 * want.data().iter().fold(1e-6f32, |m, v| m.max(v.abs())));
    let picture = p("train/images/000001.png");
    let found: Value = serde_json::from_str(&ok(&[
        "yolo",
        "detect",
        "--checkpoint",
        &run,
        &picture,
        "--min-score",
        "0.01",
        "--out",
        &p("drawn"),
        "--json",
    ]))
    .unwrap();
    assert_eq!((found["width"].as_u64(), found["height"].as_u64()), (Some(128), Some(128)));
    assert!(dir.path().join("drawn/000001-yolo.png").exists());
    let eval: Value =
        serde_json::from_str(&ok(&["yolo", "eval", "--checkpoint", &run, "--data", &p("train"), "--json"])).unwrap();
    assert_eq!(eval["per_class"].as_array().unwrap().len(), 3);
    assert!((0.0..=1.0).contains(&eval["map50"].as_f64().unwrap()));

    // bad input: a malformed label line, an empty dataset, a grid that does not divide the
    // input, a dataset with more classes than the detector knows
    std::fs::write(dir.path().join("train/labels/000005.txt"), "1 0.5 0.5 0.2 0.3\n7 0.5 0.5 0.2 0.3\n").unwrap();
    let err = fails(&["detect", "anchors", "--data", &p("train")]);
    assert!(err.contains("000005.txt") && err.contains("line 2") && err.contains("class 7"), "{err}");
    std::fs::create_dir_all(dir.path().join("empty/images")).unwrap();
    let err = fails(&["yolo", "train", "--data", &p("empty"), "--out", &p("y2")]);
    assert!(err.contains("no PNG or JPEG"), "{err}");
    let err = fails(&["yolo", "train", "--grid", "5", "--train-size", "50", "--epochs", "1", "--out", &p("y3")]);
    assert!(err.contains("does not divide"), "{err}");
    let err = fails(&["yolo", "train", "--anchors", "many", "--out", &p("y4")]);
    assert!(err.contains("--anchors") && err.contains("must be a count from 1 to 20, or auto"), "{err}");
    ok(&["data", "shapes", "--out", &p("five"), "--count", "4"]);
    std::fs::write(dir.path().join("five/classes.txt"), "a\nb\nc\nd\ne\n").unwrap();
    let err = fails(&["yolo", "eval", "--checkpoint", &run, "--data", &p("five")]);
    assert!(err.contains("5 classes") && err.contains("trained for 3"), "{err}");

    // sliding windows: both ways give the same map; the converted network is timed too
    let win = p("windows");
    ok(&["detect", "train-windows", "--out", &win, "--pictures", "200", "--epochs", "1"]);
    let s: Value = serde_json::from_str(&ok(&[
        "detect",
        "sliding-windows",
        "--checkpoint",
        &win,
        &picture,
        "--windows",
        "28,56",
        "--output",
        &p("w.png"),
        "--json",
    ]))
    .unwrap();
    for w in s["windows"].as_array().unwrap() {
        assert!(w["max_difference"].as_f64().unwrap() < 1e-5, "{w}");
    }
    let err = fails(&["detect", "sliding-windows", "--checkpoint", &win, &picture, "--windows", "200"]);
    assert!(err.contains("window 200"), "{err}");

    // localization and landmarks: one epoch each, the figures the README reports
    let small = ["--train-size", "200", "--epochs", "1", "--size", "32", "--json"];
    let loc = json_lines(&ok(&[&["detect", "train-localizer", "--out", &p("loc")][..], &small[..]].concat()));
    for k in ["object_accuracy", "class_accuracy", "mean_iou"] {
        assert!((0.0..=1.0).contains(&loc[0][k].as_f64().unwrap()), "{k}: {}", loc[0]);
    }
    let marks = json_lines(&ok(&[&["detect", "train-landmarks", "--out", &p("marks")][..], &small[..]].concat()));
    assert!(marks[0]["mean_pixel_error"].as_f64().unwrap() > 0.0);
    assert!(dir.path().join("marks/regressor.safetensors").exists());
    let err = fails(&["detect", "train-localizer", "--out", &p("l2"), "--loss", "cubic"]);
    assert!(err.contains("'cubic'") && err.contains("--loss") && err.contains("logistic, squared"), "{err}");
    let err = fails(&["detect", "train-landmarks", "--out", &p("l3"), "--size", "40"]);
    assert!(err.contains("multiple of 16"), "{err}");
}

#[test]
fn stylize_lowers_the_style_cost_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let images = format!("{}/../../data/images", env!("CARGO_MANIFEST_DIR"));
    let (content, style) = (format!("{images}/chelsea.png"), format!("{images}/hubble.jpg"));
    let out = dir.path().join("g.png").display().to_string();
    let args = ["stylize", "--content", &content, "--style", &style, "--out", &out, "--size", "64"];
    let lines = json_lines(&ok(&[&args[..], &["--steps", "40", "--save-every", "20", "--json"]].concat()));
    assert_eq!(lines.len(), 41, "a line per step and the result");
    let last = &lines[40];
    let (first, result) = (last["first"]["style_cost"].as_f64().unwrap(), last["last"]["style_cost"].as_f64().unwrap());
    assert!(result < first / 2.0, "the style cost falls: {first} -> {result}");
    // starting from the content picture: the result is closer to the style than the content is
    assert!(last["result_style_cost"].as_f64().unwrap() < last["content_picture_style_cost"].as_f64().unwrap());
    assert_eq!((last["width"].as_u64(), last["height"].as_u64()), (Some(64), Some(43)));
    for frame in ["g-0020.png", "g-0040.png", "g.png"] {
        assert!(dir.path().join(frame).exists(), "{frame}");
    }
    let err = fails(&[&args[..], &["--content-layer", "fc7"]].concat());
    assert!(err.contains("no layer 'fc7'") && err.contains("conv13"), "{err}");
    let err = fails(&["stylize", "--content", &content, "--style", "missing.jpg", "--out", &out]);
    assert!(err.contains("missing.jpg"), "{err}");
    let nowhere = dir.path().join("no/such/folder/g.png").display().to_string();
    let err = fails(&["stylize", "--content", &content, "--style", &style, "--out", &nowhere]);
    assert!(err.contains("does not exist") && err.contains("no/such/folder"), "{err}");
    // jitter: the picture shifts each step, and the style cost still falls
    let lines = json_lines(&ok(&[&args[..], &["--steps", "30", "--jitter", "2", "--json"]].concat()));
    let last = &lines[30];
    assert!(last["last"]["style_cost"].as_f64().unwrap() < last["first"]["style_cost"].as_f64().unwrap() / 2.0);
    let err = fails(&[&args[..], &["--jitter", "30"]].concat());
    assert!(err.contains("jitter 30 is too large"), "{err}");

    // VGG features from a torchvision-named state_dict (here VGG-11's features, random)
    let features = fovea_vision::models::vgg_features(11, false, &mut fovea::Rng::new(0)).unwrap();
    let tensors: Vec<(String, fovea::Tensor)> =
        fovea::nn::state_dict(&features).into_iter().map(|(n, v)| (format!("features.{n}"), v.tensor())).collect();
    let weights = dir.path().join("vgg11.safetensors");
    fovea::io::write_safetensors(&weights, &tensors, Default::default()).unwrap();
    let w = weights.display().to_string();
    let vgg = [&args[..], &["--weights", &w, "--steps", "3", "--json"]].concat();
    let lines = json_lines(&ok(&vgg));
    assert_eq!(lines.len(), 4);
    let err = fails(&[&vgg[..], &["--style-layers", "conv6_1"]].concat());
    assert!(err.contains("no layer 'conv6_1'") && err.contains("conv4_2"), "{err}");
    std::fs::write(&weights, b"not safetensors").unwrap();
    assert!(fails(&vgg).contains("vgg11.safetensors"));
}

#[test]
fn visualize_draws_top_patches_filters_and_feature_maps() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    ok(&["train", "--epochs", "1", "--train-size", "2000", "--out", &p("run"), "--json"]);
    let out = ok(&[
        "visualize",
        "patches",
        "--checkpoint",
        &p("run"),
        "--layer",
        "conv2",
        "--units",
        "3",
        "--limit",
        "300",
        "--out",
        &p("patches.png"),
    ]);
    assert!(out.contains("receptive field 14x14"), "{out}");
    // 3 rows of 9 patches of 14x14 pixels zoomed 6x, 2-pixel gaps
    let png = fovea_vision::image::load_rgb(&dir.path().join("patches.png")).unwrap();
    assert_eq!(png.shape(), [3, 2 + 3 * (14 * 6 + 2), 2 + 9 * (14 * 6 + 2)]);
    ok(&["visualize", "filters", "--checkpoint", &p("run"), "--out", &p("filters.png")]);
    let photo = format!("{}/../../data/images/coffee.png", env!("CARGO_MANIFEST_DIR"));
    let out = ok(&[
        "visualize",
        "activations",
        "--checkpoint",
        &p("run"),
        &photo,
        "--layer",
        "relu2",
        "--out",
        &p("maps.png"),
    ]);
    assert!(out.contains("16 feature maps of relu2 (10x10)"), "{out}");
    let err = fails(&[
        "visualize",
        "activations",
        "--checkpoint",
        &p("run"),
        &photo,
        "--layer",
        "conv9",
        "--out",
        &p("x.png"),
    ]);
    assert!(err.contains("no layer 'conv9'") && err.contains("pool2"), "{err}");
    let err = fails(&["visualize", "patches", "--checkpoint", &p("run"), "--layer", "fc5"]);
    assert!(err.contains("no convolutional layer 'fc5'"), "{err}");
}

#[test]
fn augment_draws_the_same_grid_for_the_same_seed_and_refuses_bad_ops() {
    let dir = tempfile::tempdir().unwrap();
    let picture = format!("{}/../../data/images/chelsea.png", env!("CARGO_MANIFEST_DIR"));
    let grid = |name: &str, seed: &str| {
        let out = dir.path().join(name);
        let args = ["augment", &picture, "--ops", "mirror,crop,color,pca,rotate,shear,warp", "--seed", seed];
        ok(&[&args[..], &["--size", "48", "--out", &out.display().to_string()]].concat());
        std::fs::read(out).unwrap()
    };
    let (a, b, c) = (grid("a.png", "3"), grid("b.png", "3"), grid("c.png", "4"));
    assert_eq!(a, b, "the same seed, the same grid byte for byte");
    assert_ne!(a, c);
    let err = fails(&["augment", &picture, "--ops", "mirror,blur"]);
    assert!(err.contains("unknown augmentation 'blur'") && err.contains("shear"), "{err}");
    let err = fails(&["augment", &picture, "--ops", "rotate:500"]);
    assert!(err.contains("0..=180"), "{err}");
    assert!(fails(&["augment", "missing.png"]).contains("missing.png"));
}

#[test]
fn training_augments_and_transfers_with_frozen_cached_layers() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).display().to_string();
    let common = ["train", "--train-size", "600", "--batch-size", "50", "--epochs", "1", "--json", "--threads", "2"];
    let run = |out: &str, extra: &[&str]| json_lines(&ok(&[&common[..], &["--out", out], extra].concat()));

    // augmentation: reproducible, recorded in the run, kept on resume
    let aug = ["--augment", "mirror,rotate:10,warp"];
    let (a, b) = (run(&d("aug1"), &aug), run(&d("aug2"), &aug));
    assert_eq!(metrics(&a[0]), metrics(&b[0]), "the same seed gives the same augmented batches");
    let plain = run(&d("plain"), &[]);
    assert_ne!(metrics(&a[0]), metrics(&plain[0]));
    let meta = std::fs::read_to_string(dir.path().join("aug1/checkpoint.json")).unwrap();
    assert!(meta.contains("mirror,rotate:10,warp:0.05"), "{meta}");
    let err = fails(&["train", "--resume", &d("aug1"), "--epochs", "2", "--augment", "mirror"]);
    assert!(err.contains("cannot change"), "{err}");
    ok(&[
        "train",
        "--resume",
        &d("aug1"),
        "--epochs",
        "2",
        "--augment",
        "mirror,rotate:10,warp",
        "--train-size",
        "600",
    ]);
    assert!(fails(&[&common[..], &["--augment", "mirror,sharpen"]].concat()).contains("unknown augmentation"));

    // transfer: the frozen layers' cached outputs train the head exactly as the live layers do
    let cached = run(&d("cached"), &["--init", &d("plain"), "--freeze", "pool2", "--cache-features"]);
    let live = run(&d("live"), &["--init", &d("plain"), "--freeze", "pool2"]);
    assert_eq!(metrics(&cached[0]), metrics(&live[0]));
    assert!(dir.path().join("cached/features.safetensors").exists());
    // a cache made from other weights or pictures is not used
    std::fs::create_dir_all(dir.path().join("stale")).unwrap();
    std::fs::copy(dir.path().join("cached/features.safetensors"), dir.path().join("stale/features.safetensors"))
        .unwrap();
    let stale = run(&d("stale"), &["--init", &d("aug1"), "--freeze", "pool2", "--cache-features", "--force"]);
    let fresh = run(&d("fresh"), &["--init", &d("aug1"), "--freeze", "pool2"]);
    assert_eq!(metrics(&stale[0]), metrics(&fresh[0]));
    let frozen_before = fovea::io::read_safetensors(&dir.path().join("plain/checkpoint.safetensors")).unwrap().0;
    let frozen_after = fovea::io::read_safetensors(&dir.path().join("live/checkpoint.safetensors")).unwrap().0;
    assert_eq!(frozen_before["conv2.weight"].data(), frozen_after["conv2.weight"].data(), "frozen layers unchanged");
    assert_ne!(frozen_before["fc4.weight"].data(), frozen_after["fc4.weight"].data(), "the rest trained");
    assert!(!frozen_after.keys().any(|k| k.starts_with("optimizer.conv")), "no optimizer state for frozen layers");
    let tuned = run(&d("tuned"), &["--init", &d("plain"), "--freeze", "none", "--num-classes", "10"]);
    assert_ne!(metrics(&tuned[0]), metrics(&live[0]));

    let err = fails(&[&common[..], &["--init", &d("plain"), "--freeze", "conv9"]].concat());
    assert!(err.contains("no layer 'conv9'") && err.contains("pool2"), "{err}");
    let err = fails(&[&common[..], &["--cache-features"]].concat());
    assert!(err.contains("--cache-features") && err.contains("needs freeze"), "{err}");
    let err = fails(&[&common[..], &["--num-classes", "5"]].concat());
    assert!(err.contains("holds 10 classes"), "{err}");
    let err = fails(&[&common[..], &["--init", &d("plain"), "--model", "cnn-bn"]].concat());
    assert!(err.contains("tensors differ") && err.contains("would be kept"), "{err}");
}

#[test]
fn augment_and_transfer_experiments_report_their_accuracies() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("augment").display().to_string();
    let lines =
        json_lines(&ok(&["experiment", "augment", "--train-size", "500", "--epochs", "5", "--out", &out, "--json"]));
    let last = lines.last().unwrap();
    assert!(
        last["plain_test_accuracy"].as_f64().unwrap() > 0.3 && last["augmented_test_accuracy"].as_f64().unwrap() > 0.3,
        "{last}"
    );
    assert!(dir.path().join("augment/augment.png").exists());
    let out = dir.path().join("transfer").display().to_string();
    let args = ["experiment", "transfer", "--pretrain-epochs", "1", "--epochs", "3", "--per-class", "10"];
    let lines = json_lines(&ok(&[&args[..], &["--out", &out, "--json"]].concat()));
    let last = lines.last().unwrap();
    assert_eq!(last["cache_gives_the_same_result"], Value::Bool(true));
    for key in ["scratch_test_accuracy", "frozen_test_accuracy", "finetuned_test_accuracy"] {
        assert!(last[key].as_f64().unwrap() > 0.2, "{key}: {last}");
    }
    assert!(dir.path().join("transfer/transfer.png").exists());
}

#[test]
fn one_and_three_dimensional_examples_learn() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ecg.png").display().to_string();
    let args = ["example", "ecg1d", "--train-size", "600", "--test-size", "200", "--epochs", "3", "--json"];
    let last = json_lines(&ok(&[&args[..], &["--out", &out]].concat())).pop().unwrap();
    assert!(last["test_accuracy"].as_f64().unwrap() > 0.6, "4 rhythms, chance 25%: {last}");
    assert!(last["per_class_accuracy"]["atrial fibrillation"].is_number());
    assert!(Path::new(&out).exists());
    let args = ["example", "volume3d", "--train-size", "400", "--test-size", "200", "--epochs", "3", "--json"];
    let last = json_lines(&ok(&args)).pop().unwrap();
    assert!(last["test_accuracy"].as_f64().unwrap() > 0.6, "sphere or not, chance 50%: {last}");
    let err = fails(&["example", "ecg1d", "--epochs", "0"]);
    assert!(err.contains("--epochs") && err.contains("1 or more"), "{err}");
}

/// `fovea serve` stops on SIGTERM only after the requests in flight: an enrolment whose
/// body is still arriving when the signal comes is answered and committed.
#[test]
fn serve_finishes_an_enrolment_in_flight_on_sigterm() {
    use std::io::{BufRead, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let photo = format!("{}/../../data/faces/sample1.jpg", env!("CARGO_MANIFEST_DIR"));
    let rgb = fovea_vision::image::load_rgb(Path::new(&photo)).unwrap();
    save_crop(&rgb, (650, 320, 1220, 820), Path::new(&p("alice.png")));
    let db = p("people.db");
    /// The server process, killed if the test fails before it stops.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
        }
    }
    let mut server = Killed(
        Command::new(env!("CARGO_BIN_EXE_fovea"))
            .args(["serve", "--db", &db, "--port", "0", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let server = &mut server.0;
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let listening: Value = serde_json::from_str(&line).unwrap();
    let address = listening["listening"].as_str().unwrap().trim_start_matches("http://").to_string();

    let boundary = "fovea-sigterm";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"userid\"\r\n\r\nalice\r\n--{boundary}\r\n\
         Content-Disposition: form-data; name=\"image\"; filename=\"alice.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend(std::fs::read(p("alice.png")).unwrap());
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    // the server answers "100 Continue" once its handler is reading the body: the request
    // is then in flight, and SIGTERM comes while half the body is still to be sent
    let head = format!(
        "POST /v1/vision/face/register HTTP/1.1\r\nHost: {address}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 100"), "{status}");
    reader.read_line(&mut status).unwrap();
    stream.write_all(&body[..body.len() / 2]).unwrap();
    assert_eq!(unsafe { libc::kill(server.id() as i32, libc::SIGTERM) }, 0);
    std::thread::sleep(std::time::Duration::from_millis(300));
    stream.write_all(&body[body.len() / 2..]).unwrap();
    let mut answer = String::new();
    reader.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""message":"face added""#), "{answer}");
    let status = server.wait().unwrap();
    let mut log = String::new();
    server.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(status.success(), "{log}");
    assert!(log.contains(r#""event":"shutdown""#) && log.contains(r#""path":"/v1/vision/face/register""#), "{log}");
    let people: Value = serde_json::from_str(&ok(&["faces", "list", "--db", &db, "--json"])).unwrap();
    assert_eq!(people, serde_json::json!([{"name": "alice", "descriptors": 1}]));
}
