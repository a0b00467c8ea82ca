//! Decodes a picture with fovea's decoder and writes it as an 8-bit RGB PNG, so that a
//! reference implementation (tools/faceapi/gen_faces.js) sees exactly fovea's pixels.
//!
//!     cargo run --release -p fovea-vision --example decode -- IN.jpg OUT.png

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = &args[..] else {
        eprintln!("usage: decode IN OUT.png");
        std::process::exit(2);
    };
    let rgb = fovea_vision::image::load_rgb(std::path::Path::new(input)).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1);
    });
    let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
    let d = rgb.data();
    let bytes: Vec<u8> =
        (0..h * w).flat_map(|i| (0..3).map(move |c| (d[c * h * w + i] * 255.0).round() as u8)).collect();
    fovea_vision::image::save_rgb_png(std::path::Path::new(output), w as u32, h as u32, bytes).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1);
    });
}
