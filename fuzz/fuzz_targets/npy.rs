#![no_main]
//! `.npy` arrays: any bytes are read or refused, never a panic or an absurd allocation.

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::small_budget();
    let _ = fovea::io::read_npy(&common::file("a.npy", data));
});
