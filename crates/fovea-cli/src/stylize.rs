//! `fovea stylize`: neural style transfer on the MobileNetV1 inside face-api's SSD weights,
//! or on a VGG given as torchvision weights.

use anyhow::{bail, Result};
use clap::Args;
use fovea_vision::draw::Canvas;
use fovea_vision::style::{self, Features, StyleConfig};
use std::path::PathBuf;

#[derive(Args)]
pub struct StylizeArgs {
    /// The picture whose content to keep
    #[arg(long)]
    content: PathBuf,
    /// The picture whose style to take
    #[arg(long)]
    style: PathBuf,
    /// Where to write the generated picture (PNG)
    #[arg(long)]
    out: PathBuf,
    /// Longer side of the generated picture in pixels, 32 to 1024 (the backbone halves a
    /// picture 5 times; the style picture is resized to match)
    #[arg(value_parser = fovea_vision::cli::whole(32, 1024), long, default_value_t = 256)]
    size: usize,
    #[command(flatten)]
    config: StyleConfig,
    /// A VGG-11/13/16/19 state_dict with torchvision's names (safetensors) to take the
    /// features from, instead of the MobileNetV1 of face-api's SSD weights
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Also write the picture every K steps (<out>-<step>.png), the notes' frames from start to result
    #[arg(value_parser = fovea_vision::cli::count, long)]
    save_every: Option<usize>,
}

pub fn run(a: StylizeArgs) -> Result<()> {
    // before minutes of work, not after
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
        bail!("the folder of --out, {}, does not exist", dir.display());
    }
    let net = match &a.weights {
        Some(path) => Features::vgg(path)?,
        None => Features::mobilenet()?,
    };
    let (content, style_pic) = style::load_pictures(&a.content, &a.style, a.size)?;
    let config = &a.config;
    let bar = fovea_vision::cli::progress_bar(config.steps, crate::json(), "step".into());
    let stem = a.out.with_extension("");
    let mut costs = Vec::new();
    let picture = style::stylize(&net, &content, &style_pic, config, &mut |c, g| {
        costs.push(*c);
        bar.set_position(c.step as u64);
        bar.set_message(format!(
            "content {:.3e} style {:.3e} total {:.3e}",
            c.content_cost, c.style_cost, c.total_cost
        ));
        if crate::json() {
            println!("{}", serde_json::to_string(c).expect("costs serialise"));
        }
        if a.save_every.is_some_and(|k| c.step % k == 0) {
            Canvas::from_rgb(g).save_png(&PathBuf::from(format!("{}-{:04}.png", stem.display(), c.step)))?;
        }
        Ok(())
    });
    bar.finish_and_clear();
    let picture = picture?;
    Canvas::from_rgb(&picture).save_png(&a.out)?;
    let report = style::StyleReport::new(&net, &picture, (&content, &style_pic), config, &costs)?;
    let out = a.out.display();
    crate::report_with(&report, serde_json::json!({"out": a.out}), || format!("{report}; written to {out}"))
}
