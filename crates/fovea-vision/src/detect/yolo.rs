//! YOLO as the notes describe it: an S x S grid over the picture, A anchor boxes per cell,
//! and per cell and anchor the vector [pc, bx, by, bh, bw, c1 .. cC].
//!
//! Encoding (the training target): each object goes to the cell holding its midpoint and,
//! there, to the anchor whose shape has the highest IoU with its own; bx, by are the
//! midpoint's position inside the cell (0..1), bh, bw the object's size in cell units (may
//! exceed 1). Two objects that want the same cell and anchor cannot both be encoded (the
//! notes' caveat): the first is kept.
//!
//! The network's raw outputs t per cell and anchor become a prediction as in YOLOv2:
//! pc = σ(t0), bx = σ(t1), by = σ(t2), bh = anchor_h · exp(t3), bw = anchor_w · exp(t4),
//! class probabilities = softmax(t5..).

use super::boxes::{shape_iou, BBox};
use super::nms::Detection;
use fovea::{ops, Error, Result, Tensor, Var};

/// One labelled object: its box in picture-relative units (0..1) and class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Object {
    /// box relative to the picture (0..1)
    pub bbox: BBox,
    /// class id
    pub class: usize,
}

/// The grid, the anchors (width, height in picture-relative units) and the class count.
#[derive(Clone, Debug, PartialEq)]
pub struct YoloGrid {
    /// cells per side (S)
    pub grid: usize,
    /// anchor shapes (width, height), relative to the picture, in (0, 1]
    pub anchors: Vec<(f32, f32)>,
    /// number of classes (C)
    pub classes: usize,
}

/// Weights of the YOLO loss's parts (YOLOv1's): box terms count 5x, the objectness of cells
/// and anchors without an object 0.5x.
pub const LAMBDA_COORD: f32 = 5.0;
/// Weight of the objectness loss where there is no object; see [`LAMBDA_COORD`].
pub const LAMBDA_NOOBJ: f32 = 0.5;

impl YoloGrid {
    /// An S x S grid with `anchors` and C = `classes`; refuses S = 0, no anchors or classes,
    /// and anchors outside (0, 1].
    pub fn new(grid: usize, anchors: Vec<(f32, f32)>, classes: usize) -> Result<YoloGrid> {
        if grid == 0 || anchors.is_empty() || classes == 0 {
            return Err(Error::Invalid("a YOLO grid needs S >= 1, one or more anchors and classes".into()));
        }
        // anchors are box shapes relative to the picture
        if let Some(a) = anchors.iter().find(|(w, h)| !(*w > 0.0 && *w <= 1.0 && *h > 0.0 && *h <= 1.0)) {
            return Err(Error::Invalid(format!(
                "anchor {a:?} is not a box shape within the picture (width and height in (0, 1])"
            )));
        }
        Ok(YoloGrid { grid, anchors, classes })
    }

    /// Values per cell and anchor: 5 + C.
    pub fn depth(&self) -> usize {
        5 + self.classes
    }

    /// Output channels of the network's last layer: A (5 + C).
    pub fn channels(&self) -> usize {
        self.anchors.len() * self.depth()
    }

    /// The target `[S, S, A, 5 + C]` of one picture's objects, and how many objects could
    /// not be placed (their cell and anchor were taken).
    pub fn encode(&self, objects: &[Object]) -> Result<(Tensor, usize)> {
        let (s, a, d) = (self.grid, self.anchors.len(), self.depth());
        let mut y = vec![0.0f32; s * s * a * d];
        let mut dropped = 0;
        for o in objects {
            if o.class >= self.classes {
                return Err(Error::Invalid(format!(
                    "object class {} is out of range for {} classes",
                    o.class, self.classes
                )));
            }
            let b = o.bbox;
            if !(b.w > 0.0 && b.h > 0.0 && (0.0..=1.0).contains(&b.cx) && (0.0..=1.0).contains(&b.cy)) {
                return Err(Error::Invalid(format!(
                    "object box {b:?} has no size or its midpoint is outside the picture"
                )));
            }
            // a midpoint on the right or bottom edge belongs to the last cell
            let (col, row) = (((b.cx * s as f32) as usize).min(s - 1), ((b.cy * s as f32) as usize).min(s - 1));
            let anchor = (0..a)
                .map(|k| shape_iou(b.w, b.h, self.anchors[k].0, self.anchors[k].1))
                .enumerate()
                .fold((0, -1.0f32), |m, (k, iou)| if iou > m.1 { (k, iou) } else { m })
                .0;
            let v = &mut y[((row * s + col) * a + anchor) * d..][..d];
            if v[0] == 1.0 {
                dropped += 1;
                continue;
            }
            v[0] = 1.0;
            v[1] = b.cx * s as f32 - col as f32;
            v[2] = b.cy * s as f32 - row as f32;
            v[3] = b.h * s as f32;
            v[4] = b.w * s as f32;
            v[5 + o.class] = 1.0;
        }
        Ok((Tensor::new(&[s, s, a, d], y)?, dropped))
    }

