//! Hostile input: corrupt files, absurd sizes and options, existing run folders. Each case
//! runs the real binary with a 3 GiB address-space limit and 2 threads, and must end within
//! a minute with exit status 1 (a refusal; clap's own refusals exit 2), an `error:` line
//! naming the file or option, and no panic or abort.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const MEMORY_LIMIT: u64 = 3 << 30;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fovea"));
    cmd.args(args).env("FOVEA_THREADS", "2").env_remove("FOVEA_MAX_MEMORY").stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: setrlimit is async-signal-safe and touches nothing of the parent.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: MEMORY_LIMIT, rlim_max: MEMORY_LIMIT };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("runs");
    let start = Instant::now();
    while child.try_wait().expect("waits").is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().ok();
            panic!("fovea {args:?} hangs (over 60 s)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Runs a case that must be refused: exit status 1 (2 for clap's argument errors), an
/// error naming each of `names`, and neither a panic nor a signal.
#[track_caller]
fn refused(args: &[&str], names: &[&str]) -> String {
    refused_with(args, &[], names)
}

#[track_caller]
fn refused_with(args: &[&str], env: &[(&str, &str)], names: &[&str]) -> String {
    let out = run(args, env);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let code = out.status.code();
    assert!(code == Some(1) || code == Some(2), "fovea {args:?} ended with {:?}: {err}", out.status);
    assert!(!err.contains("panicked") && !err.contains("memory allocation"), "fovea {args:?}: {err}");
    assert!(err.starts_with("error:") || err.contains("\nerror:"), "fovea {args:?} gave no error line: {err}");
    for name in names {
        assert!(err.contains(name), "fovea {args:?}: the error does not name {name}: {err}");
    }
    err
}

#[track_caller]
fn succeeds(args: &[&str]) -> (String, String) {
    let out = run(args, &[]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "fovea {args:?} failed: {err}");
    (String::from_utf8_lossy(&out.stdout).to_string(), err)
}

fn repo(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn absurd_sizes_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.txt");
    std::fs::write(&m, "1 2\n3 4\n").unwrap();
    let y = dir.path().join("y.npy");
    // a 40,000 x 40,000 output (6 GiB) against a 1.5 GiB budget
    let err = refused(&["conv", s(&m), "--padding", "20000", "--output", s(&y)], &["--padding 20000", "memory budget"]);
    assert!(err.contains("FOVEA_MAX_MEMORY"), "{err}");
    assert!(!y.exists());
    refused(&["summary", "resnet50", "--classes", "10000000000"], &["--classes 10000000000", "memory budget"]);
    refused(&["summary", "cifar-resnet18446744073709551614"], &["18446744073709551614-layer", "memory budget"]);
    refused(&["summary", "cifar-resnet600002"], &["600002-layer", "memory budget"]);
    // the budget can be set, and a bad setting is named
    refused_with(
        &["summary", "lenet5", "--classes", "100000"],
        &[("FOVEA_MAX_MEMORY", "1M")],
        &["memory budget of 1.0 MiB"],
    );
    refused_with(&["summary", "lenet5"], &[("FOVEA_MAX_MEMORY", "lots")], &["FOVEA_MAX_MEMORY='lots'"]);
    // a summary works out shapes without running: a 4096x4096 VGG-16 needs no activations
    let (table, _) = succeeds(&["summary", "vgg16", "--input", "3x4096x4096"]);
    assert!(table.contains("64x4096x4096"), "{table}");
    // files that never end, or are not files
    refused(&["conv", "/dev/zero"], &["/dev/zero", "not a regular file"]);
    refused(&["conv", s(dir.path())], &[s(dir.path())]);
    let npy = dir.path().join("huge.npy");
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    std::fs::write(&npy, bytes).unwrap();
    refused(&["conv", s(&npy)], &["huge.npy"]);
}

#[test]
fn absurd_options_name_the_option_and_its_range() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.txt");
    std::fs::write(&m, "1 2 3\n4 5 6\n7 8 9\n").unwrap();
    let photo = repo("data/faces/sample1.jpg");
    for (args, name) in [
        (vec!["train", "--lr", "NaN"], "--lr"),
        (vec!["train", "--lr=-1"], "--lr"),
        (vec!["train", "--lr", "1e39"], "--lr"),
        (vec!["train", "--lr", "1e-50"], "--lr"), // 0 as an f32
        (vec!["train", "--momentum", "inf"], "--momentum"),
        (vec!["train", "--weight-decay=-0.5"], "--weight-decay"),
        (vec!["faces", "identify", &photo, "--threshold", "NaN"], "--threshold"),
        (vec!["faces", "detect", &photo, "--min-score", "NaN"], "--min-score"),
        (vec!["faces", "detect", &photo, "--min-score", "1.5"], "--min-score"),
        (vec!["stylize", "--content", &photo, "--style", &photo, "--out", "o.png", "--beta=-1"], "--beta"),
        (
            vec!["stylize", "--content", &photo, "--style", &photo, "--out", "o.png", "--save-every", "0"],
            "--save-every",
        ),
        (vec!["conv", s(&m), "--groups", "0"], "--groups"),
        (vec!["conv", s(&m), "--stride", "0"], "--stride"),
        (vec!["predict", "--checkpoint", "x", &photo, "--top", "0"], "--top"),
    ] {
        refused(&args, &[name]);
    }
    refused(&["faces", "detect", &photo, "--input-size", "32000"], &["input size 32000", "memory budget"]);
    refused(&["conv", s(&m), "--filter", "missing.txt"], &["missing.txt", "no such file"]);
    refused(&["conv", s(&m), "--output", s(&dir.path().join("noext"))], &["noext", "no extension"]);
    refused(&["train", "--train-size", "0"], &["--train-size"]);
    let out = dir.path().join("run");
    refused(&["detect", "train-localizer", "--out", s(&out), "--size", "20"], &["--size", "20x20", "multiple of 16"]);
    refused(&["experiment", "plain-vs-residual", "--out", s(&out), "--depth", "7"], &["--depth", "not 7", "6n+2"]);
    // whole-number options outside their range, each named with its range (refused while
    // the arguments are read, before anything runs)
    for (words, option, value, range) in [
        (&["augment", "x.png"][..], "--count", "0", "from 1 to 1024"),
        (&["augment", "x.png"], "--size", "4", "from 8 to 1024"),
        (&["augment", "x.png"], "--columns", "0", "1 or more"),
        (&["train"], "--epochs", "0", "1 or more"),
        (&["train"], "--batch-size", "1.5", "1 or more"),
        (&["train"], "--image-size", "4", "from 8 to 1024"),
        (&["data", "shapes", "--out", "o"], "--size", "16", "from 32 to 1024"),
        (&["data", "shapes", "--out", "o"], "--max-objects", "21", "from 0 to 20"),
        (&["detect", "train-windows"], "--pictures", "0", "1 or more"),
        (&["detect", "anchors", "--data", "d"], "-k", "0", "1 or more"),
        (&["example", "ecg1d"], "--batch-size", "0", "1 or more"),
        (&["experiment", "transfer"], "--pretrain-epochs", "0", "1 or more"),
        (&["faces", "train-embedding"], "--per-identity", "1", "2 or more"),
        (&["faces", "train-verifier"], "--pairs", "1", "2 or more"),
        (&["stylize", "--content", "c.png", "--style", "s.png", "--out", "o.png"], "--size", "31", "from 32 to 1024"),
        (&["stylize", "--content", "c.png", "--style", "s.png", "--out", "o.png"], "--steps", "0", "1 or more"),
        (&["summary", "lenet5"], "--classes", "0", "1 or more"),
        (&["yolo", "train", "--data", "d", "--out", "o"], "--batch-size", "0", "1 or more"),
    ] {
        let mut args = words.to_vec();
        args.extend([option, value]);
        refused(&args, &[option, range]);
    }
}

