//! Faces with face-api's pretrained networks (`models/face-api/`), computed as face-api
//! computes them (its JavaScript on TensorFlow.js is the reference: `tools/faceapi` makes
//! the test fixtures with it): preparing a picture for a network, and the detectors. And the notes' training ideas from scratch: triplet-loss embeddings
//! (`triplet`) and verification as binary classification (`verify`).

#[cfg(feature = "face-db")]
mod db;
mod landmarks;
mod recognition;
mod ssd;
mod tiny;
pub mod training;
pub mod triplet;
pub mod verify;

#[cfg(feature = "face-db")]
pub use db::{FaceDb, IdentifiedFace, Person};
pub use landmarks::FaceLandmarkNet;
pub use recognition::{distance, FaceRecognitionNet};
pub use ssd::SsdMobilenetV1;
pub use tiny::TinyFaceDetector;

use fovea::{Error, Result, Tensor};
use std::path::PathBuf;

/// Where face-api's networks live: the `face-api` folder of [`crate::models::pretrained_dir`].
pub fn default_models_dir() -> PathBuf {
    crate::models::pretrained_dir().join("face-api")
}

/// A face found in a picture: its box in the picture's pixels (it may reach past the
/// edges) and the detector's score.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// the detector's score, 0..1
    pub score: f64,
    /// left edge
    pub x: f64,
    /// top edge
    pub y: f64,
    /// box width
    pub width: f64,
    /// box height
    pub height: f64,
}

/// A picture made ready for a network of input `size` (`NetInput.toBatchTensor`): pixel
/// values 0..255, zero-padded to a square (after the picture, or centred), resized with
/// TF's legacy bilinear rule (no antialiasing), then `normalize(channel, value)`.
/// Returns `[1, 3, size, size]` and the size the picture itself takes inside the square,
/// rounded (face-api's "reshaped input dimensions", width then height).
pub fn network_input(
    rgb: &Tensor,
    size: usize,
    center: bool,
    normalize: impl Fn(usize, f32) -> f32,
) -> Result<(Tensor, (f64, f64))> {
    let &[3, h, w] = rgb.shape() else {
        return Err(Error::shape("face network input", format!("expected [3, H, W], got {:?}", rgb.shape())));
    };
    if h == 0 || w == 0 || size == 0 {
        return Err(Error::Invalid(format!("cannot prepare a {w}x{h} picture for a {size}x{size} network")));
    }
    // pad: all of it after the picture, or half (rounded up) after and the rest before
    let side = h.max(w);
    let diff = side - h.min(w);
    let before = if center { diff - (diff as f64 / 2.0).round() as usize } else { 0 };
    let (top, left) = if h < w { (before, 0) } else { (0, before) };
    // the padded square is read in place, never built: zeros outside the picture, and the
    // 0..255 integers the picture was decoded as inside
    let pixel = |c: usize, y: usize, x: usize| -> f32 {
        match (y.checked_sub(top), x.checked_sub(left)) {
            // v·255 + 0.5 truncated: round() without a library call (v ≥ 0)
            (Some(y), Some(x)) if y < h && x < w => ((rgb.data()[(c * h + y) * w + x] * 255.0 + 0.5) as u32) as f32,
            _ => 0.0,
        }
    };
    let resized = resize_bilinear_tf(pixel, side, size);
    let data = resized.chunks_exact(size * size).enumerate().flat_map(|(c, p)| p.iter().map(move |&v| (c, v)));
    let data = data.map(|(c, v)| normalize(c, v)).collect();
    let scale = size as f64 / side as f64;
    let reshaped = ((w as f64 * scale).round(), (h as f64 * scale).round());
    Ok((Tensor::new(&[1, 3, size, size], data)?, reshaped))
}

/// TF's `resizeBilinear` with `alignCorners` and `halfPixelCenters` off, as TF.js's CPU
/// kernel computes it (in f64, stored as f32), of the `side x side` square whose values
/// `pixel(channel, y, x)` gives: source = destination · (side / size), the 2x2
/// neighbourhood at floor/ceil (clamped), along x first, then y. A square already of the
/// target size is copied as it is.
fn resize_bilinear_tf(pixel: impl Fn(usize, usize, usize) -> f32, side: usize, size: usize) -> Vec<f32> {
    let scale = side as f64 / size as f64;
    let taps: Vec<(usize, usize, f64)> = (0..size)
        .map(|o| {
            let src = o as f64 * scale;
            let lo = src.floor();
            (lo as usize, (src.ceil() as usize).min(side - 1), src - lo)
        })
        .collect();
    let mut out = vec![0.0f32; 3 * size * size];
    for c in 0..3 {
        for (oy, &(y0, y1, fy)) in taps.iter().enumerate() {
            for (ox, &(x0, x1, fx)) in taps.iter().enumerate() {
                let at = |y: usize, x: usize| pixel(c, y, x) as f64;
                let top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * fx;
                let bottom = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * fx;
                out[(c * size + oy) * size + ox] = (top + (bottom - top) * fy) as f32;
            }
        }
    }
    out
}

