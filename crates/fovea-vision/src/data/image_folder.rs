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

/// `[3, h, w]` (or `[1, h, w]`) in 0..1 to `[c, H, W]`: the centre region of the target's
/// aspect ratio, resized (antialiased bilinear); grey to colour copies the channel, colour
/// to grey (c = 1) is the mean of the channels.
pub fn fit_image(img: &Tensor, shape: [usize; 3]) -> Result<Tensor> {
    let [c, th, tw] = shape;
    let &[ic, h, w] = img.shape() else {
        return Err(Error::shape("fit_image", format!("expected [C, H, W], got {:?}", img.shape())));
    };
    if h == 0 || w == 0 || th == 0 || tw == 0 || !matches!(ic, 1 | 3) || !matches!(c, 1 | 3) {
        return Err(Error::Invalid(format!("cannot fit a {ic}x{h}x{w} image to {c}x{th}x{tw}")));
    }
    let rgb = if ic == 1 && c == 3 { Tensor::concat(&[img, img, img], 0)? } else { img.clone() };
    let ic = rgb.shape()[0];
    // crop to the target's aspect ratio, centred
    let (ch, cw) = if h * tw > w * th { ((w * th / tw).max(1), w) } else { (h, (h * tw / th).max(1)) };
    let (top, left) = ((h - ch) / 2, (w - cw) / 2);
    let mut cropped = Vec::with_capacity(ic * ch * cw);
    for plane in rgb.data().chunks_exact(h * w) {
        for row in plane.chunks_exact(w).skip(top).take(ch) {
            cropped.extend_from_slice(&row[left..left + cw]);
        }
    }
    let resized = resize_bilinear(&Tensor::new(&[ic, ch, cw], cropped)?, th, tw)?;
    if c == ic {
        return Ok(resized);
    }
    let n = th * tw;
    let d = resized.data();
    Tensor::new(&[1, th, tw], (0..n).map(|i| (d[i] + d[n + i] + d[2 * n + i]) / 3.0).collect())
}

/// Class folder names of `root`, sorted.
fn class_folders(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let folders = sub_folders(root)?;
    if folders.is_empty() {
        return Err(Error::format(
            root,
            "holds no class folders: an image folder has one sub-folder of pictures per class, a \
             Fashion-MNIST folder train-images-idx3-ubyte.gz and the other IDX files",
        ));
    }
    Ok(folders.into_iter().map(|p| (p.file_name().unwrap_or_default().to_string_lossy().into(), p)).collect())
}

