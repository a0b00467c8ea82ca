//! safetensors read/write. Any float or integer dtype is read (converted to f32);
//! tensors are written as F32.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Writes named tensors and string metadata atomically.
pub fn write_safetensors(path: &Path, tensors: &[(String, Tensor)], metadata: HashMap<String, String>) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.data().iter().flat_map(|v| v.to_le_bytes()).collect(), t.shape().to_vec()))
        .collect();
    let views = bytes
        .iter()
        .map(|(n, b, s)| Ok((n.clone(), safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b)?)))
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| Error::format(path, e.to_string()))?;
    let meta = if metadata.is_empty() { None } else { Some(metadata) };
    let out = safetensors::serialize(views, meta).map_err(|e| Error::format(path, e.to_string()))?;
    super::write_atomic(path, &out)
}

/// Reads every tensor (as f32) and the metadata of a safetensors file.
pub fn read_safetensors(path: &Path) -> Result<(BTreeMap<String, Tensor>, HashMap<String, String>)> {
    let bytes = crate::budget::read_file(path)?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::format(path, format!("not a valid safetensors file: {e}")))?;
    // (the safetensors crate exposes the metadata only through a second header parse)
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| Error::format(path, e.to_string()))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let d = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => d.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
            Dtype::F64 => d.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
            Dtype::F16 => d.chunks_exact(2).map(|c| super::f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
            Dtype::BF16 => {
                d.chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)).collect()
            }
            Dtype::I64 => d.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
            Dtype::I32 => d.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
            Dtype::U8 => d.iter().map(|&v| v as f32).collect(),
            other => return Err(Error::format(path, format!("tensor {name} has unsupported dtype {other:?}"))),
        };
        out.insert(
            name.clone(),
            Tensor::new(view.shape(), values).map_err(|e| Error::format(path, format!("tensor {name}: {e}")))?,
        );
    }
    Ok((out, metadata))
}
