//! Data augmentation: the notes' mirroring, random cropping and colour shifting, AlexNet's
//! PCA colour augmentation, rotation, shearing and local warping.
//!
//! A pipeline ([`Augment`]) is a list of transforms parsed from a spec such as
//! `mirror,crop,color,rotate:15,shear:0.2,warp`. For each picture it draws one [`Draw`]:
//! the geometric transforms compose into a single mapping (an affine map, then an optional
//! smooth displacement field), so the picture is resampled once, and boxes and landmarks
//! move with it; the colour transforms add one offset per channel. Every draw comes from a
//! generator seeded by (seed, picture index), so batches do not depend on thread timing.

mod geometry;

pub use geometry::{warp_affine, Affine};

use crate::data::Dataset;
use crate::detect::boxes::BBox;
use crate::detect::yolo::Object;
use fovea::{Error, Result, Rng, Tensor};
use geometry::Displacement;

/// One transform and its strength.
#[derive(Clone, Debug, PartialEq)]
pub enum Transform {
    /// Mirror left to right, half of the time.
    Mirror,
    /// Cut a random part holding `min_area`..1 of the picture (aspect 3:4 to 4:3) and
    /// resize it back to the full size.
    Crop {
        /// smallest share of the picture's area kept, 0.05..=1
        min_area: f32,
    },
    /// Add a random offset to each channel, uniform in ±`shift` (pixels are 0..1).
    Color {
        /// largest offset per channel, 0..=1
        shift: f32,
    },
    /// AlexNet's PCA colour augmentation: add Σ α_i σ_i p_i to every pixel, where p_i and
    /// σ_i² are the eigenvectors and eigenvalues of the training set's channel covariance and
    /// α_i ~ N(0, `sigma`) (σ_i as in fb.resnet.torch's `Lighting`).
    Pca {
        /// standard deviation of the weights α_i, 0..=1
        sigma: f32,
    },
    /// Rotate about the centre by a random angle in ±`degrees`.
    Rotate {
        /// largest angle in degrees, 0..=180
        degrees: f32,
    },
    /// Shear horizontally by a random factor in ±`factor` (x += factor · (y - centre)).
    Shear {
        /// largest shear factor, 0..=1
        factor: f32,
    },
    /// Local warping: move every pixel by a smooth random displacement, interpolated from a
    /// 4x4 grid of offsets uniform in ±`strength` times the picture's longer side.
    Warp {
        /// largest offset as a share of the picture's longer side, 0..=0.25
        strength: f32,
    },
}

/// name, default strength, valid range (inclusive), what the number means
const TRANSFORMS: [(&str, f32, (f32, f32), &str); 7] = [
    ("mirror", 0.0, (0.0, 0.0), "takes no number"),
    ("crop", 0.5, (0.05, 1.0), "the smallest share of the picture kept"),
    ("color", 0.1, (0.0, 1.0), "the largest offset per channel"),
    ("pca", 0.1, (0.0, 1.0), "the standard deviation of the PCA weights"),
    ("rotate", 15.0, (0.0, 180.0), "the largest angle in degrees"),
    ("shear", 0.2, (0.0, 1.0), "the largest shear factor"),
    ("warp", 0.05, (0.0, 0.25), "the largest displacement as a share of the picture's side"),
];

