//! DeepStack's HTTP API (docs/deepstack-api.md): the routes, form fields, JSON shapes,
//! statuses and error bodies its clients rely on.
//!
//! Recognition confidence. DeepStack reports `(cos + 1) / 2` of its own embeddings;
//! fovea's descriptors are face-api's, compared by Euclidean distance with 0.6 as the
//! threshold of one person. fovea maps a distance `d` to `confidence = 1 - 0.55 d`
//! (clamped to 0..1), so that face-api's threshold 0.6 is exactly DeepStack's default
//! `min_confidence` 0.67, a perfect match is 1, and `min_confidence = c` accepts the
//! faces closer than `(1 - c) / 0.55` (0.8 gives 0.36, strict; 0.45, which deepstack-python
//! sends by default, gives 1.0, loose, as it is on DeepStack).

use crate::{ApiError, Form, Service, Upload};
use axum::extract::{Path, State};
use axum::routing::{post, MethodRouter};
use axum::Json;
use fovea_vision::detect::NmsOptions;
use serde::Serialize;
use std::sync::Arc;

/// face-api's distance below which two faces are one person.
pub const SAME_PERSON_DISTANCE: f64 = 0.6;
/// DeepStack's default `min_confidence` for recognition: the confidence at 0.6.
pub const RECOGNITION_CONFIDENCE: f64 = 0.67;

/// The confidence DeepStack clients read for a descriptor distance (see the module docs).
pub fn confidence(distance: f64) -> f64 {
    (1.0 - distance * (1.0 - RECOGNITION_CONFIDENCE) / SAME_PERSON_DISTANCE).clamp(0.0, 1.0)
}

/// DeepStack's routes, each with the paths it answers.
pub fn route_table() -> Vec<(&'static str, MethodRouter<Arc<Service>>)> {
    vec![
        // clients post to both forms; DeepStack redirects one, which some clients do not follow
        ("/v1/vision/face", post(detect_faces)),
        ("/v1/vision/face/", post(detect_faces)),
        ("/v1/vision/face/recognize", post(recognize)),
        ("/v1/vision/face/register", post(register)),
        ("/v1/vision/face/list", post(list)),
        ("/v1/vision/face/delete", post(delete)),
        ("/v1/vision/face/match", post(face_match)),
        ("/v1/vision/detection", post(detection)),
        ("/v1/vision/custom/list", post(custom_list).get(custom_list)),
        ("/v1/vision/custom/{model}", post(custom)),
        ("/v1/vision/scene", post(scene)),
    ]
}

/// A successful answer: `{"success": true, ..., "duration": 0}` (DeepStack's Go server
/// always sends `duration` 0).
#[derive(Serialize)]
pub struct Reply<T: Serialize> {
    success: bool,
    #[serde(flatten)]
    body: T,
    duration: u8,
}

fn reply<T: Serialize>(body: T) -> Json<Reply<T>> {
    Json(Reply { success: true, body, duration: 0 })
}

type Answer<T> = Result<Json<Reply<T>>, ApiError>;

/// A box in whole pixels, clipped to the picture, in DeepStack's key order.
#[derive(Serialize, Clone, Copy)]
struct Corners {
    y_min: i64,
    x_min: i64,
    y_max: i64,
    x_max: i64,
}

impl Corners {
    fn new(x: f64, y: f64, width: f64, height: f64, picture: (usize, usize)) -> Corners {
        let (w, h) = (picture.0 as f64, picture.1 as f64);
        Corners {
            x_min: x.clamp(0.0, w).floor() as i64,
            y_min: y.clamp(0.0, h).floor() as i64,
            x_max: (x + width).clamp(0.0, w).ceil() as i64,
            y_max: (y + height).clamp(0.0, h).ceil() as i64,
        }
    }
}

/// (width, height) of a `[3, H, W]` picture.
pub(crate) fn size(rgb: &fovea::Tensor) -> (usize, usize) {
    (rgb.shape()[2], rgb.shape()[1])
}

#[derive(Serialize)]
struct Predictions<P: Serialize> {
    predictions: Vec<P>,
}

#[derive(Serialize)]
struct FoundFace {
    confidence: f32,
    #[serde(flatten)]
    corners: Corners,
}

/// `POST /v1/vision/face/`: face boxes above `min_confidence` (default 0.55).
async fn detect_faces(State(service): State<Arc<Service>>, form: Form) -> Answer<Predictions<FoundFace>> {
    let min = form.min_confidence(0.55)?;
    let image = form.image()?.clone();
    let predictions = service
        .run(move |s, _job| {
            let rgb = s.picture(&image)?;
            let found = s.faces.detect(&rgb, min).map_err(ApiError::from_server)?;
            Ok(found
                .iter()
                .map(|d| FoundFace {
                    confidence: d.score as f32,
                    corners: Corners::new(d.x, d.y, d.width, d.height, size(&rgb)),
                })
                .collect())
        })
        .await?;
    Ok(reply(Predictions { predictions }))
}

