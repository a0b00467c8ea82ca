//! A synthetic detection dataset after the notes' example classes: pedestrians, cars and
//! motorcycles, drawn as simple icons of their typical shapes (tall, wide, in between) with
//! random sizes and colours on textured backgrounds, some overlapping, some sharing a
//! midpoint cell with another object. Every picture is drawn from its own random stream
//! (seed, index), so a dataset is the same whatever order or count it is made in.

use super::boxes::BBox;
use super::yolo::Object;
use crate::draw::{Canvas, Rgb};
use fovea::{Error, Result, Rng};

/// The class names; index = class id.
pub const CLASSES: [&str; 3] = ["pedestrian", "car", "motorcycle"];

/// Points per object written to `landmarks/`: for a pedestrian the head, the two feet and
/// the middle of the body; for a car the two wheel hubs and the roof's two corners; for a
/// motorcycle the two wheel hubs, the rider's head and the middle of the frame.
pub const LANDMARKS: usize = 4;

/// How the synthetic pictures are drawn; the default is 128x128 pictures of 0 to 4 objects.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ShapesConfig {
    /// Side of the square pictures in pixels
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::whole(32, 1024), long, default_value_t = ShapesConfig::default().size))]
    pub size: usize,
    /// Fewest objects per picture (one that finds no free place is left out)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::whole(0, 20), long, default_value_t = ShapesConfig::default().min_objects))]
    pub min_objects: usize,
    /// Most objects per picture (at least --min-objects)
    #[cfg_attr(feature = "cli", arg(value_parser = crate::cli::whole(0, 20), long, default_value_t = ShapesConfig::default().max_objects))]
    pub max_objects: usize,
    /// Range of an object's size, sqrt(width x height), as a share of the picture side.
    #[cfg_attr(feature = "cli", arg(skip = ShapesConfig::default().min_scale))]
    pub min_scale: f32,
    /// upper end of the range of `min_scale`
    #[cfg_attr(feature = "cli", arg(skip = ShapesConfig::default().max_scale))]
    pub max_scale: f32,
}

impl Default for ShapesConfig {
    fn default() -> Self {
        ShapesConfig { size: 128, min_objects: 0, max_objects: 4, min_scale: 0.12, max_scale: 0.36 }
    }
}

impl ShapesConfig {
    /// Refuses counts and scales that cannot be drawn: more objects at least than at most,
    /// a picture too small for an object, scales outside (0, 1].
    pub fn check(&self) -> Result<()> {
        if self.min_objects > self.max_objects {
            return Err(Error::setting(
                "min_objects",
                format!("{} is more than max_objects {}", self.min_objects, self.max_objects),
            ));
        }
        if !(self.min_scale > 0.0 && self.min_scale <= self.max_scale && self.max_scale <= 1.0) {
            return Err(Error::Invalid(format!(
                "object scales {}..{} must satisfy 0 < min <= max <= 1",
                self.min_scale, self.max_scale
            )));
        }
        Ok(())
    }
}

/// A drawn picture, its objects (boxes relative to the picture) and each object's
/// landmarks (relative to the picture).
pub struct Picture {
    /// the picture, `size` x `size` RGB
    pub canvas: Canvas,
    /// boxes relative to the picture, with their classes
    pub objects: Vec<Object>,
    /// each object's points (x, y), relative to the picture, in the order of `objects`
    pub landmarks: Vec<[(f32, f32); LANDMARKS]>,
}

/// Width over height of each class's icon.
const ASPECT: [f32; 3] = [0.42, 2.2, 1.5];

fn random_colour(rng: &mut Rng, lo: f32, hi: f32) -> Rgb {
    [0, 1, 2].map(|_| (rng.uniform_range(lo, hi) * 255.0) as u8)
}

/// Fills the pixels whose centres lie in the box (x0, y0)-(x1, y1).
fn fill(c: &mut Canvas, x0: f32, y0: f32, x1: f32, y1: f32, colour: Rgb) {
    for y in (y0 - 0.5).ceil().max(0.0) as i64..=((y1 - 0.5).floor() as i64).min(c.height as i64 - 1) {
        for x in (x0 - 0.5).ceil().max(0.0) as i64..=((x1 - 0.5).floor() as i64).min(c.width as i64 - 1) {
            c.set(x, y, colour);
        }
    }
}

/// Fills the pixels whose centres lie in the ellipse.
fn fill_ellipse(c: &mut Canvas, cx: f32, cy: f32, rx: f32, ry: f32, colour: Rgb) {
    for y in (cy - ry).floor().max(0.0) as i64..=((cy + ry).ceil() as i64).min(c.height as i64 - 1) {
        for x in (cx - rx).floor().max(0.0) as i64..=((cx + rx).ceil() as i64).min(c.width as i64 - 1) {
            let (dx, dy) = ((x as f32 + 0.5 - cx) / rx, (y as f32 + 0.5 - cy) / ry);
            if dx * dx + dy * dy <= 1.0 {
                c.set(x, y, colour);
            }
        }
    }
}

