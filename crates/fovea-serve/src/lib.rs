//! fovea as an HTTP service: DeepStack's face and object detection API, so that the
//! clients written for DeepStack (Home Assistant, Node-RED, Double Take, Blue Iris, the
//! deepstack-python and Ruby libraries) work unchanged; fovea's own richer endpoints; and
//! a web page. The networks are loaded once ([`Service::load`]) and shared by every
//! request; inference runs on the kernels' threads behind a bounded queue.
//!
//! ```no_run
//! let config = fovea_serve::ServeConfig::default();
//! let service = std::sync::Arc::new(fovea_serve::Service::load(&config)?);
//! // fovea_serve::router(service) is an axum Router; fovea_serve::run(&config) serves it
//! # Ok::<(), fovea::Error>(())
//! ```

mod deepstack;
mod error;
mod form;
mod native;
#[cfg(feature = "postgres")]
mod pg;
mod store;

pub use error::ApiError;
use form::{Form, Upload};
#[cfg(feature = "postgres")]
pub use pg::PostgresStore;
pub use store::{IdentityStore, Index, People, SqliteStore};

use axum::extract::{ConnectInfo, State};
use axum::response::IntoResponse;
use axum::routing::MethodRouter;
use fovea::{Error, Result};
use fovea_vision::detect::detector::{load_detector, DetectorRun};
use fovea_vision::face::{DetectorKind, Pipeline, PipelineConfig, Stage};
use fovea_vision::models::{Prediction, PretrainedNet};
use fovea_vision::run::Classifier;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How `fovea serve` is started: where it listens, what it loads, its keys and limits.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ServeConfig {
    /// Address to listen on
    #[cfg_attr(feature = "cli", arg(long, default_value_t = ServeConfig::default().host))]
    pub host: String,
    /// Port to listen on (DeepStack's usual: 80 in its container, 5000 here)
    #[cfg_attr(feature = "cli", arg(long, default_value_t = ServeConfig::default().port))]
    pub port: u16,
    /// The face database: a SQLite file (the same as `fovea faces enroll --db`), or a
    /// PostgreSQL URL (postgres://user:password@host/database) shared by several servers
    #[cfg_attr(feature = "cli", arg(long, default_value = "people.db"))]
    pub db: String,
    /// The face detector: tiny (fast) or ssd (finds more, slower)
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = PipelineConfig::default().detector))]
    pub face_detector: DetectorKind,
    /// Faces count above this detector score for recognize, register, match and
    /// /v1/fovea/faces (face detection takes min_confidence from each request)
    #[cfg_attr(feature = "cli", arg(long, value_parser = fovea_vision::cli::fraction::<f64>, default_value_t = PipelineConfig::default().min_score))]
    pub face_min_score: f64,
    /// Folder of face-api's networks (default: the repository's models/face-api)
    #[cfg_attr(feature = "cli", arg(long))]
    pub face_models: Option<PathBuf>,
    /// Folder of YOLO runs made by `fovea yolo train`, one folder each, served as
    /// /v1/vision/custom/NAME (NAME: the folder's name)
    #[cfg_attr(feature = "cli", arg(long))]
    pub detector_models: Option<PathBuf>,
    /// Which of --detector-models answers /v1/vision/detection
    #[cfg_attr(feature = "cli", arg(long, requires = "detector_models"))]
    pub detector: Option<String>,
    /// A classifier run made by `fovea train`, or an ONNX classifier (`.onnx`, ImageNet's
    /// preprocessing), answering /v1/vision/scene
    #[cfg_attr(feature = "cli", arg(long))]
    pub classifier: Option<PathBuf>,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub keys: Keys,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub limits: Limits,
}

