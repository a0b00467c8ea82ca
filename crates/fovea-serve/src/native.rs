//! fovea's own endpoints beside DeepStack's: faces with landmarks and descriptors, the
//! server's health, the OpenAPI description, and the web page.

use crate::deepstack::blocking;
use crate::form::AdminKey;
use crate::{ApiError, Form, Service};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post, MethodRouter};
use axum::Json;
use std::sync::Arc;

/// The OpenAPI 3 description of every route, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");
/// The web page, served at `/`.
const PAGE: &str = include_str!("page.html");

/// fovea's own routes open to all: the page, the health check, the description.
pub fn route_table() -> Vec<(&'static str, MethodRouter<Arc<Service>>)> {
    vec![("/", get(page)), ("/health", get(health)), ("/openapi.json", get(openapi))]
}

/// fovea's own API, behind the queue like DeepStack's.
pub fn api_table() -> Vec<(&'static str, MethodRouter<Arc<Service>>)> {
    vec![("/v1/fovea/faces", post(faces)), ("/v1/backup", post(backup))]
}

async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// `GET /health`: what is loaded and how busy the server is (open to all, so it names
/// no database file or host).
async fn health(State(service): State<Arc<Service>>) -> Result<Json<serde_json::Value>, ApiError> {
    let s = service.clone();
    let people = blocking(move || s.people.store().people().map_err(ApiError::from_server)).await?;
    Ok(Json(serde_json::json!({
        "status": "ok",
        "store": service.people.store().kind(),
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
    let answer = service
        .run(move |s, _job| {
            let rgb = s.picture(&image)?;
            let found = s.faces.run(&rgb, s.face_score).map_err(ApiError::from_server)?;
            let people = s.people.index().map_err(ApiError::from_server)?;
            let mut faces = Vec::new();
            for face in found {
                let nearest = people.nearest(&face.descriptor).filter(|(_, d)| *d < threshold);
                let (name, distance) = nearest.map(|(n, d)| (n.to_string(), d)).unzip();
                faces.push(fovea_vision::face::IdentifiedFace { face, name, distance });
            }
            let (w, h) = crate::deepstack::size(&rgb);
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

/// `POST /v1/backup` (`admin_key`, as DeepStack's): a consistent copy of the face
/// database, a SQLite file (`fovea faces list --db` reads it; to restore, stop the server
/// and put it in place). A PostgreSQL store is backed up with `pg_dump`.
async fn backup(State(service): State<Arc<Service>>, _admin: AdminKey) -> Result<impl IntoResponse, ApiError> {
    let bytes = blocking(move || {
        let dir = tempfile_dir().map_err(ApiError::internal)?;
        let path = dir.join("fovea-faces.db");
        let copied = service.people.store().backup(&path);
        let bytes = copied.and_then(|_| std::fs::read(&path).map_err(|e| fovea::Error::io(&path, e)));
        let _ = std::fs::remove_dir_all(&dir);
        bytes.map_err(|e| match e {
            fovea::Error::Setting { .. } => ApiError::bad_request(e.to_string()),
            e => ApiError::from_server(e),
        })
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.sqlite3"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"fovea-faces.db\""),
        ],
        bytes,
    ))
}

/// A new private folder under the system's temporary folder.
fn tempfile_dir() -> Result<std::path::PathBuf, String> {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let dir = std::env::temp_dir().join(format!("fovea-backup-{}-{stamp}", std::process::id()));
    std::fs::create_dir(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    Ok(dir)
}
