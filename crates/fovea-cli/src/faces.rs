//! `fovea faces ...`: face-api's pretrained networks on pictures (training from scratch is
//! in `faces_train`).

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use fovea_vision::face::{draw_faces, Face, FaceDb, FaceMatch, PipelineConfig, Stage};
use serde_json::json;
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
    detector: PipelineConfig,
}

#[derive(Args)]
pub struct IdentifyArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    picture: PictureArgs,
    /// The nearest enrolled face counts only if closer than this
    #[arg(value_parser = fovea_vision::cli::non_negative::<f64>, long, default_value_t = 0.6)]
    threshold: f64,
}

#[derive(Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    db: DbArgs,
    name: String,
}

#[derive(Args)]
pub struct PictureArgs {
    /// A picture (PNG or JPEG)
    image: PathBuf,
    #[command(flatten)]
    detector: PipelineConfig,
    /// Where to draw the result (default: <picture>-faces.png beside the picture)
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Args)]
pub struct VerifyArgs {
    a: PathBuf,
    b: PathBuf,
    /// Descriptors closer than this are the same person (face-api's FaceMatcher: 0.6)
    #[arg(value_parser = fovea_vision::cli::non_negative::<f64>, long, default_value_t = 0.6)]
    threshold: f64,
    #[command(flatten)]
    detector: PipelineConfig,
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
    let pipeline = a.detector.load(Stage::Embed)?;
    let enrolled = FaceDb::open(&a.db.db)?.enroll_pictures(&pipeline, &a.name, &a.images, a.detector.min_score)?;
    if crate::json() {
        println!("{}", json!({"name": a.name, "enrolled": enrolled}));
    } else {
        println!("enrolled {enrolled} picture(s) of {} in {}", a.name, a.db.db.display());
    }
    Ok(())
}

fn identify(a: IdentifyArgs) -> Result<()> {
    let output = fovea_vision::draw::drawing_path(a.picture.output.as_deref(), &a.picture.image, "faces", "output")?;
    let db = FaceDb::open_read_only(&a.db.db)?;
    let pipeline = a.picture.detector.load(Stage::Embed)?;
    let rgb = fovea_vision::image::load_rgb(&a.picture.image)?;
    let found = db.identify_faces(&pipeline, &rgb, a.picture.detector.min_score, a.threshold)?;
    let (faces, labels): (Vec<Face>, Vec<String>) = found.iter().map(|f| (f.face.clone(), f.label().into())).unzip();
    draw_faces(&rgb, &faces, Some(&labels)).save_png(&output)?;
    if crate::json() {
        println!("{}", json!({"image": a.picture.image.display().to_string(), "faces": found}));
    } else {
        println!("{}: {} face(s), drawn in {}", a.picture.image.display(), faces.len(), output.display());
        for f in &found {
            println!("  {:<20} at x {:.0} y {:.0}", f.label(), f.face.detection.x, f.face.detection.y);
        }
    }
    Ok(())
}

fn list(a: DbArgs) -> Result<()> {
    let people = FaceDb::open_read_only(&a.db)?.list()?;
    if crate::json() {
        println!("{}", json!(people));
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
    let pipeline = a.detector.load(stage)?;
    let rgb = fovea_vision::image::load_rgb(&a.image)?;
    let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
    let faces = pipeline.run(&rgb, a.detector.min_score)?;
    draw_faces(&rgb, &faces, None).save_png(&output)?;
    if crate::json() {
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
    let pipeline = a.detector.load(Stage::Embed)?;
    let mut descriptors = Vec::new();
    for path in [&a.a, &a.b] {
        let faces = pipeline.run(&fovea_vision::image::load_rgb(path)?, a.detector.min_score)?;
        match faces.into_iter().next() {
            Some(f) => descriptors.push(f.descriptor),
            None => bail!("no face found in {} (try --detector ssd or a lower --min-score)", path.display()),
        }
    }
    let m = FaceMatch::new(&descriptors[0], &descriptors[1], a.threshold);
    crate::report_with(&m, json!({"a": a.a, "b": a.b}), || m.to_string())
}
