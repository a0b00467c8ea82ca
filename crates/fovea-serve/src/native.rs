//! fovea's own endpoints beside DeepStack's: faces with landmarks and descriptors, the
//! server's health, the OpenAPI description, and the web page.

use crate::deepstack::blocking;
use crate::{ApiError, Form, Service};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use std::sync::Arc;

/// The OpenAPI 3 description of every route, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");
/// The web page, served at `/`.
const PAGE: &str = include_str!("page.html");

/// fovea's own routes.
pub fn route_table() -> Vec<(&'static str, MethodRouter<Arc<Service>>)> {
    vec![("/", get(page)), ("/health", get(health)), ("/openapi.json", get(openapi)), ("/v1/fovea/faces", post(faces))]
}

pub fn routes() -> Router<Arc<Service>> {
    route_table().into_iter().fold(Router::new(), |router, (path, method)| router.route(path, method))
}

async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// `GET /health`: what is loaded and how busy the server is.
async fn health(State(service): State<Arc<Service>>) -> Result<Json<serde_json::Value>, ApiError> {
    let s = service.clone();
    let people = blocking(move || s.people.store().people().map_err(ApiError::from_server)).await?;
    Ok(Json(serde_json::json!({
        "status": "ok",
        "store": service.people.store().describe(),
        "people": people.len(),
        "face_detector": format!("{:?}", service.faces_kind),
        "detectors": service.detectors.keys().collect::<Vec<_>>(),
        "detection": service.default_detector,
        "scene": service.scene.is_some(),
        "workers": service.gate.workers_total,
        "in_progress": service.gate.busy(),
        "queue": service.gate.places_total - service.gate.workers_total,
        "api_key": service.keys.api_key.is_some(),
    })))
}

/// `POST /v1/fovea/faces`: every face of `image` as `fovea faces embed --json` prints it
/// (box, score, 68 landmarks, 128-D descriptor), with the nearest enrolled person within
/// `threshold` (a descriptor distance, default 0.6) as `name` and `distance`.
async fn faces(State(service): State<Arc<Service>>, form: Form) -> Result<Json<serde_json::Value>, ApiError> {
    let threshold =
        match form.field("threshold").filter(|t| !t.trim().is_empty()) {
            None => crate::deepstack::SAME_PERSON_DISTANCE,
            Some(t) => t.trim().parse::<f64>().ok().filter(|v| *v >= 0.0).ok_or_else(|| {
                ApiError::bad_request(format!("threshold must be a distance of 0 or more, not {t:?}"))
            })?,
        };
    let image = form.image()?.clone();
    let s = service.clone();
    let answer = service
        .gate
        .run(move || {
            let rgb = s.picture(&image)?;
            let found = s.faces.run(&rgb, s.face_score).map_err(ApiError::from_server)?;
            let mut faces = Vec::new();
            for face in found {
                let nearest = s.people.nearest(&face.descriptor).map_err(ApiError::from_server)?;
                let (name, distance) = nearest.filter(|(_, d)| *d < threshold).unzip();
                faces.push(fovea_vision::face::IdentifiedFace { face, name, distance });
            }
            let (w, h) = (rgb.shape()[2], rgb.shape()[1]);
            Ok(serde_json::json!({
                "success": true,
                "image": image.file_name.clone().unwrap_or(image.field.clone()),
                "width": w,
                "height": h,
                "faces": faces,
            }))
        })
        .await?;
    Ok(Json(answer))
}
