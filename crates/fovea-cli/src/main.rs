//! `fovea`: the command-line tool. Thin: parses arguments, calls the libraries, prints.

mod augment;
mod classify;
mod conv;
mod detect;
mod example;
mod experiment;
mod export;
mod faces;
mod faces_train;
mod pretrained;
mod serve;
mod stylize;
mod summary;
mod visualize;
mod yolo;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use fovea::runtime::Isa;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "fovea", version, about = "Convolutional neural networks on the CPU")]
struct Cli {
    /// Worker threads (default: FOVEA_THREADS, else all cores)
    #[arg(long, global = true, display_order = 900)]
    threads: Option<usize>,
    /// Highest kernel instruction level: scalar, avx2 or avx512 (default: FOVEA_ISA, else
    /// the best this CPU has)
    #[arg(long, global = true, display_order = 900, value_parser = parse_isa)]
    isa: Option<Isa>,
    /// Print JSON instead of text: a command's result as one object, and a training run's
    /// epochs as one object each before it (progress bars are hidden)
    #[arg(long, global = true, display_order = 900)]
    json: bool,
    /// Training on several processes (`mpirun -np N fovea train ...`): batch norm normalises
    /// with the statistics of the whole batch, summed over the processes, so that the run
    /// equals one process's (by default each normalises its own share of the batch)
    #[arg(long, global = true, display_order = 900)]
    sync_bn: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a classifier: LeNet-5 on Fashion-MNIST by default, any model, image folders with --data
    Train(classify::TrainArgs),
    /// Accuracy, per-class accuracy and confusion matrix of a trained checkpoint
    Eval(classify::EvalArgs),
    /// Top-3 classes of pictures under a trained checkpoint
    Predict(classify::PredictArgs),
    /// Convolve an image, matrix or array with a filter (the edge-detection playground)
    Conv(conv::ConvArgs),
    /// Layers of a model: output shapes, activation sizes, parameters, multiply-adds
    Summary(summary::SummaryArgs),
    /// ImageNet classes of pictures under pretrained weights (torchvision's, as safetensors)
    Classify(pretrained::ClassifyArgs),
    /// Raw forward pass of a zoo model or an ONNX model on .npy arrays
    Run(pretrained::RunArgs),
    /// Write a trained network (or a zoo architecture) as an ONNX model for other runtimes
    Export(export::ExportArgs),
    /// Reproducible experiments from the notes
    #[command(subcommand)]
    Experiment(experiment::Experiment),
    /// A grid of augmented copies of a picture (mirror, crop, colour, rotation, shear, warp)
    Augment(augment::AugmentArgs),
    /// The notes' 1-D and 3-D generalisations, learning generated data
    #[command(subcommand)]
    Example(example::Example),
    /// Datasets fovea makes
    #[command(subcommand)]
    Data(detect::Data),
    /// Object detection from scratch: anchors, ...
    #[command(subcommand)]
    Detect(detect::Detect),
    /// Neural style transfer: the content of one picture in the style of another
    Stylize(stylize::StylizeArgs),
    /// What a trained network's units respond to: top patches, filters, feature maps
    #[command(subcommand)]
    Visualize(visualize::Visualize),
    /// YOLO with anchor boxes, trained from scratch
    #[command(subcommand)]
    Yolo(yolo::Yolo),
    /// Faces: face-api's pretrained networks, and triplet-loss training from scratch
    #[command(subcommand)]
    Faces(faces::Faces),
    /// Serve faces and detection over HTTP: DeepStack's API, fovea's own, a web page
    Serve(serve::ServeArgs),
}

/// The console every training command reports to, for `epochs` epochs of `len` items.
pub(crate) fn console(epochs: usize, len: usize) -> fovea_vision::cli::Console {
    fovea_vision::cli::Console::new(json(), epochs, len)
}

/// Whether `--json` was given (set once, before the command runs).
static JSON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Prints a line about a command's work on stderr, unless the output is JSON.
pub(crate) fn note(line: impl std::fmt::Display) {
    if !json() && fovea::dist::world().is_root() {
        eprintln!("{line}");
    }
}