    /// The network's output `[N, A (5 + C), S, S]` as rows `[N S S A, 5 + C]`, in the
    /// target's order.
    fn rows(&self, output: &Var) -> Result<Var> {
        let shape = output.shape();
        let (s, a, d) = (self.grid, self.anchors.len(), self.depth());
        if shape.len() != 4 || shape[1] != a * d || shape[2] != s || shape[3] != s {
            return Err(Error::shape(
                "yolo",
                format!(
                    "output {:?} is not [N, {}, {s}, {s}] ({a} anchors x (5 + {} classes))",
                    shape,
                    a * d,
                    self.classes
                ),
            ));
        }
        let n = shape[0];
        let t = ops::reshape(output, &[n, a, d, s, s])?;
        ops::reshape(&ops::permute(&t, &[0, 3, 4, 1, 2])?, &[n * s * s * a, d])
    }

    /// The YOLO loss of a batch, summed over cells and anchors and averaged over pictures:
    /// for the anchors holding an object, the logistic loss of pc, λ_coord times the squared
    /// error of (σ(t1), σ(t2)) against (bx, by) and of (t3, t4) against
    /// (ln(bh / anchor_h), ln(bw / anchor_w)), and the log loss of the class; for the
    /// others, λ_noobj times the logistic loss of pc. `target` is `[N, S, S, A, 5 + C]`.
    pub fn loss(&self, output: &Var, target: &Tensor) -> Result<Var> {
        let rows = self.rows(output)?;
        let (r, d, a, s) = (rows.shape()[0], self.depth(), self.anchors.len(), self.grid);
        if target.numel() != r * d {
            return Err(Error::shape(
                "yolo_loss",
                format!("target {:?} does not fit output rows [{r}, {d}]", target.shape()),
            ));
        }
        let n = r / (s * s * a);
        let y = target.data();
        let (obj, noobj): (Vec<usize>, Vec<usize>) = (0..r).partition(|&i| y[i * d] == 1.0);
        let objectness = ops::narrow(&rows, 1, 0, 1)?;
        let mut total = Var::constant(Tensor::scalar(0.0));
        if !noobj.is_empty() {
            let t = ops::index_select(&objectness, 0, &noobj)?;
            let bce = ops::bce_with_logits(&t, &Tensor::zeros(&[noobj.len(), 1]))?;
            total = ops::add(&total, &ops::mul_scalar(&bce, LAMBDA_NOOBJ * noobj.len() as f32)?)?;
        }
        if !obj.is_empty() {
            let m = obj.len();
            let picked = ops::index_select(&rows, 0, &obj)?;
            let bce = ops::bce_with_logits(&ops::narrow(&picked, 1, 0, 1)?, &Tensor::ones(&[m, 1]))?;
            // box targets: (bx, by) as they are, (bh, bw) as log-ratios to the anchor
            let mut xy = Vec::with_capacity(2 * m);
            let mut hw = Vec::with_capacity(2 * m);
            let mut classes = Vec::with_capacity(m);
            for &i in &obj {
                let v = &y[i * d..(i + 1) * d];
                let (aw, ah) = self.anchors[i % a];
                xy.extend([v[1], v[2]]);
                hw.extend([(v[3] / (ah * s as f32)).ln(), (v[4] / (aw * s as f32)).ln()]);
                classes.push(v[5..].iter().position(|&c| c == 1.0).unwrap_or(0));
            }
            let xy_loss = ops::mse_loss(&ops::sigmoid(&ops::narrow(&picked, 1, 1, 2)?)?, &Tensor::new(&[m, 2], xy)?)?;
            let hw_loss = ops::mse_loss(&ops::narrow(&picked, 1, 3, 2)?, &Tensor::new(&[m, 2], hw)?)?;
            let class_loss = ops::cross_entropy(&ops::narrow(&picked, 1, 5, self.classes)?, &classes)?;
            // the means back to sums: 2 terms per row for each box part
            let box_loss = ops::mul_scalar(&ops::add(&xy_loss, &hw_loss)?, LAMBDA_COORD * 2.0 * m as f32)?;
            let obj_loss = ops::mul_scalar(&ops::add(&bce, &class_loss)?, m as f32)?;
            total = ops::add(&total, &ops::add(&box_loss, &obj_loss)?)?;
        }
        ops::mul_scalar(&total, 1.0 / n as f32)
    }

