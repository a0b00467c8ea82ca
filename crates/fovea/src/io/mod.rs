//! Files: safetensors (checkpoints, foreign weights), NumPy `.npy` arrays and TensorFlow.js
//! weight manifests.
//! Every write goes to a temporary file that is renamed into place, so a crash never
//! leaves a half-written file where a good one was.

mod npy;
mod safetensors_io;
mod tfjs;

pub use npy::{read_npy, write_npy};
pub use safetensors_io::{read_safetensors, write_safetensors};
pub use tfjs::read_tfjs_manifest;

use crate::error::{Error, Result};
use std::path::Path;

/// Writes `bytes` to `path` atomically (temporary file in the same folder, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| Error::Invalid(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        // on disk before the rename, so a crash cannot leave an empty file in place
        f.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}
