//! Line charts of training curves, drawn on a [`Canvas`].

use crate::draw::{Canvas, Rgb};
use crate::train::EpochMetrics;
use fovea::Result;
use std::path::Path;

/// matplotlib's first default colour (`tab:blue`).
pub const BLUE: Rgb = [31, 119, 180];
/// matplotlib's second default colour (`tab:orange`).
pub const ORANGE: Rgb = [255, 127, 14];
/// matplotlib's third default colour (`tab:green`).
pub const GREEN: Rgb = [44, 160, 44];
const GREY: Rgb = [200, 200, 200];
const BLACK: Rgb = [0, 0, 0];

/// One line of a chart.
pub struct Series<'a> {
    /// legend label
    pub name: &'a str,
    /// line colour
    pub color: Rgb,
    /// (x, y) points, joined in order
    pub points: Vec<(f32, f32)>,
}

/// Draws one chart (axes, ticks, series, legend) into the given rectangle.
pub fn chart(canvas: &mut Canvas, (x0, y0, w, h): (i64, i64, i64, i64), title: &str, x_label: &str, series: &[Series]) {
    let all: Vec<(f32, f32)> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
    if all.is_empty() {
        return;
    }
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for &(x, y) in &all {
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    }
    if xmax <= xmin {
        xmax = xmin + 1.0;
    }
    let pad = ((ymax - ymin) * 0.08).max(1e-3);
    let (ymin, ymax) = (ymin - pad, ymax + pad);
    let (left, top, right, bottom) = (x0 + 60, y0 + 30, x0 + w - 15, y0 + h - 40);
    let px = |x: f32| left + ((x - xmin) / (xmax - xmin) * (right - left) as f32).round() as i64;
    let py = |y: f32| bottom - ((y - ymin) / (ymax - ymin) * (bottom - top) as f32).round() as i64;
    canvas.text(x0 + (w - Canvas::text_width(title, 2)) / 2, y0 + 6, title, 2, BLACK);
    for i in 0..=4 {
        let v = ymin + (ymax - ymin) * i as f32 / 4.0;
        let y = py(v);
        canvas.line(left, y, right, y, GREY);
        let label = format!("{v:.3}");
        canvas.text(left - 6 - Canvas::text_width(&label, 1), y - 3, &label, 1, BLACK);
    }
    let ticks = ((xmax - xmin).round() as usize).clamp(1, 10);
    for i in 0..=ticks {
        let v = xmin + (xmax - xmin) * i as f32 / ticks as f32;
        let x = px(v);
        canvas.line(x, bottom, x, bottom + 4, BLACK);
        let label = format!("{v:.0}");
        canvas.text(x - Canvas::text_width(&label, 1) / 2, bottom + 8, &label, 1, BLACK);
    }
    canvas.text(left + (right - left - Canvas::text_width(x_label, 1)) / 2, bottom + 22, x_label, 1, BLACK);
    canvas.line(left, top, left, bottom, BLACK);
    canvas.line(left, bottom, right, bottom, BLACK);
    for (k, s) in series.iter().enumerate() {
        for pair in s.points.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            for t in 0..2 {
                canvas.line(px(a.0), py(a.1) + t, px(b.0), py(b.1) + t, s.color);
            }
        }
        for &(x, y) in &s.points {
            canvas.dot(px(x), py(y), 2, s.color);
        }
        let ly = top + 6 + 12 * k as i64;
        canvas.fill_rect(right - 110, ly, 14, 3, s.color);
        canvas.text(right - 90, ly - 2, s.name, 1, BLACK);
    }
}

/// Two charts side by side: loss and accuracy per epoch, train and test.
pub fn training_curves(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut canvas = Canvas::new(960, 380, [255, 255, 255]);
    let pts = |f: fn(&EpochMetrics) -> f32| history.iter().map(|m| (m.epoch as f32, f(m))).collect::<Vec<_>>();
    chart(
        &mut canvas,
        (0, 0, 480, 380),
        "loss",
        "epoch",
        &[
            Series { name: "train", color: BLUE, points: pts(|m| m.train_loss) },
            Series { name: "test", color: ORANGE, points: pts(|m| m.test_loss) },
        ],
    );
    chart(
        &mut canvas,
        (480, 0, 480, 380),
        "accuracy",
        "epoch",
        &[
            Series { name: "train", color: BLUE, points: pts(|m| m.train_accuracy) },
            Series { name: "test", color: ORANGE, points: pts(|m| m.test_accuracy) },
        ],
    );
    canvas.save_png(path)
}

/// A confusion matrix (rows: true class, columns: predicted) as a picture: each cell shaded
/// by its share of its row, with its count.
pub fn confusion_picture(cm: &[Vec<usize>], names: &[String]) -> Canvas {
    let n = cm.len() as i64;
    let cell = 44;
    let (left, top) = (110, 40);
    let mut c = Canvas::new((left + n * cell + 20) as usize, (top + n * cell + 20) as usize, [255, 255, 255]);
    c.text(left, 12, "TRUE (ROWS) VS PREDICTED (COLUMNS)", 1, [0, 0, 0]);
    for (i, row) in cm.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f32;
        let name: String = names.get(i).map_or("", |s| s.as_str()).chars().take(16).collect();
        c.text(4, top + i as i64 * cell + cell / 2 - 3, &name, 1, [0, 0, 0]);
        for (j, &v) in row.iter().enumerate() {
            let shade = 255 - (v as f32 / total * 255.0) as u8;
            let (x, y) = (left + j as i64 * cell, top + i as i64 * cell);
            c.fill_rect(x, y, cell - 1, cell - 1, [shade, shade, 255]);
            let txt = v.to_string();
            let color = if shade < 128 { [255, 255, 255] } else { [0, 0, 0] };
            c.text(x + (cell - Canvas::text_width(&txt, 1)) / 2, y + cell / 2 - 3, &txt, 1, color);
        }
    }
    c
}
