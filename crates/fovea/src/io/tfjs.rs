//! TensorFlow.js weights: a `*-weights_manifest.json` (groups of entries, each group's
//! bytes in one or more `.bin` shards) as TF.js's `loadWeights` reads it. Entries are
//! packed back to back in manifest order; quantised ones (`uint8`, `uint16`: `q·scale +
//! min`; `float16`) are expanded to f32 as TF.js does (in f64, then rounded to f32;
//! `int32` entries then to the nearest integer, half up, as `Math.round`). The byte count
//! must match the shards exactly. Bit-for-bit agreement needs `scale` and `min` parsed
//! exactly as JavaScript does: serde_json's `float_roundtrip` (its default parser can be
//! one unit in the last place off, which turned TF.js's 0 into 4e-16).

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
struct Group {
    paths: Vec<String>,
    weights: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    quantization: Option<Quantization>,
}

#[derive(Deserialize)]
struct Quantization {
    dtype: String,
    scale: Option<f64>,
    min: Option<f64>,
}

/// All tensors of the manifest at `path`, by name, with their manifest shapes.
pub fn read_tfjs_manifest(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    let text = crate::budget::read_text(path)?;
    let groups: Vec<Group> =
        serde_json::from_str(&text).map_err(|e| Error::format(path, format!("not a TF.js weights manifest: {e}")))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out = BTreeMap::new();
    for group in groups {
        let mut bytes = Vec::new();
        for shard in &group.paths {
            // shards sit beside the manifest: a path out of its folder is not one
            let plain = Path::new(shard).components().all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain {
                return Err(Error::format(path, format!("shard '{shard}' is not a file beside the manifest")));
            }
            let p = dir.join(shard);
            bytes.extend(crate::budget::read_file(&p).map_err(|e| Error::format(path, format!("shard {shard}: {e}")))?);
        }
        let shards = group.paths.join(", ");
        let mut at = 0usize;
        for e in group.weights {
            let bad = |msg: String| Error::format(path, format!("entry '{}': {msg}", e.name));
            let n =
                e.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| bad("absurd shape".into()))?;
            let stored = e.quantization.as_ref().map_or(e.dtype.as_str(), |q| q.dtype.as_str());
            let width = match stored {
                "uint8" => 1,
                "uint16" | "float16" => 2,
                "float32" | "int32" => 4,
                other => return Err(bad(format!("unsupported stored dtype '{other}'"))),
            };
            if !matches!(e.dtype.as_str(), "float32" | "int32") {
                return Err(bad(format!("unsupported dtype '{}'", e.dtype)));
            }
            let len = n.checked_mul(width).ok_or_else(|| bad("absurd shape".into()))?;
            let raw = at.checked_add(len).and_then(|end| bytes.get(at..end)).ok_or_else(|| {
                bad(format!("needs {len} bytes at offset {at}, but {shards} hold only {} (truncated?)", bytes.len()))
            })?;
            at += len;
            let values: Vec<f32> = match (stored, &e.quantization) {
                ("float32", None) => raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
                ("int32", None) => {
                    raw.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32).collect()
                }
                ("float16", Some(_)) => {
                    raw.chunks_exact(2).map(|c| super::f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect()
                }
                ("uint8" | "uint16", Some(q)) => {
                    let (Some(scale), Some(min)) = (q.scale, q.min) else {
                        return Err(bad(format!("{stored} quantisation without scale and min")));
                    };
                    let int = e.dtype == "int32";
                    let expand = move |q: u32| {
                        let v = q as f64 * scale + min;
                        (if int { (v + 0.5).floor() } else { v }) as f32
                    };
                    if width == 1 {
                        raw.iter().map(|&q| expand(q as u32)).collect()
                    } else {
                        raw.chunks_exact(2).map(|c| expand(u16::from_le_bytes([c[0], c[1]]) as u32)).collect()
                    }
                }
                _ => return Err(bad(format!("{stored} storage needs quantisation parameters"))),
            };
            if values.iter().any(|v| !v.is_finite()) {
                return Err(bad("holds NaN or infinite values; the weights are not usable".into()));
            }
            if out.insert(e.name.clone(), Tensor::new(&e.shape, values)?).is_some() {
                return Err(bad("appears twice".into()));
            }
        }
        if at != bytes.len() {
            return Err(Error::format(
                path,
                format!(
                    "the entries take {at} bytes but {shards} hold {}: manifest and weights do not match",
                    bytes.len()
                ),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::f16_to_f32;

    #[test]
    fn half_precision_values() {
        let cases = [(0x3c00, 1.0), (0xc000, -2.0), (0x3800, 0.5), (0x0001, 2f32.powi(-24)), (0x7bff, 65504.0)];
        for (h, v) in cases {
            assert_eq!(f16_to_f32(h), v, "{h:#x}");
        }
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn groups_shards_quantisation_and_size_checks() {
        let dir = std::env::temp_dir().join(format!("fovea-tfjs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = r#"[
            {"paths": ["a1.bin", "a2.bin"], "weights": [
                {"name": "f", "shape": [2], "dtype": "float32"},
                {"name": "q8", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
                {"name": "i", "shape": [], "dtype": "int32"},
                {"name": "iq", "shape": [2], "dtype": "int32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": 0.25}}
            ]},
            {"paths": ["b.bin"], "weights": [
                {"name": "q16", "shape": [2], "dtype": "float32", "quantization": {"dtype": "uint16", "scale": 0.25, "min": 1.0}},
                {"name": "h", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16"}}
            ]}
        ]"#;
        let mut a: Vec<u8> = [1.5f32, -3.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        a.extend([0u8, 3, 255]);
        a.extend(7i32.to_le_bytes());
        a.extend([1u8, 2]);
        // the group's bytes split across two shards in the middle of an entry
        std::fs::write(dir.join("a1.bin"), &a[..5]).unwrap();
        std::fs::write(dir.join("a2.bin"), &a[5..]).unwrap();
        let mut b: Vec<u8> = [4u16, 1000].iter().flat_map(|v| v.to_le_bytes()).collect();
        b.extend([0x3c00u16, 0xc000].iter().flat_map(|v| v.to_le_bytes()));
        std::fs::write(dir.join("b.bin"), &b).unwrap();
        let path = dir.join("m.json");
        std::fs::write(&path, manifest).unwrap();
        let w = read_tfjs_manifest(&path).unwrap();
        assert_eq!(w["f"].data(), [1.5, -3.0]);
        assert_eq!(w["q8"].data(), [-1.0, 0.5, 126.5]);
        assert_eq!((w["i"].shape(), w["i"].data()), (&[][..], &[7.0][..]));
        // 1·0.5 + 0.25 = 0.75 -> 1; 2·0.5 + 0.25 = 1.25 -> 1
        assert_eq!(w["iq"].data(), [1.0, 1.0]);
        assert_eq!(w["q16"].data(), [2.0, 251.0]);
        assert_eq!(w["h"].data(), [1.0, -2.0]);

        // one byte short: the entry that runs out is named
        std::fs::write(dir.join("b.bin"), &b[..b.len() - 1]).unwrap();
        let err = read_tfjs_manifest(&path).unwrap_err().to_string();
        assert!(err.contains("entry 'h'") && err.contains("truncated"), "{err}");
        // one byte too many
        let mut long = b.clone();
        long.push(0);
        std::fs::write(dir.join("b.bin"), &long).unwrap();
        let err = read_tfjs_manifest(&path).unwrap_err().to_string();
        assert!(err.contains("do not match"), "{err}");
        // a missing shard names the file
        std::fs::remove_file(dir.join("b.bin")).unwrap();
        let err = read_tfjs_manifest(&path).unwrap_err().to_string();
        assert!(err.contains("b.bin"), "{err}");
        std::fs::write(&path, "{ not json").unwrap();
        assert!(read_tfjs_manifest(&path).unwrap_err().to_string().contains("not a TF.js weights manifest"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