/// A gradient between two colours, a texture (noise, stripes, checks or blobs) and noise.
fn background(rng: &mut Rng, size: usize) -> Canvas {
    let (a, b) = (random_colour(rng, 0.15, 0.85), random_colour(rng, 0.15, 0.85));
    let texture = rng.below(4);
    let period = rng.uniform_range(6.0, 20.0);
    let angle = rng.uniform_range(0.0, std::f32::consts::PI);
    let strength = rng.uniform_range(0.05, 0.2);
    let blobs: Vec<(f32, f32, f32)> = (0..6)
        .map(|_| (rng.uniform() * size as f32, rng.uniform() * size as f32, rng.uniform_range(5.0, 25.0)))
        .collect();
    let mut c = Canvas::new(size, size, [0, 0, 0]);
    let (ca, sa) = (angle.cos(), angle.sin());
    for y in 0..size {
        for x in 0..size {
            let t = (x + y) as f32 / (2 * size) as f32;
            let (xf, yf) = (x as f32, y as f32);
            let pattern = match texture {
                0 => 0.0,
                1 => ((xf * ca + yf * sa) / period * std::f32::consts::TAU).sin(),
                2 => {
                    if ((xf / period) as i64 + (yf / period) as i64) % 2 == 0 {
                        1.0
                    } else {
                        -1.0
                    }
                }
                _ => {
                    blobs
                        .iter()
                        .map(|&(bx, by, r)| (-((xf - bx).powi(2) + (yf - by).powi(2)) / (r * r)).exp())
                        .sum::<f32>()
                        * 2.0
                        - 1.0
                }
            };
            let noise = rng.normal() * 0.04;
            let px = [0, 1, 2].map(|k| {
                let v = (a[k] as f32 * (1.0 - t) + b[k] as f32 * t) / 255.0 + strength * pattern + noise;
                (v.clamp(0.0, 1.0) * 255.0) as u8
            });
            c.set(x as i64, y as i64, px);
        }
    }
    c
}

/// Draws an icon of `class` filling the box exactly; returns its landmarks in pixels.
fn draw_icon(c: &mut Canvas, class: usize, b: &BBox, body: Rgb, rng: &mut Rng) -> [(f32, f32); LANDMARKS] {
    let (x0, y0) = (b.cx - b.w / 2.0, b.cy - b.h / 2.0);
    let p = |u: f32, v: f32| (x0 + u * b.w, y0 + v * b.h);
    let dark = random_colour(rng, 0.0, 0.15);
    let r = |c: &mut Canvas, u0: f32, v0: f32, u1: f32, v1: f32, colour: Rgb| {
        let ((a, b0), (a1, b1)) = (p(u0, v0), p(u1, v1));
        fill(c, a, b0, a1, b1, colour)
    };
    match class {
        0 => {
            // pedestrian: head, body, arms, legs
            let skin = random_colour(rng, 0.5, 0.9);
            let legs = random_colour(rng, 0.05, 0.5);
            r(c, 0.2, 0.24, 0.8, 0.62, body);
            r(c, 0.0, 0.26, 0.2, 0.52, body);
            r(c, 0.8, 0.26, 1.0, 0.52, body);
            r(c, 0.2, 0.62, 0.45, 1.0, legs);
            r(c, 0.55, 0.62, 0.8, 1.0, legs);
            let (hx, hy) = p(0.5, 0.12);
            fill_ellipse(c, hx, hy, 0.25 * b.w, 0.12 * b.h, skin);
            [p(0.5, 0.12), p(0.325, 1.0), p(0.675, 1.0), p(0.5, 0.43)]
        }
        1 => {
            // car: body, cabin with windows, two wheels
            let glass = random_colour(rng, 0.6, 0.95);
            r(c, 0.0, 0.35, 1.0, 0.8, body);
            r(c, 0.2, 0.0, 0.75, 0.4, body);
            r(c, 0.25, 0.06, 0.46, 0.34, glass);
            r(c, 0.5, 0.06, 0.7, 0.34, glass);
            for u in [0.22, 0.78] {
                let (wx, wy) = p(u, 0.8);
                fill_ellipse(c, wx, wy, 0.2 * b.h, 0.2 * b.h, dark);
            }
            [p(0.22, 0.8), p(0.78, 0.8), p(0.2, 0.0), p(0.75, 0.0)]
        }
        _ => {
            // motorcycle: two wheels, frame, rider
            let rider = random_colour(rng, 0.05, 0.6);
            for u in [0.2, 0.8] {
                let (wx, wy) = p(u, 0.7);
                fill_ellipse(c, wx, wy, 0.3 * b.h, 0.3 * b.h, dark);
            }
            r(c, 0.2, 0.45, 0.8, 0.6, body);
            r(c, 0.7, 0.25, 0.78, 0.5, dark);
            r(c, 0.38, 0.1, 0.58, 0.45, rider);
            let (hx, hy) = p(0.475, 0.07);
            fill_ellipse(c, hx, hy, 0.09 * b.w, 0.07 * b.h, rider);
            [p(0.2, 0.7), p(0.8, 0.7), p(0.475, 0.07), p(0.5, 0.525)]
        }
    }
}