/// The `split` of the image folder `dir`, each image fitted to `shape` (`[C, H, W]`), and
/// the class names (those of the training folder, whichever split is loaded); with `limit`,
/// only that many pictures, taken from the classes in turn.
pub fn load_image_folder(
    dir: &Path,
    split: Split,
    shape: [usize; 3],
    limit: Option<usize>,
) -> Result<(Dataset, Vec<String>)> {
    let named = |n: &str| Some(dir.join(n)).filter(|p| p.is_dir());
    let test_dir = named("val").or_else(|| named("test"));
    let (root, hold_out) = match (named("train"), test_dir) {
        (Some(train), Some(test)) => (if split == Split::Train { train } else { test }, None),
        (Some(_), None) => return Err(Error::format(dir, "has train/ but no val/ or test/ folder to evaluate on")),
        (None, _) => (dir.to_path_buf(), Some(split)),
    };
    let classes = class_folders(&root)?;
    let names: Vec<String> = classes.iter().map(|(n, _)| n.clone()).collect();
    if root != dir && split == Split::Test {
        // labels are positions in the training folder's list: the two must agree
        let train_names: Vec<String> = class_folders(&dir.join("train"))?.into_iter().map(|(n, _)| n).collect();
        if train_names != names {
            return Err(Error::format(
                &root,
                format!("has class folders {names:?}, but train/ has {train_names:?}; they must be the same"),
            ));
        }
    }
    // the pictures of this split, with their labels
    let mut chosen = Vec::new();
    for (label, (name, class_dir)) in classes.iter().enumerate() {
        let files = images_in(class_dir)?;
        if files.is_empty() {
            return Err(Error::format(class_dir, "holds no PNG or JPEG images"));
        }
        if hold_out.is_some() && files.len() < 2 {
            return Err(Error::format(
                class_dir,
                format!("holds one picture of '{name}': with no val/ folder, every class needs two or more"),
            ));
        }
        let count = files.len();
        let mut rank = 0;
        for (i, file) in files.into_iter().enumerate() {
            // every 10th picture is held out, and at least one of each class
            let held_out = i % 10 == 9 || (count < 10 && i == count - 1);
            match hold_out {
                Some(Split::Train) if held_out => continue,
                Some(Split::Test) if !held_out => continue,
                _ => {}
            }
            chosen.push((rank, label, file));
            rank += 1;
        }
    }
    if let Some(n) = limit {
        // the first picture of every class, then the second of every class, ...
        chosen.sort_by_key(|&(rank, label, _)| (rank, label));
        chosen.truncate(n);
    }
    super::check_memory(chosen.len(), shape)?;
    let (mut data, mut labels) = (Vec::new(), Vec::new());
    for (_, label, file) in chosen {
        data.extend_from_slice(fit_image(&load_rgb(&file)?, shape).map_err(|e| e.in_file(&file))?.data());
        labels.push(label);
    }
    let images = Tensor::new(&[labels.len(), shape[0], shape[1], shape[2]], data)?;
    Ok((Dataset { images, labels }, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, value: f32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        crate::image::save_gray_png(path, &Tensor::full(&[6, 4], value), false).unwrap();
    }

    #[test]
    fn hold_out_labels_and_mismatched_splits() {
        let dir = std::env::temp_dir().join(format!("fovea-folder-{}", std::process::id()));
        // 12 cats (the 10th is held out), 3 dogs (the last is held out)
        for i in 0..12 {
            write(&dir.join(format!("flat/cat/{i:02}.png")), 10.0);
        }
        for i in 0..3 {
            write(&dir.join(format!("flat/dog/{i}.png")), 200.0);
        }
        let shape = [1, 4, 4];
        let (train, names) = load_image_folder(&dir.join("flat"), Split::Train, shape, None).unwrap();
        let (test, _) = load_image_folder(&dir.join("flat"), Split::Test, shape, None).unwrap();
        assert_eq!(names, ["cat", "dog"]);
        assert_eq!(train.labels, [0; 11].iter().chain(&[1, 1]).copied().collect::<Vec<_>>());
        assert_eq!(test.labels, [0, 1]);
        // 5 of the 13 training pictures, from the classes in turn
        let (few, _) = load_image_folder(&dir.join("flat"), Split::Train, shape, Some(5)).unwrap();
        assert_eq!(few.labels, [0, 1, 0, 1, 0]);
        // grey pictures fitted to [1, 4, 4]: the value survives the resize
        assert!((test.images.data()[16] - 200.0 / 255.0).abs() < 1e-5);

        // train/ and val/ with different classes
        write(&dir.join("split/train/cat/0.png"), 1.0);
        write(&dir.join("split/train/dog/0.png"), 1.0);
        write(&dir.join("split/val/cat/0.png"), 1.0);
        write(&dir.join("split/val/emu/0.png"), 1.0);
        let err = load_image_folder(&dir.join("split"), Split::Test, shape, None).unwrap_err().to_string();
        assert!(err.contains("emu") && err.contains("train/ has"), "{err}");
        // a class of one picture cannot be split
        write(&dir.join("flat/emu/0.png"), 1.0);
        let err = load_image_folder(&dir.join("flat"), Split::Train, shape, None).unwrap_err().to_string();
        assert!(err.contains("'emu'") && err.contains("two or more"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fit_image_refuses_shapes_it_cannot_fit() {
        assert!(fit_image(&Tensor::zeros(&[3, 0, 5]), [3, 4, 4]).is_err());
        assert!(fit_image(&Tensor::zeros(&[2, 5, 5]), [3, 4, 4]).is_err());
        assert!(fit_image(&Tensor::zeros(&[5, 5]), [3, 4, 4]).is_err());
        assert_eq!(fit_image(&Tensor::zeros(&[1, 1, 1]), [3, 8, 6]).unwrap().shape(), [3, 8, 6]);
    }
}
