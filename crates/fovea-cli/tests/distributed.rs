//! Data-parallel training on MPI (`mpirun -np N fovea train ...`, built with the feature
//! `mpi`), against the same run in one process. Needs Open MPI's `mpirun`, which
//! `.ci/run` installs; without it the tests say so and pass, unless FOVEA_REQUIRE_CLIENTS
//! is set.
#![cfg(feature = "mpi")]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn have_mpirun() -> bool {
    let found = Command::new("mpirun").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found || std::env::var_os("FOVEA_REQUIRE_CLIENTS").is_none(), "mpirun (openmpi-bin) is not installed");
    if !found {
        eprintln!("skipped: mpirun (openmpi-bin) is not installed");
    }
    found
}

/// `fovea ARGS` on `ranks` processes (`None`: one, without a launcher), every step's
/// replicas checked.
fn command(ranks: Option<usize>, args: &[&str]) -> Command {
    let fovea = env!("CARGO_BIN_EXE_fovea");
    let mut cmd = match ranks {
        None => Command::new(fovea),
        Some(n) => {
            let mut c = Command::new("mpirun");
            c.args(["--allow-run-as-root", "--oversubscribe", "-np", &n.to_string()]);
            c.args(["-x", "FOVEA_CHECK_REPLICAS=1", "-x", "FOVEA_THREADS=1", "-x", "FOVEA_DIST_TIMEOUT", fovea]);
            c
        }
    };
    cmd.args(args).env("FOVEA_THREADS", "1").env("FOVEA_DIST_TIMEOUT", "120");
    cmd
}

fn ok(ranks: Option<usize>, args: &[&str]) -> Vec<Value> {
    let out = command(ranks, args).output().expect("runs");
    assert!(out.status.success(), "{ranks:?} ranks, fovea {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The run's tensors: the model's and the optimizer's state.
fn tensors(run: &Path) -> BTreeMap<String, fovea::Tensor> {
    fovea::io::read_safetensors(&run.join("checkpoint.safetensors")).unwrap().0
}

/// The model's weights equal to `tol` (the weights are below 1; Adam's steps, of the
/// learning rate whatever the gradient's size, turn the rounding of a gradient near zero
/// into a difference near the rounding of the weight, not of the gradient).
fn assert_close(a: &BTreeMap<String, fovea::Tensor>, b: &BTreeMap<String, fovea::Tensor>, tol: f32) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, x) in a.iter().filter(|(name, _)| !name.starts_with("optimizer.")) {
        let y = &b[name];
        let worst = x.data().iter().zip(y.data()).map(|(p, q)| (p - q).abs() / p.abs().max(1.0)).fold(0.0, f32::max);
        assert!(worst <= tol, "{name}: differs by {worst}");
    }
}

fn losses(lines: &[Value]) -> Vec<(f64, f64)> {
    let epochs = lines.iter().filter(|l| l.get("final").is_none());
    epochs.map(|l| (l["train_loss"].as_f64().unwrap(), l["test_loss"].as_f64().unwrap())).collect()
}

fn assert_losses_close(one: &[(f64, f64)], many: &[(f64, f64)]) {
    assert_eq!(one.len(), many.len());
    for (a, b) in one.iter().zip(many) {
        for (x, y) in [(a.0, b.0), (a.1, b.1)] {
            assert!((x - y).abs() <= 1e-5 * x.abs(), "losses {one:?} against {many:?}");
        }
    }
}

#[test]
fn two_ranks_train_as_one_process_step_by_step() {
    if !have_mpirun() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |ranks, out: &str| {
        let out = dir.path().join(out);
        // a batch per epoch: each epoch's training loss is that step's
        let args = ["train", "--epochs", "4", "--train-size", "96", "--batch-size", "96", "--seed", "3", "--json"];
        let lines = ok(ranks, &[&args[..], &["--out", out.to_str().unwrap()]].concat());
        (losses(&lines), tensors(&out))
    };
    let (one, one_weights) = run(None, "one");
    let (two, two_weights) = run(Some(2), "two");
    assert_losses_close(&one, &two);
    assert_close(&one_weights, &two_weights, 1e-5);
}

