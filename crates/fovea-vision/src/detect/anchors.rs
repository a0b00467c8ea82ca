//! Anchor boxes from the data (YOLOv2): k-means over the shapes (width, height) of the
//! labelled boxes, with distance 1 - IoU of two shapes placed on one centre, so that big
//! and small boxes count alike.

use super::boxes::shape_iou;
use fovea::{Error, Result, Rng};

/// `k` anchor shapes, smallest area first, and the mean over the boxes of the best IoU
/// any anchor reaches with them.
#[derive(Clone, Debug, PartialEq)]
pub struct Anchors {
    /// (width, height) of each anchor, in the units of the boxes
    pub shapes: Vec<(f32, f32)>,
    /// mean over the boxes of the best IoU with any anchor
    pub mean_iou: f32,
}

/// The IoU of each shape with its best anchor.
fn best_ious(shapes: &[(f32, f32)], anchors: &[(f32, f32)]) -> Vec<f32> {
    shapes.iter().map(|&(w, h)| anchors.iter().map(|&(aw, ah)| shape_iou(w, h, aw, ah)).fold(0.0, f32::max)).collect()
}

/// k-means with 1 - IoU, seeded k-means++ start (each next centre drawn in proportion to
/// the squared distance to the nearest chosen one), until no box changes cluster (at most
/// 300 rounds). A cluster left empty takes the box worst served.
pub fn kmeans_anchors(shapes: &[(f32, f32)], k: usize, seed: u64) -> Result<Anchors> {
    if k == 0 || shapes.len() < k {
        return Err(Error::Invalid(format!("{k} anchors need at least {k} boxes, and there are {}", shapes.len())));
    }
    if let Some(bad) = shapes.iter().find(|(w, h)| !(*w > 0.0 && *h > 0.0 && w.is_finite() && h.is_finite())) {
        return Err(Error::Invalid(format!("a box shape {bad:?} is not positive")));
    }
    let mut distinct: Vec<(f32, f32)> = shapes.to_vec();
    distinct.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    distinct.dedup();
    if distinct.len() < k {
        return Err(Error::Invalid(format!(
            "{k} anchors need {k} different box shapes, and there are {}",
            distinct.len()
        )));
    }
    let mut rng = Rng::new(seed);
    let mut centres = vec![shapes[rng.below(shapes.len())]];
    while centres.len() < k {
        let d2: Vec<f64> = best_ious(shapes, &centres).iter().map(|&b| ((1.0 - b) as f64).powi(2)).collect();
        let total: f64 = d2.iter().sum();
        let next = if total > 0.0 {
            let mut r = rng.uniform() as f64 * total;
            d2.iter()
                .position(|&d| {
                    r -= d;
                    r < 0.0
                })
                .unwrap_or(shapes.len() - 1)
        } else {
            rng.below(shapes.len()) // every box is already a centre's shape
        };
        centres.push(shapes[next]);
    }
    let mut assignment = vec![usize::MAX; shapes.len()];
    for _ in 0..300 {
        let mut changed = false;
        for (i, &(w, h)) in shapes.iter().enumerate() {
            let best = (0..k)
                .map(|c| shape_iou(w, h, centres[c].0, centres[c].1))
                .enumerate()
                .fold((0, -1.0f32), |m, (c, iou)| if iou > m.1 { (c, iou) } else { m })
                .0;
            changed |= assignment[i] != best;
            assignment[i] = best;
        }
        if !changed {
            break;
        }
        for (c, centre) in centres.iter_mut().enumerate() {
            let members: Vec<&(f32, f32)> =
                shapes.iter().zip(&assignment).filter(|(_, &a)| a == c).map(|(s, _)| s).collect();
            if !members.is_empty() {
                let n = members.len() as f32;
                *centre = (members.iter().map(|s| s.0).sum::<f32>() / n, members.iter().map(|s| s.1).sum::<f32>() / n);
            }
        }
        // an empty cluster moves to the box its centre would serve best: the worst-served one
        for c in 0..k {
            if !assignment.contains(&c) {
                let best = best_ious(shapes, &centres);
                let worst = (0..shapes.len()).fold(0, |m, i| if best[i] < best[m] { i } else { m });
                centres[c] = shapes[worst];
                assignment[worst] = c;
            }
        }
    }
    centres.sort_by(|a, b| (a.0 * a.1).total_cmp(&(b.0 * b.1)));
    let best = best_ious(shapes, &centres);
    Ok(Anchors { mean_iou: best.iter().sum::<f32>() / best.len() as f32, shapes: centres })
}