#[derive(Serialize)]
struct RecognizedFace {
    confidence: f32,
    userid: String,
    #[serde(flatten)]
    corners: Corners,
}

/// `POST /v1/vision/face/recognize`: every face with the enrolled person it is, or
/// `"unknown"` (confidence 0) when the nearest is below `min_confidence` (default 0.67).
async fn recognize(State(service): State<Arc<Service>>, form: Form) -> Answer<Predictions<RecognizedFace>> {
    let min = form.min_confidence(RECOGNITION_CONFIDENCE)?;
    let image = form.image()?.clone();
    let predictions = service
        .run(move |s, _job| {
            let rgb = s.picture(&image)?;
            let faces = s.faces.run(&rgb, s.face_score).map_err(ApiError::from_server)?;
            let people = s.people.index().map_err(ApiError::from_server)?;
            let mut predictions = Vec::new();
            for face in faces {
                let (userid, confidence) = match people.nearest(&face.descriptor).map(|(name, d)| (name, confidence(d)))
                {
                    Some((name, c)) if c >= min => (name.to_string(), c as f32),
                    _ => ("unknown".to_string(), 0.0),
                };
                let d = &face.detection;
                let corners = Corners::new(d.x, d.y, d.width, d.height, size(&rgb));
                predictions.push(RecognizedFace { confidence, userid, corners });
            }
            Ok(predictions)
        })
        .await?;
    Ok(reply(Predictions { predictions }))
}

/// The descriptor of the first face (face-api's order) in an upload, if it has one.
fn first_face(service: &Service, upload: &Upload) -> Result<Option<Vec<f32>>, ApiError> {
    let rgb = service.picture(upload)?;
    let faces = service.faces.run(&rgb, service.face_score).map_err(ApiError::from_server)?;
    Ok(faces.into_iter().next().map(|f| f.descriptor))
}

#[derive(Serialize)]
struct Registered {
    message: &'static str,
    /// fovea's own: how many of the pictures had a face and were enrolled
    faces: usize,
}

/// `POST /v1/vision/face/register`: the first face of every picture sent (under any field
/// name) enrolled as `userid`, all in one transaction. Pictures without a face are skipped,
/// as DeepStack skips them; none with a face is an error. Unlike DeepStack, which keeps
/// one mean embedding per person and replaces it, fovea adds the faces to those already
/// enrolled, so concurrent registrations lose nothing.
async fn register(State(service): State<Arc<Service>>, form: Form) -> Answer<Registered> {
    let userid = form.userid()?.to_string();
    if form.files.is_empty() {
        return Err(ApiError::bad_request("No valid image file found: send one or more pictures as multipart files"));
    }
    let files = form.files;
    let (new, faces) = service
        .run(move |s, job| {
            let mut faces = Vec::new();
            for upload in &files {
                if let Some(descriptor) = first_face(s, upload)? {
                    faces.push((descriptor, upload.describe()));
                }
            }
            if faces.is_empty() {
                return Err(ApiError::bad_request("no face detected"));
            }
            // the client was told its request failed: it must not have enrolled anyone
            if job.abandoned() {
                return Err(ApiError::internal("the request was given up before its faces were enrolled"));
            }
            let new = s.people.store().enroll(&userid, &faces).map_err(ApiError::from_server)?;
            Ok((new, faces.len()))
        })
        .await?;
    Ok(reply(Registered { message: if new { "face added" } else { "face updated" }, faces }))
}

#[derive(Serialize)]
struct Listed {
    faces: Vec<String>,
}

/// `POST /v1/vision/face/list`: everyone enrolled.
async fn list(State(service): State<Arc<Service>>, _form: Form) -> Answer<Listed> {
    let people = blocking(move || service.people.store().people().map_err(ApiError::from_server)).await?;
    Ok(reply(Listed { faces: people.into_iter().map(|p| p.name).collect() }))
}

#[derive(Serialize)]
struct Nothing {}

/// `POST /v1/vision/face/delete`: removes `userid` (success even if there was none, as
/// on DeepStack).
async fn delete(State(service): State<Arc<Service>>, form: Form) -> Answer<Nothing> {
    let userid = form.userid()?.to_string();
    blocking(move || service.people.store().remove(&userid).map_err(ApiError::from_server)).await?;
    Ok(reply(Nothing {}))
}

