//! Faces through the library (what `fovea faces embed` and `faces identify` do): face-api's
//! networks find the faces of a photograph, their 68 landmarks and 128-D descriptors; one
//! picture of a person enrolled in a face database is enough to recognise them again.
//!
//!     cargo run --release -p fovea-vision --example faces -- data/faces/sample1.jpg

use fovea_vision::face::{default_models_dir, Detector, FaceDb, Pipeline, Stage};

fn main() -> fovea::Result<()> {
    let photo = std::env::args().nth(1).unwrap_or_else(|| "data/faces/sample1.jpg".into());
    let pipeline = Pipeline::load(&default_models_dir(), Detector::Tiny { input_size: 416 }, Stage::Embed)?;
    let rgb = fovea_vision::image::load_rgb(photo.as_ref())?;
    let faces = pipeline.run(&rgb, 0.5)?;
    for f in &faces {
        let d = &f.detection;
        println!("face at ({:.0}, {:.0}), {:.0}x{:.0}, score {:.3}", d.x, d.y, d.width, d.height, d.score);
    }
    // enrol the first face, then look every face up: the first is found at distance 0
    let db_file = std::env::temp_dir().join(format!("fovea-faces-example-{}.db", std::process::id()));
    let mut db = FaceDb::open(&db_file)?;
    if let Some(first) = faces.first() {
        db.enroll("first", &[(first.descriptor.as_slice(), photo.as_str())])?;
    }
    for f in &faces {
        match db.identify(&f.descriptor, 0.6)? {
            Some((name, distance)) => println!("  {name} (distance {distance:.3})"),
            None => println!("  not recognized"),
        }
    }
    drop(db);
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", db_file.display())).ok();
    }
    Ok(())
}