/// The anchors of a darknet-layout dataset for each count from 1 to k: what
/// `fovea detect anchors` reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AnchorReport {
    /// Labelled boxes.
    pub boxes: usize,
    /// Pictures.
    pub pictures: usize,
    /// The mean best IoU with k = 1, 2, ... anchors.
    pub mean_iou_per_k: Vec<f32>,
    /// The k anchors (width, height relative to the picture), smallest first.
    pub anchors: Vec<(f32, f32)>,
}

/// [`kmeans_anchors`] of the boxes of the dataset `data` for every count from 1 to `k`.
pub fn anchor_report(data: &std::path::Path, k: usize, seed: u64) -> Result<AnchorReport> {
    let set = super::read_dataset(data)?;
    let shapes: Vec<(f32, f32)> = set.objects.iter().flatten().map(|o| (o.bbox.w, o.bbox.h)).collect();
    if k > shapes.len() {
        return Err(Error::setting(
            "k",
            format!("must be at most the {} labelled boxes of {}", shapes.len(), data.display()),
        ));
    }
    let per_k = (1..=k).map(|k| kmeans_anchors(&shapes, k, seed)).collect::<Result<Vec<_>>>()?;
    let anchors = per_k.last().map(|a| a.shapes.clone()).unwrap_or_default();
    let mean_iou_per_k = per_k.iter().map(|a| a.mean_iou).collect();
    Ok(AnchorReport { boxes: shapes.len(), pictures: set.len(), mean_iou_per_k, anchors })
}

impl std::fmt::Display for AnchorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} boxes in {} pictures", self.boxes, self.pictures)?;
        for (k, iou) in self.mean_iou_per_k.iter().enumerate() {
            writeln!(f, "k = {}: mean best IoU {iou:.4}", k + 1)?;
        }
        write!(f, "anchors (width, height relative to the picture), smallest first:")?;
        for (w, h) in &self.anchors {
            write!(f, "\n  {w:.4} {h:.4}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_groups_of_shapes_give_their_means() {
        // tall, wide and small boxes, each group spread by +-5%
        let mut rng = Rng::new(1);
        let mut shapes = Vec::new();
        for &(w, h) in &[(0.1f32, 0.3f32), (0.4, 0.1), (0.05, 0.05)] {
            for _ in 0..50 {
                shapes.push((w * rng.uniform_range(0.95, 1.05), h * rng.uniform_range(0.95, 1.05)));
            }
        }
        let a = kmeans_anchors(&shapes, 3, 7).unwrap();
        let want = [(0.05, 0.05), (0.1, 0.3), (0.4, 0.1)]; // by area
        for (got, want) in a.shapes.iter().zip(want) {
            assert!((got.0 / want.0 - 1.0).abs() < 0.02 && (got.1 / want.1 - 1.0).abs() < 0.02, "{got:?} vs {want:?}");
        }
        assert!(a.mean_iou > 0.93, "mean IoU {}", a.mean_iou);
        assert_eq!(a, kmeans_anchors(&shapes, 3, 7).unwrap(), "same seed, same anchors");
        // more anchors serve the boxes at least as well; one anchor is the worst
        let one = kmeans_anchors(&shapes, 1, 7).unwrap();
        assert!(one.mean_iou < a.mean_iou);
        assert!(kmeans_anchors(&shapes[..2], 3, 7).is_err());
        assert!(kmeans_anchors(&[(0.0, 1.0)], 1, 7).is_err());
    }
}
