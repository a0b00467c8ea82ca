//! Datasets: IDX files (MNIST / Fashion-MNIST) and mini-batching.

mod fashion_mnist;
pub mod idx;
pub mod imagenet;

pub use fashion_mnist::{FashionMnist, Split, CLASS_NAMES};

use fovea::{Rng, Tensor};

/// Images `[N, C, H, W]` in 0..1 and their class labels.
#[derive(Clone)]
pub struct Dataset {
    pub images: Tensor,
    pub labels: Vec<usize>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
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

    /// The first `n` samples.
    pub fn take(&self, n: usize) -> Dataset {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        let (images, labels) = self.batch(&idx);
        Dataset { images, labels }
    }
}
