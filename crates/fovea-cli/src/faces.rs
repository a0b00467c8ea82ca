//! `fovea faces ...`: face-api's pretrained networks on pictures (training from scratch is
//! in `faces_train`).

use anyhow::{bail, Result};
use clap::{Args, Subcommand, ValueEnum};
use fovea_vision::face::{default_models_dir, distance, draw_faces, Detector, Face, FaceDb, Pipeline, Stage};
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Faces {
    /// Find faces: boxes and scores, and a PNG with the boxes drawn
    Detect(PictureArgs),
    /// Faces and their 68 landmarks, drawn as points
    Landmarks(PictureArgs),
    /// Faces, landmarks and a 128-D descriptor per face
    Embed(PictureArgs),
    /// Whether the (most confident) faces of two pictures are the same person
    Verify(VerifyArgs),
    /// Add a person to a face database from one or more pictures (one face each)
    Enroll(EnrollArgs),
    /// Name each face of a picture from a face database, or "not recognized"
    Identify(IdentifyArgs),
    /// Everyone in a face database
    List(DbArgs),
    /// Remove a person from a face database
    Remove(RemoveArgs),
    /// Train an embedding network with the triplet loss; measure one-shot identification
    TrainEmbedding(crate::faces_train::TrainEmbeddingArgs),
    /// Learn verification as binary classification over a trained embedding's pairs
    TrainVerifier(crate::faces_train::TrainVerifierArgs),
}

