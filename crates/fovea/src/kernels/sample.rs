//! Bilinear sampling of pictures at arbitrary source positions: PyTorch's
//! `grid_sample(mode="bilinear", padding_mode="zeros", align_corners=False)` given the
//! positions in pixel units. Data augmentation resamples every training picture through
//! it, on the loader thread while training runs, so its cost shows in the epoch time.
//!
//! The picture is first copied with a border of zeros (one before and two after each
//! dimension): a source clamped to `[-1, size]` then has four neighbours that exist, and
//! outside reads as 0, with no branch per pixel. With AVX2, eight pixels are done at a
//! time by gathering their neighbours (at the AVX2 level and above, see [`super::isa`]).

/// `channels` planes of `height` x `width` resampled: output pixel `o` of each plane takes
/// the bilinear value at input position `(xs[o], ys[o])` (continuous coordinates, pixel
/// centres at +0.5; 0 outside the picture and for NaN). The output has as many pixels per
/// plane as there are positions.
pub fn bilinear(picture: &[f32], channels: usize, height: usize, width: usize, xs: &[f32], ys: &[f32]) -> Vec<f32> {
    assert_eq!(picture.len(), channels * height * width, "bilinear: picture size");
    assert_eq!(xs.len(), ys.len(), "bilinear: as many x as y positions");
    let padded = Padded::new(picture, channels, height, width);
    let mut out = vec![0f32; channels * xs.len()];
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if super::isa::current() >= super::Isa::Avx2 && padded.fits_i32() {
        // SAFETY: the level is at most what the CPU has; the gathers' indices stay in the padded planes
        // (see Padded::index) and fit in i32 (checked).
        done = unsafe { avx2::bilinear(&padded, xs, ys, &mut out) };
    }
    for o in done..xs.len() {
        let (at, tx, ty) = padded.index(xs[o], ys[o]);
        for c in 0..channels {
            let p = &padded.data[c * padded.plane() + at..][..padded.width + 2];
            let upper = p[0] + (p[1] - p[0]) * tx;
            let lower = p[padded.width] + (p[padded.width + 1] - p[padded.width]) * tx;
            out[c * xs.len() + o] = upper + (lower - upper) * ty;
        }
    }
    out
}

/// A picture with a border of zeros: one before, two after each dimension.
struct Padded {
    data: Vec<f32>,
    channels: usize,
    /// padded width and height
    width: usize,
    height: usize,
}

impl Padded {
    fn new(picture: &[f32], channels: usize, height: usize, width: usize) -> Padded {
        let (pw, ph) = (width + 3, height + 3);
        let mut data = vec![0f32; channels * ph * pw];
        if width > 0 && height > 0 {
            for (src, dst) in picture.chunks_exact(height * width).zip(data.chunks_exact_mut(ph * pw)) {
                for (row, padded_row) in src.chunks_exact(width).zip(dst.chunks_exact_mut(pw).skip(1)) {
                    padded_row[1..=width].copy_from_slice(row);
                }
            }
        }
        Padded { data, channels, width: pw, height: ph }
    }

    fn plane(&self) -> usize {
        self.width * self.height
    }

    /// Whether every index into the padded planes fits in an i32 (for gathers).
    fn fits_i32(&self) -> bool {
        self.channels * self.plane() <= i32::MAX as usize
    }

