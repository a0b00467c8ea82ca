#![no_main]
//! safetensors files (checkpoints, torchvision weights).

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::small_budget();
    let _ = fovea::io::read_safetensors(&common::file("w.safetensors", data));
});