impl Detection {
    /// face-api's crop of this face from a `[3, H, W]` picture: the box clipped to the
    /// picture, each of x, y, width, height floored on its own (`clipAtImageBorders`).
    /// `None` for an empty crop.
    pub fn crop(&self, rgb: &Tensor) -> Option<Tensor> {
        let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
        let (x0, y0) = (self.x.max(0.0), self.y.max(0.0));
        let cw = (self.x + self.width - x0).min(w as f64 - x0).floor();
        let ch = (self.y + self.height - y0).min(h as f64 - y0).floor();
        let (x0, y0) = (x0.floor() as usize, y0.floor() as usize);
        if cw <= 0.0 || ch <= 0.0 || x0 >= w || y0 >= h {
            return None;
        }
        let (cw, ch) = ((cw as usize).min(w - x0), (ch as usize).min(h - y0));
        let mut out = Vec::with_capacity(3 * cw * ch);
        for plane in rgb.data().chunks_exact(h * w) {
            for row in plane.chunks_exact(w).skip(y0).take(ch) {
                out.extend_from_slice(&row[x0..x0 + cw]);
            }
        }
        Tensor::new(&[3, ch, cw], out).ok()
    }
}

/// Which of face-api's two detectors to run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Detector {
    /// The Tiny Face Detector at this input size (a multiple of 32; face-api's default 416).
    Tiny {
        /// side of the square network input, in pixels
        input_size: usize,
    },
    /// SSD MobileNetV1, keeping at most this many faces (face-api's default 100).
    Ssd {
        /// most faces kept
        max_results: usize,
    },
}

/// The detector to run, as a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum DetectorKind {
    /// face-api's Tiny Face Detector (Tiny-YOLOv2 style; --input-size applies)
    Tiny,
    /// SSD on MobileNetV1 at 512x512: slower, finds more
    Ssd,
}

/// Which networks a [`Pipeline`] loads from where, and which faces it keeps.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct PipelineConfig {
    /// The face detector
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = PipelineConfig::default().detector))]
    pub detector: DetectorKind,
    /// Keep faces scoring above this
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::fraction::<f64>, long, default_value_t = PipelineConfig::default().min_score))]
    pub min_score: f64,
    /// Side of the tiny detector's input, a multiple of 32 (larger finds smaller faces)
    #[cfg_attr(feature = "cli", arg(long, default_value_t = PipelineConfig::default().input_size))]
    pub input_size: usize,
    /// At most this many faces (SSD)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::count, long, default_value_t = PipelineConfig::default().max_results))]
    pub max_results: usize,
    /// Folder of face-api's networks (default: the repository's models/face-api)
    #[cfg_attr(feature = "cli", arg(long))]
    pub models: Option<PathBuf>,
}

impl Default for PipelineConfig {
    /// face-api's defaults: the tiny detector at 416, scores above 0.5, at most 100 faces.
    fn default() -> Self {
        PipelineConfig { detector: DetectorKind::Tiny, min_score: 0.5, input_size: 416, max_results: 100, models: None }
    }
}

impl PipelineConfig {
    /// The pipeline up to `stage`, its networks loaded.
    pub fn load(&self, stage: Stage) -> Result<Pipeline> {
        if self.input_size == 0 || !self.input_size.is_multiple_of(32) {
            return Err(Error::setting(
                "input_size",
                format!("{} must be a multiple of 32 (face-api's default: 416)", self.input_size),
            ));
        }
        let detector = match self.detector {
            DetectorKind::Tiny => Detector::Tiny { input_size: self.input_size },
            DetectorKind::Ssd => Detector::Ssd { max_results: self.max_results },
        };
        Pipeline::load(&self.models.clone().unwrap_or_else(default_models_dir), detector, stage)
    }
}

/// How far the pipeline goes: boxes, then landmarks, then descriptors.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub enum Stage {
    /// Face boxes only.
    Detect,
    /// Boxes and 68 landmarks (face-api's `withFaceLandmarks`).
    Landmarks,
    /// Boxes, landmarks and 128-D descriptors (`withFaceDescriptors`).
    Embed,
}

