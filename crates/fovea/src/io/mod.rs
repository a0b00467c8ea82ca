//! Files: checkpoints (a model, its optimizer and a description in one safetensors file),
//! safetensors (foreign weights), NumPy `.npy` arrays, TensorFlow.js weight manifests and
//! ONNX models (`onnx`).
//! Every write goes to a temporary file that is renamed into place, so a crash never
//! leaves a half-written file where a good one was.

mod checkpoint;
pub mod narrow;
mod npy;
pub mod onnx;
mod safetensors_io;
mod tfjs;

pub use checkpoint::{load_checkpoint, save_checkpoint, Checkpoint};
pub use npy::{read_npy, write_npy};
pub use safetensors_io::{read_safetensors, write_safetensors};
pub use tfjs::read_tfjs_manifest;

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// The files this process has read (see [`note_input`]).
static INPUTS: std::sync::Mutex<std::collections::BTreeSet<std::path::PathBuf>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Records `path` as an input of this process, so that no output replaces it.
pub fn note_input(path: &Path) {
    if let Ok(canonical) = std::fs::canonicalize(path) {
        INPUTS.lock().unwrap_or_else(|e| e.into_inner()).insert(canonical);
    }
}

/// Refuses to write an output over a file this process has read (a picture, array or
/// database given as an input): a mistyped output path must not destroy the input.
pub fn check_not_input(path: &Path) -> Result<()> {
    let Ok(canonical) = std::fs::canonicalize(path) else { return Ok(()) }; // a new file
    if INPUTS.lock().unwrap_or_else(|e| e.into_inner()).contains(&canonical) {
        return Err(Error::format(path, "is one of this command's inputs; write the output to another file"));
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (temporary file in the same folder, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Writes what `write` writes to `path` atomically: to a temporary file in the same folder,
/// synced, then renamed into place, so that a crash never leaves a half-written file where
/// a good one was.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| Error::Invalid(format!("{} is not a file path", path.display())))?;
    // the rename would replace a write-protected file as if it were not
    if std::fs::metadata(path).is_ok_and(|m| m.permissions().readonly()) {
        return Err(Error::Invalid(format!("{} is read-only; it is left as it is", path.display())));
    }
    let prefix = format!(".{}.tmp", name.to_string_lossy());
    remove_orphans(dir, &prefix);
    let tmp = dir.join(format!("{prefix}{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        write(&mut f)?;
        // on disk before the rename, so a crash cannot leave an empty file in place
        f.into_inner().map_err(|e| e.into_error())?.sync_all()
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

/// Whether `name` is a temporary file that a writer killed before its rename left behind
/// (`.<file>.tmp<pid>` of a process that no longer runs).
pub fn is_orphaned_temporary(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(".tmp")
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
            .is_some_and(|pid| pid != std::process::id() && !process_runs(pid))
}

/// Removes the temporary files `<prefix><pid>` that writers killed before their rename left
/// in `dir` (those whose process no longer runs).
fn remove_orphans(dir: &Path, prefix: &str) {
    // once per folder and file name a process: a folder of many outputs is not re-read each time
    static DONE: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());
    let key = dir.join(prefix);
    {
        let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
        if done.contains(&key) {
            return;
        }
        done.push(key);
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(|n| n.starts_with(prefix) && is_orphaned_temporary(n)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn process_runs(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        alive || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// IEEE 754 half precision to f32, bit for bit (every half is an f32; NaN payloads and the
/// sign of zero are kept): the one decoder of safetensors F16 and TF.js float16 weights.
pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exp = ((bits >> 10) & 0x1f) as u32;
    let frac = (bits & 0x3ff) as u32;
    let out = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // subnormal: value = f · 2^-24
            let v = f as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(out)
}
