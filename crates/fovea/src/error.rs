//! The engine's error type: every message names what was wrong.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Shapes that do not fit an operation, e.g. `conv2d: input [8, 3, 32, 32] has 3 channels but weight [16, 4, 3, 3] expects 4`.
    #[error("{op}: {msg}")]
    Shape { op: &'static str, msg: String },
    /// A bad option value (negative size, zero stride, unknown name...).
    #[error("{0}")]
    Invalid(String),
    /// A file that exists but whose content is wrong (truncated, bad magic, bad header).
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
    /// A file that could not be read or written.
    /// (Not a `#[source]`: the message already holds it, and error chains would repeat it.)
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    /// A size over the memory budget (see [`crate::budget`]), refused before allocating.
    #[error("{what} would take {}{}, over the memory budget of {} (FOVEA_MAX_MEMORY; default half of the usable memory)", crate::budget::human(*.bytes), if *.in_use > 0 { format!(" with {} in use", crate::budget::human(*.in_use)) } else { String::new() }, crate::budget::human(*.limit))]
    Budget { what: String, bytes: u64, in_use: u64, limit: u64 },
    /// A setting (a field of a configuration, such as `image_size` or `num_classes`) whose
    /// value cannot work. The command-line tool names it as its option (`--image-size`).
    #[error("{name}: {msg}")]
    Setting { name: &'static str, msg: String },
    /// A tensor missing from, extra in, or mis-shaped in a checkpoint.
    #[error("checkpoint does not fit the model: {0}")]
    Checkpoint(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn shape(op: &'static str, msg: impl Into<String>) -> Error {
        Error::Shape { op, msg: msg.into() }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), cause: source }
    }
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Error {
        Error::Format { path: path.into(), msg: msg.into() }
    }
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
            Error::Shape { .. } | Error::Invalid(_) | Error::Checkpoint(_) => Error::format(path, self.to_string()),
            named @ (Error::Format { .. } | Error::Io { .. } | Error::Setting { .. }) => named,
        }
    }
}