/// Prints a picture's most likely classes: a JSON line, or a ranked list.
pub(crate) fn print_predictions(picture: &Path, top: &[fovea_vision::models::Prediction]) {
    if json() {
        println!("{}", serde_json::json!({"image": picture.display().to_string(), "top": top}));
        return;
    }
    println!("{}", picture.display());
    for (rank, p) in top.iter().enumerate() {
        println!("  {}. {:<30} {:>4}  {:6.2}%", rank + 1, p.name, p.class, 100.0 * p.probability);
    }
}

/// Whether the output is JSON (`--json`).
pub(crate) fn json() -> bool {
    JSON.get().copied().unwrap_or(false)
}

/// A number for `--json` output: JSON has no NaN or infinities (serde writes `null` for all
/// three), so those become the strings `"NaN"`, `"Infinity"` and `"-Infinity"`, as Python's
/// `json` module spells them.
pub(crate) fn json_number(v: f32) -> serde_json::Value {
    match v {
        v if v.is_nan() => "NaN".into(),
        f32::INFINITY => "Infinity".into(),
        f32::NEG_INFINITY => "-Infinity".into(),
        v => v.into(),
    }
}

/// Prints a command's result: with `--json` as one JSON line marked `"final": true` (after
/// any per-epoch lines), else as its text.
pub(crate) fn report(result: &(impl serde::Serialize + std::fmt::Display)) -> anyhow::Result<()> {
    report_with(result, serde_json::json!({}), || result.to_string())
}

/// [`report`] with `extra` fields in the JSON (the command's inputs and outputs), and
/// `text` as the text.
pub(crate) fn report_with(
    result: &impl serde::Serialize,
    extra: serde_json::Value,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if !json() {
        println!("{}", text());
        return Ok(());
    }
    let mut line = serde_json::to_value(result)?;
    if let (Some(fields), Some(extra)) = (line.as_object_mut(), extra.as_object()) {
        fields.extend(extra.clone());
        fields.insert("final".into(), true.into());
    }
    println!("{line}");
    Ok(())
}

/// Prints the end of a training run: with `--json`, `last` (its last epoch's record) marked
/// `"final": true` with the run folder and `extra`; else `text`.
pub(crate) fn finished(
    last: &impl serde::Serialize,
    run: &Path,
    extra: serde_json::Value,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let mut extra = extra;
    extra["run"] = run.display().to_string().into();
    report_with(last, extra, text)
}

/// A run folder named after `prefix` and the time, for a run not given `--out`.
/// On several processes, rank 0's.
pub(crate) fn default_run_folder(prefix: &str) -> PathBuf {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let own = format!("runs/{prefix}-{t}");
    // (a broadcast that fails leaves the world broken: the run's first collective says so)
    let root = fovea::dist::world().broadcast(own.clone().into_bytes(), "the run folder's name");
    PathBuf::from(root.ok().and_then(|b| String::from_utf8(b).ok()).unwrap_or(own))
}

/// Says on stderr how many values of a result are NaN or infinite, if any: arithmetic
/// with such inputs is right, but should not pass unnoticed.
pub(crate) fn warn_non_finite(what: &str, values: &[f32]) {
    let bad = values.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        eprintln!(
            "warning: {bad} of {} values of {what} are NaN or infinite (from non-finite or huge inputs)",
            values.len()
        );
    }
}

fn parse_isa(s: &str) -> Result<Isa, String> {
    s.parse().map_err(|e: fovea::Error| e.to_string())
}

/// `fovea --version`: the version and the kernel level this machine runs.
fn long_version() -> String {
    let level = match fovea::runtime::resolve_isa(None) {
        Ok(l) => l.to_string(),
        Err(e) => format!("({e})"),
    };
    format!(
        "{}\nkernels: {level} (this CPU: {}; cap with FOVEA_ISA or --isa)",
        env!("CARGO_PKG_VERSION"),
        Isa::detected()
    )
}