    /// The boxes one picture's raw output `[A (5 + C), S, S]` predicts, in picture-relative
    /// units, scored pc times the best class's probability (before any threshold or NMS).
    pub fn decode(&self, output: &Tensor) -> Result<Vec<Detection>> {
        let rows = self.rows(&Var::constant(output.reshape(&[1, self.channels(), self.grid, self.grid])?))?.tensor();
        let (s, a, d) = (self.grid, self.anchors.len(), self.depth());
        let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
        let mut out = Vec::with_capacity(s * s * a);
        for (i, t) in rows.data().chunks_exact(d).enumerate() {
            let (cell, k) = (i / a, i % a);
            let (row, col) = (cell / s, cell % s);
            let (aw, ah) = self.anchors[k];
            let logits = &t[5..];
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let z: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
            let class = (0..self.classes).fold(0, |m, c| if logits[c] > logits[m] { c } else { m });
            let bbox = BBox {
                cx: (col as f32 + sigmoid(t[1])) / s as f32,
                cy: (row as f32 + sigmoid(t[2])) / s as f32,
                h: ah * t[3].exp(),
                w: aw * t[4].exp(),
            };
            out.push(Detection { bbox, class, score: sigmoid(t[0]) / z });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The notes' example: a 3x3 grid, two anchors (a tall pedestrian one and a wide car
    /// one), three classes; y is 3 x 3 x 2 x 8.
    fn notes_grid() -> YoloGrid {
        YoloGrid::new(3, vec![(0.1, 0.3), (0.3, 0.1)], 3).unwrap()
    }

    #[test]
    fn objects_go_to_their_midpoint_cell_and_best_anchor() {
        let g = notes_grid();
        // a car (class 1) in the bottom-middle cell: wide, so the second anchor
        let car = Object { bbox: BBox::new(0.5, 0.8, 0.4, 0.15), class: 1 };
        // a pedestrian (class 0) whose midpoint is in the same cell: tall, the first anchor
        let person = Object { bbox: BBox::new(0.45, 0.75, 0.08, 0.3), class: 0 };
        let (y, dropped) = g.encode(&[car, person]).unwrap();
        assert_eq!(y.shape(), [3, 3, 2, 8]);
        assert_eq!(dropped, 0);
        let at = |row: usize, col: usize, k: usize| y.data()[((row * 3 + col) * 2 + k) * 8..][..8].to_vec();
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        // cell (2, 1): bx = 0.5 * 3 - 1, by = 0.8 * 3 - 2, bh = 0.15 * 3, bw = 0.4 * 3 (> 1)
        assert!(close(&at(2, 1, 1), &[1.0, 0.5, 0.4, 0.45, 1.2, 0.0, 1.0, 0.0]), "{:?}", at(2, 1, 1));
        assert!(close(&at(2, 1, 0), &[1.0, 0.35, 0.25, 0.9, 0.24, 1.0, 0.0, 0.0]), "{:?}", at(2, 1, 0));
        // every other cell and anchor: pc = 0 and nothing else
        let ones = y.data().iter().filter(|&&v| v != 0.0).count();
        assert_eq!(ones, 6 + 6);
        // a second car in the same cell and anchor cannot be encoded
        let (_, dropped) = g.encode(&[car, car]).unwrap();
        assert_eq!(dropped, 1);
        assert!(g.encode(&[Object { bbox: BBox::new(1.2, 0.5, 0.1, 0.1), class: 0 }]).is_err());
        assert!(g.encode(&[Object { class: 3, ..car }]).is_err());
    }

    #[test]
    fn decoding_the_outputs_a_target_implies_gives_back_its_boxes() {
        let g = notes_grid();
        let car = Object { bbox: BBox::new(0.5, 0.8, 0.4, 0.15), class: 1 };
        let (y, _) = g.encode(&[car]).unwrap();
        // raw outputs [A (5 + C), S, S]: the inverse of decoding where the target has pc = 1
        let logit = |p: f32| (p / (1.0 - p)).ln();
        let mut out = vec![-8.0f32; g.channels() * 9];
        for cell in 0..9 {
            for k in 0..2 {
                let v = &y.data()[(cell * 2 + k) * 8..][..8];
                if v[0] == 1.0 {
                    let (aw, ah) = g.anchors[k];
                    let t = [
                        8.0,
                        logit(v[1]),
                        logit(v[2]),
                        (v[3] / 3.0 / ah).ln(),
                        (v[4] / 3.0 / aw).ln(),
                        -4.0,
                        4.0,
                        -4.0,
                    ];
                    for (j, &tj) in t.iter().enumerate() {
                        out[(k * 8 + j) * 9 + cell] = tj;
                    }
                }
            }
        }
        let dets = g.decode(&Tensor::new(&[g.channels(), 3, 3], out).unwrap()).unwrap();
        assert_eq!(dets.len(), 18);
        let best = dets.iter().max_by(|a, b| a.score.total_cmp(&b.score)).unwrap();
        assert_eq!(best.class, 1);
        assert!(best.bbox.iou(&car.bbox) > 0.9999, "{:?}", best.bbox);
        assert!(best.score > 0.99);
    }
}