impl Transform {
    fn parse(item: &str) -> Result<Transform> {
        let (name, value) = match item.split_once(':') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (item.trim(), None),
        };
        let names: Vec<&str> = TRANSFORMS.iter().map(|t| t.0).collect();
        let &(_, default, (lo, hi), meaning) = TRANSFORMS
            .iter()
            .find(|t| t.0 == name)
            .ok_or_else(|| Error::Invalid(format!("unknown augmentation '{name}' (known: {})", names.join(", "))))?;
        let v = match value {
            None => default,
            Some(_) if name == "mirror" => return Err(Error::Invalid("augmentation 'mirror' takes no number".into())),
            Some(s) => {
                s.parse::<f32>().map_err(|_| Error::Invalid(format!("augmentation '{name}': '{s}' is not a number")))?
            }
        };
        if !(lo..=hi).contains(&v) {
            return Err(Error::Invalid(format!(
                "augmentation '{name}:{v}' is out of range: {meaning} must be in {lo}..={hi}"
            )));
        }
        Ok(match name {
            "mirror" => Transform::Mirror,
            "crop" => Transform::Crop { min_area: v },
            "color" => Transform::Color { shift: v },
            "pca" => Transform::Pca { sigma: v },
            "rotate" => Transform::Rotate { degrees: v },
            "shear" => Transform::Shear { factor: v },
            _ => Transform::Warp { strength: v },
        })
    }

    fn spec(&self) -> String {
        match self {
            Transform::Mirror => "mirror".into(),
            Transform::Crop { min_area } => format!("crop:{min_area}"),
            Transform::Color { shift } => format!("color:{shift}"),
            Transform::Pca { sigma } => format!("pca:{sigma}"),
            Transform::Rotate { degrees } => format!("rotate:{degrees}"),
            Transform::Shear { factor } => format!("shear:{factor}"),
            Transform::Warp { strength } => format!("warp:{strength}"),
        }
    }
}

/// The principal axes of the pixels' colours: eigenvectors of the channel covariance and
/// the standard deviation along each.
#[derive(Clone, Debug, PartialEq)]
pub struct ColorPca {
    /// `std[i]` = sqrt(eigenvalue i), largest first
    pub std: Vec<f32>,
    /// `axes[i]` = eigenvector i (one entry per channel)
    pub axes: Vec<Vec<f32>>,
}

impl ColorPca {
    /// The PCA of every pixel's colour in `images` (`[N, C, H, W]`).
    pub fn fit(images: &Tensor) -> Result<ColorPca> {
        let &[n, c, h, w] = images.shape() else {
            return Err(Error::shape("ColorPca::fit", format!("expected [N, C, H, W], got {:?}", images.shape())));
        };
        let (plane, count) = (h * w, (n * h * w) as f64);
        if count == 0.0 {
            return Err(Error::Invalid("PCA colour augmentation needs at least one picture".into()));
        }
        let (mut sum, mut prod) = (vec![0f64; c], vec![0f64; c * c]);
        for picture in images.data().chunks_exact(c * plane) {
            for p in 0..plane {
                for i in 0..c {
                    let a = picture[i * plane + p] as f64;
                    sum[i] += a;
                    for j in 0..=i {
                        prod[i * c + j] += a * picture[j * plane + p] as f64;
                    }
                }
            }
        }
        let mut cov = vec![0f64; c * c];
        for i in 0..c {
            for j in 0..=i {
                let v = prod[i * c + j] / count - sum[i] * sum[j] / (count * count);
                cov[i * c + j] = v;
                cov[j * c + i] = v;
            }
        }
        let (values, vectors) = geometry::symmetric_eigen(&cov, c);
        Ok(ColorPca {
            std: values.iter().map(|&v| v.max(0.0).sqrt() as f32).collect(),
            axes: vectors.into_iter().map(|v| v.into_iter().map(|x| x as f32).collect()).collect(),
        })
    }
}

/// A pipeline of transforms.
#[derive(Clone, Debug, PartialEq)]
pub struct Augment {
    /// The transforms, in the spec's order.
    pub transforms: Vec<Transform>,
    /// Needed by [`Transform::Pca`]; see [`Augment::fit`].
    pub pca: Option<ColorPca>,
}

impl Augment {
    /// Parses a comma-separated spec: `mirror,crop,color,rotate:15,shear:0.2,warp`; a
    /// number after a colon sets the transform's strength. Unknown names list the known
    /// ones; numbers out of range say the range.
    pub fn parse(spec: &str) -> Result<Augment> {
        let transforms =
            spec.split(',').filter(|s| !s.trim().is_empty()).map(Transform::parse).collect::<Result<Vec<_>>>()?;
        if transforms.is_empty() {
            let names: Vec<&str> = TRANSFORMS.iter().map(|t| t.0).collect();
            return Err(Error::Invalid(format!("no augmentation given (known: {})", names.join(", "))));
        }
        Ok(Augment { transforms, pca: None })
    }