#[derive(Args)]
pub struct DbArgs {
    /// The face database (SQLite; created if missing)
    #[arg(long)]
    db: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct EnrollArgs {
    #[command(flatten)]
    db: DbArgs,
    name: String,
    /// Pictures of the person; the most confident face of each is enrolled
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    detector: DetectorArgs,
}

#[derive(Args)]
pub struct IdentifyArgs {
    #[command(flatten)]
    db: DbArgs,
    image: PathBuf,
    /// The nearest enrolled face counts only if closer than this
    #[arg(value_parser = crate::range::non_negative::<f64>, long, default_value_t = 0.6)]
    threshold: f64,
    #[command(flatten)]
    detector: DetectorArgs,
    /// Where to draw the result (default: <picture>-faces.png beside the picture)
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    db: DbArgs,
    name: String,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DetectorName {
    /// face-api's Tiny Face Detector (Tiny-YOLOv2 style; --input-size applies)
    Tiny,
    /// SSD on MobileNetV1 at 512x512: slower, finds more
    Ssd,
}

#[derive(Args)]
pub struct DetectorArgs {
    #[arg(long, value_enum, default_value = "tiny")]
    detector: DetectorName,
    /// Keep faces scoring above this
    #[arg(value_parser = crate::range::fraction::<f64>, long, default_value_t = 0.5)]
    min_score: f64,
    /// Side of the tiny detector's input, a multiple of 32 (larger finds smaller faces)
    #[arg(long, default_value_t = 416)]
    input_size: usize,
    /// At most this many faces (SSD)
    #[arg(long, default_value_t = 100, value_parser = crate::range::count)]
    max_results: usize,
    /// Folder of face-api's networks (default: the repository's models/face-api)
    #[arg(long)]
    models: Option<PathBuf>,
}

impl DetectorArgs {
    fn pipeline(&self, stage: Stage) -> Result<Pipeline> {
        if self.input_size == 0 || !self.input_size.is_multiple_of(32) {
            bail!("--input-size {} must be a multiple of 32 (face-api's default: 416)", self.input_size);
        }
        let detector = match self.detector {
            DetectorName::Tiny => Detector::Tiny { input_size: self.input_size },
            DetectorName::Ssd => Detector::Ssd { max_results: self.max_results },
        };
        Ok(Pipeline::load(&self.models.clone().unwrap_or_else(default_models_dir), detector, stage)?)
    }
}

#[derive(Args)]
pub struct PictureArgs {
    /// A picture (PNG or JPEG)
    image: PathBuf,
    #[command(flatten)]
    detector: DetectorArgs,
    /// Where to draw the result (default: <picture>-faces.png beside the picture)
    #[arg(long)]
    output: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct VerifyArgs {
    a: PathBuf,
    b: PathBuf,
    /// Descriptors closer than this are the same person (face-api's FaceMatcher: 0.6)
    #[arg(value_parser = crate::range::non_negative::<f64>, long, default_value_t = 0.6)]
    threshold: f64,
    #[command(flatten)]
    detector: DetectorArgs,
    #[arg(long)]
    json: bool,
}

pub fn run(f: Faces) -> Result<()> {
    match f {
        Faces::Detect(a) => picture(a, Stage::Detect),
        Faces::Landmarks(a) => picture(a, Stage::Landmarks),
        Faces::Embed(a) => picture(a, Stage::Embed),
        Faces::Verify(a) => verify(a),
        Faces::Enroll(a) => enroll(a),
        Faces::Identify(a) => identify(a),
        Faces::List(a) => list(a),
        Faces::Remove(a) => remove(a),
        Faces::TrainEmbedding(a) => crate::faces_train::train_embedding(a),
        Faces::TrainVerifier(a) => crate::faces_train::train_verifier(a),
    }
}

fn enroll(a: EnrollArgs) -> Result<()> {
    let pipeline = a.detector.pipeline(Stage::Embed)?;
    let enrolled = FaceDb::open(&a.db.db)?.enroll_pictures(&pipeline, &a.name, &a.images, a.detector.min_score)?;
    if a.db.json {
        println!("{}", json!({"name": a.name, "enrolled": enrolled}));
    } else {
        println!("enrolled {enrolled} picture(s) of {} in {}", a.name, a.db.db.display());
    }
    Ok(())
}

fn identify(a: IdentifyArgs) -> Result<()> {
    let output = fovea_vision::draw::drawing_path(a.output.as_deref(), &a.image, "faces", "output")?;
    let db = FaceDb::open_read_only(&a.db.db)?;
    let pipeline = a.detector.pipeline(Stage::Embed)?;
    let rgb = fovea_vision::image::load_rgb(&a.image)?;
    let (faces, named): (Vec<Face>, Vec<_>) =
        db.identify_faces(&pipeline, &rgb, a.detector.min_score, a.threshold)?.into_iter().unzip();
    let labels: Vec<String> =
        named.iter().map(|n| n.as_ref().map_or("not recognized".to_string(), |(name, _)| name.clone())).collect();
    draw_faces(&rgb, &faces, Some(&labels)).save_png(&output)?;
    if a.db.json {
        let out: Vec<Value> = faces
            .iter()
            .zip(&named)
            .map(|(f, n)| {
                let mut v = serde_json::to_value(f).expect("faces serialise");
                v["name"] = json!(n.as_ref().map(|(name, _)| name));
                v["distance"] = json!(n.as_ref().map(|(_, d)| d));
                v
            })
            .collect();
        println!("{}", json!({"image": a.image.display().to_string(), "faces": out}));
    } else {
        println!("{}: {} face(s), drawn in {}", a.image.display(), faces.len(), output.display());
        for (f, label) in faces.iter().zip(&labels) {
            println!("  {label:<20} at x {:.0} y {:.0}", f.detection.x, f.detection.y);
        }
    }
    Ok(())
}

fn list(a: DbArgs) -> Result<()> {
    let people = FaceDb::open_read_only(&a.db)?.list()?;
    if a.json {
        let v: Vec<Value> = people.iter().map(|p| json!({"name": p.name, "descriptors": p.descriptors})).collect();
        println!("{}", json!(v));
    } else {
        for p in &people {
            println!("{} ({} picture(s))", p.name, p.descriptors);
        }
    }
    Ok(())
}

fn remove(a: RemoveArgs) -> Result<()> {
    if !FaceDb::open(&a.db.db)?.remove(&a.name)? {
        bail!("{} has no one called {}", a.db.db.display(), a.name);
    }
    println!("removed {}", a.name);
    Ok(())
}

fn picture(a: PictureArgs, stage: Stage) -> Result<()> {
    let output = fovea_vision::draw::drawing_path(a.output.as_deref(), &a.image, "faces", "output")?;
    let pipeline = a.detector.pipeline(stage)?;
    let rgb = fovea_vision::image::load_rgb(&a.image)?;
    let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
    let faces = pipeline.run(&rgb, a.detector.min_score)?;
    draw_faces(&rgb, &faces, None).save_png(&output)?;
    if a.json {
        println!("{}", json!({"image": a.image.display().to_string(), "width": w, "height": h, "faces": faces}));
    } else {
        println!("{}: {} face(s), drawn in {}", a.image.display(), faces.len(), output.display());
        for f in &faces {
            let d = &f.detection;
            println!("  score {:.3}  x {:.1} y {:.1} width {:.1} height {:.1}", d.score, d.x, d.y, d.width, d.height);
        }
    }
    Ok(())
}

fn verify(a: VerifyArgs) -> Result<()> {
    let pipeline = a.detector.pipeline(Stage::Embed)?;
    let mut descriptors = Vec::new();
    for path in [&a.a, &a.b] {
        let faces = pipeline.run(&fovea_vision::image::load_rgb(path)?, a.detector.min_score)?;
        match faces.into_iter().next() {
            Some(f) => descriptors.push(f.descriptor),
            None => bail!("no face found in {} (try --detector ssd or a lower --min-score)", path.display()),
        }
    }
    let d = distance(&descriptors[0], &descriptors[1]);
    let same = d < a.threshold;
    if a.json {
        println!(
            "{}",
            json!({"a": a.a.display().to_string(), "b": a.b.display().to_string(), "distance": d,
                   "threshold": a.threshold, "same": same})
        );
    } else {
        println!(
            "distance {d:.4}: {} (threshold {})",
            if same { "same person" } else { "different people" },
            a.threshold
        );
    }
    Ok(())
}
