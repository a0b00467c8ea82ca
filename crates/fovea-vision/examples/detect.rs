//! Object detection through the library (what `fovea yolo train` and `yolo detect` do): a
//! YOLO detector trained on the synthetic shapes (pedestrians, cars, motorcycles), then run
//! on a picture it never saw, its boxes kept by non-max suppression.
//!
//!     cargo run --release -p fovea-vision --example detect -- runs/yolo-example

use fovea_vision::detect::detector::{detect, load_detector};
use fovea_vision::detect::shapes::{generate, ShapesConfig};
use fovea_vision::detect::training::{train_yolo, YoloConfig};
use fovea_vision::detect::NmsOptions;

fn main() -> fovea::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "runs/yolo-example".into());
    let config = YoloConfig { epochs: 3, train_size: 2000, ..YoloConfig::default() };
    let run = train_yolo(&config, dir.as_ref(), false, &mut ())?;
    println!("validation mAP@0.5 after {} epochs: {:.3}", config.epochs, run.history.last().unwrap().val_map50);

    // a picture from a seed training never used, loaded back as any user's picture would be
    let (run, net) = load_detector(dir.as_ref())?;
    let picture = (0..).map(|i| generate(12345, i, &ShapesConfig::default())).find(|p| !p.objects.is_empty()).unwrap();
    let file = std::path::Path::new(&dir).join("unseen.png");
    picture.canvas.save_png(&file)?;
    let rgb = fovea_vision::image::load_rgb(&file)?;
    let x = fovea_vision::image::resize_bilinear(&rgb, run.input, run.input)?.reshape(&[1, 3, run.input, run.input])?;
    let options = NmsOptions { score_threshold: 0.3, iou_threshold: 0.45, ..NmsOptions::default() };
    for d in &detect(&net, &run.yolo_grid()?, &x, &options)?[0] {
        let b = d.bbox;
        println!(
            "{} {:.2} at ({:.2}, {:.2}), {:.2}x{:.2} of the picture",
            run.classes[d.class], d.score, b.cx, b.cy, b.w, b.h
        );
    }
    println!("true objects: {:?}", picture.objects.iter().map(|o| run.classes[o.class].as_str()).collect::<Vec<_>>());
    Ok(())
}
