//! The geometry under the augmentations: affine maps, where each output pixel comes from
//! (resampled by `fovea::kernels::sample`), smooth displacement fields, and the
//! eigenvectors of a small symmetric matrix (for PCA colour).

use fovea::kernels::sample::bilinear;
use fovea::{Error, Result, Rng, Tensor};

/// x' = a·x + b·y + c, y' = d·x + e·y + f, stored as `[a, b, c, d, e, f]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine(pub [f32; 6]);

impl Affine {
    /// The map that leaves every point in place.
    pub const IDENTITY: Affine = Affine([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);

    /// The linear map `[m00, m01, m10, m11]` about the point (cx, cy).
    pub fn about(cx: f32, cy: f32, m: [f32; 4]) -> Affine {
        Affine([m[0], m[1], cx - m[0] * cx - m[1] * cy, m[2], m[3], cy - m[2] * cx - m[3] * cy])
    }

    /// This map followed by `next`.
    pub fn then(&self, next: &Affine) -> Affine {
        let [a, b, c, d, e, f] = self.0;
        let [na, nb, nc, nd, ne, nf] = next.0;
        Affine([
            na * a + nb * d,
            na * b + nb * e,
            na * c + nb * f + nc,
            nd * a + ne * d,
            nd * b + ne * e,
            nd * c + ne * f + nf,
        ])
    }

    /// Where the point (x, y) goes.
    pub fn map(&self, x: f32, y: f32) -> (f32, f32) {
        let [a, b, c, d, e, f] = self.0;
        (a * x + b * y + c, d * x + e * y + f)
    }

    /// The inverse map (the augmentations only build invertible ones).
    pub fn inverse(&self) -> Affine {
        let [a, b, c, d, e, f] = self.0;
        let det = a * e - b * d;
        let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
        Affine([ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f)])
    }
}

/// `picture` (`[C, H, W]`) resampled through the affine map `to_source` from output to input
/// positions, at the same size.
pub fn warp_affine(picture: &Tensor, to_source: &Affine) -> Result<Tensor> {
    let &[c, h, w] = picture.shape() else {
        return Err(Error::shape("warp_affine", format!("expected [C, H, W], got {:?}", picture.shape())));
    };
    let (xs, ys) = pixel_sources(h, w, to_source, None);
    Tensor::new(&[c, h, w], bilinear(picture.data(), c, h, w, &xs, &ys))
}

/// Where each output pixel's centre comes from (x and y planes): through the displacement
/// `warp` (if any), then the affine map `to_source`. Plain arithmetic on whole rows, which
/// the compiler vectorises.
pub(crate) fn pixel_sources(
    height: usize,
    width: usize,
    to_source: &Affine,
    warp: Option<&Displacement>,
) -> (Vec<f32>, Vec<f32>) {
    let [a, b, c, d, e, f] = to_source.0;
    let (mut xs, mut ys) = (vec![0f32; height * width], vec![0f32; height * width]);
    for (i, (row_x, row_y)) in xs.chunks_exact_mut(width.max(1)).zip(ys.chunks_exact_mut(width.max(1))).enumerate() {
        let y = i as f32 + 0.5;
        match warp {
            Some(field) => {
                let field = field.row(y);
                for (j, (sx, sy)) in row_x.iter_mut().zip(row_y.iter_mut()).enumerate() {
                    let (x, y) = field.pull(j as f32 + 0.5, y);
                    (*sx, *sy) = (a * x + b * y + c, d * x + e * y + f);
                }
            }
            None => {
                // along a row, the source moves by (a, d) per pixel
                let (x0, y0) = to_source.map(0.5, y);
                for (j, (sx, sy)) in row_x.iter_mut().zip(row_y.iter_mut()).enumerate() {
                    (*sx, *sy) = (x0 + a * j as f32, y0 + d * j as f32);
                }
            }
        }
    }
    (xs, ys)
}

/// Control points of a smooth displacement: a 4x4 grid spread over the picture, each with
/// a random offset; between them the offset is interpolated bilinearly.
#[derive(Clone, Debug)]
pub(crate) struct Displacement {
    offsets: [[(f32, f32); GRID]; GRID],
    /// grid cells per pixel, down and across
    scale: (f32, f32),
}

const GRID: usize = 4;

impl Displacement {
    pub(crate) fn random(height: usize, width: usize, amplitude: f32, rng: &mut Rng) -> Displacement {
        let mut offsets = [[(0.0, 0.0); GRID]; GRID];
        for row in offsets.iter_mut() {
            for o in row.iter_mut() {
                *o = (rng.uniform_range(-amplitude, amplitude), rng.uniform_range(-amplitude, amplitude));
            }
        }
        let last = (GRID - 1) as f32;
        Displacement { offsets, scale: (last / height as f32, last / width as f32) }
    }

