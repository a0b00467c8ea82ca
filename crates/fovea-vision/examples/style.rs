//! Neural style transfer through the library (what `fovea stylize` does): the content of
//! one picture in the style of another, the picture itself optimised with Adam against
//! MobileNetV1's activations (face-api's SSD weights).
//!
//!     cargo run --release -p fovea-vision --example style -- cat.png

use fovea_vision::image::{load_rgb, resize_bilinear, resize_longer_side};
use fovea_vision::style::{stylize, Features, Start, StyleConfig};

fn main() -> fovea::Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "stylized.png".into());
    let content = resize_longer_side(&load_rgb("data/images/chelsea.png".as_ref())?, 128)?;
    let (h, w) = (content.shape()[1], content.shape()[2]);
    let style = resize_bilinear(&load_rgb("data/images/hubble.jpg".as_ref())?, h, w)?;
    let net = Features::mobilenet()?;
    let config = StyleConfig { steps: 50, alpha: 1.0, beta: 1e3, start: Start::Content, ..StyleConfig::default() };
    let picture = stylize(&net, &content, &style, &config, &mut |costs, _| {
        if costs.step % 10 == 0 {
            println!("step {}: content {:.3e}, style {:.3e}", costs.step, costs.content_cost, costs.style_cost);
        }
        Ok(())
    })?;
    fovea_vision::draw::Canvas::from_rgb(&picture).save_png(out.as_ref())?;
    println!("written to {out}");
    Ok(())
}