#[test]
fn synchronised_batch_norm_and_dropout_train_as_one_process() {
    if !have_mpirun() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |ranks, out: &str, sync: &[&'static str]| {
        let out = dir.path().join(out);
        // cnn-bn: three batch norms and two dropouts, a batch per epoch; SGD, whose steps
        // keep a gradient's rounding as small as it is (Adam's, of the learning rate for any
        // gradient, make the rounding of gradients near zero visible: one process on 1 and on
        // 2 threads ends 1e-4 apart after these three steps)
        let args = ["train", "--model", "cnn-bn", "--epochs", "3", "--train-size", "64", "--batch-size", "64"];
        let args = [&args[..], &["--optimizer", "sgd", "--json"]].concat();
        let lines = ok(ranks, &[&args, sync, &["--out", out.to_str().unwrap()]].concat());
        (losses(&lines), tensors(&out))
    };
    let (one, one_weights) = run(None, "one", &[]);
    let (two, two_weights) = run(Some(2), "two", &["--sync-bn"]);
    assert_losses_close(&one, &two);
    // the running statistics too
    assert_close(&one_weights, &two_weights, 1e-5);
    // unsynchronised, each rank normalises its half: another run
    let (apart, _) = run(Some(2), "apart", &[]);
    assert!((apart[1].0 - one[1].0).abs() > 1e-4 * one[1].0, "{apart:?} against {one:?}");
    // a batch without a picture for each rank cannot be synchronised
    let out = dir.path().join("small");
    let args = ["train", "--model", "cnn-bn", "--train-size", "65", "--batch-size", "64", "--sync-bn"];
    let failed = command(Some(2), &[&args[..], &["--out", out.to_str().unwrap()]].concat()).output().unwrap();
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success() && err.contains("--sync-bn: needs every batch"), "{err}");
}

#[test]
fn uneven_shards_of_uneven_batches_train_as_one_process() {
    if !have_mpirun() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |ranks, out: &str| {
        let out = dir.path().join(out);
        // batches of 100, 100 and 50 pictures, in shards of 34, 33, 33 and 17, 17, 16; SGD
        // with momentum and weight decay
        let args = ["train", "--model", "lenet5", "--epochs", "2", "--train-size", "250", "--batch-size", "100"];
        let sgd = ["--optimizer", "sgd", "--momentum", "0.9", "--weight-decay", "0.0005", "--json"];
        let lines = ok(ranks, &[&args[..], &sgd, &["--out", out.to_str().unwrap()]].concat());
        (losses(&lines), tensors(&out))
    };
    let (one, one_weights) = run(None, "one");
    let (three, three_weights) = run(Some(3), "three");
    assert_losses_close(&one, &three);
    assert_close(&one_weights, &three_weights, 1e-5);
}

#[test]
fn resumed_under_mpi_equals_an_uninterrupted_mpi_run_and_resumes_on_any_rank_count() {
    if !have_mpirun() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let args = ["train", "--train-size", "300", "--batch-size", "64", "--json"];
    ok(Some(2), &[&args[..], &["--epochs", "2", "--out", &path("whole")]].concat());
    ok(Some(2), &[&args[..], &["--epochs", "1", "--out", &path("halves")]].concat());
    ok(Some(2), &["train", "--resume", &path("halves"), "--epochs", "2", "--json"]);
    let (whole, halves) = (tensors(&dir.path().join("whole")), tensors(&dir.path().join("halves")));
    for (name, t) in &whole {
        assert_eq!(t.data(), halves[name].data(), "{name} differs after resuming");
    }
    // the checkpoint of two ranks continues on one process
    let lines = ok(None, &["train", "--resume", &path("halves"), "--epochs", "3", "--json"]);
    assert_eq!(lines.last().unwrap()["epoch"], 3);
}

/// Starts a run of many epochs on 2 ranks and waits for its first checkpoint; returns the
/// launcher and rank 1's process id.
fn start_long_run(out: &Path, timeout_seconds: &str) -> (Child, u32) {
    let args = ["train", "--epochs", "1000", "--train-size", "2000", "--out", out.to_str().unwrap()];
    let mpirun = command(Some(2), &args)
        .env("FOVEA_DIST_TIMEOUT", timeout_seconds)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !out.join("checkpoint.safetensors").exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint after 2 minutes");
        std::thread::sleep(Duration::from_millis(100));
    }
    // rank 1: the process whose launcher-given rank is 1, among those running this run
    let rank1 = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let read = |file| std::fs::read(format!("/proc/{pid}/{file}")).unwrap_or_default();
            let has = |bytes: &[u8], s: &str| bytes.split(|&b| b == 0).any(|part| part == s.as_bytes());
            has(&read("cmdline"), out.to_str().unwrap()) && has(&read("environ"), "OMPI_COMM_WORLD_RANK=1")
        })
        .expect("rank 1 runs");
    (mpirun, rank1)
}