#[test]
fn corrupt_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    // IDX images of another size, and an empty set
    let data = p("idx");
    std::fs::create_dir(&data).unwrap();
    let idx = |n: u32, side: u32| {
        let mut b = vec![0, 0, 8, 3];
        for d in [n, side, side] {
            b.extend(d.to_be_bytes());
        }
        b.extend(vec![0u8; (n * side * side) as usize]);
        b
    };
    let labels = |n: u32| {
        let mut b = vec![0, 0, 8, 1];
        b.extend(n.to_be_bytes());
        b.extend(vec![0u8; n as usize]);
        b
    };
    let gz = |bytes: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    };
    for (split, n) in [("train", 10), ("t10k", 10)] {
        std::fs::write(data.join(format!("{split}-images-idx3-ubyte.gz")), gz(&idx(n, 32))).unwrap();
        std::fs::write(data.join(format!("{split}-labels-idx1-ubyte.gz")), gz(&labels(n))).unwrap();
    }
    refused(&["train", "--data", s(&data), "--epochs", "1"], &["train-images-idx3-ubyte.gz", "32x32"]);
    std::fs::write(data.join("train-images-idx3-ubyte.gz"), gz(&idx(0, 28))).unwrap();
    std::fs::write(data.join("train-labels-idx1-ubyte.gz"), gz(&labels(0))).unwrap();
    refused(&["train", "--data", s(&data), "--epochs", "1"], &["train-images-idx3-ubyte.gz", "no images"]);

    // an image folder with one class
    let one = p("one");
    std::fs::create_dir_all(one.join("cat")).unwrap();
    for name in ["a", "b", "c"] {
        fovea_vision::image::save_rgb_png(&one.join(format!("cat/{name}.png")), 8, 8, vec![0; 8 * 8 * 3]).unwrap();
    }
    refused(&["train", "--data", s(&one), "--epochs", "1"], &[s(&one), "one class"]);

    // a darknet label with an absurd class and no classes.txt
    let set = p("set");
    std::fs::create_dir_all(set.join("images")).unwrap();
    std::fs::create_dir_all(set.join("labels")).unwrap();
    fovea_vision::image::save_rgb_png(&set.join("images/a.png"), 16, 16, vec![0; 16 * 16 * 3]).unwrap();
    std::fs::write(set.join("labels/a.txt"), "0 0.5 0.5 0.2 0.2\n100000000 0.5 0.5 0.2 0.2\n").unwrap();
    for cmd in
        [vec!["detect", "anchors", "--data", s(&set)], vec!["yolo", "train", "--data", s(&set), "--out", s(&p("y"))]]
    {
        refused(&cmd, &["a.txt", "line 2", "class 100000000"]);
    }
    std::fs::write(set.join("classes.txt"), "car\nbus\n").unwrap();
    refused(&["detect", "anchors", "--data", s(&set)], &["a.txt", "line 2", "classes.txt names 2"]);

    // a text file as a face database
    let db = p("faces.db");
    std::fs::write(&db, "hello").unwrap();
    refused(&["faces", "list", "--db", s(&db)], &["faces.db", "not a face database"]);
}

