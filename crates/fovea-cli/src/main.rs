//! `fovea`: the command-line tool. Thin: parses arguments, calls the libraries, prints.

mod augment;
mod classify;
mod conv;
mod detect;
mod example;
mod experiment;
mod faces;
mod faces_train;
mod pretrained;
mod range;
mod stylize;
mod summary;
mod visualize;
mod yolo;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use fovea::runtime::Isa;

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "fovea", version, about = "Convolutional neural networks on the CPU")]
struct Cli {
    /// Worker threads (default: FOVEA_THREADS, else all cores)
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Highest kernel instruction level: scalar, avx2 or avx512 (default: FOVEA_ISA, else
    /// the best this CPU has)
    #[arg(long, global = true, value_parser = parse_isa)]
    isa: Option<Isa>,
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
    /// Raw forward pass of a model on an NCHW .npy array
    Run(pretrained::RunArgs),
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
}

/// The progress bar every long command shows: `prefix [=====>    ] 1200/60000 2300/s eta 20s msg`,
/// hidden when the command prints JSON.
pub(crate) fn progress_bar(len: usize, hidden: bool, prefix: String) -> indicatif::ProgressBar {
    let bar = if hidden { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(len as u64) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar
}

/// A progress bar for each epoch of a run, made at the epoch's first report (hidden with
/// `--json`).
pub(crate) struct EpochBar {
    pub(crate) hidden: bool,
    pub(crate) epochs: usize,
    /// Items an epoch goes through.
    pub(crate) len: usize,
    bar: Option<(usize, indicatif::ProgressBar)>,
}

impl EpochBar {
    pub(crate) fn new(hidden: bool, epochs: usize, len: usize) -> EpochBar {
        EpochBar { hidden, epochs, len, bar: None }
    }
    /// Shows `done` items of `epoch` and `message`.
    pub(crate) fn update(&mut self, epoch: usize, done: usize, message: String) {
        if self.bar.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let bar = progress_bar(self.len, self.hidden, format!("epoch {epoch}/{}", self.epochs));
            self.bar = Some((epoch, bar));
        }
        let (_, bar) = self.bar.as_ref().expect("made above");
        bar.set_position(done as u64);
        bar.set_message(message);
    }
    /// Clears the epoch's bar (before its line is printed).
    pub(crate) fn finish(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
    /// Ends an epoch: clears its bar, then prints `record` as a JSON line (with `--json`)
    /// or `line` on stderr.
    pub(crate) fn end_epoch(&mut self, record: &impl serde::Serialize, line: impl FnOnce() -> String) {
        self.finish();
        if self.hidden {
            println!("{}", serde_json::to_string(record).expect("records serialise"));
        } else {
            eprintln!("{}", line());
        }
    }
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

/// A run folder named after `prefix` and the time, for a run not given `--out`.
pub(crate) fn default_run_folder(prefix: &str) -> PathBuf {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    PathBuf::from(format!("runs/{prefix}-{t}"))
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
            Some(fovea::Error::Setting { name, msg }) => format!("--{}: {msg}", name.replace('_', "-")),
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
    if let Err(e) = fovea::runtime::init_isa(cli.isa) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = fovea::budget::limit() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = fovea::runtime::init_threads(cli.threads) {
        eprintln!("error: {}", message(&e.into()));
        return ExitCode::FAILURE;
    }
    fovea::runtime::keep_freed_memory();
    let result = match cli.command {
        Command::Train(a) => classify::train(a),
        Command::Eval(a) => classify::eval(a),
        Command::Predict(a) => classify::predict(a),
        Command::Conv(a) => conv::run(a),
        Command::Summary(a) => summary::run(a),
        Command::Classify(a) => pretrained::classify(a),
        Command::Run(a) => pretrained::run(a),
        Command::Experiment(e) => experiment::run(e),
        Command::Faces(f) => faces::run(f),
        Command::Data(d) => detect::data(d),
        Command::Detect(d) => detect::run(d),
        Command::Yolo(y) => yolo::run(y),
        Command::Stylize(a) => stylize::run(a),
        Command::Augment(a) => augment::run(a),
        Command::Example(e) => example::run(e),
        Command::Visualize(v) => visualize::run(v),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}
