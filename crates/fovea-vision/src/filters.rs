//! The notes' edge-detection filters and plain-text matrices ("rows of numbers"), and the
//! arrays the convolution playground reads and writes (text, `.npy`, pictures).

use fovea::{Error, Result, Tensor};
use std::path::Path;

/// Names accepted by [`named_filter`].
pub const FILTER_NAMES: [&str; 6] = ["vertical", "horizontal", "sobel-v", "sobel-h", "scharr-v", "scharr-h"];

/// A 3x3 edge filter by name, as `[3, 3]`.
pub fn named_filter(name: &str) -> Result<Tensor> {
    let v: [f32; 9] = match name {
        "vertical" => [1., 0., -1., 1., 0., -1., 1., 0., -1.],
        "horizontal" => [1., 1., 1., 0., 0., 0., -1., -1., -1.],
        "sobel-v" => [1., 0., -1., 2., 0., -2., 1., 0., -1.],
        "sobel-h" => [1., 2., 1., 0., 0., 0., -1., -2., -1.],
        "scharr-v" => [3., 0., -3., 10., 0., -10., 3., 0., -3.],
        "scharr-h" => [3., 10., 3., 0., 0., 0., -3., -10., -3.],
        other => return Err(Error::Invalid(format!("unknown filter '{other}' (known: {})", FILTER_NAMES.join(", ")))),
    };
    Tensor::new(&[3, 3], v.to_vec())
}

/// Parses rows of numbers separated by spaces, tabs or commas into `[rows, cols]`.
pub fn parse_matrix(text: &str) -> std::result::Result<Tensor, String> {
    let mut rows: Vec<Vec<f32>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let row = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<f32>().map_err(|_| format!("line {}: '{s}' is not a number", i + 1)))
            .collect::<std::result::Result<Vec<f32>, String>>()?;
        if let Some(first) = rows.first() {
            if first.len() != row.len() {
                return Err(format!("line {} has {} numbers but the first row has {}", i + 1, row.len(), first.len()));
            }
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err("no numbers found".into());
    }
    let (r, c) = (rows.len(), rows[0].len());
    Tensor::new(&[r, c], rows.concat()).map_err(|e| e.to_string())
}

/// Reads a plain-text matrix file (see [`parse_matrix`]); errors name the file.
pub fn read_matrix(path: &Path) -> Result<Tensor> {
    let text = fovea::budget::read_text(path)?;
    parse_matrix(&text).map_err(|msg| Error::format(path, msg))
}

/// Formats a `[rows, cols]` tensor as aligned rows of numbers (integers without decimals).
pub fn format_matrix(t: &Tensor) -> String {
    let cols = *t.shape().last().unwrap_or(&1);
    let cells: Vec<String> = t
        .data()
        .iter()
        .map(|&v| if v.fract() == 0.0 && v.abs() < 1e7 { format!("{}", v as i64) } else { format!("{v:.4}") })
        .collect();
    let width = cells.iter().map(|c| c.len()).max().unwrap_or(1);
    cells
        .chunks(cols.max(1))
        .map(|row| row.iter().map(|c| format!("{c:>width$}")).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The lower-case extension of `path` ("" if none).
fn extension(path: &Path) -> String {
    path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default()
}

/// An array from a file, by its extension: `.npy`, a text matrix (`.txt`, `.csv`), or else a
/// picture read as grey values 0..255.
pub fn read_array(path: &Path) -> Result<Tensor> {
    match extension(path).as_str() {
        "npy" => fovea::io::read_npy(path),
        "txt" | "csv" => read_matrix(path),
        _ => crate::image::load_gray(path),
    }
}

/// Writes `y` to `path` in the format its extension names: `.npy`, a text matrix (`.txt`),
/// or a grey picture of the absolute values (`.png`, a 2-D `y` only).
pub fn write_array(path: &Path, y: &Tensor) -> Result<()> {
    match extension(path).as_str() {
        "npy" => fovea::io::write_npy(path, y),
        "txt" => {
            fovea::io::check_not_input(path)?;
            fovea::io::write_atomic(path, format_matrix(y).as_bytes())
        }
        "png" if y.ndim() == 2 => crate::image::save_gray_png(path, &y.map(f32::abs), true),
        "png" => Err(Error::format(path, format!("a PNG needs a single 2-D result, got shape {:?}", y.shape()))),
        "" => Err(Error::format(path, "has no extension to choose the format (.txt, .npy or .png)")),
        other => Err(Error::format(path, format!("unknown format '.{other}' (use .txt, .npy or .png)"))),
    }
}

/// A filter by name (see [`FILTER_NAMES`]) or from a file ([`read_array`]); a name that
/// looks like a file (with a folder or an extension) but is none is said to be missing.
pub fn filter(spec: &str) -> Result<Tensor> {
    let path = Path::new(spec);
    if path.exists() {
        read_array(path)
    } else if spec.contains(['/', '\\', '.']) {
        Err(Error::format(path, "no such file"))
    } else {
        named_filter(spec)
    }
}

/// The playground's convolution of `input` by `filter` (each 2-D `[H, W]`, 3-D or 4-D,
/// leading axes of size 1 added), with an optional `bias`; a 2-D input convolved to one
/// channel gives a 2-D answer.
pub fn convolve(input: Tensor, filter: Tensor, bias: Option<Tensor>, opts: &fovea::ops::ConvOptions) -> Result<Tensor> {
    use fovea::Var;
    let input_rank = input.ndim();
    let (x, w) = (to_4d(input, "the input")?, to_4d(filter, "the filter")?);
    let y = fovea::ops::conv2d(&Var::constant(x), &Var::constant(w), bias.map(Var::constant).as_ref(), opts)?.tensor();
    if input_rank == 2 && y.shape()[..2] == [1, 1] {
        return y.reshape(&y.shape()[2..]);
    }
    Ok(y)
}

/// `t` with leading dimensions of size 1 added until it is 4-D (`[H, W]` becomes
/// `[1, 1, H, W]`); `what` names it in the error for a rank above 4.
fn to_4d(t: Tensor, what: &str) -> Result<Tensor> {
    let s = t.shape().to_vec();
    if s.len() > 4 || s.is_empty() {
        return Err(Error::Invalid(format!("{what} has shape {s:?}; expected 2-D [H, W], 3-D or 4-D")));
    }
    let mut shape = vec![1; 4 - s.len()];
    shape.extend(&s);
    t.reshape(&shape)
}