    /// The spec with every strength written out (what a run records).
    pub fn spec(&self) -> String {
        self.transforms.iter().map(Transform::spec).collect::<Vec<_>>().join(",")
    }

    /// Fits what the transforms learn from the training pictures (PCA's colour axes).
    pub fn fit(&mut self, images: &Tensor) -> Result<()> {
        if self.transforms.iter().any(|t| matches!(t, Transform::Pca { .. })) {
            self.pca = Some(ColorPca::fit(images)?);
        }
        Ok(())
    }

    /// The random choices for one `channels` x `height` x `width` picture.
    pub fn draw(&self, channels: usize, height: usize, width: usize, rng: &mut Rng) -> Result<Draw> {
        let (w, h) = (width as f32, height as f32);
        let (cx, cy) = (w / 2.0, h / 2.0);
        let mut affine = Affine::IDENTITY;
        let mut warp = None;
        let mut offset = vec![0f32; channels];
        for t in &self.transforms {
            match *t {
                Transform::Mirror => {
                    if rng.uniform() < 0.5 {
                        affine = affine.then(&Affine([-1.0, 0.0, w, 0.0, 1.0, 0.0]));
                    }
                }
                Transform::Crop { min_area } => {
                    // torchvision's RandomResizedCrop: area share, then log-uniform aspect
                    // (3:4 to 4:3, narrowed so that the window fits the picture)
                    let area = rng.uniform_range(min_area, 1.0);
                    let (lo, hi) = ((3f32 / 4.0).max(area), (4f32 / 3.0).min(1.0 / area));
                    let aspect = rng.uniform_range(lo.ln(), hi.ln()).exp();
                    let cw = (w * (area * aspect).sqrt()).min(w);
                    let ch = (h * (area / aspect).sqrt()).min(h);
                    let (x0, y0) = (rng.uniform() * (w - cw), rng.uniform() * (h - ch));
                    affine = affine.then(&Affine([w / cw, 0.0, -x0 * w / cw, 0.0, h / ch, -y0 * h / ch]));
                }
                Transform::Rotate { degrees } => {
                    let a = rng.uniform_range(-degrees, degrees).to_radians();
                    affine = affine.then(&Affine::about(cx, cy, [a.cos(), -a.sin(), a.sin(), a.cos()]));
                }
                Transform::Shear { factor } => {
                    let k = rng.uniform_range(-factor, factor);
                    affine = affine.then(&Affine::about(cx, cy, [1.0, k, 0.0, 1.0]));
                }
                Transform::Warp { strength } => {
                    warp = Some(Displacement::random(height, width, strength * w.max(h), rng));
                }
                Transform::Color { shift } => {
                    for o in offset.iter_mut() {
                        *o += rng.uniform_range(-shift, shift);
                    }
                }
                Transform::Pca { sigma } => {
                    let pca = self.pca.as_ref().ok_or_else(|| {
                        Error::Invalid("the 'pca' augmentation needs the colour axes of the training pictures".into())
                    })?;
                    if pca.axes.iter().any(|a| a.len() != channels) {
                        return Err(Error::Invalid(format!("the PCA colour axes are not for {channels} channels")));
                    }
                    for (std, axis) in pca.std.iter().zip(&pca.axes) {
                        let alpha = sigma * rng.normal();
                        for (o, p) in offset.iter_mut().zip(axis) {
                            *o += alpha * std * p;
                        }
                    }
                }
            }
        }
        Ok(Draw { affine, warp, offset, height, width })
    }

    /// The pictures of `data` at `indices`, each transformed by its own draw from
    /// `Rng::derive(seed, index)`: the same seed gives the same batch in any order.
    pub fn batch(&self, data: &Dataset, indices: &[usize], seed: u64) -> Result<(Tensor, Vec<usize>)> {
        let (x, labels) = data.batch(indices);
        let &[n, c, h, w] = x.shape() else {
            return Err(Error::shape("augment", format!("expected [N, C, H, W] pictures, got {:?}", x.shape())));
        };
        let mut out = Vec::with_capacity(x.numel());
        for (picture, &i) in x.data().chunks_exact(c * h * w).zip(indices) {
            let draw = self.draw(c, h, w, &mut Rng::derive(seed, i as u64))?;
            out.extend(draw.apply(picture, c));
        }
        Ok((Tensor::new(&[n, c, h, w], out)?, labels))
    }
}

