//! The web page in a real browser: headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`). Without chromedriver the test says so and passes,
//! unless FOVEA_REQUIRE_CLIENTS is set (as `.ci/run` sets it). The screenshot it takes is
//! kept in the test's target folder (`target/tmp/fovea-serve-page.png`).

mod common;

use base64::Engine;
use common::*;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A WebDriver session of a chromedriver this test started.
struct Browser {
    driver: Child,
    url: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

impl Browser {
    fn start() -> Option<Browser> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = match Command::new("chromedriver").arg(format!("--port={port}")).stdout(Stdio::null()).spawn() {
            Ok(child) => child,
            Err(e) => {
                assert!(
                    std::env::var_os("FOVEA_REQUIRE_CLIENTS").is_none(),
                    "cannot run chromedriver ({e}): apt-get install chromium chromium-driver"
                );
                eprintln!("skipped: no chromedriver ({e}); apt-get install chromium chromium-driver");
                return None;
            }
        };
        let mut browser = Browser { driver, url: format!("http://127.0.0.1:{port}") };
        let start = Instant::now();
        while agent().get(format!("{}/status", browser.url)).call().is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let session = browser.call(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
                         // a synthetic camera, allowed without asking, for the webcam snapshot
                         "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
            }}}}),
        );
        browser.url = format!("{}/session/{}", browser.url, session["sessionId"].as_str().unwrap());
        Some(browser)
    }

    /// A WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.url);
        let mut response = match method {
            "GET" => agent().get(&url).call(),
            "DELETE" => agent().delete(&url).call(),
            _ => agent().post(&url).header("Content-Type", "application/json").send(body.to_string()),
        }
        .unwrap();
        let answer: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        assert!(response.status().is_success(), "WebDriver {method} {path}: {answer}");
        answer["value"].clone()
    }

    fn element(&self, css: &str) -> String {
        let found = self.call("POST", "/element", json!({"using": "css selector", "value": css}));
        found["element-6066-11e4-a52e-4f735466cecf"].as_str().unwrap_or_else(|| panic!("{css}: {found}")).to_string()
    }

    fn script(&self, script: &str) -> Value {
        self.call("POST", "/execute/sync", json!({"script": script, "args": []}))
    }

    /// Waits until `script` returns something truthy; returns it.
    fn wait_for(&self, script: &str) -> Value {
        let start = Instant::now();
        loop {
            let value = self.script(script);
            if !(value.is_null() || value == json!(false) || value == json!("")) {
                return value;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "waited a minute for: {script}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Chooses `path` in the page's file input and waits for the answer to be drawn.
    fn upload(&self, path: &std::path::Path) -> Vec<String> {
        self.script("document.getElementById('status').textContent = ''");
        let input = self.element("#file");
        self.call("POST", &format!("/element/{input}/value"), json!({"text": path.display().to_string()}));
        let status =
            self.wait_for("const s = document.getElementById('status').textContent; return /face/.test(s) && s;");
        assert!(!status.as_str().unwrap().contains("rror"), "{status}");
        self.names()
    }

    /// The names the page shows beside the faces found.
    fn names(&self) -> Vec<String> {
        let names = self.script("return [...document.querySelectorAll('#faces .name')].map(e => e.textContent)");
        serde_json::from_value(names).unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.url.contains("/session/") {
            let _ = agent().delete(&self.url).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn the_page_finds_registers_and_recognises_faces_in_a_browser() {
    let Some(browser) = Browser::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&config(dir.path()));
    let (group, alone) = (dir.path().join("group.jpg"), dir.path().join("alice.png"));
    std::fs::write(&group, sample(1)).unwrap();
    std::fs::write(&alone, alice()).unwrap();
    browser.call("POST", "/url", json!({"url": server.url}));

    // the group photo: three faces, nobody known yet
    assert_eq!(browser.upload(&group), ["unknown", "unknown", "unknown"]);
    // register the first face as alice, typing her name and clicking Register
    let input = browser.element("#faces li[data-face='0'] input");
    browser.call("POST", &format!("/element/{input}/clear"), json!({}));
    browser.call("POST", &format!("/element/{input}/value"), json!({"text": "alice"}));
    let button = browser.element("#faces li[data-face='0'] button");
    browser.call("POST", &format!("/element/{button}/click"), json!({}));
    browser.wait_for("return document.querySelector('#people .name')?.textContent === 'alice'");
    // the page redraws the photo with her name
    browser.wait_for("return document.querySelector('#faces .name')?.textContent === 'alice'");
    assert_eq!(browser.names(), ["alice", "unknown", "unknown"]);
    // another picture of her
    assert_eq!(browser.upload(&alone), ["alice"]);
    assert_eq!(browser.upload(&group), ["alice", "unknown", "unknown"]);
    let shot = browser.call("GET", "/screenshot", json!({}));
    let png = base64::engine::general_purpose::STANDARD.decode(shot.as_str().unwrap()).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    std::fs::write(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fovea-serve-page.png"), png).unwrap();

    // a webcam snapshot (Chromium's synthetic camera: no face in it) goes the same way
    browser.script("document.getElementById('status').textContent = ''");
    let camera = browser.element("#camera");
    browser.call("POST", &format!("/element/{camera}/click"), json!({}));
    browser.wait_for("const v = document.getElementById('video'); return v.videoWidth > 0");
    let snap = browser.element("#snap");
    browser.call("POST", &format!("/element/{snap}/click"), json!({}));
    let status =
        browser.wait_for("const s = document.getElementById('status').textContent; return /face/.test(s) && s;");
    assert_eq!(status, "0 face(s), 0 object(s)");

    // delete her from the list; the server forgets her
    let delete = browser.element("#people li button");
    browser.call("POST", &format!("/element/{delete}/click"), json!({}));
    browser.wait_for("return document.querySelectorAll('#people li').length === 0");
    assert!(server.service.people().store().people().unwrap().is_empty());
}
