//! NumPy `.npy` files (format versions 1-3, C order). Reads little-endian float and
//! integer arrays as f32; writes `<f4`.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Value of `key` in the header dictionary, as written by NumPy: `'key': value,`.
fn header_field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    if let Some(stripped) = rest.strip_prefix('(') {
        return Some(&stripped[..stripped.find(')')?]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim().trim_matches('\''))
}

/// Reads a `.npy` array as f32 (f64 and integer values converted); refused if its size is
/// over the memory budget.
pub fn read_npy(path: &Path) -> Result<Tensor> {
    let bytes = crate::budget::read_file(path)?;
    let bad = |msg: String| Error::format(path, msg);
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("not a .npy file (bad magic)".into()));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| bad("truncated header".into()))
        .and_then(|h| std::str::from_utf8(h).map_err(|_| bad("header is not text".into())))?;
    let descr = header_field(header, "descr").ok_or_else(|| bad("header has no 'descr'".into()))?;
    match header_field(header, "fortran_order") {
        Some("False") => {}
        Some("True") => {
            return Err(bad("Fortran-order arrays are not supported; save with np.ascontiguousarray".into()))
        }
        Some(other) => return Err(bad(format!("header's 'fortran_order' is {other}, not True or False"))),
        None => return Err(bad("header has no 'fortran_order'".into())),
    }
    let shape_text = header_field(header, "shape").ok_or_else(|| bad("header has no 'shape'".into()))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad(format!("bad shape ({shape_text})"))))
        .collect::<Result<Vec<usize>>>()?;
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| bad("shape too large".into()))?;
    let size = match descr {
        "<f4" | "<i4" | "<u4" => 4,
        "<f8" | "<i8" | "<u8" => 8,
        "<i2" | "<u2" => 2,
        "|u1" | "|i1" | "|b1" => 1,
        other => {
            return Err(bad(format!("unsupported dtype '{other}' (use float32, float64 or integers, little-endian)")))
        }
    };
    let data = &bytes[start + header_len..];
    if Some(data.len()) != count.checked_mul(size) {
        return Err(bad(format!(
            "shape {shape:?} of {descr} needs {} data bytes, file has {}",
            count.saturating_mul(size),
            data.len()
        )));
    }
    crate::budget::check_shape(&format!("{}: shape {shape:?}", path.display()), &shape)?;
    let values: Vec<f32> = match descr {
        "<f4" => data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        "<f8" => data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
        "<i4" => data.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
        "<u4" => data.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
        "<i8" => data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
        "<u8" => data.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
        "<i2" => data.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32).collect(),
        "<u2" => data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as f32).collect(),
        "|i1" => data.iter().map(|&v| v as i8 as f32).collect(),
        _ => data.iter().map(|&v| v as f32).collect(),
    };
    Tensor::new(&shape, values)
}

/// Writes `t` as a version 1.0 `<f4` `.npy` file, atomically; refuses to replace one of this
/// process's inputs.
pub fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    super::check_not_input(path)?;
    let shape = match t.shape() {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        s => format!("({})", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // pad so that the data starts on a 64-byte boundary, header ends with '\n'
    let total = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    // streamed: an array as large as the memory budget is not copied once more
    super::write_atomic_with(path, |w| {
        w.write_all(MAGIC)?;
        w.write_all(&[1, 0])?;
        w.write_all(&(header.len() as u16).to_le_bytes())?;
        w.write_all(header.as_bytes())?;
        for chunk in t.data().chunks(1 << 14) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
            w.write_all(&bytes)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_and_errors() {
        let dir = std::env::temp_dir().join(format!("fovea-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.npy");
        let t = Tensor::new(&[2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        write_npy(&p, &t).unwrap();
        let r = read_npy(&p).unwrap();
        assert_eq!(r.shape(), &[2, 3]);
        assert_eq!(r.data(), t.data());
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        let err = read_npy(&p).unwrap_err().to_string();
        assert!(err.contains("data bytes"), "{err}");
        std::fs::write(&p, b"garbage").unwrap();
        assert!(read_npy(&p).unwrap_err().to_string().contains("magic"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
