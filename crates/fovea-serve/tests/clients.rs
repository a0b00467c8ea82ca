//! Existing DeepStack clients, unchanged, against fovea serve. They need Python with
//! `pip install deepstack-python`; without it the test says so and passes, unless
//! FOVEA_REQUIRE_CLIENTS is set (as `.ci/run` sets it).

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;

/// Whether `python3 -c "import <module>"` works; if not, and FOVEA_REQUIRE_CLIENTS is set,
/// the test fails.
fn python_has(module: &str) -> bool {
    let ok =
        Command::new("python3").args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("FOVEA_REQUIRE_CLIENTS").is_none(),
            "python3 cannot import {module}: pip install deepstack-python"
        );
        eprintln!("skipped: python3 cannot import {module} (pip install deepstack-python)");
    }
    ok
}

#[test]
fn deepstack_python_registers_and_recognises_the_sample_faces() {
    if !python_has("deepstack.core") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&config(dir.path()));
    std::fs::write(dir.path().join("alice.png"), alice()).unwrap();
    std::fs::write(dir.path().join("bob.png"), bob()).unwrap();
    std::fs::write(dir.path().join("group.jpg"), sample(1)).unwrap();
    let (host, port) = server.url.trim_start_matches("http://").split_once(':').unwrap();
    let script = repo("crates/fovea-serve/tests/clients/deepstack_python.py");
    let output = Command::new("python3").arg(script).args([host, port]).arg(dir.path()).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["register"], serde_json::json!(["face added", "face added"]));
    assert_eq!(out["faces"], serde_json::json!(["alice", "bob"]));
    let names: Vec<&str> = out["recognize"].as_array().unwrap().iter().map(|p| p["userid"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob", "unknown"]);
    assert_eq!(out["detect"].as_array().unwrap().len(), 3);
    // the client raises its own exception on any status but 200
    assert!(out["bad_register"].as_str().unwrap().contains("status code: 400"), "{}", out["bad_register"]);
}