/// A trained LeNet-5 run (a few seconds), for the cases that need a checkpoint.
fn small_run(dir: &Path) -> PathBuf {
    let run = dir.join("run");
    succeeds(&["train", "--train-size", "300", "--epochs", "1", "--out", s(&run), "--json"]);
    run
}

#[test]
fn damaged_checkpoints_are_refused_and_runs_are_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    let file = run.join("checkpoint.safetensors");
    let good = std::fs::read(&file).unwrap();
    let coffee = repo("data/images/coffee.png");

    // NaN weights: the first value of a model tensor (not of the optimizer's state)
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&good[8..8 + header_len]).unwrap();
    let (_, entry) = header
        .as_object()
        .unwrap()
        .iter()
        .find(|(name, _)| !name.starts_with("optimizer.") && *name != "__metadata__")
        .unwrap();
    let start = entry["data_offsets"][0].as_u64().unwrap() as usize;
    let mut bad = good.clone();
    bad[8 + header_len + start..][..4].copy_from_slice(&f32::NAN.to_le_bytes());
    let nan = dir.path().join("nan.safetensors");
    std::fs::write(&nan, &bad).unwrap();
    refused(&["predict", "--checkpoint", s(&nan), &coffee], &["nan.safetensors", "NaN"]);

    // an input shape the network cannot take, written into the metadata
    let text = String::from_utf8_lossy(&good[..8 + header_len]).to_string();
    let at = text.find("input").unwrap() + text[text.find("input").unwrap()..].find("28").unwrap();
    let mut bad = good.clone();
    bad[at..at + 2].copy_from_slice(b"99");
    let shape = dir.path().join("shape.safetensors");
    std::fs::write(&shape, &bad).unwrap();
    refused(&["predict", "--checkpoint", s(&shape), &coffee], &["shape.safetensors", "lenet5 cannot take"]);

    // truncated
    std::fs::write(&shape, &good[..good.len() / 2]).unwrap();
    refused(&["predict", "--checkpoint", s(&shape), &coffee], &["shape.safetensors"]);

    // existing run folders are refused by every command that writes one, unless --force
    let synthetic = dir.path().join("shapes");
    succeeds(&["data", "shapes", "--out", s(&synthetic), "--count", "4", "--size", "64"]);
    for cmd in [
        vec!["train", "--out", s(&run)],
        vec!["detect", "train-windows", "--out", s(&run)],
        vec!["detect", "train-localizer", "--out", s(&run)],
        vec!["detect", "train-landmarks", "--out", s(&run)],
        vec!["yolo", "train", "--out", s(&run)],
        vec!["faces", "train-embedding", "--out", s(&run)],
        vec!["data", "shapes", "--out", s(&run)],
        vec!["data", "shapes", "--out", s(&synthetic)],
        vec!["experiment", "augment", "--out", s(&run)],
    ] {
        refused(&cmd, &[s(&run).rsplit('/').next().unwrap(), "--force"]);
    }
    assert_eq!(std::fs::read(&file).unwrap(), good, "the run is untouched");
    succeeds(&["data", "shapes", "--out", s(&synthetic), "--count", "4", "--size", "64", "--force"]);
}