/// Waits at most `limit` for the launcher to end; its exit status and standard error.
fn wait_for(mut mpirun: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while mpirun.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            mpirun.kill().unwrap();
            panic!("the ranks still run {limit:?} after one stopped");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    mpirun.wait_with_output().unwrap()
}

/// The checkpoint a killed run left loads, and resumes on another number of processes.
fn assert_resumable(out: &Path) {
    let ckpt = fovea_vision::train::load_checkpoint(out).unwrap();
    let done = ckpt.meta.epoch;
    assert!(done >= 1);
    let more = (done + 1).to_string();
    let lines = ok(None, &["train", "--resume", out.to_str().unwrap(), "--epochs", &more, "--json"]);
    assert_eq!(lines.last().unwrap()["epoch"], done + 1);
}

#[test]
fn a_killed_rank_stops_the_others_and_the_checkpoint_resumes() {
    if !have_mpirun() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (mpirun, rank1) = start_long_run(&out, "120");
    // SAFETY: a plain kill(2) of a process this test started
    assert_eq!(unsafe { libc::kill(rank1 as i32, libc::SIGKILL) }, 0);
    let finished = wait_for(mpirun, Duration::from_secs(60));
    assert!(!finished.status.success());
    assert_resumable(&out);
}

#[test]
fn a_hung_rank_makes_the_others_stop_with_an_error_after_the_timeout() {
    if !have_mpirun() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // (long enough that a loaded machine does not time out before the stop)
    let (mpirun, rank1) = start_long_run(&out, "10");
    // SAFETY: a plain kill(2) of a process this test started
    assert_eq!(unsafe { libc::kill(rank1 as i32, libc::SIGSTOP) }, 0);
    let finished = wait_for(mpirun, Duration::from_secs(60));
    // SAFETY: as above; the launcher may have killed it already
    unsafe { libc::kill(rank1 as i32, libc::SIGKILL) };
    let err = String::from_utf8_lossy(&finished.stderr);
    assert!(!finished.status.success());
    assert!(err.contains("error (rank 0 of 2)") && err.contains("no answer from the other ranks in 10 s"), "{err}");
    assert_resumable(&out);
}

#[test]
fn yolo_and_triplet_training_run_on_two_ranks_as_on_one_process() {
    if !have_mpirun() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    ok(None, &["data", "shapes", "--out", &path("shapes"), "--count", "80", "--seed", "4", "--json"]);
    // the first epoch's loss (Adam's later steps make the rounding of gradients near zero
    // visible, as one process on 1 and on 2 threads shows)
    let first_loss = |lines: &[Value]| lines.iter().find(|l| l["epoch"] == 1).unwrap()["loss"].as_f64().unwrap();
    let close = |a: f64, b: f64| assert!((a - b).abs() <= 1e-5 * a.abs(), "{a} against {b}");
    // YOLO: the detector's batch norms synchronised; validation on every rank
    let yolo = ["yolo", "train", "--data", &path("shapes"), "--epochs", "1", "--anchors", "3", "--batch-size", "16"];
    let one = ok(None, &[&yolo[..], &["--json", "--out", &path("y1")]].concat());
    let two = ok(Some(2), &[&yolo[..], &["--json", "--sync-bn", "--out", &path("y2")]].concat());
    close(first_loss(&one), first_loss(&two));
    assert_eq!(one[0]["val_map50"], two[0]["val_map50"]);
    // triplets mined in the whole batch, from the embeddings gathered from both ranks
    let faces = ["faces", "train-embedding", "--model", "lenet5", "--mining", "semi-hard", "--epochs", "1"];
    let small = ["--train-size", "600", "--test-size", "300", "--trials", "2", "--json"];
    let one = ok(None, &[&faces[..], &small, &["--out", &path("e1")]].concat());
    let two = ok(Some(2), &[&faces[..], &small, &["--out", &path("e2")]].concat());
    close(first_loss(&one), first_loss(&two));
    // commands that do not train data-parallel refuse to run N times over
    let out = command(Some(2), &["summary", "lenet5"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("fovea summary runs on one process"), "{err}");
    // an absurd timeout is refused, naming the variable
    let out = command(Some(2), &["train", "--epochs", "1"]).env("FOVEA_DIST_TIMEOUT", "-5").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("FOVEA_DIST_TIMEOUT='-5'"), "{err}");
    // rank 0 wrote the run; the verifier trains on it
    ok(None, &["faces", "train-verifier", "--embedding", &path("e2"), "--pairs", "100", "--json"]);
}
