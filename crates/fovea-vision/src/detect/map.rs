//! Mean average precision at IoU 0.5, as PASCAL VOC measures it (the devkit's `voc_eval`
//! since 2010): per class, detections from all pictures best first; each is a true
//! positive if it overlaps a not yet matched labelled box of its class in its picture by
//! IoU > 0.5 (the best-overlapping one), else a false positive; AP is the area under the
//! precision-recall curve made monotone (all-point interpolation).

use super::boxes::BBox;
use super::nms::Detection;

/// A detected box in picture `image`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// index of the picture
    pub image: usize,
    /// the box, class and score
    pub detection: Detection,
}

/// A labelled object in picture `image`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Truth {
    /// index of the picture
    pub image: usize,
    /// the labelled box
    pub bbox: BBox,
    /// class id
    pub class: usize,
}

/// One class's figures: AP over all the detections given; precision, recall and the counts
/// over those scoring above the evaluation's `score_threshold` (the detector's operating
/// point).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassAp {
    /// `None` when the class has no labelled box (VOC leaves it out of the mean).
    pub ap: Option<f64>,
    /// true positives / detections at the operating point
    pub precision: f64,
    /// true positives / labelled boxes at the operating point
    pub recall: f64,
    /// detections at the operating point that matched a labelled box
    pub true_positives: usize,
    /// detections at the operating point that did not
    pub false_positives: usize,
    /// labelled boxes of the class
    pub labelled: usize,
}

/// AP of every class and their mean over the classes that have labelled boxes.
#[derive(Clone, Debug, PartialEq)]
pub struct MapReport {
    /// mean of `per_class`' AP over the classes with labelled boxes
    pub map: f64,
    /// per class, in class order
    pub per_class: Vec<ClassAp>,
}

/// Area under the monotone envelope of the precision-recall points (VOC's `voc_ap` with
/// `use_07_metric=False`).
pub fn voc_ap(recall: &[f64], precision: &[f64]) -> f64 {
    let mut r = vec![0.0];
    r.extend_from_slice(recall);
    r.push(1.0);
    let mut p = vec![0.0];
    p.extend_from_slice(precision);
    p.push(0.0);
    for i in (0..p.len() - 1).rev() {
        p[i] = p[i].max(p[i + 1]);
    }
    (0..r.len() - 1).filter(|&i| r[i + 1] != r[i]).map(|i| (r[i + 1] - r[i]) * p[i + 1]).sum()
}

/// VOC's evaluation of `detections` against `truths` for `classes` classes at IoU > `iou`;
/// precision and recall are reported for the detections scoring above `score_threshold`.
pub fn mean_average_precision(
    detections: &[Scored],
    truths: &[Truth],
    classes: usize,
    iou: f32,
    score_threshold: f32,
) -> MapReport {
    let mut per_class = Vec::with_capacity(classes);
    for class in 0..classes {
        let gt: Vec<&Truth> = truths.iter().filter(|t| t.class == class).collect();
        let mut dets: Vec<&Scored> = detections.iter().filter(|d| d.detection.class == class).collect();
        // best first; equal scores in input order
        dets.sort_by(|a, b| b.detection.score.total_cmp(&a.detection.score));
        let mut matched = vec![false; gt.len()];
        let (mut tp, mut fp) = (0usize, 0usize);
        // the counts at the operating point: detections come best first, so a prefix
        let (mut tp_at, mut fp_at) = (0usize, 0usize);
        let (mut recall, mut precision) = (Vec::with_capacity(dets.len()), Vec::with_capacity(dets.len()));
        for d in &dets {
            let best = gt
                .iter()
                .enumerate()
                .filter(|(_, t)| t.image == d.image)
                .map(|(j, t)| (j, t.bbox.iou(&d.detection.bbox)))
                .fold(None, |m: Option<(usize, f32)>, (j, o)| if m.is_none_or(|m| o > m.1) { Some((j, o)) } else { m });
            match best {
                Some((j, o)) if o > iou && !matched[j] => {
                    matched[j] = true;
                    tp += 1;
                }
                _ => fp += 1,
            }
            if d.detection.score > score_threshold {
                (tp_at, fp_at) = (tp, fp);
            }
            recall.push(tp as f64 / gt.len().max(1) as f64);
            precision.push(tp as f64 / (tp + fp) as f64);
        }
        per_class.push(ClassAp {
            ap: (!gt.is_empty()).then(|| voc_ap(&recall, &precision)),
            precision: tp_at as f64 / (tp_at + fp_at).max(1) as f64,
            recall: tp_at as f64 / gt.len().max(1) as f64,
            true_positives: tp_at,
            false_positives: fp_at,
            labelled: gt.len(),
        });
    }
    let aps: Vec<f64> = per_class.iter().filter_map(|c| c.ap).collect();
    MapReport { map: aps.iter().sum::<f64>() / aps.len().max(1) as f64, per_class }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(image: usize, cx: f32, score: f32) -> Scored {
        Scored { image, detection: Detection { bbox: BBox::new(cx, 0.0, 2.0, 2.0), class: 0, score } }
    }

    #[test]
    fn ap_by_hand() {
        // two labelled boxes; detections: a hit (0.9), a miss (0.8), the other hit (0.7),
        // a duplicate of the first hit (0.6)
        let truths = [
            Truth { image: 0, bbox: BBox::new(0.0, 0.0, 2.0, 2.0), class: 0 },
            Truth { image: 1, bbox: BBox::new(0.0, 0.0, 2.0, 2.0), class: 0 },
        ];
        let dets = [det(0, 0.1, 0.9), det(0, 9.0, 0.8), det(1, 0.0, 0.7), det(0, 0.0, 0.6)];
        let r = mean_average_precision(&dets, &truths, 2, 0.5, 0.0);
        // points (r, p): (.5, 1), (.5, .5), (1, 2/3), (1, .5): AP = .5 * 1 + .5 * 2/3
        let c = r.per_class[0];
        assert!((c.ap.unwrap() - (0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-12, "{c:?}");
        assert_eq!((c.true_positives, c.false_positives, c.labelled), (2, 2, 2));
        assert_eq!((c.precision, c.recall), (0.5, 1.0));
        // at an operating point of 0.75: the first two detections, a hit and a miss
        let c75 = mean_average_precision(&dets, &truths, 2, 0.5, 0.75).per_class[0];
        assert_eq!((c75.true_positives, c75.false_positives, c75.precision, c75.recall), (1, 1, 0.5, 0.5));
        // class 1 has no labelled box: no AP, and the mean is class 0's
        assert_eq!(r.per_class[1].ap, None);
        assert_eq!(r.map, c.ap.unwrap());
        assert_eq!(voc_ap(&[], &[]), 0.0);
    }
}
