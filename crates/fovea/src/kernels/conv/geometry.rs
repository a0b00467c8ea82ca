//! The sizes of a convolution and what its kernels share: per-thread scratch, the
//! valid range of a strided window, a pointer for disjoint parallel writes.

use crate::kernels::num_threads;
use std::cell::RefCell;

/// Sizes of one convolution, spatial dimensions as (depth, height, width).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvGeometry {
    /// samples (N)
    pub batch: usize,
    /// input channels
    pub c_in: usize,
    /// output channels
    pub c_out: usize,
    /// channel groups (PyTorch's `groups`)
    pub groups: usize,
    /// input size
    pub input: [usize; 3],
    /// kernel size
    pub kernel: [usize; 3],
    /// stride
    pub stride: [usize; 3],
    /// spacing between kernel taps (1: adjacent)
    pub dilation: [usize; 3],
    /// padding before each spatial dimension (the padding after only affects `output`)
    pub pad: [usize; 3],
    /// output size
    pub output: [usize; 3],
}

impl ConvGeometry {
    /// Values per input channel (depth x height x width).
    pub fn in_spatial(&self) -> usize {
        self.input.iter().product()
    }
    /// Values per output channel.
    pub fn out_spatial(&self) -> usize {
        self.output.iter().product()
    }
    pub(super) fn kernel_spatial(&self) -> usize {
        self.kernel.iter().product()
    }
    pub(super) fn cin_group(&self) -> usize {
        self.c_in / self.groups
    }
    pub(super) fn cout_group(&self) -> usize {
        self.c_out / self.groups
    }
    /// Rows of the patch matrix: input channels of a group times kernel positions.
    pub(super) fn col_rows(&self) -> usize {
        self.cin_group() * self.kernel_spatial()
    }
    /// Number of weight values, `c_out · c_in/groups · kd · kh · kw`.
    pub fn weight_len(&self) -> usize {
        self.c_out * self.col_rows()
    }
    /// Output positions per patch tile: whole output rows, about 128K patch values but at
    /// least 256 positions, so that the GEMMs stay wide enough to run at full speed. (One
    /// output row is the smallest tile.) With fewer samples than threads, each sample is
    /// cut into a multiple of the threads it has to keep busy, in equal tiles.
    pub(super) fn tile(&self) -> usize {
        const TILE_VALUES: usize = 128 * 1024;
        let ow = self.output[2].max(1);
        let out_rows = (self.output[0] * self.output[1]).max(1);
        let budget = (TILE_VALUES / (self.col_rows() * ow).max(1)).max(256usize.div_ceil(ow)).clamp(1, out_rows);
        let per_sample = num_threads().div_ceil(self.batch.max(1));
        let tiles = out_rows.div_ceil(budget).div_ceil(per_sample) * per_sample;
        out_rows.div_ceil(tiles).max(1) * ow
    }
    /// (sample, first position, end position) of every work unit.
    pub(super) fn units(&self) -> Vec<(usize, usize, usize)> {
        let (osp, tile) = (self.out_spatial(), self.tile());
        (0..self.batch).flat_map(|n| (0..osp).step_by(tile).map(move |p| (n, p, (p + tile).min(osp)))).collect()
    }
    pub(super) fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1, 1] && self.stride == [1, 1, 1] && self.pad == [0, 0, 0] && self.output == self.input
    }
    /// Multiply-adds of the forward pass.
    pub fn macs(&self) -> usize {
        self.batch * self.c_out * self.out_spatial() * self.col_rows()
    }
}

thread_local! {
    /// Per-thread patch buffer, reused across calls: no allocation and no zeroing
    /// (im2col writes every value, and GEMMs overwrite their output).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a scratch buffer of `len` values. Falls back to a fresh buffer if this
/// thread's is in use (rayon may run a nested task while a threaded GEMM waits).
pub(super) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut vec![0.0f32; len]),
    })
}

/// A raw pointer that work units share; each unit touches only its own positions.
#[derive(Clone, Copy)]
pub(super) struct SharedMut(pub(super) *mut f32);
// SAFETY: used only to write disjoint regions from different threads (see callers).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    // A method, so that closures capture the whole (Send) wrapper, not the raw field.
    pub(super) fn get(self) -> *mut f32 {
        self.0
    }
}

/// Range of output positions `o` whose input index `o*stride + off` lies in `0..len`.
pub(crate) fn valid_range(len: usize, out: usize, stride: usize, off: isize) -> (usize, usize) {
    let lo = if off >= 0 { 0 } else { ((-off) as usize).div_ceil(stride) };
    let hi = if len as isize - off <= 0 { 0 } else { (len as isize - off - 1) as usize / stride + 1 };
    let hi = hi.min(out);
    (lo.min(hi), hi)
}
