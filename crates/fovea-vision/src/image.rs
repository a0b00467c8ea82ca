//! Image decode/encode (PNG, JPEG) and conversions to and from tensors.

use fovea::{Error, Result, Tensor};
use image::imageops::FilterType;
use std::path::Path;

fn open(path: &Path) -> Result<image::DynamicImage> {
    decode(&fovea::budget::read_file(path)?, path)
}

/// The picture in `bytes` (PNG or JPEG); `path` names it in errors (a file, or an upload).
fn decode(bytes: &[u8], path: &Path) -> Result<image::DynamicImage> {
    let reader =
        image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| Error::io(path, e))?;
    // the JPEG decoder fills a cut-off file in with grey; say it is cut off instead
    if reader.format() == Some(image::ImageFormat::Jpeg) && !bytes.windows(2).any(|w| w == [0xff, 0xd9]) {
        return Err(Error::format(path, "truncated JPEG (no end-of-image marker)"));
    }
    // the declared size, from the header alone, before decoding allocates anything
    let header =
        image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| Error::io(path, e))?;
    let (w, h) = header.into_dimensions().map_err(|e| Error::format(path, format!("cannot decode image: {e}")))?;
    // the decoded 8-bit pixels (up to 4 channels) and the f32 RGB tensor made from them
    fovea::budget::check(&format!("{}: {w}x{h} pixels", path.display()), w as u64 * h as u64 * 16)?;
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        match decode_jpeg_strictly(bytes) {
            Ok(img) => return Ok(img),
            // what libjpeg does with a damaged file: decode what is there, and say so
            Err(e) => {
                eprintln!("warning: {}: corrupt JPEG data ({e}); parts of the picture may be grey", path.display())
            }
        }
    }
    let png = reader.format() == Some(image::ImageFormat::Png);
    let img = reader.decode().map_err(|e| Error::format(path, format!("cannot decode image: {e}")))?;
    // the pixels are whole (the decoder stops at the last image data), but the file is not
    if png && !bytes.ends_with(&PNG_END) {
        eprintln!("warning: {}: the PNG does not end with its IEND chunk (cut off, or data appended)", path.display());
    }
    Ok(img)
}

/// The last 12 bytes of every PNG: the empty IEND chunk and its CRC.
const PNG_END: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82];

/// A JPEG decoded as `image` decodes it (the same decoder and colours), but with an error
/// where `image` would quietly fill missing or corrupt data with grey.
fn decode_jpeg_strictly(bytes: &[u8]) -> std::result::Result<image::DynamicImage, String> {
    use image::{DynamicImage, ImageBuffer};
    use zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions};
    // zune-jpeg takes an end-of-image marker met before the last block for the end of the
    // picture (as in Ultra HDR files) and fills the rest with grey, even in strict mode;
    // without the final marker, a cut-off file runs out of data instead, which is an error
    let bytes = bytes.strip_suffix(&[0xff, 0xd9]).unwrap_or(bytes);
    let options = DecoderOptions::default().set_strict_mode(true).set_max_width(usize::MAX).set_max_height(usize::MAX);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(|e| e.to_string())?;
    let (w, h) = decoder.dimensions().ok_or("no dimensions")?;
    let out = match decoder.input_colorspace() {
        Some(c @ (ColorSpace::RGB | ColorSpace::RGBA | ColorSpace::Luma | ColorSpace::LumaA)) => c,
        _ => ColorSpace::RGB,
    };
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(out));
    let pixels = decoder.decode().map_err(|e| e.to_string())?;
    let (w, h) = (w as u32, h as u32);
    let img = match out {
        ColorSpace::Luma => ImageBuffer::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8),
        ColorSpace::LumaA => ImageBuffer::from_raw(w, h, pixels).map(DynamicImage::ImageLumaA8),
        ColorSpace::RGBA => ImageBuffer::from_raw(w, h, pixels).map(DynamicImage::ImageRgba8),
        _ => ImageBuffer::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
    };
    img.ok_or_else(|| "the decoded pixels do not fill the picture".to_string())
}

/// A greyscale image as `[H, W]` with values 0..255.
pub fn load_gray(path: &Path) -> Result<Tensor> {
    let img = open(path)?.to_luma8();
    let (w, h) = img.dimensions();
    Tensor::new(&[h as usize, w as usize], img.into_raw().into_iter().map(f32::from).collect())
}

/// An RGB image as `[3, H, W]` with values 0..1.
pub fn load_rgb(path: &Path) -> Result<Tensor> {
    rgb_tensor(open(path)?)
}

/// [`load_rgb`] of a picture held in memory (an upload); `name` names it in errors. Its size
/// is checked against the memory budget from its header, before it is decoded.
pub fn decode_rgb(bytes: &[u8], name: &str) -> Result<Tensor> {
    rgb_tensor(decode(bytes, Path::new(name))?)
}