    /// The clamped source position: upper-left neighbour's index in a padded plane, and
    /// the weights of the right and lower neighbours. A source clamped to -1 or to the
    /// size reads the border only (weights 0 on the inside), which gives 0.
    fn index(&self, x: f32, y: f32) -> (usize, f32, f32) {
        // in padded coordinates; f32::max gives 0 for NaN
        let fx = (x + 0.5).max(0.0).min((self.width - 2) as f32);
        let fy = (y + 0.5).max(0.0).min((self.height - 2) as f32);
        // floor of a non-negative value, without a libm call; the min guards against
        // sizes over 2^24, where the f32 bound may round up
        let (x0, y0) = ((fx as usize).min(self.width - 2), (fy as usize).min(self.height - 2));
        (y0 * self.width + x0, fx - x0 as f32, fy - y0 as f32)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Padded;
    use std::arch::x86_64::*;

    /// [`super::bilinear`] for the first multiple of 8 positions; returns how many.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn bilinear(padded: &Padded, xs: &[f32], ys: &[f32], out: &mut [f32]) -> usize {
        let n = xs.len() / 8 * 8;
        let (pw, plane) = (padded.width, padded.plane());
        let half = _mm256_set1_ps(0.5);
        let zero = _mm256_setzero_ps();
        let (max_x, max_y) = (_mm256_set1_ps((pw - 2) as f32), _mm256_set1_ps((padded.height - 2) as f32));
        let row = _mm256_set1_epi32(pw as i32);
        let (last_x, last_y) = (_mm256_set1_epi32((pw - 2) as i32), _mm256_set1_epi32((padded.height - 2) as i32));
        let base = padded.data.as_ptr();
        for o in (0..n).step_by(8) {
            // as Padded::index: max_ps returns its second operand (0) for NaN
            let fx =
                _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(_mm256_loadu_ps(xs.as_ptr().add(o)), half), zero), max_x);
            let fy =
                _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(_mm256_loadu_ps(ys.as_ptr().add(o)), half), zero), max_y);
            let x0 = _mm256_min_epi32(_mm256_cvttps_epi32(fx), last_x);
            let y0 = _mm256_min_epi32(_mm256_cvttps_epi32(fy), last_y);
            let tx = _mm256_sub_ps(fx, _mm256_cvtepi32_ps(x0));
            let ty = _mm256_sub_ps(fy, _mm256_cvtepi32_ps(y0));
            let at = _mm256_add_epi32(_mm256_mullo_epi32(y0, row), x0);
            for c in 0..padded.channels {
                let p = base.add(c * plane);
                let p00 = _mm256_i32gather_ps::<4>(p, at);
                let p01 = _mm256_i32gather_ps::<4>(p.add(1), at);
                let p10 = _mm256_i32gather_ps::<4>(p.add(pw), at);
                let p11 = _mm256_i32gather_ps::<4>(p.add(pw + 1), at);
                let upper = _mm256_fmadd_ps(_mm256_sub_ps(p01, p00), tx, p00);
                let lower = _mm256_fmadd_ps(_mm256_sub_ps(p11, p10), tx, p10);
                let value = _mm256_fmadd_ps(_mm256_sub_ps(lower, upper), ty, upper);
                _mm256_storeu_ps(out.as_mut_ptr().add(c * xs.len() + o), value);
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scalar path alone: positions 0..8 left to it by a shorter list.
    fn scalar(picture: &[f32], c: usize, h: usize, w: usize, xs: &[f32], ys: &[f32]) -> Vec<f32> {
        let mut out = Vec::new();
        for (x, y) in xs.iter().zip(ys) {
            out.push(bilinear(picture, c, h, w, &[*x], &[*y]));
        }
        // [position][channel] -> [channel][position]
        (0..c).flat_map(|ch| out.iter().map(move |v| v[ch])).collect()
    }

    #[test]
    fn vector_and_scalar_paths_agree_inside_at_the_border_and_outside() {
        let (c, h, w) = (2, 5, 7);
        let picture: Vec<f32> = (0..c * h * w).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut xs = vec![f32::NAN, -3.0, -0.5, 0.0, 0.5, 6.9, 7.0, 7.49, 7.5, 20.0, 3.3, 1.25];
        let mut ys = vec![1.0, 2.0, 0.5, -0.5, 4.6, 5.0, 5.5, 2.2, 3.0, 1.0, f32::INFINITY, 4.75];
        for i in 0..20 {
            xs.push(i as f32 * 0.41 - 1.2);
            ys.push(i as f32 * 0.29 - 0.7);
        }
        let fast = bilinear(&picture, c, h, w, &xs, &ys);
        let slow = scalar(&picture, c, h, w, &xs, &ys);
        for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
            assert!((a - b).abs() < 1e-6, "value {i}: {a} vs {b}");
        }
        // a pixel centre gives the pixel, a NaN or far-away source 0
        assert_eq!(bilinear(&picture, c, h, w, &[2.5], &[1.5])[1], picture[h * w + w + 2]);
        assert_eq!(slow[0], 0.0);
        assert_eq!(slow[9], 0.0);
    }
}
