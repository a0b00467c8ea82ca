//! DeepStack's API, end to end over HTTP: what its clients send, and what they read back.

mod common;

use common::*;
use serde_json::{json, Value};

fn names(answer: &Value) -> Vec<&str> {
    answer["predictions"].as_array().unwrap().iter().map(|p| p["userid"].as_str().unwrap()).collect()
}

#[test]
fn faces_register_recognize_list_match_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&config(dir.path()));
    // nobody enrolled: every face is unknown, with confidence 0
    let (status, answer) = post(&server, "/v1/vision/face/recognize", &[Part::File("image", "s1.jpg", sample(1))]);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(names(&answer), ["unknown"; 3]);
    // register under the field names clients use: image, image1, image0
    let (status, answer) = post(
        &server,
        "/v1/vision/face/register",
        &[Part::Text("userid", "alice"), Part::File("image", "a.png", alice())],
    );
    assert_eq!((status, &answer), (200, &json!({"success": true, "message": "face added", "faces": 1, "duration": 0})));
    let (status, answer) = post(
        &server,
        "/v1/vision/face/register",
        &[Part::Text("userid", "bob"), Part::File("image0", "b.png", bob()), Part::File("image1", "b2.png", bob())],
    );
    assert_eq!((status, &answer["message"], &answer["faces"]), (200, &json!("face added"), &json!(2)));
    let (_, answer) =
        post(&server, "/v1/vision/face/register", &[Part::Text("userid", "bob"), Part::File("image", "b.png", bob())]);
    assert_eq!(answer["message"], "face updated");

    // the group photo: alice, bob and a stranger, with DeepStack's keys in DeepStack's order
    let (status, answer) = post(&server, "/v1/vision/face/recognize", &[Part::File("image", "s1.jpg", sample(1))]);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(names(&answer), ["alice", "bob", "unknown"]);
    // the keys in DeepStack's order, as its Go server writes them
    let (content_type, body) = multipart(&[Part::File("image", "s1.jpg", sample(1))]);
    let text = post_text(&format!("{}/v1/vision/face/recognize", server.url), &content_type, &body);
    let first = &text[text.find("[{").unwrap()..text.find('}').unwrap()];
    let keys: Vec<&str> = first
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|k| k.contains('_') || *k == "confidence" || *k == "userid")
        .collect();
    assert_eq!(keys, ["confidence", "userid", "y_min", "x_min", "y_max", "x_max"], "{text}");
    assert!(text.starts_with(r#"{"success":true,"predictions":"#) && text.ends_with(r#""duration":0}"#), "{text}");
    for p in answer["predictions"].as_array().unwrap() {
        for k in ["x_min", "y_min", "x_max", "y_max"] {
            assert!(p[k].is_i64(), "{k} is an integer: {p}");
        }
        assert!(p["x_min"].as_i64() < p["x_max"].as_i64() && p["y_min"].as_i64() < p["y_max"].as_i64());
    }
    // confidence = 1 - 0.55 distance, the distance being /v1/fovea/faces' (face-api's)
    let (_, faces) = post(&server, "/v1/fovea/faces", &[Part::File("image", "s1.jpg", sample(1))]);
    for (p, f) in answer["predictions"].as_array().unwrap().iter().zip(faces["faces"].as_array().unwrap()).take(2) {
        let expected = 1.0 - 0.55 * f["distance"].as_f64().unwrap();
        assert!((p["confidence"].as_f64().unwrap() - expected).abs() < 1e-6, "{p} vs {f}");
        assert_eq!(p["userid"], f["name"]);
        assert_eq!(f["descriptor"].as_array().unwrap().len(), 128);
        assert_eq!(f["landmarks"].as_array().unwrap().len(), 68);
    }
    assert_eq!(faces["faces"][2]["name"], Value::Null);
    // a strict min_confidence turns a weaker match into unknown
    let weakest = answer["predictions"].as_array().unwrap()[0..2]
        .iter()
        .map(|p| p["confidence"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    let strict = format!("{}", weakest + 1e-3);
    let (_, answer) = post(
        &server,
        "/v1/vision/face/recognize",
        &[Part::Text("min_confidence", &strict), Part::File("image", "s1.jpg", sample(1))],
    );
    assert_eq!(names(&answer).iter().filter(|n| **n == "unknown").count(), 2, "{answer}");

    // face detection, with and without a min_confidence
    let (status, all) = post(&server, "/v1/vision/face/", &[Part::File("image", "s1.jpg", sample(1))]);
    assert_eq!((status, all["predictions"].as_array().unwrap().len()), (200, 3), "{all}");
    let scores: Vec<f64> =
        all["predictions"].as_array().unwrap().iter().map(|p| p["confidence"].as_f64().unwrap()).collect();
    let cut = (scores[0] + scores[2]) / 2.0;
    let (_, some) = post(
        &server,
        "/v1/vision/face",
        &[Part::File("image", "s1.jpg", sample(1)), Part::Text("min_confidence", &cut.to_string())],
    );
    let kept = scores.iter().filter(|s| **s > cut).count();
    assert_eq!(some["predictions"].as_array().unwrap().len(), kept, "{some}");
    assert!(some["predictions"][0].get("userid").is_none());

    // list; match; delete (twice: DeepStack answers success for someone not there)
    let (_, list) = post(&server, "/v1/vision/face/list", &[]);
    assert_eq!(list, json!({"success": true, "faces": ["alice", "bob"], "duration": 0}));
    let (status, same) = post(
        &server,
        "/v1/vision/face/match",
        &[Part::File("image1", "a.png", alice()), Part::File("image2", "s.jpg", sample(1))],
    );
    assert_eq!(status, 200, "{same}");
    let (_, different) = post(
        &server,
        "/v1/vision/face/match",
        &[Part::File("image1", "a.png", alice()), Part::File("image2", "b.png", bob())],
    );
    assert!(same["similarity"].as_f64() > different["similarity"].as_f64(), "{same} {different}");
    assert!(same["similarity"].as_f64().unwrap() > 0.67 && different["similarity"].as_f64().unwrap() < 0.67);
    for _ in 0..2 {
        let (status, answer) = post(&server, "/v1/vision/face/delete", &[Part::Text("userid", "bob")]);
        assert_eq!((status, answer), (200, json!({"success": true, "duration": 0})));
    }
    // delete as deepstack-python's examples send it: urlencoded
    let url = format!("{}/v1/vision/face/delete", server.url);
    let (status, _) = post_raw(&url, "application/x-www-form-urlencoded", b"userid=alice");
    assert_eq!(status, 200);
    let (_, list) = post_raw(&format!("{}/v1/vision/face/list", server.url), "", b"");
    assert_eq!(list["faces"], json!([]));
}

#[test]
fn bad_requests_get_deepstack_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.limits.max_body_mib = 1;
    config.limits.max_megapixels = 4.0;
    config.keys.api_key = Some("sesame".into());
    let server = Server::start(&config);
    let key = Part::Text("api_key", "sesame");
    let error = |status: u16, answer: &Value, expected_status: u16, text: &str| {
        assert_eq!(status, expected_status, "{answer}");
        assert_eq!(answer["success"], false, "{answer}");
        assert_eq!(answer["duration"], 0, "{answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains(text), "{message:?} should say {text:?}");
    };
    // keys: none, or the wrong one, is 401, and registers nobody
    let (s, a) = post(
        &server,
        "/v1/vision/face/register",
        &[Part::Text("userid", "eve"), Part::File("image", "a.png", alice())],
    );
    error(s, &a, 401, "Incorrect api key");
    let (s, a) = post(
        &server,
        "/v1/vision/face/register",
        &[Part::Text("api_key", "guess"), Part::Text("userid", "eve"), Part::File("image", "a.png", alice())],
    );
    error(s, &a, 401, "Incorrect api key");
    let (s, a) = post(&server, "/v1/vision/face/list", &[key_part()]);
    assert_eq!((s, &a["faces"]), (200, &json!([])), "{a}");

    // missing and malformed fields
    let (s, a) = post(&server, "/v1/vision/face/recognize", &[key_part()]);
    error(s, &a, 400, "No valid image file found");
    let (s, a) = post(&server, "/v1/vision/face/register", &[key_part(), Part::File("image", "a.png", alice())]);
    error(s, &a, 400, "userid not specified");
    let (s, a) = post(&server, "/v1/vision/face/register", &[key_part(), Part::Text("userid", "eve")]);
    error(s, &a, 400, "No valid image file found");
    for (value, text) in [("abc", "Invalid value for min_confidence"), ("1.5", "cannot be greater than 1")] {
        let (s, a) = post(
            &server,
            "/v1/vision/face",
            &[key_part(), Part::Text("min_confidence", value), Part::File("image", "s.jpg", sample(2))],
        );
        error(s, &a, 400, text);
    }
    let (s, a) = post(&server, "/v1/vision/face/match", &[key_part(), Part::File("image1", "a.png", alice())]);
    error(s, &a, 400, "expected two image files");
    // not pictures: text, a truncated JPEG, a picture with no face to register
    let (s, a) = post(&server, "/v1/vision/face", &[key_part(), Part::File("image", "notes.txt", b"hello".to_vec())]);
    error(s, &a, 400, "invalid image");
    let jpeg = sample(2);
    let (s, a) = post(
        &server,
        "/v1/vision/face",
        &[key_part(), Part::File("image", "cut.jpg", jpeg[..jpeg.len() / 2].to_vec())],
    );
    error(s, &a, 400, "truncated JPEG");
    let coffee = std::fs::read(repo("data/images/coffee.png")).unwrap();
    let (s, a) = post(
        &server,
        "/v1/vision/face/register",
        &[key_part(), Part::Text("userid", "eve"), Part::File("image", "coffee.png", coffee)],
    );
    error(s, &a, 400, "no face detected");
    // a picture whose header claims 20000x20000 pixels, refused before decoding
    let mut png = std::fs::read(repo("data/images/coffee.png")).unwrap();
    png[16..24].copy_from_slice(&[0, 0, 0x4e, 0x20, 0, 0, 0x4e, 0x20]);
    let mut crc = flate2::Crc::new();
    crc.update(&png[12..29]);
    png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    let (s, a) = post(&server, "/v1/vision/face", &[key_part(), Part::File("image", "huge.png", png)]);
    error(s, &a, 413, "megapixels");
    // a body over the 1 MiB limit (a little over: a client that writes a much larger body
    // before reading finds the connection closed under it, as on any server)
    let (s, a) = post(
        &server,
        "/v1/vision/face",
        &[key_part(), Part::File("image", "big.jpg", vec![0xff; (1 << 20) + (64 << 10)])],
    );
    error(s, &a, 413, "--max-body");
    // malformed bodies
    let url = format!("{}/v1/vision/face", server.url);
    let (s, a) = post_raw(&url, "multipart/form-data; boundary=xyz", b"--xyz\r\nthis is not a part");
    error(s, &a, 400, "malformed");
    let (s, a) = post_raw(&url, "multipart/form-data", b"no boundary at all");
    error(s, &a, 400, "malformed multipart");
    let (s, a) = post_raw(&url, "application/json", br#"{"image": "x"}"#);
    error(s, &a, 400, "expected a multipart/form-data or urlencoded form");
    // models that are not loaded, and names that try to leave the models folder
    let (s, a) = post(&server, "/v1/vision/detection", &[key_part(), Part::File("image", "s.jpg", sample(2))]);
    error(s, &a, 403, "Detection endpoint not activated");
    let (s, a) = post(&server, "/v1/vision/scene", &[key_part(), Part::File("image", "s.jpg", sample(2))]);
    error(s, &a, 403, "Scene endpoint not activated");
    let (s, a) = post(&server, "/v1/vision/custom/people", &[key_part(), Part::File("image", "s.jpg", sample(2))]);
    error(s, &a, 404, "no custom model named \"people\"");
    let (s, a) =
        post(&server, "/v1/vision/custom/..%2F..%2Fetc", &[key_part(), Part::File("image", "s.jpg", sample(2))]);
    error(s, &a, 404, "no custom model named \"../../etc\"");
    let (s, a) = post(&server, "/v1/vision/nothing", &[key_part()]);
    error(s, &a, 404, "no such route");
    let (s, body) = get(&server, "/v1/vision/face/recognize");
    error(s, &serde_json::from_str(&body).unwrap(), 404, "no such route for this method");
    // a GET carries its key in the query string
    let (s, body) = get(&server, "/v1/vision/custom/list?api_key=sesame");
    assert_eq!((s, serde_json::from_str::<Value>(&body).unwrap()["models"].clone()), (200, json!([])));
    // after all that, still nobody enrolled
    let (_, a) = post(&server, "/v1/vision/face/list", &[key]);
    assert_eq!(a["faces"], json!([]));
}

fn key_part() -> Part<'static> {
    Part::Text("api_key", "sesame")
}

#[test]
fn concurrent_registrations_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&config(dir.path()));
    let (a, b) = (alice(), bob());
    // 12 clients at once: alice 4 times, bob 4 times, and 4 more people once each
    std::thread::scope(|scope| {
        for i in 0..12 {
            let (server, a, b) = (&server, &a, &b);
            scope.spawn(move || {
                let (name, picture) = match i % 3 {
                    0 => ("alice".to_string(), a.clone()),
                    1 => ("bob".to_string(), b.clone()),
                    _ => (format!("visitor{i}"), if i % 2 == 0 { a.clone() } else { b.clone() }),
                };
                let (s, answer) = post(
                    server,
                    "/v1/vision/face/register",
                    &[Part::Text("userid", &name), Part::File("image", "p.png", picture)],
                );
                assert_eq!(s, 200, "{answer}");
            });
        }
    });
    let counts: Vec<(String, usize)> =
        server.service.people().store().people().unwrap().into_iter().map(|p| (p.name, p.descriptors)).collect();
    let mut expected = vec![("alice".to_string(), 4), ("bob".to_string(), 4)];
    expected.extend([2, 5, 8, 11].map(|i| (format!("visitor{i}"), 1)));
    expected.sort();
    assert_eq!(counts, expected);
}

/// A store whose reads wait until the test opens its gate: a request holds its worker
/// for as long as the test wants.
struct HeldStore {
    inner: fovea_serve::SqliteStore,
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
    waiting: std::sync::atomic::AtomicUsize,
}

impl HeldStore {
    fn wait(&self) {
        self.waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }
}

struct Held(std::sync::Arc<HeldStore>);

impl fovea_serve::IdentityStore for Held {
    fn enroll(&self, name: &str, faces: &[(Vec<f32>, String)]) -> fovea::Result<bool> {
        self.0.inner.enroll(name, faces)
    }
    fn remove(&self, name: &str) -> fovea::Result<bool> {
        self.0.inner.remove(name)
    }
    fn people(&self) -> fovea::Result<Vec<fovea_vision::face::Person>> {
        self.0.inner.people()
    }
    fn descriptors(&self) -> fovea::Result<Vec<(String, Vec<f32>)>> {
        self.0.inner.descriptors()
    }
    fn version(&self) -> fovea::Result<u64> {
        self.0.wait();
        self.0.inner.version()
    }
    fn describe(&self) -> String {
        self.0.inner.describe()
    }
    fn kind(&self) -> &'static str {
        self.0.inner.kind()
    }
    fn backup(&self, to: &std::path::Path) -> fovea::Result<()> {
        self.0.inner.backup(to)
    }
}

