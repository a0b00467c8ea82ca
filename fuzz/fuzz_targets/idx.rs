#![no_main]
//! IDX files, raw and gzip-compressed.

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::small_budget();
    let _ = fovea_vision::data::idx::parse_idx(data);
    let _ = fovea_vision::data::idx::read_idx(&common::file("images-idx3-ubyte.gz", data));
});