    fn at(&self, x: f32, y: f32) -> (f32, f32) {
        let last = (GRID - 1) as f32;
        let gx = (x * self.scale.1).clamp(0.0, last);
        let gy = (y * self.scale.0).clamp(0.0, last);
        let (i, j) = ((gy as usize).min(GRID - 2), (gx as usize).min(GRID - 2));
        let (ty, tx) = (gy - i as f32, gx - j as f32);
        let o = &self.offsets;
        let mix =
            |a: f32, b: f32, c: f32, d: f32| (a * (1.0 - tx) + b * tx) * (1.0 - ty) + (c * (1.0 - tx) + d * tx) * ty;
        (
            mix(o[i][j].0, o[i][j + 1].0, o[i + 1][j].0, o[i + 1][j + 1].0),
            mix(o[i][j].1, o[i][j + 1].1, o[i + 1][j].1, o[i + 1][j + 1].1),
        )
    }

    /// The field along the row at height `y`, to evaluate across it cheaply.
    pub(crate) fn row(&self, y: f32) -> RowField {
        let last = (GRID - 1) as f32;
        let gy = (y * self.scale.0).clamp(0.0, last);
        let i = (gy as usize).min(GRID - 2);
        let t = gy - i as f32;
        let o = &self.offsets;
        let at = |j: usize| (o[i][j].0 * (1.0 - t) + o[i + 1][j].0 * t, o[i][j].1 * (1.0 - t) + o[i + 1][j].1 * t);
        RowField { offsets: [at(0), at(1), at(2), at(3)], scale: self.scale.1 }
    }

    /// Where a point at (x, y) moves to: the inverse of [`RowField::pull`] to first order.
    pub(crate) fn push(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy) = self.at(x, y);
        (x - dx, y - dy)
    }
}

/// A [`Displacement`] along one row.
pub(crate) struct RowField {
    offsets: [(f32, f32); GRID],
    scale: f32,
}

impl RowField {
    /// Piecewise linear between the control points (extended past the last), written as
    /// the first segment plus a ramp per change of slope: no branch or index per pixel.
    fn pull(&self, x: f32, y: f32) -> (f32, f32) {
        let g = (x * self.scale).max(0.0);
        let [o0, o1, o2, o3] = self.offsets;
        let (r1, r2) = ((g - 1.0).max(0.0), (g - 2.0).max(0.0));
        let along = |a: f32, b: f32, c: f32, d: f32| a + (b - a) * g + (c - 2.0 * b + a) * r1 + (d - 2.0 * c + b) * r2;
        (x + along(o0.0, o1.0, o2.0, o3.0), y + along(o0.1, o1.1, o2.1, o3.1))
    }
}

/// Eigenvalues (largest first) and unit eigenvectors of the symmetric `n` x `n` matrix `m`
/// (row-major), by cyclic Jacobi rotations.
pub(crate) fn symmetric_eigen(m: &[f64], n: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut a = m.to_vec();
    let mut v: Vec<f64> = (0..n * n).map(|k| if k / n == k % n { 1.0 } else { 0.0 }).collect();
    for _sweep in 0..64 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[j * n + j].total_cmp(&a[i * n + i]));
    let values = order.iter().map(|&i| a[i * n + i]).collect();
    let vectors = order.iter().map(|&i| (0..n).map(|k| v[k * n + i]).collect()).collect();
    (values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affine_maps_compose_and_invert() {
        let rot = Affine::about(5.0, 3.0, [0.0, -1.0, 1.0, 0.0]);
        assert_eq!(rot.map(5.0, 3.0), (5.0, 3.0), "the centre stays");
        assert_eq!(rot.map(6.0, 3.0), (5.0, 4.0));
        let shift = Affine([1.0, 0.0, 2.0, 0.0, 1.0, -1.0]);
        let both = rot.then(&shift);
        assert_eq!(both.map(6.0, 3.0), (7.0, 3.0));
        let back = both.inverse().map(7.0, 3.0);
        assert!((back.0 - 6.0).abs() < 1e-6 && (back.1 - 3.0).abs() < 1e-6);
    }

    #[test]
    fn eigen_of_a_known_matrix() {
        // [[2, 1], [1, 2]]: 3 along (1, 1), 1 along (1, -1)
        let (values, vectors) = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        assert!((values[0] - 3.0).abs() < 1e-12 && (values[1] - 1.0).abs() < 1e-12);
        assert!((vectors[0][0].abs() - 0.5f64.sqrt()).abs() < 1e-12);
        assert!((vectors[0][0] - vectors[0][1]).abs() < 1e-12);
    }

    #[test]
    fn displacements_are_smooth_and_bounded() {
        let d = Displacement::random(32, 32, 2.0, &mut Rng::new(1));
        for (x, y) in [(0.0, 0.0), (16.0, 7.5), (32.0, 32.0)] {
            let (px, py) = d.row(y).pull(x, y);
            assert!((px - x).abs() <= 2.0 && (py - y).abs() <= 2.0);
            let (qx, qy) = d.row(y).pull(x + 0.1, y);
            assert!((qx - px - 0.1).abs() < 0.1 && (qy - py).abs() < 0.1, "smooth");
            // the field at a point equals its row's value there
            let (ax, ay) = d.at(x, y);
            assert!((px - x - ax).abs() < 1e-5 && (py - y - ay).abs() < 1e-5);
        }
    }
}