#[test]
fn resume_restores_the_run_and_refuses_changes() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    for (option, value) in [("--train-size", "200"), ("--batch-size", "32"), ("--seed", "3"), ("--optimizer", "sgd")] {
        refused(&["train", "--resume", s(&run), "--epochs", "2", option, value], &[option, "keeps its own"]);
    }
    refused(&["train", "--resume", s(&run), "--epochs", "2", "--force"], &["--force"]);
}

#[test]
fn damaged_pictures_warn_or_are_refused_and_non_finite_numbers_stay_distinct() {
    let dir = tempfile::tempdir().unwrap();
    // a JPEG cut in half, with an end marker appended so that it looks whole
    let jpeg = std::fs::read(repo("data/faces/sample2.jpg")).unwrap();
    let mut cut = jpeg[..jpeg.len() / 2].to_vec();
    cut.extend([0xff, 0xd9]);
    let half = dir.path().join("half.jpg");
    std::fs::write(&half, &cut).unwrap();
    let (_, err) = succeeds(&["conv", s(&half), "--output", s(&dir.path().join("edges.png"))]);
    assert!(err.contains("warning") && err.contains("half.jpg") && err.contains("corrupt JPEG"), "{err}");
    // the whole picture decodes without a word
    let whole = dir.path().join("whole.jpg");
    std::fs::write(&whole, &jpeg).unwrap();
    let (_, err) = succeeds(&["conv", s(&whole), "--output", s(&dir.path().join("edges2.png"))]);
    assert!(err.is_empty(), "{err}");
    // a PNG whose closing IEND chunk is cut: whole pixels, and a warning
    let png = std::fs::read(repo("data/images/coffee.png")).unwrap();
    let no_end = dir.path().join("no_end.png");
    std::fs::write(&no_end, &png[..png.len() - 4]).unwrap();
    let (_, err) = succeeds(&["conv", s(&no_end), "--output", s(&dir.path().join("edges3.png"))]);
    assert!(err.contains("warning") && err.contains("no_end.png") && err.contains("IEND"), "{err}");
    let (_, err) = succeeds(&["conv", &repo("data/images/coffee.png"), "--output", s(&dir.path().join("edges4.png"))]);
    assert!(err.is_empty(), "{err}");

    // NaN, inf and -inf in a --json output
    let m = dir.path().join("m.txt");
    std::fs::write(&m, "nan 1e30 -1e30\n0 0 0\n").unwrap();
    let inf = dir.path().join("f.txt");
    std::fs::write(&inf, "1e30\n").unwrap();
    let (out, _) = succeeds(&["conv", s(&m), "--filter", s(&inf), "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let values: Vec<&str> = v["values"].as_array().unwrap().iter().filter_map(|x| x.as_str()).collect();
    assert!(values.contains(&"NaN") && values.contains(&"Infinity") && values.contains(&"-Infinity"), "{out}");
}

#[test]
fn face_database_reads_leave_it_untouched_and_enrolment_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("faces.db");
    let photo = repo("data/faces/sample1.jpg");
    let coffee = repo("data/images/coffee.png");
    // a picture without a face among the pictures: nothing is enrolled
    refused(&["faces", "enroll", "--db", s(&db), "ann", &photo, &coffee], &["coffee.png"]);
    succeeds(&["faces", "enroll", "--db", s(&db), "ann", &photo, &photo]);
    let before = std::fs::read(&db).unwrap();
    let (list, _) = succeeds(&["faces", "list", "--db", s(&db)]);
    assert!(list.contains("ann (2 picture(s))"), "{list}");
    succeeds(&["faces", "identify", "--db", s(&db), &photo, "--output", s(&dir.path().join("o.png"))]);
    assert_eq!(std::fs::read(&db).unwrap(), before, "reading changed the database");
    refused(&["faces", "list", "--db", s(&dir.path().join("none.db"))], &["none.db", "no face database"]);
}

#[test]
fn fifos_counts_and_totals_are_refused_and_inputs_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    // a FIFO never ends (and opening one waits for a writer): refused before opening
    let fifo = p("fifo.png");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    refused(&["conv", s(&fifo)], &["fifo.png", "not a regular file"]);
    // counts that would overflow a buffer's size
    let max = usize::MAX.to_string();
    for (args, name) in [
        (vec!["detect", "train-localizer", "--out", s(&p("a")), "--train-size", &max], "--train-size"),
        (vec!["detect", "train-windows", "--out", s(&p("b")), "--pictures", &max], "--pictures"),
        (vec!["yolo", "train", "--out", s(&p("c")), "--train-size", &max], "--train-size"),
        (vec!["yolo", "train", "--out", s(&p("d")), "--train-size", "16", "--input-size", "32000"], "--input-size"),
    ] {
        refused(&args, &[name, "memory budget"]);
    }
    // what a whole training run holds counts, not each buffer alone: ResNet-18 on
    // 1024x1024 pictures needs gigabytes of activations
    let folder = p("folder");
    for class in ["a", "b"] {
        std::fs::create_dir_all(folder.join(class)).unwrap();
        for i in 0..4 {
            let png = folder.join(format!("{class}/{i}.png"));
            fovea_vision::image::save_rgb_png(&png, 8, 8, vec![i * 40; 8 * 8 * 3]).unwrap();
        }
    }
    let run = p("r");
    let args = ["train", "--data", s(&folder), "--model", "resnet18", "--image-size", "1024", "--out", s(&run)];
    refused(&args, &["1024x1024 pictures", "activations", "memory budget"]);
    // thread counts and budgets from the environment
    refused_with(&["summary", "lenet5"], &[("FOVEA_THREADS", "abc")], &["FOVEA_THREADS='abc'", "1 to 1024"]);
    refused(&["--threads", "100000", "summary", "lenet5"], &["--threads", "got 100000"]);
    refused_with(
        &["summary", "resnet50", "--classes", "10000000000"],
        &[("FOVEA_MAX_MEMORY", "100T")],
        &["memory budget"],
    );
    // an output path that is one of the inputs, or not a PNG
    let m = p("m.txt");
    std::fs::write(&m, "1 2\n3 4\n").unwrap();
    refused(&["conv", s(&m), "--filter", "vertical", "--padding", "1", "--output", s(&m)], &["m.txt", "inputs"]);
    assert_eq!(std::fs::read_to_string(&m).unwrap(), "1 2\n3 4\n");
    let photo = p("photo.png");
    std::fs::copy(repo("data/images/coffee.png"), &photo).unwrap();
    let before = std::fs::read(&photo).unwrap();
    refused(&["augment", s(&photo), "--count", "1", "--size", "32", "--out", s(&photo)], &["photo.png", "inputs"]);
    refused(&["augment", s(&photo), "--count", "1", "--size", "32", "--out", s(&p("grid"))], &["grid", ".png"]);
    assert_eq!(std::fs::read(&photo).unwrap(), before);
}

