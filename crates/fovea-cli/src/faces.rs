//! `fovea faces ...`: face-api's pretrained networks on pictures.

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use fovea_vision::draw::Canvas;
use fovea_vision::face::{default_models_dir, Detection, SsdMobilenetV1, TinyFaceDetector};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum Faces {
    /// Find faces: boxes and scores, and a PNG with the boxes drawn
    Detect(DetectArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DetectorName {
    /// face-api's Tiny Face Detector (Tiny-YOLOv2 style; --input-size applies)
    Tiny,
    /// SSD on MobileNetV1 at 512x512: slower, finds more
    Ssd,
}

#[derive(Args)]
pub struct DetectArgs {
    /// A picture (PNG or JPEG)
    image: PathBuf,
    #[arg(long, value_enum, default_value = "tiny")]
    detector: DetectorName,
    /// Keep faces scoring above this
    #[arg(long, default_value_t = 0.5)]
    min_score: f64,
    /// Side of the tiny detector's input, a multiple of 32 (larger finds smaller faces)
    #[arg(long, default_value_t = 416)]
    input_size: usize,
    /// At most this many faces (SSD)
    #[arg(long, default_value_t = 100)]
    max_results: usize,
    /// Where to draw the result (default: <picture>-faces.png beside the picture)
    #[arg(long)]
    output: Option<PathBuf>,
    /// Folder of face-api's networks (default: the repository's models/face-api)
    #[arg(long)]
    models: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn run(f: Faces) -> Result<()> {
    match f {
        Faces::Detect(a) => detect(a),
    }
}

fn detect(a: DetectArgs) -> Result<()> {
    let models = a.models.clone().unwrap_or_else(default_models_dir);
    let rgb = fovea_vision::image::load_rgb(&a.image)?;
    let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
    let faces = match a.detector {
        DetectorName::Tiny => TinyFaceDetector::load(&models.join("tiny_face_detector_model-weights_manifest.json"))?
            .detect(&rgb, a.input_size, a.min_score)?,
        DetectorName::Ssd => SsdMobilenetV1::load(&models.join("ssd_mobilenetv1_model-weights_manifest.json"))?
            .detect(&rgb, a.min_score, a.max_results)?,
    };
    let output = a.output.clone().unwrap_or_else(|| {
        let stem = a.image.file_stem().unwrap_or_default().to_string_lossy();
        a.image.with_file_name(format!("{stem}-faces.png"))
    });
    draw(&rgb, &faces, &output).with_context(|| format!("cannot write {}", output.display()))?;
    if a.json {
        let faces: Vec<_> = faces
            .iter()
            .map(|d| json!({"box": {"x": d.x, "y": d.y, "width": d.width, "height": d.height}, "score": d.score}))
            .collect();
        println!("{}", json!({"image": a.image.display().to_string(), "width": w, "height": h, "faces": faces}));
    } else {
        println!("{}: {} face(s), drawn in {}", a.image.display(), faces.len(), output.display());
        for d in &faces {
            println!("  score {:.3}  x {:.1} y {:.1} width {:.1} height {:.1}", d.score, d.x, d.y, d.width, d.height);
        }
    }
    Ok(())
}

/// The picture with each face's box and score.
fn draw(rgb: &fovea::Tensor, faces: &[Detection], path: &Path) -> Result<()> {
    let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
    let d = rgb.data();
    let pixels = (0..h * w).flat_map(|i| (0..3).map(move |c| (d[c * h * w + i] * 255.0).round() as u8)).collect();
    let mut canvas = Canvas { width: w, height: h, pixels };
    let (green, thickness, scale) = ([40, 220, 60], (w.max(h) / 400).max(2) as i64, (w.max(h) / 500).max(1) as i64);
    for f in faces {
        let (x, y) = (f.x.round() as i64, f.y.round() as i64);
        canvas.rect(x, y, f.width.round() as i64, f.height.round() as i64, thickness, green);
        canvas.text(x, y - 9 * scale - thickness, &format!("{:.2}", f.score), scale, green);
    }
    Ok(canvas.save_png(path)?)
}