/// The width and height of the picture in `bytes` (PNG or JPEG), from its header alone;
/// `name` names it in errors. A server checks an upload's size with it before decoding.
pub fn dimensions(bytes: &[u8], name: &str) -> Result<(usize, usize)> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::io(Path::new(name), e))?;
    let (w, h) =
        reader.into_dimensions().map_err(|e| Error::format(Path::new(name), format!("cannot decode image: {e}")))?;
    Ok((w as usize, h as usize))
}

/// A decoded picture as `[3, H, W]` with values 0..1.
fn rgb_tensor(img: image::DynamicImage) -> Result<Tensor> {
    let img = img.to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.into_raw();
    let mut data = vec![0.0f32; 3 * h * w];
    for (i, px) in raw.chunks_exact(3).enumerate() {
        for c in 0..3 {
            data[c * h * w + i] = px[c] as f32 / 255.0;
        }
    }
    Tensor::new(&[3, h, w], data)
}

/// Converts any picture to what Fashion-MNIST models expect: `[1, 1, 28, 28]` grey in 0..1,
/// light garment on a dark background. A picture with a light background (the usual photo
/// of an object) is inverted, as Fashion-MNIST's are dark.
pub fn load_fashion_input(path: &Path) -> Result<Tensor> {
    fashion_input(open(path)?)
}

/// [`load_fashion_input`] of a picture held in memory (an upload); `name` names it in errors.
pub fn decode_fashion_input(bytes: &[u8], name: &str) -> Result<Tensor> {
    fashion_input(decode(bytes, Path::new(name))?)
}

fn fashion_input(img: image::DynamicImage) -> Result<Tensor> {
    let img = img.to_luma8();
    let small = image::imageops::resize(&img, 28, 28, FilterType::Triangle);
    let mut px: Vec<f32> = small.into_raw().into_iter().map(|v| v as f32 / 255.0).collect();
    let border: Vec<f32> = (0..28).flat_map(|i| [px[i], px[27 * 28 + i], px[i * 28], px[i * 28 + 27]]).collect();
    if border.iter().sum::<f32>() / border.len() as f32 > 0.5 {
        px.iter_mut().for_each(|v| *v = 1.0 - *v);
    }
    Tensor::new(&[1, 1, 28, 28], px)
}

/// Saves a `[H, W]` tensor as an 8-bit grey PNG, scaling min..max to 0..255
/// (or clamping 0..255 when `rescale` is false).
pub fn save_gray_png(path: &Path, t: &Tensor, rescale: bool) -> Result<()> {
    let [h, w] = t.shape() else {
        return Err(Error::shape("save_gray_png", format!("expected [H, W], got {:?}", t.shape())));
    };
    let (lo, hi) = t.data().iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let bytes: Vec<u8> = t
        .data()
        .iter()
        .map(|&v| {
            let s = if rescale {
                if hi > lo {
                    (v - lo) / (hi - lo) * 255.0
                } else {
                    0.0
                }
            } else {
                v
            };
            s.round().clamp(0.0, 255.0) as u8
        })
        .collect();
    let img = image::GrayImage::from_raw(*w as u32, *h as u32, bytes).expect("buffer size matches");
    save(path, &image::DynamicImage::ImageLuma8(img))
}

/// Saves an RGB buffer (`width x height x 3` bytes) as PNG.
pub fn save_rgb_png(path: &Path, width: u32, height: u32, rgb: Vec<u8>) -> Result<()> {
    let img = image::RgbImage::from_raw(width, height, rgb)
        .ok_or_else(|| Error::Invalid("RGB buffer does not match the image size".into()))?;
    save(path, &image::DynamicImage::ImageRgb8(img))
}

fn save(path: &Path, img: &image::DynamicImage) -> Result<()> {
    if !path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) {
        return Err(Error::format(path, "pictures are written as PNG: give the file a .png name"));
    }
    fovea::io::check_not_input(path)?;
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| Error::format(path, format!("cannot encode PNG: {e}")))?;
    fovea::io::write_atomic(path, &bytes)
}

/// For each output index along one axis: the first input index and the normalised weights
/// of PyTorch's antialiased bilinear filter (`antialias=True`, as PIL): a triangle as wide
/// as the scale factor when shrinking, so every input pixel contributes; plain bilinear
/// (half-pixel centres) when enlarging.
fn bilinear_weights(input: usize, output: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = input as f64 / output as f64;
    let (support, inv) = if scale >= 1.0 { (scale, 1.0 / scale) } else { (1.0, 1.0) };
    (0..output)
        .map(|i| {
            let center = scale * (i as f64 + 0.5);
            // truncation toward zero, as PyTorch's int64_t cast
            let lo = ((center - support + 0.5) as i64).max(0) as usize;
            let hi = ((center + support + 0.5) as i64).min(input as i64) as usize;
            let w: Vec<f64> = (lo..hi).map(|j| (1.0 - ((j as f64 - center + 0.5) * inv).abs()).max(0.0)).collect();
            let total: f64 = w.iter().sum();
            (lo, w.iter().map(|v| (v / total) as f32).collect())
        })
        .collect()
}

