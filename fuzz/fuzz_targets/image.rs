#![no_main]
//! Pictures (PNG, JPEG, anything else) as every command reads them.

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::small_budget();
    let path = common::file("picture", data);
    let _ = fovea_vision::image::load_rgb(&path);
    let _ = fovea_vision::image::load_gray(&path);
});
