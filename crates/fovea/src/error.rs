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
    /// A tensor missing from, extra in, or mis-shaped in a checkpoint.
    #[error("checkpoint does not fit the model: {0}")]
    Checkpoint(String),
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
            Error::Shape { .. } | Error::Invalid(_) | Error::Checkpoint(_) => Error::format(path, self.to_string()),
            named @ (Error::Format { .. } | Error::Io { .. } | Error::Setting { .. } | Error::FolderInUse { .. }) => {
                named
            }
        }
    }
}
