//! Object detection from scratch, as the notes build it: boxes and IoU, non-max
//! suppression, anchor boxes, YOLO's grid encoding and loss, mean average precision, and
//! the data: darknet-layout datasets and a synthetic one to train on.

pub mod anchors;
pub mod boxes;
pub mod dataset;
pub mod detector;
pub mod localize;
pub mod map;
pub mod nms;
pub mod shapes;
pub mod sliding;
pub mod training;
pub mod yolo;

pub use anchors::{anchor_report, kmeans_anchors, AnchorReport, Anchors};
pub use boxes::{iou_matrix, shape_iou, BBox, Corners};
pub use dataset::{read_dataset, DetectionSet};
pub use localize::{localization_loss, localization_loss_squared};
pub use map::{mean_average_precision, voc_ap, ClassAp, MapReport, Scored, Truth};
pub use nms::{nms, Detection, NmsOptions};
pub use training::{train_yolo, AnchorCount, YoloConfig, YoloData, YoloObserver};
pub use yolo::{Object, YoloGrid};

/// An object found in a picture, its box in the picture's pixels: what `fovea yolo detect`
/// and `fovea detect sliding-windows` report (`{"class", "score", "box": {"x", "y",
/// "width", "height"}}` in JSON).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FoundObject {
    /// The class's name.
    pub class: String,
    /// The class's index among the detector's classes.
    #[serde(skip)]
    pub class_index: usize,
    /// How sure, 0..1.
    pub score: f32,
    /// Where, in the picture's pixels.
    #[serde(rename = "box")]
    pub bbox: PixelBox,
}

/// A box in a picture's pixels: its top-left corner and its size.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PixelBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

impl Detection {
    /// This detection, whose box is in a `width` x `height` picture's pixels, clipped to the
    /// picture and named from `classes`.
    pub fn found(&self, classes: &[String], width: f32, height: f32) -> FoundObject {
        let c = self.bbox.corners().clip(width, height);
        FoundObject {
            class: classes.get(self.class).cloned().unwrap_or_else(|| self.class.to_string()),
            class_index: self.class,
            score: self.score,
            bbox: PixelBox { x: c.x0, y: c.y0, width: c.x1 - c.x0, height: c.y1 - c.y0 },
        }
    }
}

/// Colours of the classes' boxes, in turn.
const CLASS_COLOURS: [crate::draw::Rgb; 6] =
    [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180], [240, 50, 230]];

/// The picture `rgb` (`[3, H, W]` in 0..1) with each object's box and `class score` drawn
/// on it, a colour per class.
pub fn draw_objects(rgb: &fovea::Tensor, objects: &[FoundObject]) -> crate::draw::Canvas {
    let mut canvas = crate::draw::Canvas::from_rgb(rgb);
    for o in objects {
        let b = o.bbox;
        let label = format!("{} {:.2}", o.class, o.score);
        let colour = CLASS_COLOURS[o.class_index % CLASS_COLOURS.len()];
        canvas.labelled_box(b.x as f64, b.y as f64, b.width as f64, b.height as f64, &label, colour);
    }
    canvas
}
