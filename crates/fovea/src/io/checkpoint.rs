//! Checkpoints: a model's `state_dict`, optionally its optimizer's state, and a description
//! of the run (any serde type, stored as JSON in the safetensors metadata under a key of
//! the caller's, so that the tensors and their description cannot disagree), with a
//! readable copy of the description beside the file.

use super::{read_safetensors, write_atomic, write_safetensors};
use crate::error::{Error, Result};
use crate::nn::{state_dict, Module};
use crate::optim::Optimizer;
use crate::tensor::Tensor;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Where the optimizer's tensors are kept in a checkpoint: beside the model's, under
/// this prefix.
const OPTIMIZER_PREFIX: &str = "optimizer.";

/// What [`load_checkpoint`] read.
pub struct Checkpoint<T> {
    /// The file it was read from.
    pub file: PathBuf,
    /// The description.
    pub meta: T,
    /// The model's tensors by name.
    pub model: BTreeMap<String, Tensor>,
    /// The optimizer's state by name (empty if none was saved).
    pub optimizer: BTreeMap<String, Tensor>,
}

/// Writes `model`'s tensors, `optimizer`'s state if given, and `meta` (under `key`) to the
/// safetensors file `path` atomically, then `meta` alone to `path` with `.json`.
pub fn save_checkpoint<T: Serialize>(
    path: &Path,
    model: &dyn Module,
    optimizer: Option<&Optimizer>,
    key: &str,
    meta: &T,
) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut tensors: Vec<(String, Tensor)> = state_dict(model).into_iter().map(|(n, v)| (n, v.tensor())).collect();
    if let Some(opt) = optimizer {
        tensors.extend(opt.state().into_iter().map(|(n, t)| (format!("{OPTIMIZER_PREFIX}{n}"), t)));
    }
    let json = serde_json::to_string_pretty(meta).expect("descriptions serialise");
    write_safetensors(path, &tensors, HashMap::from([(key.to_string(), json.clone())]))?;
    write_atomic(&path.with_extension("json"), json.as_bytes())
}

/// Reads what [`save_checkpoint`] wrote to `path`: the description under `key` and the
/// model's and optimizer's tensors. A missing file, a file without the key, or a
/// description that does not parse as `T` is an error naming the file.
pub fn load_checkpoint<T: DeserializeOwned>(path: &Path, key: &str) -> Result<Checkpoint<T>> {
    if !path.exists() {
        return Err(Error::format(path, "not found"));
    }
    let (tensors, metadata) = read_safetensors(path)?;
    let json = metadata.get(key).ok_or_else(|| Error::format(path, format!("has no '{key}' metadata")))?;
    let meta = serde_json::from_str(json).map_err(|e| Error::format(path, format!("bad '{key}' metadata: {e}")))?;
    let (mut model, mut optimizer) = (BTreeMap::new(), BTreeMap::new());
    for (name, t) in tensors {
        match name.strip_prefix(OPTIMIZER_PREFIX) {
            Some(rest) => optimizer.insert(rest.to_string(), t),
            None => model.insert(name, t),
        };
    }
    Ok(Checkpoint { file: path.to_path_buf(), meta, model, optimizer })
}