/// `t` (`[C, H, W]`) resized (antialiased bilinear) so that its longer side is `side`, the
/// aspect ratio kept.
pub fn resize_longer_side(t: &Tensor, side: usize) -> Result<Tensor> {
    let &[_, h, w] = t.shape() else {
        return Err(Error::shape("resize_longer_side", format!("expected [C, H, W], got {:?}", t.shape())));
    };
    let scale = side as f64 / h.max(w).max(1) as f64;
    let fit = |n: usize| ((n as f64 * scale).round() as usize).max(1);
    resize_bilinear(t, fit(h), fit(w))
}

/// Resizes `[C, H, W]` to `[C, out_h, out_w]` with antialiased bilinear interpolation:
/// torchvision's `resize(..., antialias=True)` on a float tensor. Width first, then height.
pub fn resize_bilinear(t: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    resize_bilinear_window(t, out_h, out_w, (0, 0), (out_h, out_w))
}

/// The window of `size` (height, width) at `top_left` of [`resize_bilinear`]'s output, made
/// without the rest of it: a centre crop of a huge resize costs only the crop.
pub fn resize_bilinear_window(
    t: &Tensor,
    out_h: usize,
    out_w: usize,
    (top, left): (usize, usize),
    (crop_h, crop_w): (usize, usize),
) -> Result<Tensor> {
    let &[c, h, w] = t.shape() else {
        return Err(Error::shape("resize_bilinear", format!("expected [C, H, W], got {:?}", t.shape())));
    };
    if h == 0 || w == 0 || out_h == 0 || out_w == 0 {
        return Err(Error::Invalid(format!("cannot resize a {h}x{w} image to {out_h}x{out_w}")));
    }
    let outside = |start: usize, len: usize, end: usize| start.checked_add(len).is_none_or(|e| e > end);
    if crop_h == 0 || crop_w == 0 || outside(top, crop_h, out_h) || outside(left, crop_w, out_w) {
        return Err(Error::Invalid(format!(
            "the window {crop_h}x{crop_w} at ({top}, {left}) is not inside the {out_h}x{out_w} resize"
        )));
    }
    // the weights of every output column and row, then the intermediate and the result
    fovea::budget::check_shape("resize_bilinear: weights", &[out_h.saturating_add(out_w), 16])?;
    fovea::tensor::checked_numel("resize_bilinear", &[c, h, crop_w])?;
    fovea::tensor::checked_numel("resize_bilinear", &[c, crop_h, crop_w])?;
    let mut wx = bilinear_weights(w, out_w);
    wx.truncate(left + crop_w);
    wx.drain(..left);
    let mut wy = bilinear_weights(h, out_h);
    wy.truncate(top + crop_h);
    wy.drain(..top);
    let (out_h, out_w) = (crop_h, crop_w);
    let x = t.data();
    let mut rows = vec![0.0f32; c * h * out_w];
    for (src, dst) in x.chunks_exact(w).zip(rows.chunks_exact_mut(out_w)) {
        for (d, (lo, ws)) in dst.iter_mut().zip(&wx) {
            *d = ws.iter().zip(&src[*lo..]).map(|(a, b)| a * b).sum();
        }
    }
    let mut out = vec![0.0f32; c * out_h * out_w];
    for (plane, dst) in rows.chunks_exact(h * out_w).zip(out.chunks_exact_mut(out_h * out_w)) {
        for (drow, (lo, ws)) in dst.chunks_exact_mut(out_w).zip(&wy) {
            for (k, wk) in ws.iter().enumerate() {
                let srow = &plane[(lo + k) * out_w..][..out_w];
                drow.iter_mut().zip(srow).for_each(|(d, s)| *d += wk * s);
            }
        }
    }
    Tensor::new(&[c, out_h, out_w], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A picture in memory decodes as the same file does; a damaged one is refused by name.
    #[test]
    fn decode_rgb_equals_load_rgb_and_names_bad_uploads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/images/coffee.png");
        let bytes = std::fs::read(&path).unwrap();
        let (from_file, from_memory) = (load_rgb(&path).unwrap(), decode_rgb(&bytes, "upload").unwrap());
        assert_eq!(from_file.shape(), from_memory.shape());
        assert_eq!(from_file.data(), from_memory.data());
        let err = decode_rgb(&bytes[..100], "upload.png").unwrap_err().to_string();
        assert!(err.contains("upload.png"), "{err}");
        assert!(decode_rgb(b"not a picture", "text").is_err());
    }
}