/// A copy of the repository's face-api networks in `dir/face-api`, to damage.
fn copy_face_models(dir: &Path) -> PathBuf {
    let models = dir.join("face-api");
    std::fs::create_dir(&models).unwrap();
    for entry in std::fs::read_dir(repo("models/face-api")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), models.join(entry.file_name())).unwrap();
    }
    models
}

#[test]
fn damaged_face_api_weights_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let models = copy_face_models(dir.path());
    // a quantisation scale of 1e300: the weights it expands to overflow f32
    let manifest = models.join("tiny_face_detector_model-weights_manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let at = text.find("\"scale\":").expect("a quantised manifest") + "\"scale\":".len();
    let end = at + text[at..].find([',', '}']).unwrap();
    let damaged = format!("{}1e300{}", &text[..at], &text[end..]);
    std::fs::write(&manifest, damaged).unwrap();
    let photo = repo("data/faces/sample1.jpg");
    let out = dir.path().join("o.png");
    refused(
        &["faces", "detect", &photo, "--models", s(&models), "--output", s(&out)],
        &["tiny_face_detector", "NaN or infinite"],
    );
    // tensors of the right size in the wrong shape: flattened (a panic once), or with
    // their channels swapped; the manifest and the tensor are named, not an internal op
    for (from, to, names) in [
        (
            r#""conv1/depthwise_filter","shape":[3,3,16,1]"#,
            r#""conv1/depthwise_filter","shape":[144]"#,
            &["conv1/depthwise_filter", "[144]", "4 dimensions"][..],
        ),
        (
            r#""conv1/pointwise_filter","shape":[1,1,16,32]"#,
            r#""conv1/pointwise_filter","shape":[1,1,32,16]"#,
            &["do not fit the tiny face detector"],
        ),
        (
            r#""conv8/filters","shape":[1,1,512,25]"#,
            r#""conv8/filters","shape":[1,1,640,20]"#,
            &["conv8/filters", "needs 25 at dimension 0"],
        ),
    ] {
        let compact = text.replace(' ', "");
        assert!(compact.contains(from), "the manifest has changed: {from}");
        std::fs::write(&manifest, compact.replace(from, to)).unwrap();
        let mut expected = vec!["tiny_face_detector_model-weights_manifest.json"];
        expected.extend(names);
        refused(&["faces", "detect", &photo, "--models", s(&models), "--output", s(&out)], &expected);
    }
}