/// Pictures `[N, C, S, S']` with their objects (boxes in picture-relative units), each
/// picture transformed by its own draw from `Rng::derive(seed, index)` and its boxes moved
/// with it; objects mostly cut away are dropped.
pub fn detection_set(
    pipeline: &Augment,
    pictures: &Tensor,
    objects: &[Vec<Object>],
    seed: u64,
) -> Result<(Tensor, Vec<Vec<Object>>)> {
    let &[n, c, h, w] = pictures.shape() else {
        return Err(Error::shape("augment", format!("expected [N, C, H, W] pictures, got {:?}", pictures.shape())));
    };
    if objects.len() != n {
        return Err(Error::Invalid(format!("{n} pictures but {} lists of objects", objects.len())));
    }
    let mut out = Vec::with_capacity(pictures.numel());
    let mut moved = Vec::with_capacity(n);
    for (i, (picture, objs)) in pictures.data().chunks_exact(c * h * w).zip(objects).enumerate() {
        let draw = pipeline.draw(c, h, w, &mut Rng::derive(seed, i as u64))?;
        out.extend(draw.apply(picture, c));
        let (sx, sy) = (w as f32, h as f32);
        moved.push(
            objs.iter()
                .filter_map(|o| {
                    let b = draw.bbox(&o.bbox.scale(sx, sy))?;
                    Some(Object { bbox: b.scale(1.0 / sx, 1.0 / sy), class: o.class })
                })
                .collect(),
        );
    }
    Ok((Tensor::new(&[n, c, h, w], out)?, moved))
}

/// One picture's random choices: where each output pixel comes from, and the colour offset.
#[derive(Clone, Debug)]
pub struct Draw {
    /// input → output, in continuous pixel coordinates (pixel (i, j) covers [j, j+1) x [i, i+1))
    pub affine: Affine,
    warp: Option<Displacement>,
    /// added to each channel
    pub offset: Vec<f32>,
    height: usize,
    width: usize,
}

impl Draw {
    /// The transformed picture (`channels` planes of the draw's size), values kept in 0..1.
    pub fn apply(&self, picture: &[f32], channels: usize) -> Vec<f32> {
        let (xs, ys) = geometry::pixel_sources(self.height, self.width, &self.affine.inverse(), self.warp.as_ref());
        let mut out = fovea::kernels::sample::bilinear(picture, channels, self.height, self.width, &xs, &ys);
        if self.offset.iter().any(|&o| o != 0.0) {
            for (plane, o) in out.chunks_exact_mut(self.height * self.width).zip(&self.offset) {
                plane.iter_mut().for_each(|v| *v = (*v + o).clamp(0.0, 1.0));
            }
        }
        out
    }

    /// Where the input point (x, y) lands (a landmark); the warp is followed to first order.
    pub fn point(&self, x: f32, y: f32) -> (f32, f32) {
        let (x, y) = self.affine.map(x, y);
        match &self.warp {
            Some(d) => d.push(x, y),
            None => (x, y),
        }
    }

