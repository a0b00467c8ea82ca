//! ImageNet-1k: the 1000 class names (in torchvision's order) and the evaluation
//! preprocessing of torchvision's pretrained classifiers.

use crate::image::resize_bilinear_window;
use fovea::{Error, Result, Tensor};

/// Per-channel mean and standard deviation of ImageNet's training images (RGB, 0..1).
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// Per-channel standard deviation of ImageNet's training images (RGB, 0..1); see [`MEAN`].
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The 1000 class names; index = the classifier's output index.
pub fn class_names() -> Vec<&'static str> {
    include_str!("imagenet_classes.txt").lines().collect()
}

/// Python's `round` for `n / 2`: halves go to the even neighbour.
fn half_round_even(n: usize) -> usize {
    let (q, odd) = (n / 2, n % 2 == 1);
    if odd && q % 2 == 1 {
        q + 1
    } else {
        q
    }
}

/// torchvision's `ImageClassification` transform on an RGB image `[3, H, W]` in 0..1:
/// resize so that the shorter side is `resize` (antialiased bilinear), crop the centre
/// `crop x crop`, normalise with [`MEAN`] and [`STD`]. Returns `[3, crop, crop]`.
pub fn preprocess(rgb: &Tensor, resize: usize, crop: usize) -> Result<Tensor> {
    let &[3, h, w] = rgb.shape() else {
        return Err(Error::shape("imagenet preprocess", format!("expected [3, H, W], got {:?}", rgb.shape())));
    };
    if crop > resize || crop == 0 {
        return Err(Error::Invalid(format!("crop {crop} must be between 1 and the resize size {resize}")));
    }
    if h == 0 || w == 0 {
        return Err(Error::Invalid(format!("cannot classify an empty {h}x{w} image")));
    }
    // the shorter side becomes `resize`, the longer one int(resize * long / short)
    let (nh, nw) = if h <= w { (resize, resize * w / h) } else { (resize * h / w, resize) };
    let (top, left) = (half_round_even(nh - crop), half_round_even(nw - crop));
    let mut out = resize_bilinear_window(rgb, nh, nw, (top, left), (crop, crop))?;
    for (c, plane) in out.data_mut().chunks_exact_mut(crop * crop).enumerate() {
        plane.iter_mut().for_each(|v| *v = (*v - MEAN[c]) / STD[c]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_centre_crop_is_made_without_the_whole_resize() {
        // a thin picture: the whole resize would be 256 x 2560
        let rgb = Tensor::new(&[3, 10, 100], (0..3000).map(|v| (v % 97) as f32 / 97.0).collect()).unwrap();
        let full = crate::image::resize_bilinear(&rgb, 256, 2560).unwrap();
        let (top, left) = (half_round_even(256 - 224), half_round_even(2560 - 224));
        let mut want = Vec::new();
        for c in 0..3 {
            for row in full.data()[c * 256 * 2560..][..256 * 2560].chunks(2560).skip(top).take(224) {
                want.extend(row[left..left + 224].iter().map(|v| (v - MEAN[c]) / STD[c]));
            }
        }
        assert_eq!(preprocess(&rgb, 256, 224).unwrap().data(), &want[..]);
        // a 4000x2 picture costs its crop, not a 512,000-pixel-wide resize
        let thin = Tensor::full(&[3, 2, 4000], 0.5);
        assert_eq!(preprocess(&thin, 256, 224).unwrap().shape(), &[3, 224, 224]);
    }

    #[test]
    fn thousand_names_and_python_rounding() {
        let names = class_names();
        assert_eq!((names.len(), names[0], names[281], names[999]), (1000, "tench", "tabby", "toilet tissue"));
        assert_eq!([0, 1, 2, 3, 117].map(half_round_even), [0, 0, 1, 2, 58]);
    }
}
