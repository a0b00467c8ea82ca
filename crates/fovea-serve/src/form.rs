//! The form of a request, as DeepStack reads it: text fields and picture files from a
//! `multipart/form-data` body, or text fields from an urlencoded one (DeepStack's Python
//! examples delete with `data={"userid": ...}`), or nothing at all (`/face/list`). The
//! `api_key` field is checked here, before any handler runs, so a refused request changes
//! nothing.

use crate::{ApiError, Service};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};
use std::sync::Arc;

/// A file part of a form: a picture.
#[derive(Clone, Debug)]
pub struct Upload {
    /// The form field it came in (`image`, `image1`, ...).
    pub field: String,
    /// The client's name for the file, if it sent one.
    pub file_name: Option<String>,
    /// The file's bytes.
    pub bytes: axum::body::Bytes,
}

impl Upload {
    /// How errors name it: `upload "image" (photo.jpg)`.
    pub fn describe(&self) -> String {
        match &self.file_name {
            Some(f) if !f.is_empty() => format!("upload {:?} ({f})", self.field),
            _ => format!("upload {:?}", self.field),
        }
    }
}

/// A request's form, its `api_key` already checked.
#[derive(Debug, Default)]
pub struct Form {
    fields: Vec<(String, String)>,
    /// The file parts, in the order sent.
    pub files: Vec<Upload>,
}

impl Form {
    /// The text field `name`, if sent (the first, if sent twice).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The file in the field named exactly `image`, as DeepStack's detection routes want.
    pub fn image(&self) -> Result<&Upload, ApiError> {
        self.files.iter().find(|f| f.field == "image").ok_or_else(|| {
            ApiError::bad_request("No valid image file found: send the picture as a multipart file field named image")
        })
    }

    /// `min_confidence`, or `default` when not sent; refused as DeepStack refuses it (not
    /// a number, or above 1). Below 0 counts as 0.
    pub fn min_confidence(&self, default: f64) -> Result<f64, ApiError> {
        let Some(text) = self.field("min_confidence").filter(|t| !t.trim().is_empty()) else {
            return Ok(default);
        };
        let value: f64 = text
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| !v.is_nan())
            .ok_or_else(|| ApiError::bad_request(format!("Invalid value for min_confidence: {text:?}")))?;
        if value > 1.0 {
            return Err(ApiError::bad_request("min_confidence cannot be greater than 1"));
        }
        Ok(value.max(0.0))
    }

    /// The non-empty `userid` field (DeepStack's register and delete).
    pub fn userid(&self) -> Result<&str, ApiError> {
        self.field("userid")
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| ApiError::bad_request("userid not specified"))
    }

    /// The body's fields and files, then the query string's fields (so that a GET can
    /// carry `api_key` too; the body's come first).
    async fn read(req: Request) -> Result<Form, ApiError> {
        let query: Vec<(String, String)> = match req.uri().query() {
            Some(q) => axum::extract::Query::<Vec<(String, String)>>::try_from_uri(req.uri())
                .map(|axum::extract::Query(fields)| fields)
                .map_err(|e| ApiError::bad_request(format!("malformed query string {q:?}: {}", e.body_text())))?,
            None => Vec::new(),
        };
        let mut form = Form::read_body(req).await?;
        form.fields.extend(query);
        Ok(form)
    }

    async fn read_body(req: Request) -> Result<Form, ApiError> {
        let content_type =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let kind = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match kind.as_str() {
            "multipart/form-data" => {
                let multipart = Multipart::from_request(req, &())
                    .await
                    .map_err(|e| ApiError::bad_request(format!("malformed multipart body: {}", e.body_text())))?;
                read_multipart(multipart).await
            }
            "application/x-www-form-urlencoded" => {
                let axum::Form(fields) = axum::Form::<Vec<(String, String)>>::from_request(req, &())
                    .await
                    .map_err(|e| body_error(e.status(), e.body_text()))?;
                Ok(Form { fields, files: Vec::new() })
            }
            _ => {
                let body = axum::body::Bytes::from_request(req, &())
                    .await
                    .map_err(|e| body_error(e.status(), e.body_text()))?;
                if !body.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "expected a multipart/form-data or urlencoded form, not {:?}",
                        if content_type.is_empty() { "a body with no Content-Type" } else { &content_type }
                    )));
                }
                Ok(Form::default())
            }
        }
    }
}

async fn read_multipart(mut multipart: Multipart) -> Result<Form, ApiError> {
    let mut form = Form::default();
    while let Some(field) = multipart.next_field().await.map_err(|e| body_error(e.status(), e.body_text()))? {
        let name = field.name().unwrap_or("").to_string();
        // a file part has a file name, or at least a content type that is not text
        let file_name = field.file_name().map(str::to_string);
        let binary = field.content_type().is_some_and(|t| !t.starts_with("text/"));
        match file_name.is_some() || binary {
            true => {
                let bytes = field.bytes().await.map_err(|e| body_error(e.status(), e.body_text()))?;
                form.files.push(Upload { field: name, file_name, bytes });
            }
            false => {
                let text = field.text().await.map_err(|e| body_error(e.status(), e.body_text()))?;
                form.fields.push((name, text));
            }
        }
    }
    Ok(form)
}

/// A body that could not be read: over the size limit (413), or malformed (400).
fn body_error(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(format!("the request body is larger than this server's limit (--max-body-mib): {text}"))
    } else {
        ApiError::bad_request(format!("malformed request body: {text}"))
    }
}

/// The request's form, refused (401, `refusal`) if `key` is set and its `field` differs.
async fn read_with_key(req: Request, key: Option<&str>, field: &str, refusal: &str) -> Result<Form, ApiError> {
    let form = Form::read(req).await?;
    match key {
        Some(key) if !crate::same_key(form.field(field), key) => Err(ApiError::unauthorized(refusal)),
        _ => Ok(form),
    }
}

impl FromRequest<Arc<Service>> for Form {
    type Rejection = ApiError;

    async fn from_request(req: Request, service: &Arc<Service>) -> Result<Form, ApiError> {
        read_with_key(req, service.keys.api_key.as_deref(), "api_key", "Incorrect api key").await
    }
}

/// Proof that an admin request (DeepStack's backup) carried the right `admin_key` form
/// field (its `api_key` is not asked for, as on DeepStack).
#[derive(Debug)]
pub struct AdminKey;

impl FromRequest<Arc<Service>> for AdminKey {
    type Rejection = ApiError;

    async fn from_request(req: Request, service: &Arc<Service>) -> Result<AdminKey, ApiError> {
        read_with_key(req, service.keys.admin_key.as_deref(), "admin_key", "Incorrect admin key").await?;
        Ok(AdminKey)
    }
}