/// One face: its detection and, as far as the pipeline went, its 68 landmarks (picture
/// pixels) and its 128-D descriptor.
#[derive(Clone, Debug)]
pub struct Face {
    /// the box and score
    pub detection: Detection,
    /// 68 points (x, y) in picture pixels; empty before [`Stage::Landmarks`]
    pub landmarks: Vec<[f64; 2]>,
    /// the 128-D descriptor; empty before [`Stage::Embed`]
    pub descriptor: Vec<f32>,
}

/// A face in JSON, as `fovea faces embed --json` prints it: `{"box": {"x", "y", "width",
/// "height"}, "score", "landmarks", "descriptor"}`, the last two when computed.
impl serde::Serialize for Face {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Box {
            x: f64,
            y: f64,
            width: f64,
            height: f64,
        }
        #[derive(serde::Serialize)]
        struct FaceJson<'a> {
            #[serde(rename = "box")]
            bbox: Box,
            score: f64,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            landmarks: &'a [[f64; 2]],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            descriptor: &'a [f32],
        }
        let d = &self.detection;
        FaceJson {
            bbox: Box { x: d.x, y: d.y, width: d.width, height: d.height },
            score: d.score,
            landmarks: &self.landmarks,
            descriptor: &self.descriptor,
        }
        .serialize(s)
    }
}

/// Whether two faces are one person, by face-api's `FaceMatcher` rule: their descriptors'
/// distance is below the threshold (0.6 in face-api).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct FaceMatch {
    /// The Euclidean distance between the descriptors.
    pub distance: f64,
    /// The distance below which they are one person.
    pub threshold: f64,
    /// Whether they are.
    pub same: bool,
}

impl FaceMatch {
    /// The match of the descriptors `a` and `b` at `threshold`.
    pub fn new(a: &[f32], b: &[f32], threshold: f64) -> FaceMatch {
        let distance = distance(a, b);
        FaceMatch { distance, threshold, same: distance < threshold }
    }
}

impl std::fmt::Display for FaceMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.same { "same person" } else { "different people" };
        write!(f, "distance {:.4}: {verdict} (threshold {})", self.distance, self.threshold)
    }
}

/// The picture `rgb` (`[3, H, W]` in 0..1) with each face's box, labelled with its score
/// (or `labels[i]`), and its landmarks drawn on it.
pub fn draw_faces(rgb: &Tensor, faces: &[Face], labels: Option<&[String]>) -> crate::draw::Canvas {
    let mut canvas = crate::draw::Canvas::from_rgb(rgb);
    let dot = (canvas.stroke() / 2).max(1);
    for (i, f) in faces.iter().enumerate() {
        let b = &f.detection;
        let label = labels.and_then(|l| l.get(i).cloned()).unwrap_or_else(|| format!("{:.2}", b.score));
        canvas.labelled_box(b.x, b.y, b.width, b.height, &label, [40, 220, 60]);
        for p in &f.landmarks {
            canvas.dot(p[0].round() as i64, p[1].round() as i64, dot, [255, 200, 40]);
        }
    }
    canvas
}

/// face-api's chain `detectAllFaces(...).withFaceLandmarks().withFaceDescriptors()`,
/// loading only the networks the stage needs.
pub struct Pipeline {
    tiny: Option<TinyFaceDetector>,
    ssd: Option<SsdMobilenetV1>,
    landmarks: Option<FaceLandmarkNet>,
    recognition: Option<FaceRecognitionNet>,
    detector: Detector,
    models: PathBuf,
}

/// Face-api's descriptors are about 1.5 long; far longer ones come from damaged weights.
const MAX_DESCRIPTOR_LENGTH: f64 = 100.0;

/// What is wrong with a face that the networks cannot have meant, if anything: outputs
/// that are not finite, an empty box, landmarks far outside their box (the landmark
/// network places them within its face crop), an absurd descriptor. (A box off the
/// picture is possible: at low scores the detector finds "faces" in the padding that makes
/// the picture square, and face-api reports them too.)
fn implausible(face: &Face) -> Option<String> {
    let d = &face.detection;
    let finite =
        [d.x, d.y, d.width, d.height, d.score].iter().chain(face.landmarks.iter().flatten()).all(|v| v.is_finite())
            && face.descriptor.iter().all(|v| v.is_finite());
    if !finite {
        return Some("NaN or infinite values".into());
    }
    if !(d.width > 0.0 && d.height > 0.0) {
        return Some(format!("an empty face box ({:.1}x{:.1} at ({:.1}, {:.1}))", d.width, d.height, d.x, d.y));
    }
    let near_box = |&[x, y]: &[f64; 2]| {
        (d.x - d.width..=d.x + 2.0 * d.width).contains(&x) && (d.y - d.height..=d.y + 2.0 * d.height).contains(&y)
    };
    if let Some([x, y]) = face.landmarks.iter().find(|p| !near_box(p)) {
        return Some(format!("a landmark at ({x:.1}, {y:.1}), far outside its face box"));
    }
    let length = face.descriptor.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
    if length > MAX_DESCRIPTOR_LENGTH {
        return Some(format!("a descriptor of length {length:.3e} (face-api's are about 1.5)"));
    }
    None
}

