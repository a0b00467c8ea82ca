//! `fovea stylize`: neural style transfer on the MobileNetV1 inside face-api's SSD weights,
//! or on a VGG given as torchvision weights.

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use fovea::Tensor;
use fovea_vision::draw::Canvas;
use fovea_vision::style::{self, Features, Start, StyleConfig};
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
    #[arg(value_parser = crate::range::whole(32, 1024), long, default_value_t = 256)]
    size: usize,
    #[arg(value_parser = crate::range::count, long, default_value_t = 300)]
    steps: usize,
    /// Weight of the content cost
    #[arg(value_parser = crate::range::non_negative::<f32>, long, default_value_t = 1e-3)]
    alpha: f32,
    /// Weight of the style cost
    #[arg(value_parser = crate::range::non_negative::<f32>, long, default_value_t = 1e6)]
    beta: f32,
    /// A VGG-11/13/16/19 state_dict with torchvision's names (safetensors) to take the
    /// features from, instead of the MobileNetV1 of face-api's SSD weights
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Default: conv5 (MobileNet), conv4_2 (VGG)
    #[arg(long)]
    content_layer: Option<String>,
    /// Default: conv1,conv3,conv5,conv7,conv9 (MobileNet), conv1_1,conv2_1,conv3_1,conv4_1,conv5_1 (VGG)
    #[arg(long, value_delimiter = ',')]
    style_layers: Vec<String>,
    #[arg(long, value_enum, default_value = "content")]
    init: InitName,
    /// Adam's step on the pixels (0..1): above 0, at most 1
    #[arg(value_parser = crate::range::learning_rate_on_pixels, long, default_value_t = 0.02)]
    lr: f32,
    /// Shift the picture by up to this many pixels at random each step: removes the fine
    /// grid that MobileNet's strided convolutions leave; needs more steps (e.g. 2 and 1500)
    #[arg(long, default_value_t = 0)]
    jitter: usize,
    /// Also write the picture every K steps (<out>-<step>.png), the notes' frames from start to result
    #[arg(value_parser = crate::range::count, long)]
    save_every: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One JSON object per step: step, content_cost, style_cost, total_cost
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum InitName {
    Noise,
    Content,
    Mix,
}

pub fn run(a: StylizeArgs) -> Result<()> {
    // before minutes of work, not after
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
        bail!("the folder of --out, {}, does not exist", dir.display());
    }
    if a.alpha == 0.0 && a.beta == 0.0 {
        bail!("--alpha 0 and --beta 0 leave nothing to optimise; give one of them a weight above 0");
    }
    let net = match &a.weights {
        Some(path) => Features::vgg(path)?,
        None => Features::mobilenet()?,
    };
    let (content_layer, style_layers) = net.layers(a.content_layer.as_deref(), &a.style_layers)?;
    let (content, style_pic) = style::load_pictures(&a.content, &a.style, a.size)?;
    let start = match a.init {
        InitName::Noise => Start::Noise,
        InitName::Content => Start::Content,
        InitName::Mix => Start::Mix,
    };
    let config = StyleConfig {
        steps: a.steps,
        alpha: a.alpha,
        beta: a.beta,
        content_layer,
        style_layers,
        lr: a.lr,
        jitter: a.jitter,
        start,
        seed: a.seed,
    };
    let bar = crate::progress_bar(a.steps, a.json, "step".into());
    let stem = a.out.with_extension("");
    let mut costs = Vec::new();
    let picture = style::stylize(&net, &content, &style_pic, &config, &mut |c, g| {
        costs.push(*c);
        bar.set_position(c.step as u64);
        bar.set_message(format!(
            "content {:.3e} style {:.3e} total {:.3e}",
            c.content_cost, c.style_cost, c.total_cost
        ));
        if a.json {
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
    // how far from the style picture's Gram matrices: the result, and the content picture
    let result_style = style::picture_style_cost(&net, &picture, &style_pic, &config.style_layers)?;
    let content_style = style::picture_style_cost(&net, &content, &style_pic, &config.style_layers)?;
    report(&a, &costs, (result_style, content_style), &picture)
}

fn report(a: &StylizeArgs, costs: &[style::StepCosts], (result, content): (f32, f32), picture: &Tensor) -> Result<()> {
    let (f, l) = (costs.first().expect("a step ran"), costs.last().expect("a step ran"));
    let (h, w) = (picture.shape()[1], picture.shape()[2]);
    if a.json {
        println!(
            "{}",
            serde_json::json!({"final": true, "width": w, "height": h, "first": f, "last": l,
                "result_style_cost": result, "content_picture_style_cost": content,
                "out": a.out.display().to_string()})
        );
        return Ok(());
    }
    println!(
        "{w}x{h} after {} steps: style cost {:.3e} -> {:.3e} ({:.0}x lower), content cost {:.3e} -> {:.3e}",
        a.steps,
        f.style_cost,
        l.style_cost,
        f.style_cost / l.style_cost.max(f32::MIN_POSITIVE),
        f.content_cost,
        l.content_cost,
    );
    println!(
        "the result's Gram matrices are {:.1}x closer to the style picture's than the content picture's are \
         (style cost {result:.3e} against {content:.3e}); written to {}",
        content / result.max(f32::MIN_POSITIVE),
        a.out.display()
    );
    Ok(())
}