impl ServeConfig {
    /// The face pipeline these options ask for.
    pub fn faces(&self) -> PipelineConfig {
        PipelineConfig {
            detector: self.face_detector,
            min_score: self.face_min_score,
            models: self.face_models.clone(),
            ..PipelineConfig::default()
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            host: "127.0.0.1".into(),
            port: 5000,
            db: "people.db".into(),
            face_detector: PipelineConfig::default().detector,
            face_min_score: PipelineConfig::default().min_score,
            face_models: None,
            detector_models: None,
            detector: None,
            classifier: None,
            keys: Keys::default(),
            limits: Limits::default(),
        }
    }
}

/// DeepStack's keys, sent by clients as the form fields `api_key` and `admin_key`.
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct Keys {
    /// Refuse /v1/vision and /v1/fovea requests whose api_key field differs (default: FOVEA_API_KEY)
    #[cfg_attr(feature = "cli", arg(long, env = "FOVEA_API_KEY", hide_env_values = true))]
    pub api_key: Option<String>,
    /// Refuse admin requests (POST /v1/backup) whose admin_key field differs (default: FOVEA_ADMIN_KEY)
    #[cfg_attr(feature = "cli", arg(long, env = "FOVEA_ADMIN_KEY", hide_env_values = true))]
    pub admin_key: Option<String>,
}

/// What the server accepts and how much it takes on at once.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct Limits {
    /// Largest request body, in MiB
    #[cfg_attr(feature = "cli", arg(long, value_parser = fovea_vision::cli::count, default_value_t = Limits::default().max_body_mib))]
    pub max_body_mib: usize,
    /// Largest picture, in megapixels (width x height / 1e6)
    #[cfg_attr(feature = "cli", arg(long, value_parser = fovea_vision::cli::positive::<f64>, default_value_t = Limits::default().max_megapixels))]
    pub max_megapixels: f64,
    /// Pictures worked on at once (default: the thread count)
    #[cfg_attr(feature = "cli", arg(long, value_parser = fovea_vision::cli::count))]
    pub workers: Option<usize>,
    /// Requests that may wait for a worker; past this the server answers 503
    #[cfg_attr(feature = "cli", arg(long, default_value_t = Limits::default().queue))]
    pub queue: usize,
    /// Seconds a request may take before it is answered 500 (DeepStack's TIMEOUT)
    #[cfg_attr(feature = "cli", arg(long = "timeout", value_parser = fovea_vision::cli::positive::<f64>, default_value_t = Limits::default().timeout_seconds))]
    pub timeout_seconds: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_body_mib: 32, max_megapixels: 50.0, workers: None, queue: 64, timeout_seconds: 60.0 }
    }
}

/// Everything a request may use: the networks, loaded once, and the people.
pub struct Service {
    faces: Pipeline,
    faces_kind: DetectorKind,
    /// Faces count above this detector score for recognition, enrolment and matching.
    face_score: f64,
    people: People,
    detectors: BTreeMap<String, (DetectorRun, fovea::nn::Sequential)>,
    default_detector: Option<String>,
    scene: Option<SceneModel>,
    keys: Keys,
    limits: Limits,
    gate: Gate,
}

impl Service {
    /// Loads the networks and opens the face database that `config` names.
    pub fn load(config: &ServeConfig) -> Result<Service> {
        Service::with_store(config, open_store(&config.db)?)
    }

    /// [`Service::load`] with people kept in `store`.
    pub fn with_store(config: &ServeConfig, store: Box<dyn IdentityStore>) -> Result<Service> {
        let limits = config.limits.clone();
        let detectors = match &config.detector_models {
            Some(dir) => load_detectors(dir)?,
            None => BTreeMap::new(),
        };
        if let Some(name) = &config.detector {
            if !detectors.contains_key(name) {
                return Err(Error::setting(
                    "detector",
                    format!("no YOLO run called {name:?} in --detector-models (found: {})", names(&detectors)),
                ));
            }
        }
        let workers = limits.workers.unwrap_or_else(fovea::runtime::num_threads).max(1);
        Ok(Service {
            faces: config.faces().load(Stage::Embed)?,
            faces_kind: config.face_detector,
            face_score: config.face_min_score,
            people: People::new(store),
            detectors,
            default_detector: config.detector.clone(),
            scene: config.classifier.as_deref().map(SceneModel::load).transpose()?,
            keys: config.keys.clone(),
            gate: Gate {
                places: Arc::new(Semaphore::new(workers + limits.queue)),
                places_total: workers + limits.queue,
                workers: Arc::new(Semaphore::new(workers)),
                workers_total: workers,
                timeout: Duration::from_secs_f64(limits.timeout_seconds.max(1e-3)),
            },
            limits,
        })
    }