#[test]
fn a_full_queue_answers_503_and_every_request_gets_an_answer() {
    use fovea_serve::IdentityStore;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.limits.workers = Some(1);
    config.limits.queue = 1;
    let held = std::sync::Arc::new(HeldStore {
        inner: fovea_serve::SqliteStore::open(&dir.path().join("people.db")).unwrap(),
        open: std::sync::Mutex::new(false),
        opened: std::sync::Condvar::new(),
        waiting: std::sync::atomic::AtomicUsize::new(0),
    });
    let service = fovea_serve::Service::with_store(&config, Box::new(Held(held.clone()))).unwrap();
    let server = Server::with_service(std::sync::Arc::new(service));
    let photo = sample(1);
    let recognize = || post(&server, "/v1/vision/face/recognize", &[Part::File("image", "s.jpg", photo.clone())]);
    std::thread::scope(|scope| {
        // the first request takes the one worker and waits in the store; the second, the
        // one place in the queue
        let first = scope.spawn(recognize);
        while held.waiting.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let second = scope.spawn(recognize);
        // (the second is in once the server counts two requests in progress)
        loop {
            let (_, health) = get(&server, "/health");
            if serde_json::from_str::<Value>(&health).unwrap()["in_progress"] == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // no place is left: refused at once, whatever the endpoint
        for path in ["/v1/vision/face/recognize", "/v1/vision/face/", "/v1/vision/face/list"] {
            let (s, answer) = post(&server, path, &[Part::File("image", "s.jpg", photo.clone())]);
            assert_eq!(s, 503, "{answer}");
            assert!(answer["error"].as_str().unwrap().contains("busy"), "{answer}");
        }
        *held.open.lock().unwrap() = true;
        held.opened.notify_all();
        for request in [first, second] {
            let (s, answer) = request.join().unwrap();
            assert_eq!(s, 200, "{answer}");
        }
    });
    let (s, _) = post(&server, "/v1/vision/face/list", &[]);
    assert_eq!(s, 200);
    assert_eq!(Held(held).people().unwrap(), []);
}

#[test]
fn a_request_past_its_time_gets_deepstacks_timeout_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.limits.timeout_seconds = 0.001;
    let server = Server::start(&config);
    let (s, a) = post(&server, "/v1/vision/face/recognize", &[Part::File("image", "s.jpg", sample(1))]);
    assert_eq!((s, &a["error"]), (500, &json!("failed to process request before timeout")), "{a}");
}

