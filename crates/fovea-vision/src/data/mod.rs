//! Datasets: IDX files (MNIST / Fashion-MNIST) and mini-batching.

mod fashion_mnist;
pub mod idx;
pub mod image_folder;
pub mod imagenet;
pub mod synthetic;

pub use fashion_mnist::{FashionMnist, Split, CLASS_NAMES};

use fovea::{Result, Rng, Tensor};
use std::path::Path;

/// Whether `dir` holds Fashion-MNIST's IDX files (else it is an image folder).
pub fn is_fashion_mnist(dir: &Path) -> bool {
    dir.join("train-images-idx3-ubyte.gz").exists()
}

/// Refuses `n` images of `shape` as f32 if they would not fit the memory budget.
fn check_memory(n: usize, shape: [usize; 3]) -> Result<()> {
    let what = format!("{n} images of {}x{}x{}", shape[0], shape[1], shape[2]);
    fovea::budget::check_shape(&what, &[n, shape[0], shape[1], shape[2]]).map(|_| ())
}

/// The `split` of `dir` (Fashion-MNIST or an image folder) fitted to `shape` (`[C, H, W]`),
/// and the class names; with `limit`, only that many pictures. Fashion-MNIST at another
/// shape is resized, its grey copied to each channel.
pub fn load(dir: &Path, split: Split, shape: [usize; 3], limit: Option<usize>) -> Result<(Dataset, Vec<String>)> {
    if !is_fashion_mnist(dir) {
        return image_folder::load_image_folder(dir, split, shape, limit);
    }
    let mut data = FashionMnist::load(dir, split)?;
    if let Some(n) = limit {
        data = data.take(n);
    }
    let names = CLASS_NAMES.iter().map(|s| s.to_string()).collect();
    if shape == [1, 28, 28] {
        return Ok((data, names));
    }
    // grey 28x28 to what the model takes: resized, the grey copied to each channel
    check_memory(data.len(), shape)?;
    let mut images = Vec::with_capacity(data.len() * shape.iter().product::<usize>());
    for img in data.images.data().chunks_exact(28 * 28) {
        let grey = Tensor::new(&[1, 28, 28], img.to_vec())?;
        images.extend_from_slice(image_folder::fit_image(&grey, shape)?.data());
    }
    let images = Tensor::new(&[data.len(), shape[0], shape[1], shape[2]], images)?;
    Ok((Dataset { images, labels: data.labels }, names))
}

/// Hands `train` the batches made by `make` from the index lists `batches`, in order, while
/// a loader thread makes the next ones, as the notes describe (the CPU loads and distorts
/// mini-batch k+1 while batch k trains): `make` is [`Dataset::batch`], or an augmentation's
/// batch. An error from either stops both.
pub fn for_each_batch(
    batches: &[Vec<usize>],
    make: impl Fn(&[usize]) -> Result<(Tensor, Vec<usize>)> + Sync,
    mut train: impl FnMut(Tensor, Vec<usize>) -> Result<()>,
) -> Result<()> {
    std::thread::scope(|scope| {
        // two batches ahead: enough to hide the loading, little memory
        let (sender, receiver) = std::sync::mpsc::sync_channel(2);
        let make = &make;
        scope.spawn(move || {
            for indices in batches {
                if sender.send(make(indices)).is_err() {
                    break; // the trainer stopped
                }
            }
        });
        for batch in receiver {
            let (x, labels) = batch?;
            train(x, labels)?;
        }
        Ok(())
    })
}

/// Images `[N, C, H, W]` in 0..1 and their class labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// `[N, C, H, W]`, 0..1
    pub images: Tensor,
    /// one class index per image
    pub labels: Vec<usize>,
}

impl Dataset {
    /// The number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// One image per sample, `[C, H, W]`.
    fn sample_len(&self) -> usize {
        self.images.numel() / self.len().max(1)
    }

    /// The samples at `indices` as one batch.
    pub fn batch(&self, indices: &[usize]) -> (Tensor, Vec<usize>) {
        let per = self.sample_len();
        let src = self.images.data();
        let mut data = Vec::with_capacity(indices.len() * per);
        for &i in indices {
            data.extend_from_slice(&src[i * per..(i + 1) * per]);
        }
        let mut shape = self.images.shape().to_vec();
        shape[0] = indices.len();
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        (Tensor::new(&shape, data).expect("batch shape"), labels)
    }

    /// Batches of `batch_size` indices in an order shuffled by `rng` (or in order).
    pub fn batch_indices(&self, batch_size: usize, rng: Option<&mut Rng>) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        if let Some(rng) = rng {
            rng.shuffle(&mut order);
        }
        order.chunks(batch_size.max(1)).map(|c| c.to_vec()).collect()
    }

    /// The samples of the classes `classes`, in order, with their labels unchanged.
    pub fn of_classes(&self, classes: &[usize]) -> Dataset {
        let idx: Vec<usize> = (0..self.len()).filter(|&i| classes.contains(&self.labels[i])).collect();
        let (images, labels) = self.batch(&idx);
        Dataset { images, labels }
    }

    /// The first `n` samples.
    pub fn take(&self, n: usize) -> Dataset {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        let (images, labels) = self.batch(&idx);
        Dataset { images, labels }
    }
}