    /// The people this service recognises.
    pub fn people(&self) -> &People {
        &self.people
    }

    /// Decodes an uploaded picture to `[3, H, W]`, refusing one over the pixel limit
    /// before decoding it.
    fn picture(&self, upload: &Upload) -> std::result::Result<fovea::Tensor, ApiError> {
        self.check_size(upload)?;
        fovea_vision::image::decode_rgb(&upload.bytes, &upload.describe()).map_err(ApiError::from_upload)
    }

    /// Refuses an uploaded picture over the pixel limit, from its header alone.
    fn check_size(&self, upload: &Upload) -> std::result::Result<(), ApiError> {
        let name = upload.describe();
        let (w, h) = fovea_vision::image::dimensions(&upload.bytes, &name).map_err(ApiError::from_upload)?;
        if (w * h) as f64 > self.limits.max_megapixels * 1e6 {
            return Err(ApiError::too_large(format!(
                "{name}: a {w}x{h} picture is larger than this server's limit of {} megapixels (--max-megapixels)",
                self.limits.max_megapixels
            )));
        }
        Ok(())
    }
}

/// The face database `db` names: a PostgreSQL URL (`postgres://` or `postgresql://`), else
/// a SQLite file.
pub fn open_store(db: &str) -> Result<Box<dyn IdentityStore>> {
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(Box::new(PostgresStore::connect(db)?));
        #[cfg(not(feature = "postgres"))]
        return Err(Error::setting("db", "this fovea was built without PostgreSQL (cargo feature `postgres`)"));
    }
    Ok(Box::new(SqliteStore::open(std::path::Path::new(db))?))
}

/// The YOLO runs in `dir`: each sub-folder holding a detector, by folder name.
fn load_detectors(dir: &std::path::Path) -> Result<BTreeMap<String, (DetectorRun, fovea::nn::Sequential)>> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if !path.is_dir() {
            continue;
        }
        match path.file_name().and_then(|n| n.to_str()).filter(|n| valid_model_name(n)) {
            Some(name) => {
                found.insert(name.to_string(), load_detector(&path)?);
            }
            None => eprintln!(
                "{}",
                serde_json::json!({"event": "skipped", "folder": path.display().to_string(),
                    "why": "a model's name has letters, digits, '-', '_' and '.' only, not starting with '.'"})
            ),
        }
    }
    if found.is_empty() {
        return Err(Error::format(dir, "holds no YOLO runs (folders made by `fovea yolo train --out`)"));
    }
    Ok(found)
}

/// A model name that names a folder inside --detector-models and nothing else: letters,
/// digits, `-`, `_` and `.`, not starting with a dot.
fn valid_model_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn names<V>(map: &BTreeMap<String, V>) -> String {
    let names: Vec<&str> = map.keys().map(String::as_str).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The bounded queue in front of the workers: a request takes a place on arrival (or is
/// answered 503 when none is left) and keeps it until answered; its pictures wait for a
/// worker, then run on one of the kernels' threads.
struct Gate {
    places: Arc<Semaphore>,
    places_total: usize,
    workers: Arc<Semaphore>,
    workers_total: usize,
    timeout: Duration,
}

impl Gate {
    /// How many requests are being read, waiting or working now.
    fn busy(&self) -> usize {
        self.places_total - self.places.available_permits()
    }
}

/// What a job can ask of the request it works for: whether that was given up (past its
/// time, or its client gone) while the job ran.
pub(crate) struct Job {
    abandoned: Arc<AtomicBool>,
}

impl Job {
    /// A job about to change something checks this first: the client was already told
    /// the request failed.
    pub(crate) fn abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }
}

/// Sets the flag when dropped, unless disarmed: a request future dropped before its job
/// finished (timed out, or its connection closed) marks the job abandoned.
struct AbandonOnDrop(Option<Arc<AtomicBool>>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = self.0.take() {
            flag.store(true, Ordering::SeqCst);
        }
    }
}