impl Pipeline {
    /// Loads the networks for `detector` and `stage` from the face-api `models` folder.
    pub fn load(models: &std::path::Path, detector: Detector, stage: Stage) -> Result<Pipeline> {
        let manifest = |name: &str| models.join(format!("{name}_model-weights_manifest.json"));
        Ok(Pipeline {
            tiny: match detector {
                Detector::Tiny { .. } => Some(TinyFaceDetector::load(&manifest("tiny_face_detector"))?),
                Detector::Ssd { .. } => None,
            },
            ssd: match detector {
                Detector::Ssd { .. } => Some(SsdMobilenetV1::load(&manifest("ssd_mobilenetv1"))?),
                Detector::Tiny { .. } => None,
            },
            landmarks: (stage >= Stage::Landmarks)
                .then(|| FaceLandmarkNet::load(&manifest("face_landmark_68")))
                .transpose()?,
            recognition: (stage >= Stage::Embed)
                .then(|| FaceRecognitionNet::load(&manifest("face_recognition")))
                .transpose()?,
            detector,
            models: models.to_path_buf(),
        })
    }

    /// The face boxes of a `[3, H, W]` picture scoring above `min_score`, in face-api's
    /// order: the detector alone, whatever the pipeline's stage.
    pub fn detect(&self, rgb: &Tensor, min_score: f64) -> Result<Vec<Detection>> {
        match (self.detector, &self.tiny, &self.ssd) {
            (Detector::Tiny { input_size }, Some(t), _) => t.detect(rgb, input_size, min_score),
            (Detector::Ssd { max_results }, _, Some(s)) => s.detect(rgb, min_score, max_results),
            _ => Err(Error::Invalid("the pipeline's detector is not loaded".into())),
        }
    }

    /// The faces of a `[3, H, W]` picture scoring above `min_score`, in face-api's order.
    /// Faces whose aligned crop is empty are dropped at the embedding stage, as face-api
    /// drops them.
    pub fn run(&self, rgb: &Tensor, min_score: f64) -> Result<Vec<Face>> {
        let mut faces = Vec::new();
        for detection in self.detect(rgb, min_score)? {
            let landmarks = match &self.landmarks {
                Some(net) => net.landmarks(rgb, &detection)?,
                None => Vec::new(),
            };
            let descriptor = match &self.recognition {
                Some(net) if landmarks.len() == 68 => match net.descriptor(rgb, &detection, &landmarks)? {
                    Some(d) => d,
                    None => continue,
                },
                Some(_) => continue,
                None => Vec::new(),
            };
            let face = Face { detection, landmarks, descriptor };
            if let Some(problem) = implausible(&face) {
                return Err(Error::format(
                    &self.models,
                    format!("the face-api networks here give {problem}: their weights are damaged"),
                ));
            }
            faces.push(face);
        }
        Ok(faces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faces_no_network_can_mean_are_implausible() {
        let face = |x: f64, y: f64, width: f64, landmark: [f64; 2], length: f32| Face {
            detection: Detection { score: 0.9, x, y, width, height: width },
            landmarks: vec![landmark],
            descriptor: vec![length, 0.0],
        };
        // a face half off the picture's edge, its landmarks a little outside its box; a
        // low-scoring box in the padding beyond a 350-pixel-wide picture
        assert_eq!(implausible(&face(-20.0, 300.0, 100.0, [-30.0, 420.0], 1.5)), None);
        assert_eq!(implausible(&face(362.2, -6.3, 41.3, [380.0, 10.0], 1.5)), None);
        // an empty box, a landmark far away, an absurd descriptor, NaN
        for bad in [
            face(378.6, 378.5, 0.0, [378.6, 378.5], 1.5),
            face(10.0, 10.0, 50.0, [10.0, 170.0], 1.5),
            face(10.0, 10.0, 50.0, [20.0, 20.0], 1e27),
            face(10.0, 10.0, 50.0, [f64::NAN, 20.0], 1.5),
        ] {
            assert!(implausible(&bad).is_some());
        }
    }
}
