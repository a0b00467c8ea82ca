//! Fashion-MNIST (Zalando, MIT): 60,000 training and 10,000 test images, 28x28 grey,
//! 10 classes. Shipped under `data/fashion-mnist/` as the original IDX `.gz` files.

use super::idx::read_idx;
use super::Dataset;
use fovea::{Error, Result, Tensor};
use std::path::{Path, PathBuf};

/// The 10 class names; index = label.
pub const CLASS_NAMES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// A dataset's training or test part (for an image folder, `train/` or `val/` / `test/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The training images (Fashion-MNIST's 60,000).
    Train,
    /// The test images (Fashion-MNIST's 10,000).
    Test,
}

/// The Fashion-MNIST dataset, read from its IDX files.
pub struct FashionMnist;

impl FashionMnist {
    /// The data folder of the repository (or `FOVEA_DATA`), where `fashion-mnist/` lives.
    pub fn default_dir() -> PathBuf {
        if let Ok(dir) = std::env::var("FOVEA_DATA") {
            return PathBuf::from(dir).join("fashion-mnist");
        }
        // the repository's copy, without the `../..` of the path from this crate
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
        std::fs::canonicalize(&dir).unwrap_or(dir)
    }

    /// Loads one split: images `[N, 1, 28, 28]` scaled to 0..1, labels 0..9.
    pub fn load(dir: &Path, split: Split) -> Result<Dataset> {
        let prefix = match split {
            Split::Train => "train",
            Split::Test => "t10k",
        };
        let img_path = dir.join(format!("{prefix}-images-idx3-ubyte.gz"));
        let lbl_path = dir.join(format!("{prefix}-labels-idx1-ubyte.gz"));
        let images = read_idx(&img_path)?;
        let labels = read_idx(&lbl_path)?;
        if images.dims.len() != 3 || labels.dims.len() != 1 {
            return Err(Error::format(
                &img_path,
                format!("expected images [N, H, W] and labels [N], got {:?} and {:?}", images.dims, labels.dims),
            ));
        }
        if images.dims[0] != labels.dims[0] {
            return Err(Error::format(&lbl_path, format!("{} labels for {} images", labels.dims[0], images.dims[0])));
        }
        if let Some(bad) = labels.data.iter().find(|&&l| l > 9) {
            return Err(Error::format(&lbl_path, format!("label {bad} is not a Fashion-MNIST class (0-9)")));
        }
        let (n, h, w) = (images.dims[0], images.dims[1], images.dims[2]);
        if n == 0 {
            return Err(Error::format(&img_path, "holds no images"));
        }
        if (h, w) != (28, 28) {
            return Err(Error::format(&img_path, format!("holds {h}x{w} images; Fashion-MNIST's are 28x28")));
        }
        let pixels = images.data.iter().map(|&p| p as f32 / 255.0).collect();
        Ok(Dataset {
            images: Tensor::new(&[n, 1, h, w], pixels)?,
            labels: labels.data.iter().map(|&l| l as usize).collect(),
        })
    }
}
