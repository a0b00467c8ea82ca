#![no_main]
//! Face databases: any file given as `--db` is refused or read, never a panic.

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::small_budget();
    let path = common::file("faces.db", data);
    if let Ok(db) = fovea_vision::face::FaceDb::open_read_only(&path) {
        let _ = db.list();
        let _ = db.identify(&[0.0; 128], 0.6);
    }
});
