//! Image-folder datasets, torchvision's `ImageFolder` layout: one sub-folder per class
//! (`DIR/cat/*.jpg`, `DIR/dog/*.png`; classes in sorted order), optionally split into
//! `DIR/train/...` and `DIR/val/...` (or `test/`). Without a split, every 10th image of
//! each class is held out for testing.

use super::{Dataset, Split};
use crate::image::{load_rgb, resize_bilinear};
use fovea::{Error, Result, Tensor};
use std::path::{Path, PathBuf};

const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// Sorted sub-folders of `dir`.
fn sub_folders(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    Ok(out)
}

/// Sorted image files of `dir`.
fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e.to_lowercase().as_str()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// `[3, h, w]` in 0..1 to `[c, H, W]`: the centre region of the target's aspect ratio,
/// resized (antialiased bilinear); grey (c = 1) is the mean of the channels.
pub fn fit_image(rgb: &Tensor, shape: [usize; 3]) -> Result<Tensor> {
    let [c, th, tw] = shape;
    let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
    // crop to the target's aspect ratio, centred
    let (ch, cw) = if h * tw > w * th { ((w * th / tw).max(1), w) } else { (h, (h * tw / th).max(1)) };
    let (top, left) = ((h - ch) / 2, (w - cw) / 2);
    let mut cropped = Vec::with_capacity(3 * ch * cw);
    for plane in rgb.data().chunks_exact(h * w) {
        for row in plane.chunks_exact(w).skip(top).take(ch) {
            cropped.extend_from_slice(&row[left..left + cw]);
        }
    }
    let resized = resize_bilinear(&Tensor::new(&[3, ch, cw], cropped)?, th, tw)?;
    match c {
        3 => Ok(resized),
        1 => {
            let n = th * tw;
            let d = resized.data();
            Tensor::new(&[1, th, tw], (0..n).map(|i| (d[i] + d[n + i] + d[2 * n + i]) / 3.0).collect())
        }
        _ => Err(Error::Invalid(format!("images have 1 or 3 channels, not {c}"))),
    }
}

/// The `split` of the image folder `dir`, each image fitted to `shape` (`[C, H, W]`), and
/// the class names.
pub fn load_image_folder(dir: &Path, split: Split, shape: [usize; 3]) -> Result<(Dataset, Vec<String>)> {
    let named = |n: &str| Some(dir.join(n)).filter(|p| p.is_dir());
    let split_dir = match split {
        Split::Train => named("train"),
        Split::Test => named("val").or_else(|| named("test")),
    };
    let (root, hold_out) = match split_dir {
        Some(d) => (d, None),
        None if named("train").is_some() => {
            return Err(Error::format(dir, "has train/ but no val/ or test/ folder to evaluate on"));
        }
        None => (dir.to_path_buf(), Some(split)),
    };
    let classes = sub_folders(&root)?;
    if classes.is_empty() {
        return Err(Error::format(
            &root,
            "holds no class folders: an image folder has one sub-folder of pictures per class, a \
             Fashion-MNIST folder train-images-idx3-ubyte.gz and the other IDX files",
        ));
    }
    let names: Vec<String> =
        classes.iter().map(|p| p.file_name().unwrap_or_default().to_string_lossy().into()).collect();
    let (mut data, mut labels) = (Vec::new(), Vec::new());
    for (label, class_dir) in classes.iter().enumerate() {
        let files = images_in(class_dir)?;
        if files.is_empty() {
            return Err(Error::format(class_dir, "holds no PNG or JPEG images"));
        }
        for (i, file) in files.iter().enumerate() {
            let held_out = i % 10 == 9;
            match hold_out {
                Some(Split::Train) if held_out => continue,
                Some(Split::Test) if !held_out => continue,
                _ => {}
            }
            data.extend_from_slice(fit_image(&load_rgb(file)?, shape)?.data());
            labels.push(label);
        }
    }
    if labels.is_empty() {
        return Err(Error::format(&root, "has fewer than 10 images per class, so none is held out for testing"));
    }
    let images = Tensor::new(&[labels.len(), shape[0], shape[1], shape[2]], data)?;
    Ok((Dataset { images, labels }, names))
}