#[test]
fn the_openapi_description_lists_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&config(dir.path()));
    let (s, text) = get(&server, "/openapi.json");
    assert_eq!(s, 200);
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut described: Vec<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    let mut served = fovea_serve::route_paths();
    described.sort();
    served.sort();
    assert_eq!(described, served);
    let (s, page) = get(&server, "/");
    assert!(s == 200 && page.contains("<title>fovea serve</title>"));
    let (s, health) = get(&server, "/health");
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!((s, &health["status"], &health["people"]), (200, &json!("ok"), &json!(0)));
}

#[test]
fn backup_needs_the_admin_key_and_copies_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.keys.admin_key = Some("root".into());
    let server = Server::start(&config);
    let (s, _) = post(
        &server,
        "/v1/vision/face/register",
        &[Part::Text("userid", "alice"), Part::File("image", "a.png", alice())],
    );
    assert_eq!(s, 200);
    // the api key is not set, the admin key is: backup needs it
    let (s, answer) = post(&server, "/v1/backup", &[]);
    assert_eq!((s, &answer["error"]), (401, &json!("Incorrect admin key")));
    let (content_type, body) = multipart(&[Part::Text("admin_key", "root")]);
    let copy = post_bytes(&format!("{}/v1/backup", server.url), &content_type, &body);
    assert!(copy.starts_with(b"SQLite format 3"));
    let file = dir.path().join("copy.db");
    std::fs::write(&file, copy).unwrap();
    let people = fovea_vision::face::FaceDb::open_read_only(&file).unwrap().list().unwrap();
    assert_eq!(people, [fovea_vision::face::Person { name: "alice".into(), descriptors: 1 }]);
}

/// The load test: 16 clients at once, 3 requests each, below the queue limit: every one
/// answered 200 with the same faces as a request alone.
#[test]
fn sixteen_clients_at_once_all_get_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&config(dir.path()));
    let photo = sample(2);
    let detect = || post(&server, "/v1/vision/face/", &[Part::File("image", "s2.jpg", photo.clone())]);
    let (s, alone) = detect();
    assert_eq!(s, 200, "{alone}");
    assert!(!alone["predictions"].as_array().unwrap().is_empty());
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..16).map(|_| scope.spawn(|| (0..3).map(|_| detect()).collect::<Vec<_>>())).collect();
        clients.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    assert_eq!(answers.len(), 48);
    for (s, answer) in answers {
        assert_eq!((s, &answer), (200, &alone));
    }
}
