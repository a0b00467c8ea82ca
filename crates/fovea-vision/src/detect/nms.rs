//! Greedy non-max suppression, as the notes run it: drop the boxes whose score is at most
//! the threshold (pc <= 0.6), then repeatedly keep the best remaining box and discard the
//! remaining boxes of its class that overlap it with IoU >= 0.5.

use super::boxes::{BBox, Corners};

/// An object found in a picture: where, what, and how sure (YOLO: pc times the class's
/// probability).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// where: relative to the picture from YOLO, in pixels from sliding windows
    pub bbox: BBox,
    /// class id
    pub class: usize,
    /// how sure, 0..1
    pub score: f32,
}

/// The notes' defaults: discard score <= 0.6, suppress IoU >= 0.5, once per class.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct NmsOptions {
    /// Drop boxes whose score (pc times the class probability) is at most this
    #[cfg_attr(feature = "cli", arg(long = "min-score", value_parser = crate::cli::fraction::<f32>, default_value_t = NmsOptions::default().score_threshold))]
    pub score_threshold: f32,
    /// Suppress boxes of a class overlapping a better one by at least this IoU (above 0)
    #[cfg_attr(feature = "cli", arg(long = "iou", value_parser = crate::cli::fraction::<f32>, default_value_t = NmsOptions::default().iou_threshold))]
    pub iou_threshold: f32,
    /// Keep at most this many, the best first.
    #[cfg_attr(feature = "cli", arg(skip = NmsOptions::default().max_detections))]
    pub max_detections: usize,
    /// Suppress only within a class (the notes: run NMS once per class); else across all.
    #[cfg_attr(feature = "cli", arg(skip = NmsOptions::default().per_class))]
    pub per_class: bool,
}

impl Default for NmsOptions {
    fn default() -> Self {
        NmsOptions { score_threshold: 0.6, iou_threshold: 0.5, max_detections: 100, per_class: true }
    }
}

/// The indices of the detections NMS keeps, best score first; equal scores keep the input
/// order. One sort; then, class by class, each kept box scans the candidates after it.
pub fn nms(detections: &[Detection], o: &NmsOptions) -> Vec<usize> {
    let mut order: Vec<usize> = (0..detections.len()).filter(|&i| detections[i].score > o.score_threshold).collect();
    // stable: ties stay in input order
    order.sort_by(|&a, &b| detections[b].score.total_cmp(&detections[a].score));
    // positions in `order`, bucketed by class (one bucket when suppressing across classes)
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (pos, &i) in order.iter().enumerate() {
        groups.entry(if o.per_class { detections[i].class } else { 0 }).or_default().push(pos);
    }
    let mut kept = Vec::new();
    for members in groups.values() {
        let corners: Vec<Corners> = members.iter().map(|&pos| detections[order[pos]].bbox.corners()).collect();
        let mut suppressed = vec![false; members.len()];
        let mut count = 0;
        for k in 0..members.len() {
            if count >= o.max_detections {
                break;
            }
            if suppressed[k] {
                continue;
            }
            kept.push(members[k]);
            count += 1;
            for j in k + 1..members.len() {
                if !suppressed[j] && corners[k].iou(&corners[j]) >= o.iou_threshold {
                    suppressed[j] = true;
                }
            }
        }
    }
    // back to best-first across classes, then the cap
    kept.sort_unstable();
    kept.truncate(o.max_detections);
    kept.into_iter().map(|pos| order[pos]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(cx: f32, class: usize, score: f32) -> Detection {
        Detection { bbox: BBox::new(cx, 0.0, 2.0, 2.0), class, score }
    }

    #[test]
    fn the_notes_rules() {
        let d = [
            det(0.0, 0, 0.9),
            det(0.5, 0, 0.8),  // IoU 0.6 with the first: suppressed
            det(0.0, 1, 0.7),  // another class: kept
            det(5.0, 0, 0.6),  // score <= 0.6: discarded
            det(1.0, 0, 0.75), // IoU 1/3 with the first: kept
        ];
        // best first
        assert_eq!(nms(&d, &NmsOptions::default()), vec![0, 4, 2]);
        let across = NmsOptions { per_class: false, ..Default::default() };
        assert_eq!(nms(&d, &across), vec![0, 4]);
        let capped = NmsOptions { max_detections: 2, ..Default::default() };
        assert_eq!(nms(&d, &capped), vec![0, 4]);
        // IoU exactly 0.5 suppresses (the notes' ">= 0.5"): 3x2 boxes one apart, 4 / 8
        let e =
            [0.0f32, 1.0].map(|cx| Detection { bbox: BBox::new(cx, 0.0, 3.0, 2.0), class: 0, score: 0.9 - cx / 10.0 });
        assert_eq!(e[0].bbox.iou(&e[1].bbox), 0.5);
        assert_eq!(nms(&e, &NmsOptions::default()).len(), 1);
        // equal scores: the earlier detection wins
        let t = [det(0.0, 0, 0.8), det(0.1, 0, 0.8)];
        assert_eq!(nms(&t, &NmsOptions::default()), vec![0]);
    }
}
