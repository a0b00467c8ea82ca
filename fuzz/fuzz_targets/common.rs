//! What every target shares: the loaders read files, so each input is written to a file of
//! this process's own first.

use std::path::PathBuf;

/// `bytes` in a file named `name` in this process's scratch folder.
pub fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fovea-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("scratch file");
    path
}

/// A budget small enough that a declared size over it is refused, not allocated.
pub fn small_budget() {
    std::env::set_var("FOVEA_MAX_MEMORY", "256M");
}
