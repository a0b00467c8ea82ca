//! `fovea conv`: the edge-detection playground, and a general conv2d on `.npy` arrays.

use anyhow::{bail, Context, Result};
use clap::Args;
use fovea::io::{read_npy, write_npy};
use fovea::ops::{conv2d, ConvOptions, Padding};
use fovea::{Tensor, Var};
use fovea_vision::filters::{format_matrix, named_filter, read_matrix};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ConvArgs {
    /// Input: an image (PNG/JPEG, read as grey 0..255), a text matrix (.txt), or a .npy array
    input: PathBuf,
    /// Filter: vertical, horizontal, sobel-v, sobel-h, scharr-v, scharr-h, or a .txt/.npy file
    #[arg(long, default_value = "vertical", conflicts_with = "weight")]
    filter: String,
    /// OIHW weights (.npy) for a general conv2d of an NCHW .npy input
    #[arg(long)]
    weight: Option<PathBuf>,
    /// Bias (.npy, one value per output channel) for --weight
    #[arg(long, requires = "weight")]
    bias: Option<PathBuf>,
    /// valid, same, or a number of zero rows/columns on each side
    #[arg(long, default_value = "valid")]
    padding: String,
    #[arg(long, default_value_t = 1, value_parser = crate::range::count)]
    stride: usize,
    #[arg(long, default_value_t = 1, value_parser = crate::range::count)]
    dilation: usize,
    #[arg(long, default_value_t = 1, value_parser = crate::range::count)]
    groups: usize,
    /// True convolution: flip the filter first (the default is cross-correlation)
    #[arg(long)]
    flip: bool,
    /// Output file; the extension picks the format: .txt, .npy or .png (default: print the matrix)
    #[arg(long)]
    output: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

fn ext(p: &Path) -> String {
    p.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default()
}

fn parse_padding(s: &str) -> Result<Padding> {
    Ok(match s {
        "valid" => Padding::Valid,
        "same" => Padding::Same,
        n => Padding::symmetric(
            n.parse().with_context(|| format!("--padding must be valid, same or a number, got '{n}'"))?,
        ),
    })
}

fn read_input(p: &Path) -> Result<Tensor> {
    Ok(match ext(p).as_str() {
        "npy" => read_npy(p)?,
        "txt" | "csv" => read_matrix(p)?,
        _ => fovea_vision::image::load_gray(p)?,
    })
}

/// Adds leading dimensions of size 1 until the tensor is 4-D.
fn to_4d(t: Tensor, what: &str) -> Result<Tensor> {
    let s = t.shape().to_vec();
    if s.len() > 4 || s.is_empty() {
        bail!("{what} has shape {s:?}; expected 2-D [H, W], 3-D or 4-D");
    }
    let mut shape = vec![1; 4 - s.len()];
    shape.extend(&s);
    Ok(t.reshape(&shape)?)
}

/// Writes `y` to `out` in the format its extension names.
fn write_output(out: &Path, y: &Tensor) -> Result<()> {
    match ext(out).as_str() {
        "npy" => write_npy(out, y)?,
        "txt" => {
            fovea::io::check_not_input(out)?;
            fovea::io::write_atomic(out, format_matrix(y).as_bytes())?
        }
        "png" => {
            if y.ndim() != 2 {
                bail!("a PNG output needs a single 2-D result, got shape {:?}", y.shape());
            }
            fovea_vision::image::save_gray_png(out, &y.map(f32::abs), true)?
        }
        "" => bail!("--output {} has no extension to choose the format (.txt, .npy or .png)", out.display()),
        other => bail!("--output {}: unknown format '.{other}' (use .txt, .npy or .png)", out.display()),
    }
    Ok(())
}

pub fn run(a: ConvArgs) -> Result<()> {
    let opts = ConvOptions::default()
        .stride(a.stride)
        .dilation(a.dilation)
        .groups(a.groups)
        .padding(parse_padding(&a.padding)?)
        .flip(a.flip);
    let input = read_input(&a.input)?;
    let input_rank = input.ndim();
    let weight = match &a.weight {
        Some(w) => read_npy(w)?,
        None if Path::new(&a.filter).exists() => read_input(Path::new(&a.filter))?,
        // a name with a folder or an extension is a file, and a missing one is said to be missing
        None if a.filter.contains(['/', '\\', '.']) => bail!("--filter {}: no such file", a.filter),
        None => named_filter(&a.filter)?,
    };
    let filter = match &a.weight {
        Some(w) => format!("--weight {}", w.display()),
        None => format!("--filter {}", a.filter),
    };
    let x = to_4d(input, &a.input.display().to_string())?;
    let w = to_4d(weight, &filter)?;
    let b = a.bias.as_ref().map(|p| read_npy(p)).transpose()?;
    let y = conv2d(&Var::constant(x), &Var::constant(w), b.map(Var::constant).as_ref(), &opts)
        .with_context(|| {
            let bias = a.bias.as_ref().map(|b| format!(", --bias {}", b.display())).unwrap_or_default();
            format!(
                "convolving {} with {filter}{bias}, --padding {}, --stride {}, --dilation {}, --groups {}",
                a.input.display(),
                a.padding,
                a.stride,
                a.dilation,
                a.groups
            )
        })?
        .tensor();
    crate::warn_non_finite("the result", y.data());
    // A 2-D input gives a 2-D answer.
    let y = if input_rank == 2 && y.shape()[..2] == [1, 1] { y.reshape(&y.shape()[2..])? } else { y };
    match &a.output {
        Some(out) => write_output(out, &y)?,
        None if !a.json => print!("{}", format_matrix(&y)),
        None => {}
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({"shape": y.shape(), "values": y.data().iter().map(|&v| crate::json_number(v)).collect::<Vec<_>>(), "output": a.output})
        );
    }
    Ok(())
}
