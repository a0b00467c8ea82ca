//! A server on a free loopback port in this process, and a small HTTP client for it.

#![allow(dead_code)]

use fovea_serve::{ServeConfig, Service};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The repository's file `path`.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

/// A running server; stopped (gracefully) when dropped.
pub struct Server {
    pub url: String,
    pub service: Arc<Service>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(config: &ServeConfig) -> Server {
        Server::with_service(Arc::new(Service::load(config).expect("the service loads")))
    }

    pub fn with_service(service: Arc<Service>) -> Server {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let s = service.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                fovea_serve::serve(listener, s, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        let address = rx.recv().unwrap();
        Server { url: format!("http://{address}"), service, stop: Some(stop), thread: Some(thread) }
    }

    /// Stops accepting, finishes the requests in flight, and waits for that.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A form part: a text field, or a file with its name and bytes.
pub enum Part<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a str, Vec<u8>),
}

/// A multipart/form-data body of `parts`, and its content type.
pub fn multipart(parts: &[Part]) -> (String, Vec<u8>) {
    let boundary = "----fovea-test-boundary-7d93";
    let mut body = Vec::new();
    for part in parts {
        body.extend(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Text(name, value) => {
                body.extend(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes())
            }
            Part::File(name, file_name, bytes) => {
                body.extend(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
                         Content-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend(bytes);
                body.extend(b"\r\n");
            }
        }
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(120)))
        .build()
        .into()
}

/// POSTs a raw body; the status and the JSON answer.
pub fn post_raw(url: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let mut response = agent().post(url).header("Content-Type", content_type).send(body).unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url} answered {status} with non-JSON {text:?}: {e}"));
    (status, json)
}

/// POSTs a raw body; the answer's text, whatever its status.
pub fn post_text(url: &str, content_type: &str, body: &[u8]) -> String {
    agent().post(url).header("Content-Type", content_type).send(body).unwrap().body_mut().read_to_string().unwrap()
}

/// POSTs a raw body; the answer's bytes, which must come with 200.
pub fn post_bytes(url: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut response = agent().post(url).header("Content-Type", content_type).send(body).unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.body_mut().read_to_vec().unwrap()
}

/// POSTs a multipart form of `parts` to `path`.
pub fn post(server: &Server, path: &str, parts: &[Part]) -> (u16, Value) {
    let (content_type, body) = multipart(parts);
    post_raw(&format!("{}{path}", server.url), &content_type, &body)
}

/// GETs `path`; the status and the body.
pub fn get(server: &Server, path: &str) -> (u16, String) {
    let mut response = agent().get(format!("{}{path}", server.url)).call().unwrap();
    (response.status().as_u16(), response.body_mut().read_to_string().unwrap())
}

/// The repository's face photo `sample<n>.jpg`.
pub fn sample(n: usize) -> Vec<u8> {
    std::fs::read(repo(&format!("data/faces/sample{n}.jpg"))).unwrap()
}

/// `[x0, y0, x1, y1)` of the sample photo `n`, as PNG bytes: one person's face.
pub fn crop(n: usize, (x0, y0, x1, y1): (usize, usize, usize, usize)) -> Vec<u8> {
    let rgb = fovea_vision::image::load_rgb(&repo(&format!("data/faces/sample{n}.jpg"))).unwrap();
    let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
    let mut pixels = Vec::new();
    for y in y0..y1 {
        for x in x0..x1 {
            pixels.extend((0..3).map(|c| (rgb.data()[(c * h + y) * w + x] * 255.0).round() as u8));
        }
    }
    let file = tempfile::NamedTempFile::with_suffix(".png").unwrap();
    fovea_vision::image::save_rgb_png(file.path(), (x1 - x0) as u32, (y1 - y0) as u32, pixels).unwrap();
    std::fs::read(file.path()).unwrap()
}

/// Alice and Bob: two faces of sample1.jpg, which also holds a third, never enrolled.
pub fn alice() -> Vec<u8> {
    crop(1, (650, 320, 1220, 820))
}
pub fn bob() -> Vec<u8> {
    crop(1, (1150, 0, 1920, 800))
}

/// A config with its face database in `dir`.
pub fn config(dir: &Path) -> ServeConfig {
    ServeConfig { db: dir.join("people.db").display().to_string(), ..ServeConfig::default() }
}