/// Found by the second hostile sweep (issue 16): each was accepted, silently wrong, or lost
/// a file.
#[test]
fn second_sweep_findings_are_refused_and_nothing_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);

    // a .npy header whose fortran_order is neither True nor False (numpy refuses it too)
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let header = "{'descr': '<f4', 'fortran_order': 1, 'shape': (2, 2), }";
    let header = format!("{header:<117}\n");
    npy.extend((header.len() as u16).to_le_bytes());
    npy.extend(header.as_bytes());
    npy.extend([0u8; 16]);
    std::fs::write(p("f.npy"), &npy).unwrap();
    refused(&["conv", s(&p("f.npy")), "--filter", "vertical", "--output", s(&p("y.npy"))], &["f.npy", "fortran_order"]);

    // a write-protected output is left as it is, not replaced by a rename
    let matrix = p("m.txt");
    std::fs::write(&matrix, "1 2 3\n4 5 6\n7 8 9\n").unwrap();
    let protected = p("protected.txt");
    std::fs::write(&protected, "keep\n").unwrap();
    std::fs::set_permissions(&protected, std::os::unix::fs::PermissionsExt::from_mode(0o444)).unwrap();
    refused(&["conv", s(&matrix), "--filter", "vertical", "--output", s(&protected)], &["protected.txt", "read-only"]);
    assert_eq!(std::fs::read_to_string(&protected).unwrap(), "keep\n");

    // what a killed writer left in a run folder does not make it "an earlier run"
    let out = p("fresh");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join(".checkpoint.safetensors.tmp4194303"), "half").unwrap();
    succeeds(&["train", "--train-size", "300", "--epochs", "1", "--out", s(&out), "--json"]);
    assert!(!out.join(".checkpoint.safetensors.tmp4194303").exists());

    // a resumed run needs its optimizer's state, or it would not continue as it would have
    let file = out.join("checkpoint.safetensors");
    let (tensors, metadata) = fovea::io::read_safetensors(&file).unwrap();
    let kept: Vec<(String, fovea::Tensor)> =
        tensors.into_iter().filter(|(n, _)| !n.starts_with("optimizer.")).collect();
    fovea::io::write_safetensors(&file, &kept, metadata).unwrap();
    refused(&["train", "--resume", s(&out), "--epochs", "2"], &["checkpoint.safetensors", "optimizer state"]);

    // detection data without labels/ is not a dataset, and --val belongs to --data
    succeeds(&["data", "shapes", "--out", s(&p("set")), "--count", "4", "--size", "64"]);
    std::fs::remove_dir_all(p("set/labels")).unwrap();
    refused(&["detect", "anchors", "--data", s(&p("set"))], &["set", "no labels/ folder"]);
    refused(&["yolo", "train", "--val", s(&p("set")), "--out", s(&p("y"))], &["--val", "--data"]);

    // an overflowing count is not printed as a result; a cost weighted by nothing is refused
    refused(&["summary", "--compare-dense", "4294967296x4294967296x1:1:1"], &["4294967296x4294967296x1", "too large"]);
    let (style, styled) = (repo("data/images/chelsea.png"), p("s.png"));
    let args = ["stylize", "--content", &style, "--style", &style, "--out", s(&styled), "--alpha", "0", "--beta", "0"];
    refused(&args, &["--alpha", "beta 0"]);

    // a face database with a table gone is damaged, not new: enrolling does not remake it
    let db = p("faces.db");
    let photo = repo("data/faces/sample1.jpg");
    succeeds(&["faces", "enroll", "--db", s(&db), "ann", &photo]);
    rusqlite::Connection::open(&db).unwrap().execute_batch("DROP TABLE descriptors;").unwrap();
    refused(&["faces", "enroll", "--db", s(&db), "bob", &photo], &["faces.db", "descriptors table is missing"]);

    // a TF.js shard path out of the manifest's folder
    let models = copy_face_models(dir.path());
    let manifest = models.join("tiny_face_detector_model-weights_manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let shard = "\"tiny_face_detector_model.bin\"";
    assert!(text.contains(shard), "the manifest has changed");
    std::fs::write(&manifest, text.replace(shard, "\"../../../../etc/hostname\"")).unwrap();
    refused(
        &["faces", "detect", &photo, "--models", s(&models), "--output", s(&p("o.png"))],
        &["tiny_face_detector_model-weights_manifest.json", "not a file beside the manifest"],
    );
}