impl Service {
    /// Runs `job` when a worker is free, on one of the kernels' own threads, so that its
    /// parallel kernels run as they do in a program computing on its main thread (handed
    /// to the pool from another thread, each kernel would wait on a cross-thread wake-up).
    async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        job: impl FnOnce(&Service, &Job) -> std::result::Result<T, ApiError> + Send + 'static,
    ) -> std::result::Result<T, ApiError> {
        let worker = self.gate.workers.clone().acquire_owned().await.expect("the semaphore is never closed");
        let abandoned = Arc::new(AtomicBool::new(false));
        let mut guard = AbandonOnDrop(Some(abandoned.clone()));
        let (done, result) = tokio::sync::oneshot::channel();
        let service = self.clone();
        rayon::spawn(move || {
            // the worker is freed when the job ends, even if its request was given up
            let _worker = worker;
            let job_state = Job { abandoned };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&service, &job_state)));
            let _ = done.send(outcome);
        });
        let outcome = result.await;
        guard.0 = None;
        match outcome {
            Ok(Ok(answer)) => answer,
            _ => Err(ApiError::internal("the request's job failed (a bug: see the server's log)")),
        }
    }
}

/// What answers `/v1/vision/scene`.
pub enum SceneModel {
    /// a run made by `fovea train`
    Run(Classifier),
    /// an ONNX classifier for square pictures of this side, prepared as torchvision's
    /// ImageNet models expect
    Onnx(PretrainedNet, usize),
}

impl SceneModel {
    /// A run folder, or an `.onnx` file.
    pub fn load(path: &std::path::Path) -> Result<SceneModel> {
        if path.extension().is_some_and(|e| e == "onnx") {
            let (net, side) = PretrainedNet::load_onnx_classifier(path)?;
            return Ok(SceneModel::Onnx(net, side));
        }
        Ok(SceneModel::Run(Classifier::load(path)?))
    }

    /// The most probable class of the picture `bytes` (`name` names it in errors).
    pub fn top1(&self, bytes: &[u8], name: &str) -> Result<Prediction> {
        let mut top = match self {
            SceneModel::Run(c) => c.classify_bytes(bytes, name, 1)?,
            // resized as 256 is to 224
            SceneModel::Onnx(net, side) => {
                net.classify(&fovea_vision::image::decode_rgb(bytes, name)?, side * 8 / 7, *side, 1)?
            }
        };
        Ok(top.remove(0))
    }
}

/// The path of every route served (each is in `/openapi.json`).
pub fn route_paths() -> Vec<&'static str> {
    let tables = [deepstack::route_table(), native::api_table(), native::route_table()];
    tables.into_iter().flatten().map(|(path, _)| path).collect()
}

fn routes(table: Vec<(&'static str, MethodRouter<Arc<Service>>)>) -> axum::Router<Arc<Service>> {
    table.into_iter().fold(axum::Router::new(), |router, (path, method)| router.route(path, method))
}

/// Every route: DeepStack's and fovea's API behind the queue and the time limit, the
/// page, `/health` and `/openapi.json` beside them; all with the body limit and access log.
pub fn router(service: Arc<Service>) -> axum::Router {
    let max_body = service.limits.max_body_mib.saturating_mul(1 << 20);
    let api = routes(deepstack::route_table())
        .merge(routes(native::api_table()))
        .route_layer(axum::middleware::from_fn_with_state(service.clone(), admit));
    api.merge(routes(native::route_table()))
        .method_not_allowed_fallback(|| async {
            ApiError::not_found("no such route for this method (GET /openapi.json lists them)")
        })
        .fallback(|| async { ApiError::not_found("no such route (GET /openapi.json lists them)") })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(access_log))
        .with_state(service)
}