/// The error and its causes, as `{e:#}` writes them, with the library's settings named as
/// this tool's options (`image_size` as `--image-size`) and its remedies as options too.
fn message(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e
        .chain()
        .map(|cause| match cause.downcast_ref::<fovea::Error>() {
            Some(fovea::Error::Setting { name, msg }) => {
                let dashes = if name.len() == 1 { "-" } else { "--" };
                format!("{dashes}{}: {msg}", name.replace('_', "-"))
            }
            Some(fovea::Error::FolderInUse { path }) => format!(
                "--out {} already holds files (an earlier run?); choose another --out, or give --force to replace them",
                path.display()
            ),
            _ => cause.to_string(),
        })
        .collect();
    parts.join(": ")
}

fn main() -> ExitCode {
    // a closed pipe (`fovea ... | head`) ends the program quietly, as other command-line tools
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // clap takes a static string; this one lives as long as the process anyway
    let version: &'static str = Box::leak(long_version().into_boxed_str());
    let matches = Cli::command().version(version).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // before the kernel threads start (and allocate)
    fovea::runtime::keep_freed_memory();
    let setup =
        fovea::runtime::init_isa(cli.isa).and_then(|_| fovea::budget::limit()).and_then(|_| match cli.command {
            // the server's main thread runs its event loop, not kernels
            Command::Serve(_) => fovea::runtime::init_service_threads(cli.threads),
            _ => fovea::runtime::init_threads(cli.threads),
        });
    // under an MPI launcher (`mpirun -np N fovea train ...`): join the other processes
    let setup = setup.and_then(|_| fovea::dist::init());
    if let Err(e) = setup {
        eprintln!("error: {}", message(&e.into()));
        return ExitCode::FAILURE;
    }
    let world = fovea::dist::world();
    world.sync_batch_norm(cli.sync_bn);
    // the commands that train data-parallel; the others would each run whole, N times over
    let path: Vec<&str> =
        std::iter::successors(matches.subcommand(), |(_, m)| m.subcommand()).map(|(name, _)| name).collect();
    if world.size() > 1 && !matches!(path[..], ["train"] | ["yolo", "train"] | ["faces", "train-embedding"]) {
        eprintln!(
            "error: fovea {} runs on one process; on several (under an MPI launcher) fovea runs `train`, `yolo train` \
             and `faces train-embedding`",
            path.join(" ")
        );
        fovea::dist::finish();
        return ExitCode::FAILURE;
    }
    if !world.is_root() {
        // rank 0 alone prints results; the others' errors still reach stderr
        silence_stdout();
    }
    JSON.set(cli.json).expect("set once");
    let result = match cli.command {
        Command::Train(a) => classify::train(a, matches.subcommand_matches("train").expect("the train command")),
        Command::Eval(a) => classify::eval(a),
        Command::Predict(a) => classify::predict(a),
        Command::Conv(a) => conv::run(a),
        Command::Summary(a) => summary::run(a),
        Command::Export(a) => export::run(a),
        Command::Classify(a) => pretrained::classify(a),
        Command::Run(a) => pretrained::run(a),
        Command::Experiment(e) => experiment::run(e),
        Command::Faces(f) => faces::run(f),
        Command::Serve(a) => serve::run(a),
        Command::Data(d) => detect::data(d),
        Command::Detect(d) => detect::run(d),
        Command::Yolo(y) => yolo::run(y),
        Command::Stylize(a) => stylize::run(a),
        Command::Augment(a) => augment::run(a),
        Command::Example(e) => example::run(e),
        Command::Visualize(v) => visualize::run(v),
    };
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match world.size() {
                1 => eprintln!("error: {}", message(&e)),
                n => eprintln!("error (rank {} of {n}): {}", world.rank(), message(&e)),
            }
            // rank 0 made the folders
            if world.is_root() {
                fovea_vision::train::remove_empty_new_folders();
            }
            ExitCode::FAILURE
        }
    };
    fovea::dist::finish();
    code
}

/// Sends standard output to /dev/null.
fn silence_stdout() {
    #[cfg(unix)]
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto standard output, with a descriptor that is open
        unsafe {
            libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO);
        }
    }
}
