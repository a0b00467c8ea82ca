#![no_main]
//! A training checkpoint's metadata (JSON inside a safetensors header) and the model it
//! names: the input is the metadata; the tensors are a real LeNet-5's.

#[path = "common.rs"]
mod common;

use std::collections::HashMap;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::small_budget();
    let Ok(meta) = std::str::from_utf8(data) else { return };
    let model = fovea_vision::models::build("lenet5", 10, &mut fovea::Rng::new(0)).expect("lenet5");
    let tensors: Vec<(String, fovea::Tensor)> =
        fovea::nn::state_dict(model.as_ref()).into_iter().map(|(n, v)| (n, v.tensor())).collect();
    let path = common::file("checkpoint.safetensors", b"");
    let metadata = HashMap::from([("fovea".to_string(), meta.to_string())]);
    fovea::io::write_safetensors(&path, &tensors, metadata).expect("writes");
    if let Ok(ckpt) = fovea_vision::train::load_checkpoint(&path) {
        let _ = fovea_vision::train::model_from_checkpoint(&ckpt);
    }
});
