#![no_main]
//! The text formats: matrices and filters (`fovea conv`) and darknet label files.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = fovea_vision::filters::parse_matrix(text);
    let path = std::path::Path::new("labels.txt");
    let _ = fovea_vision::detect::dataset::parse_labels(text, path, None);
    let _ = fovea_vision::detect::dataset::parse_labels(text, path, Some(3));
});
