//! `fovea conv`: the edge-detection playground, and a general conv2d on `.npy` arrays.

use anyhow::{Context, Result};
use clap::Args;
use fovea::io::read_npy;
use fovea::ops::{ConvOptions, Padding};
use fovea_vision::filters::{self, format_matrix, read_array, write_array};
use std::path::PathBuf;

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
    #[arg(long, default_value_t = 1, value_parser = fovea_vision::cli::count)]
    stride: usize,
    #[arg(long, default_value_t = 1, value_parser = fovea_vision::cli::count)]
    dilation: usize,
    #[arg(long, default_value_t = 1, value_parser = fovea_vision::cli::count)]
    groups: usize,
    /// True convolution: flip the filter first (the default is cross-correlation)
    #[arg(long)]
    flip: bool,
    /// Output file; the extension picks the format: .txt, .npy or .png (default: print the matrix)
    #[arg(long)]
    output: Option<PathBuf>,
}

pub fn run(a: ConvArgs) -> Result<()> {
    let opts = ConvOptions::default()
        .stride(a.stride)
        .dilation(a.dilation)
        .groups(a.groups)
        .padding(a.padding.parse::<Padding>().with_context(|| format!("--padding {}", a.padding))?)
        .flip(a.flip);
    let weight = match &a.weight {
        Some(w) => read_npy(w)?,
        None => filters::filter(&a.filter)?,
    };
    let filter = match &a.weight {
        Some(w) => format!("--weight {}", w.display()),
        None => format!("--filter {}", a.filter),
    };
    let bias = a.bias.as_ref().map(|p| read_npy(p)).transpose()?;
    let y = filters::convolve(read_array(&a.input)?, weight, bias, &opts).with_context(|| {
        let bias = a.bias.as_ref().map(|b| format!(", --bias {}", b.display())).unwrap_or_default();
        let (input, (padding, stride, dilation, groups)) = (a.input.display(), (&a.padding, a.stride, a.dilation, a.groups));
        format!("convolving {input} with {filter}{bias}, --padding {padding}, --stride {stride}, --dilation {dilation}, --groups {groups}")
    })?;
    crate::warn_non_finite("the result", y.data());
    match &a.output {
        Some(out) => write_array(out, &y)?,
        None if !crate::json() => print!("{}", format_matrix(&y)),
        None => {}
    }
    if crate::json() {
        println!(
            "{}",
            serde_json::json!({"shape": y.shape(), "values": y.data().iter().map(|&v| crate::json_number(v)).collect::<Vec<_>>(), "output": a.output})
        );
    }
    Ok(())
}
