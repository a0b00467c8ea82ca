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

pub use anchors::{kmeans_anchors, Anchors};
pub use boxes::{iou_matrix, shape_iou, BBox, Corners};
pub use dataset::{read_dataset, DetectionSet};
pub use localize::{localization_loss, localization_loss_squared};
pub use map::{mean_average_precision, voc_ap, ClassAp, MapReport, Scored, Truth};
pub use nms::{nms, Detection, NmsOptions};
pub use training::{train_yolo, YoloConfig, YoloData, YoloObserver};
pub use yolo::{Object, YoloGrid};