/// Found by the sweep after that: results no network can have meant, steps that blew up,
/// files the user did not name, and errors that did not name the picture.
#[test]
fn implausible_results_are_refused_and_unnamed_files_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let photo = repo("data/faces/sample1.jpg");

    // face-api weights scaled 1e10 (finite): descriptors of length 1e12, landmarks far off
    for (net, stage, names) in [
        ("face_recognition", "embed", ["face-api", "a descriptor of length"]),
        ("face_landmark_68", "landmarks", ["face-api", "far outside its face box"]),
    ] {
        std::fs::create_dir(p(net)).unwrap();
        let models = copy_face_models(&p(net));
        let manifest = models.join(format!("{net}_model-weights_manifest.json"));
        let text = std::fs::read_to_string(&manifest).unwrap();
        let at = text.find("\"scale\":").expect("a quantised manifest") + "\"scale\":".len();
        let end = at + text[at..].find([',', '}']).unwrap();
        std::fs::write(&manifest, format!("{}1e10{}", &text[..at], &text[end..])).unwrap();
        refused(&["faces", stage, &photo, "--models", s(&models), "--output", s(&p("o.png"))], &names);
    }

    // the intact networks' low-scoring boxes in the padding beyond the picture are not damage
    succeeds(&["faces", "detect", &photo, "--min-score", "0", "--output", s(&p("low.png"))]);

    // a drawing never replaces a file the user did not name; a named one is replaced
    let picture = p("photo.jpg");
    std::fs::copy(&photo, &picture).unwrap();
    std::fs::write(p("photo-faces.png"), "mine").unwrap();
    refused(&["faces", "detect", s(&picture)], &["photo-faces.png", "--output"]);
    assert_eq!(std::fs::read_to_string(p("photo-faces.png")).unwrap(), "mine");
    succeeds(&["faces", "detect", s(&picture), "--output", s(&p("photo-faces.png"))]);

    // data shapes --force replaces its own dataset, never a file it did not write
    let set = p("set");
    succeeds(&["data", "shapes", "--out", s(&set), "--count", "3", "--size", "64"]);
    std::fs::write(set.join("images/holiday.jpg"), "mine").unwrap();
    refused(&["data", "shapes", "--out", s(&set), "--count", "2", "--size", "64", "--force"], &["holiday.jpg"]);
    assert!(set.join("images/000002.png").exists() && set.join("images/holiday.jpg").exists());
    std::fs::remove_file(set.join("images/holiday.jpg")).unwrap();
    succeeds(&["data", "shapes", "--out", s(&set), "--count", "2", "--size", "64", "--force"]);
    assert!(!set.join("images/000002.png").exists() && set.join("images/000001.png").exists());

    // a picture too large to fit once decoded is named
    let folder = p("folder");
    for (class, side) in [("a", 8), ("a", 9), ("b", 8), ("b", 2000)] {
        let picture = folder.join(class).join(format!("{side}.png"));
        std::fs::create_dir_all(picture.parent().unwrap()).unwrap();
        fovea_vision::image::save_gray_png(&picture, &fovea::Tensor::full(&[side, side], 0.5), false).unwrap();
    }
    let out = p("r");
    let args = ["train", "--data", s(&folder), "--epochs", "1", "--out", s(&out)];
    refused_with(&args, &[("FOVEA_MAX_MEMORY", "60M")], &["2000.png", "memory budget"]);

    // starting weights that overflow are not blamed on the learning rate
    let run = small_run(dir.path());
    let file = run.join("checkpoint.safetensors");
    let (mut tensors, metadata) = fovea::io::read_safetensors(&file).unwrap();
    tensors.get_mut("conv1.weight").unwrap().data_mut().iter_mut().for_each(|w| *w = 3e38);
    fovea::io::write_safetensors(&file, &tensors.into_iter().collect::<Vec<_>>(), metadata).unwrap();
    let out = p("i");
    let args = ["train", "--init", s(&run), "--train-size", "300", "--epochs", "1", "--out", s(&out)];
    refused(&args, &["before any update", "starting weights came from", s(&run)]);
    assert!(!out.exists(), "the empty run folder of a failed first epoch is left behind");

    // a learning rate that blows the weights up is named as such after the epoch too
    let args = ["example", "ecg1d", "--epochs", "1", "--train-size", "32", "--test-size", "16", "--lr", "1e30"];
    refused(&args, &["training diverged", "learning rate"]);
    // each error names the option at fault, not a neighbour
    refused(&["detect", "train-landmarks", "--out", s(&p("m")), "--loss", "bogus"], &["--loss", "bogus"]);
    refused(&["example", "ecg1d", "--train-size", "32", "--test-size", "200001"], &["--test-size", "200001"]);
    refused(&["faces", "train-embedding", "--model", "bogus", "--out", s(&p("e"))], &["--model", "bogus"]);
    let style = repo("data/images/chelsea.png");
    let out = p("s.png");
    let args = ["stylize", "--content", &style, "--style", &style, "--out", s(&out), "--lr", "2"];
    refused(&args, &["--lr", "at most 1"]);
}