/// A place in the queue, or 503; then the request's whole time (reading its body
/// included) bounded, past which it is answered DeepStack's timeout error.
async fn admit(
    State(service): State<Arc<Service>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Ok(_place) = service.gate.places.clone().try_acquire_owned() else {
        // read what the client is still sending, so that it reads the answer rather than
        // a connection closed under it (at most the body limit, within the time limit)
        let limit = service.limits.max_body_mib.saturating_mul(1 << 20);
        let _ = tokio::time::timeout(service.gate.timeout, drain(request.into_body(), limit)).await;
        return ApiError::busy("the server is busy: its queue of waiting requests is full (--queue); retry later")
            .into_response();
    };
    match tokio::time::timeout(service.gate.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::internal("failed to process request before timeout").into_response(),
    }
}

/// Reads and drops a body, up to `limit` bytes.
async fn drain(mut body: axum::body::Body, limit: usize) {
    use http_body_util::BodyExt;
    let mut read = 0;
    while let Some(Ok(frame)) = body.frame().await {
        read += frame.data_ref().map_or(0, |d| d.len());
        if read > limit {
            break;
        }
    }
}

/// One JSON line on stderr per request: time, client, method, path, status, milliseconds.
async fn access_log(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let client = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.to_string());
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let start = std::time::Instant::now();
    let response = next.run(request).await;
    let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let line = serde_json::json!({
        "time": time.as_secs_f64(),
        "client": client,
        "method": method.as_str(),
        "path": path,
        "status": response.status().as_u16(),
        "ms": start.elapsed().as_secs_f64() * 1e3,
    });
    eprintln!("{line}");
    response
}

/// Whether a key a client sent is the one configured, compared in constant time.
fn same_key(sent: Option<&str>, key: &str) -> bool {
    let sent = sent.unwrap_or("").as_bytes();
    sent.len() == key.len() && sent.iter().zip(key.as_bytes()).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
}

/// Serves `service` on `listener` until `shutdown` completes, then finishes the requests
/// in flight (an enrolment under way is committed) and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // answers go out at once, not held back by Nagle's algorithm until the client acknowledges
    // the last one (a kept-alive client would wait for its delayed ACK, tens of ms)
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = router(service).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// `fovea serve`: loads everything, listens on `config`'s address, and serves until
/// SIGTERM or Ctrl-C. `ready` is called with the bound address once it listens.
pub fn run(config: &ServeConfig, ready: impl FnOnce(SocketAddr, &Service)) -> Result<()> {
    let service = Arc::new(Service::load(config)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start the server's runtime: {e}")))?;
    runtime.block_on(async {
        let address = format!("{}:{}", config.host, config.port);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(|e| Error::setting("port", format!("cannot listen on {address}: {e}")))?;
        let bound = listener.local_addr().map_err(|e| Error::Invalid(e.to_string()))?;
        // the handlers are in place before anyone is told the server is up
        let stop = shutdown_signal().map_err(|e| Error::Invalid(format!("cannot handle SIGTERM: {e}")))?;
        ready(bound, &service);
        serve(listener, service, stop).await.map_err(|e| Error::Invalid(format!("the server stopped: {e}")))
    })
}

/// A future that completes on SIGTERM (what service managers and `docker stop` send) or
/// Ctrl-C; the handlers are installed when this returns.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let interrupt = tokio::signal::ctrl_c();
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = interrupt.await;
        eprintln!("{}", serde_json::json!({"event": "shutdown", "note": "finishing the requests in flight"}));
    })
}
