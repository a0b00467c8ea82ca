//! The notes' edge-detection filters and plain-text matrices ("rows of numbers").

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