/// Picture `index` of the dataset with `seed`.
pub fn generate(seed: u64, index: u64, config: &ShapesConfig) -> Picture {
    let mut rng = Rng::derive(seed, index);
    let size = config.size as f32;
    let mut canvas = background(&mut rng, config.size);
    let count = config.min_objects + rng.below(config.max_objects - config.min_objects + 1);
    let mut objects: Vec<Object> = Vec::new();
    for _ in 0..count {
        let class = rng.below(CLASSES.len());
        let aspect = ASPECT[class] * rng.uniform_range(0.85, 1.15);
        let scale = rng.uniform_range(config.min_scale, config.max_scale) * size;
        let (w, h) = ((scale * aspect.sqrt()).min(size * 0.9), (scale / aspect.sqrt()).min(size * 0.9));
        // a quarter of the time, share the midpoint cell of an object already drawn
        let near = (!objects.is_empty() && rng.uniform() < 0.25).then(|| objects[rng.below(objects.len())].bbox);
        let mut placed = None;
        for _ in 0..30 {
            let (cx, cy) = match near {
                Some(n) => (n.cx * size + rng.uniform_range(-5.0, 5.0), n.cy * size + rng.uniform_range(-5.0, 5.0)),
                None => (rng.uniform_range(w / 2.0, size - w / 2.0), rng.uniform_range(h / 2.0, size - h / 2.0)),
            };
            let cx = cx.clamp(w / 2.0, size - w / 2.0);
            let cy = cy.clamp(h / 2.0, size - h / 2.0);
            let b = BBox::new(cx, cy, w, h);
            // overlaps are fine, hiding most of another object is not
            let limit = if near.is_some() { 0.5 } else { 0.3 };
            if objects.iter().all(|o| o.bbox.scale(size, size).iou(&b) < limit) {
                placed = Some(b);
                break;
            }
        }
        if let Some(b) = placed {
            objects.push(Object { bbox: b.scale(1.0 / size, 1.0 / size), class });
        }
    }
    // the biggest first, so that no object hides a smaller one entirely
    let mut order: Vec<usize> = (0..objects.len()).collect();
    order.sort_by(|&a, &b| objects[b].bbox.area().total_cmp(&objects[a].bbox.area()));
    let mut landmarks = vec![[(0.0, 0.0); LANDMARKS]; objects.len()];
    for i in order {
        let colour = random_colour(&mut rng, 0.1, 0.95);
        let points = draw_icon(&mut canvas, objects[i].class, &objects[i].bbox.scale(size, size), colour, &mut rng);
        landmarks[i] = points.map(|(x, y)| (x / size, y / size));
    }
    Picture { canvas, objects, landmarks }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_reproducible_and_their_boxes_are_in_the_picture() {
        let config = ShapesConfig::default();
        let a = generate(3, 17, &config);
        let b = generate(3, 17, &config);
        assert_eq!(a.canvas.pixels, b.canvas.pixels);
        assert_eq!(a.objects, b.objects);
        assert_ne!(generate(3, 18, &config).canvas.pixels, a.canvas.pixels);
        let mut shared_cells = 0;
        let mut counts = [0usize; 3];
        for i in 0..200 {
            let p = generate(1, i, &config);
            assert!(p.objects.len() <= 4);
            for (o, marks) in p.objects.iter().zip(&p.landmarks) {
                let c = o.bbox.corners();
                assert!(c.x0 >= -1e-6 && c.y0 >= -1e-6 && c.x1 <= 1.0 + 1e-6 && c.y1 <= 1.0 + 1e-6, "{o:?}");
                for &(x, y) in marks {
                    assert!(x >= c.x0 - 1e-5 && x <= c.x1 + 1e-5 && y >= c.y0 - 1e-5 && y <= c.y1 + 1e-5);
                }
                counts[o.class] += 1;
            }
            // two midpoints in one cell of an 8 x 8 grid
            for (i, a) in p.objects.iter().enumerate() {
                for b in &p.objects[i + 1..] {
                    let cell = |o: &Object| ((o.bbox.cx * 8.0) as usize, (o.bbox.cy * 8.0) as usize);
                    shared_cells += (cell(a) == cell(b)) as usize;
                }
            }
        }
        assert!(counts.iter().all(|&c| c > 80), "classes drawn {counts:?}");
        assert!(shared_cells > 10, "only {shared_cells} pairs share a cell");
    }
}
