//! The IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed): a magic number
//! (two zero bytes, a type code, the number of dimensions), the dimensions as big-endian
//! u32, then the data. Only unsigned bytes (type 0x08) are used by these datasets.

use flate2::read::MultiGzDecoder;
use fovea::{Error, Result};
use std::io::Read;
use std::path::Path;

/// An IDX array of unsigned bytes.
#[derive(Debug)]
pub struct IdxArray {
    /// the dimensions, outermost first
    pub dims: Vec<usize>,
    /// the elements, row-major
    pub data: Vec<u8>,
}

/// Reads an IDX file, decompressing it if its name ends in `.gz`. Checks the magic number,
/// the dimensions and that the data length matches them exactly.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let raw = fovea::budget::read_file(path)?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        // the decompressed size within the memory budget, so that a corrupt file cannot exhaust memory
        let limit = fovea::budget::limit()?.saturating_sub(fovea::budget::in_use());
        let mut out = Vec::new();
        // every member, as gzip itself reads them: data after the first is not dropped
        MultiGzDecoder::new(&raw[..])
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::format(path, format!("corrupt or truncated gzip data: {e}")))?;
        fovea::budget::check(&format!("{} decompressed", path.display()), out.len() as u64)?;
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(|msg| Error::format(path, msg))
}

/// Parses the bytes of an uncompressed IDX file; the error says what is wrong (without the
/// path).
pub fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err("not an IDX file (bad magic number)".into());
    }
    if bytes[2] != 0x08 {
        return Err(format!("IDX element type 0x{:02x} is not supported (expected 0x08, unsigned bytes)", bytes[2]));
    }
    let nd = bytes[3] as usize;
    if nd == 0 || nd > 4 {
        return Err(format!("IDX file declares {nd} dimensions (expected 1 to 4)"));
    }
    let header = 4 + 4 * nd;
    if bytes.len() < header {
        return Err("truncated IDX header".into());
    }
    let dims: Vec<usize> =
        (0..nd).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize).collect();
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("IDX dimensions overflow")?;
    let data = &bytes[header..];
    if data.len() != count {
        return Err(format!("IDX dimensions {dims:?} need {count} bytes of data but the file has {}", data.len()));
    }
    Ok(IdxArray { dims, data: data.to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let mut ok = vec![0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        ok.extend([1, 2, 3, 4, 5, 6]);
        let a = parse_idx(&ok).unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
        assert!(parse_idx(&ok[..ok.len() - 1]).unwrap_err().contains("need 6 bytes"));
        assert!(parse_idx(&[1, 2, 3, 4]).unwrap_err().contains("magic"));
        assert!(parse_idx(&[0, 0, 8, 2, 0]).unwrap_err().contains("truncated"));
        assert!(parse_idx(&[0, 0, 0x0d, 1, 0, 0, 0, 0]).unwrap_err().contains("not supported"));
    }
}
