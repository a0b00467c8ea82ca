//! The engine's error type: every message names what was wrong.

use std::path::PathBuf;

/// What went wrong; the message names the op, file or setting concerned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Shapes that do not fit an operation, e.g. `conv2d: input [8, 3, 32, 32] has 3 channels but weight [16, 4, 3, 3] expects 4`.
    #[error("{op}: {msg}")]
    Shape {
        /// The op that refused the shapes, e.g. `conv2d`.
        op: &'static str,
        /// What did not fit.
        msg: String,
    },
    /// A bad option value (negative size, zero stride, unknown name...).
    #[error("{0}")]
    Invalid(String),
    /// A file that exists but whose content is wrong (truncated, bad magic, bad header).
    #[error("{path}: {msg}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        msg: String,
    },
    /// A file that could not be read or written.
    /// (Not a `#[source]`: the message already holds it, and error chains would repeat it.)
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// A size over the memory budget (see [`crate::budget`]), refused before allocating.
    #[error("{what} would take {}{}, over the memory budget of {} (FOVEA_MAX_MEMORY; default half of the usable memory)", crate::budget::human(*.bytes), if *.in_use > 0 { format!(" with {} in use", crate::budget::human(*.in_use)) } else { String::new() }, crate::budget::human(*.limit))]
    Budget {
        /// What was refused, in the user's words (an option, a file, an op and a shape).
        what: String,
        /// Bytes it would take.
        bytes: u64,
        /// Bytes that live tensors already hold.
        in_use: u64,
        /// The budget, in bytes.
        limit: u64,
    },
    /// A setting (a field of a configuration, such as `image_size` or `num_classes`) whose
    /// value cannot work. The command-line tool names it as its option (`--image-size`).
    #[error("{name}: {msg}")]
    Setting {
        /// The setting, e.g. `image_size`.
        name: &'static str,
        /// Why its value cannot work.
        msg: String,
    },
    /// A folder for a new run or dataset that already holds files: refused, so that nothing
    /// saved is replaced, unless the caller allows replacing them.
    #[error("{} already holds files (an earlier run?); choose another folder, or allow replacing them", .path.display())]
    FolderInUse {
        /// The folder.
        path: PathBuf,
    },
    /// Saved state (an optimizer's, a run's) that does not fit what it is loaded into.
    #[error("checkpoint does not fit the model: {0}")]
    Checkpoint(String),
    /// Tensors that do not fit a model's `state_dict`, as PyTorch's `load_state_dict`
    /// reports them: the model's tensors the file lacks, the file's tensors the model lacks,
    /// and those whose shapes differ.
    #[error("checkpoint does not fit the model: {}", state_dict_mismatch(.missing, .unexpected, .wrong_shape))]
    StateDict {
        /// Names of the model's tensors that are not given.
        missing: Vec<String>,
        /// Names of given tensors that the model does not have.
        unexpected: Vec<String>,
        /// `name is [..] in the file but [..] in the model`, for each mis-shaped tensor.
        wrong_shape: Vec<String>,
    },
}

/// The first few names of each kind of mismatch: a file for another architecture mismatches
/// hundreds.
fn state_dict_mismatch(missing: &[String], unexpected: &[String], wrong_shape: &[String]) -> String {
    let first = |what: &str, names: &[String], sep: &str| {
        let more = names.len().saturating_sub(5);
        let mut s = format!("{what} ({}): {}", names.len(), names[..names.len() - more].join(sep));
        if more > 0 {
            s.push_str(&format!("{sep}and {more} more"));
        }
        s
    };
    let parts = [("missing", missing, ", "), ("unexpected", unexpected, ", "), ("wrong shape", wrong_shape, "; ")];
    parts
        .iter()
        .filter(|(_, names, _)| !names.is_empty())
        .map(|(w, n, sep)| first(w, n, sep))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `std::result::Result` with fovea's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::Shape`] from the op `op`.
    pub fn shape(op: &'static str, msg: impl Into<String>) -> Error {
        Error::Shape { op, msg: msg.into() }
    }
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), cause: source }
    }
    /// An [`Error::Format`] for `path`.
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Error {
        Error::Format { path: path.into(), msg: msg.into() }
    }
    /// An [`Error::Setting`] for the setting `name`.
    pub fn setting(name: &'static str, msg: impl Into<String>) -> Error {
        Error::Setting { name, msg: msg.into() }
    }
    /// This error, raised while working on `path`'s content, with the file named: an error
    /// that already names a file or a setting is kept as it is.
    pub fn in_file(self, path: &std::path::Path) -> Error {
        match self {
            Error::Budget { what, bytes, in_use, limit } => {
                Error::Budget { what: format!("{}: {what}", path.display()), bytes, in_use, limit }
            }
            Error::Shape { .. } | Error::Invalid(_) | Error::Checkpoint(_) | Error::StateDict { .. } => {
                Error::format(path, self.to_string())
            }
            named @ (Error::Format { .. } | Error::Io { .. } | Error::Setting { .. } | Error::FolderInUse { .. }) => {
                named
            }
        }
    }
}
