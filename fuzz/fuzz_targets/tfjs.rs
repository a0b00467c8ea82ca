#![no_main]
//! TF.js weight manifests and their shards: the input's first line is the manifest, the
//! rest the one shard it may name (`shard1`).

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::small_budget();
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let manifest = common::file("model-weights_manifest.json", &data[..split]);
    common::file("shard1", data.get(split + 1..).unwrap_or_default());
    let _ = fovea::io::read_tfjs_manifest(&manifest);
});