#[derive(Serialize)]
struct Matched {
    similarity: f32,
    /// fovea's own: the descriptors' Euclidean distance
    distance: f32,
}

/// `POST /v1/vision/face/match`: the similarity of the first faces of exactly two pictures.
async fn face_match(State(service): State<Arc<Service>>, form: Form) -> Answer<Matched> {
    match form.files.len() {
        0 => return Err(ApiError::bad_request("No valid image file found")),
        1 => return Err(ApiError::bad_request("expected two image files, only one found")),
        2 => {}
        _ => return Err(ApiError::bad_request("only two images allowed")),
    }
    let files = form.files;
    let distance = service
        .run(move |s, _job| {
            let mut descriptors = Vec::new();
            for upload in &files {
                let face = first_face(s, upload)?;
                descriptors.push(
                    face.ok_or_else(|| ApiError::bad_request(format!("no face found in {}", upload.describe())))?,
                );
            }
            Ok(fovea_vision::face::distance(&descriptors[0], &descriptors[1]))
        })
        .await?;
    Ok(reply(Matched { similarity: confidence(distance) as f32, distance: distance as f32 }))
}

#[derive(Serialize)]
struct FoundObject {
    confidence: f32,
    label: String,
    #[serde(flatten)]
    corners: Corners,
}

/// `POST /v1/vision/detection`: objects found by the `--detector` YOLO run.
async fn detection(State(service): State<Arc<Service>>, form: Form) -> Answer<Predictions<FoundObject>> {
    let Some(model) = service.default_detector.clone() else {
        return Err(ApiError::not_activated(
            "Detection endpoint not activated: start fovea serve with --detector-models DIR --detector NAME",
        ));
    };
    detect_objects(service, model, form).await
}

/// `POST /v1/vision/custom/<model>`: objects found by the YOLO run `<model>` of
/// `--detector-models`.
async fn custom(
    State(service): State<Arc<Service>>,
    Path(model): Path<String>,
    form: Form,
) -> Answer<Predictions<FoundObject>> {
    // only the runs loaded at start are served: a name is looked up, never opened as a path
    if !service.detectors.contains_key(&model) {
        return Err(ApiError::not_found(format!(
            "no custom model named {model:?} (loaded: {})",
            crate::names(&service.detectors)
        )));
    }
    detect_objects(service, model, form).await
}

async fn detect_objects(service: Arc<Service>, model: String, form: Form) -> Answer<Predictions<FoundObject>> {
    let min = form.min_confidence(0.40)? as f32;
    let image = form.image()?.clone();
    let predictions = service
        .run(move |s, _job| {
            let (run, net) = &s.detectors[&model];
            let rgb = s.picture(&image)?;
            let options = NmsOptions { score_threshold: min, ..NmsOptions::default() };
            let found = fovea_vision::detect::detector::detect_picture(run, net, &rgb, &options)
                .map_err(ApiError::from_server)?;
            Ok(found
                .into_iter()
                .map(|o| FoundObject {
                    confidence: o.score,
                    label: o.class,
                    corners: Corners::new(
                        o.bbox.x as f64,
                        o.bbox.y as f64,
                        o.bbox.width as f64,
                        o.bbox.height as f64,
                        size(&rgb),
                    ),
                })
                .collect())
        })
        .await?;
    Ok(reply(Predictions { predictions }))
}

#[derive(Serialize)]
struct Models {
    models: Vec<String>,
}

/// `/v1/vision/custom/list` (CodeProject.AI's, which Blue Iris calls): the custom models.
async fn custom_list(State(service): State<Arc<Service>>, _form: Form) -> Answer<Models> {
    Ok(reply(Models { models: service.detectors.keys().cloned().collect() }))
}

#[derive(Serialize)]
struct Scene {
    label: String,
    confidence: f32,
}

/// `POST /v1/vision/scene`: the most probable class of the `--classifier` run.
async fn scene(State(service): State<Arc<Service>>, form: Form) -> Answer<Scene> {
    if service.scene.is_none() {
        return Err(ApiError::not_activated(
            "Scene endpoint not activated: start fovea serve with --classifier RUN (or MODEL.onnx)",
        ));
    }
    let image = form.image()?.clone();
    let top = service
        .run(move |s, _job| {
            let classifier = s.scene.as_ref().expect("checked above");
            s.check_size(&image)?;
            classifier.top1(&image.bytes, &image.describe()).map_err(ApiError::from_upload)
        })
        .await?;
    Ok(reply(Scene { label: top.name, confidence: top.probability }))
}

/// `job` on a blocking thread, outside the inference queue: quick database calls.
pub async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(job).await.map_err(|e| ApiError::internal(format!("the request's job failed: {e}")))?
}