    /// The box around where `b`'s corners land, clipped to the picture; `None` when less
    /// than a quarter of it stays inside (the object is mostly cut away).
    pub fn bbox(&self, b: &BBox) -> Option<BBox> {
        let c = b.corners();
        let points = [(c.x0, c.y0), (c.x1, c.y0), (c.x0, c.y1), (c.x1, c.y1)].map(|(x, y)| self.point(x, y));
        let (mut x0, mut y0, mut x1, mut y1) = (f32::INFINITY, f32::INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY);
        for (x, y) in points {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        let moved = BBox::new((x0 + x1) / 2.0, (y0 + y1) / 2.0, x1 - x0, y1 - y0);
        let clipped = moved.clip(self.width as f32, self.height as f32);
        (clipped.area() > 0.0 && clipped.area() >= 0.25 * moved.area()).then_some(clipped)
    }
}

/// A grid of `picture` (`[3, H, W]` in 0..1) and `count` copies augmented by `pipeline`
/// (fitted to the picture itself: PCA colour axes need data), `columns` a row, each copy
/// drawn from `seed` and its index.
pub fn preview(
    pipeline: &mut Augment,
    picture: &Tensor,
    count: usize,
    columns: usize,
    seed: u64,
) -> Result<crate::draw::Canvas> {
    let (h, w) = (picture.shape()[1], picture.shape()[2]);
    pipeline.fit(&picture.reshape(&[1, 3, h, w])?)?;
    let mut tiles = vec![picture.clone()];
    for i in 0..count {
        let draw = pipeline.draw(3, h, w, &mut Rng::derive(seed, i as u64))?;
        tiles.push(Tensor::new(&[3, h, w], draw.apply(picture.data(), 3))?);
    }
    // more columns than pictures would only add blank space
    crate::visualize::grid(&tiles, columns.min(tiles.len()), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_defaults_and_refuse_bad_names_and_ranges() {
        let a = Augment::parse("mirror, crop,color,rotate:15,shear:0.2,warp,pca").unwrap();
        assert_eq!(a.spec(), "mirror,crop:0.5,color:0.1,rotate:15,shear:0.2,warp:0.05,pca:0.1");
        let err = Augment::parse("mirror,blur").unwrap_err().to_string();
        assert!(err.contains("unknown augmentation 'blur'") && err.contains("rotate") && err.contains("warp"), "{err}");
        let err = Augment::parse("rotate:400").unwrap_err().to_string();
        assert!(err.contains("0..=180"), "{err}");
        assert!(Augment::parse("shear:x").unwrap_err().to_string().contains("not a number"));
        assert!(Augment::parse("mirror:2").is_err());
        assert!(Augment::parse("").is_err());
    }

    fn ramp(c: usize, h: usize, w: usize) -> Vec<f32> {
        (0..c * h * w).map(|i| i as f32 / (c * h * w) as f32).collect()
    }

    #[test]
    fn mirror_flips_pixels_boxes_and_landmarks() {
        let a = Augment::parse("mirror").unwrap();
        // find a seed that mirrors and one that does not
        let draws: Vec<Draw> = (0..8).map(|s| a.draw(1, 3, 4, &mut Rng::new(s)).unwrap()).collect();
        let flipped = draws.iter().find(|d| d.affine != Affine::IDENTITY).expect("some draw mirrors");
        let kept = draws.iter().find(|d| d.affine == Affine::IDENTITY).expect("some draw does not");
        let picture = ramp(1, 3, 4);
        assert_eq!(kept.apply(&picture, 1), picture);
        let out = flipped.apply(&picture, 1);
        for row in 0..3 {
            let r: Vec<f32> = picture[row * 4..row * 4 + 4].iter().rev().copied().collect();
            assert_eq!(out[row * 4..row * 4 + 4], r[..]);
        }
        assert_eq!(flipped.point(1.0, 2.0), (3.0, 2.0));
        let b = flipped.bbox(&BBox::new(1.0, 1.5, 2.0, 1.0)).unwrap();
        assert_eq!((b.cx, b.cy, b.w, b.h), (3.0, 1.5, 2.0, 1.0));
    }

    #[test]
    fn crops_cut_a_window_of_the_asked_size_and_move_boxes_with_it() {
        let a = Augment::parse("crop:0.3").unwrap();
        for seed in 0..20 {
            let d = a.draw(1, 40, 40, &mut Rng::new(seed)).unwrap();
            // the window: where the output's corners come from
            let back = d.affine.inverse();
            let ((x0, y0), (x1, y1)) = (back.map(0.0, 0.0), back.map(40.0, 40.0));
            assert!(x0 >= -1e-4 && y0 >= -1e-4 && x1 <= 40.0 + 1e-4 && y1 <= 40.0 + 1e-4, "inside the picture");
            let share = (x1 - x0) * (y1 - y0) / 1600.0;
            assert!((0.3 - 1e-3..=1.0 + 1e-3).contains(&share), "share {share}");
            // a box wholly inside the window fills the same share of the output
            let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
            let b = d.bbox(&BBox::new(cx, cy, (x1 - x0) / 2.0, (y1 - y0) / 2.0)).unwrap();
            assert!((b.cx - 20.0).abs() < 1e-3 && (b.w - 20.0).abs() < 1e-3 && (b.h - 20.0).abs() < 1e-3);
            // a box outside the window is dropped
            if x0 > 2.0 {
                assert!(d.bbox(&BBox::new(0.5, cy, 1.0, 1.0)).is_none());
            }
        }
    }

    #[test]
    fn detection_sets_move_boxes_with_their_pictures() {
        // one bright square per picture, its box in picture-relative units
        let mut data = vec![0f32; 2 * 32 * 32];
        for p in 0..2 {
            for y in 8..16 {
                for x in 4..12 {
                    data[p * 1024 + y * 32 + x] = 1.0;
                }
            }
        }
        let pictures = Tensor::new(&[2, 1, 32, 32], data).unwrap();
        let objects = vec![vec![Object { bbox: BBox::new(0.25, 0.375, 0.25, 0.25), class: 1 }]; 2];
        let a = Augment::parse("mirror,crop:0.6,rotate:10").unwrap();
        for seed in 0..6 {
            let (x, moved) = detection_set(&a, &pictures, &objects, seed).unwrap();
            for (p, objs) in moved.iter().enumerate() {
                for o in objs {
                    // the moved box's centre lies on the moved square
                    let (cx, cy) = ((o.bbox.cx * 32.0) as usize, (o.bbox.cy * 32.0) as usize);
                    assert!(x.data()[p * 1024 + cy.min(31) * 32 + cx.min(31)] > 0.5, "seed {seed} picture {p}: {o:?}");
                    assert_eq!(o.class, 1);
                }
            }
        }
        assert!(detection_set(&a, &pictures, &objects[..1], 0).is_err());
    }

    #[test]
    fn draws_depend_only_on_seed_and_index() {
        let a = Augment::parse("mirror,crop,color,rotate,shear,warp").unwrap();
        let data = Dataset { images: Tensor::new(&[3, 1, 8, 8], ramp(3, 8, 8)).unwrap(), labels: vec![0, 1, 2] };
        let (all, _) = a.batch(&data, &[0, 1, 2], 7).unwrap();
        let (one, _) = a.batch(&data, &[2], 7).unwrap();
        assert_eq!(&all.data()[128..], one.data(), "picture 2 alone equals picture 2 in a batch");
        let (again, _) = a.batch(&data, &[0, 1, 2], 7).unwrap();
        assert_eq!(all.data(), again.data());
        let (other, _) = a.batch(&data, &[0, 1, 2], 8).unwrap();
        assert_ne!(all.data(), other.data());
        assert!(all.data().iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn color_pca_finds_the_axis_of_correlated_channels() {
        // r = g = b + noise-free: all variance along (1, 1, 1) / sqrt(3)
        let mut rng = Rng::new(0);
        let vals: Vec<f32> = (0..50).map(|_| rng.uniform()).collect();
        let mut data = Vec::new();
        for v in &vals {
            data.extend([*v, *v, *v]);
        }
        let pca = ColorPca::fit(&Tensor::new(&[50, 3, 1, 1], data).unwrap()).unwrap();
        let mean = vals.iter().sum::<f32>() / 50.0;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 50.0;
        assert!((pca.std[0] - (3.0 * var).sqrt()).abs() < 1e-4, "{:?}", pca.std);
        assert!(pca.std[1] < 1e-3 && pca.std[2] < 1e-3);
        let axis = &pca.axes[0];
        assert!(axis.iter().all(|x| (x.abs() - 1.0 / 3f32.sqrt()).abs() < 1e-4), "{axis:?}");
        // pca needs the fit
        assert!(Augment::parse("pca").unwrap().draw(3, 4, 4, &mut rng).is_err());
    }
}
