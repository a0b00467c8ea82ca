//! Sliding windows, the notes' two ways: crop every window and classify it (naive), or turn
//! the classifier's fully connected layers into convolutions and run it once over the whole
//! picture, which computes every window's answer in one pass, sharing the work of
//! overlapping windows.

use super::boxes::{BBox, Corners};
use super::nms::Detection;
use super::shapes::{self, ShapesConfig};
use crate::data::Dataset;
use fovea::nn::init::Init;
use fovea::nn::{Activation, Conv, Flatten, Linear, Module, Pool, Sequential};
use fovea::ops::{self, ConvOptions, PoolOptions};
use fovea::{no_grad, Error, Result, Rng, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The side of the windows the notes' classifier takes.
pub const WINDOW: usize = 14;
/// How far apart neighbouring windows are when the converted network runs over a picture:
/// the product of its strides (one 2x2 max pool).
pub const WINDOW_STRIDE: usize = 2;

/// The notes' window classifier: 14x14x3 -> conv 5x5 (16) -> max pool 2 -> 5x5x16 ->
/// FC 400 -> FC 400 -> `classes` outputs (ReLU between).
pub fn window_net(classes: usize, rng: &mut Rng) -> Result<Sequential> {
    let init = Init::PytorchDefault;
    Ok(Sequential::new()
        .add("conv1", Conv::config(3, 16, &[5, 5]).init(init).build(rng)?)
        .add("relu1", Activation::Relu)
        .add("pool1", Pool::max(PoolOptions::new(2)))
        .add("flatten", Flatten)
        .add("fc1", Linear::config(5 * 5 * 16, 400).init(init).build(rng)?)
        .add("relu2", Activation::Relu)
        .add("fc2", Linear::config(400, 400).init(init).build(rng)?)
        .add("relu3", Activation::Relu)
        .add("fc3", Linear::config(400, classes).init(init).build(rng)?))
}

/// The same network with its fully connected layers as convolutions, as the notes show:
/// the first one after the flatten, over a C x h x w volume, becomes `out` filters of
/// C x h x w (400 5x5 filters over 5x5x16); each later one becomes `out` 1x1 filters. The
/// weights are the trained ones, reshaped. `input` is the `[C, H, W]` the network was
/// trained on; on it the result gives the same numbers as `[N, K, 1, 1]`, on a larger
/// picture a map of every window's.
pub fn fc_to_conv(model: Sequential, input: [usize; 3]) -> Result<Sequential> {
    let mut out = Sequential::new();
    let mut x = Var::constant(Tensor::zeros(&[1, input[0], input[1], input[2]]));
    let mut volume: Option<Vec<usize>> = None; // [C, h, w] that the flatten received
    let mut converted = 0;
    for (name, layer) in model.into_layers() {
        let as_any = layer.as_any();
        if as_any.is_some_and(|a| a.is::<Flatten>()) {
            volume = Some(x.shape()[1..].to_vec());
            x = no_grad(|| layer.forward(&x))?;
            continue;
        }
        if let Some(linear) = as_any.and_then(|a| a.downcast_ref::<Linear>()) {
            let Some(v) = &volume else {
                return Err(Error::Invalid(format!(
                    "layer '{name}' is fully connected but no flatten comes before it"
                )));
            };
            let w = linear.weight.tensor();
            let out_features = w.shape()[0];
            // the first after the flatten covers the whole volume; later ones see 1x1 maps
            let kernel = if converted == 0 { v.clone() } else { vec![w.shape()[1], 1, 1] };
            let mut shape = vec![out_features];
            shape.extend(&kernel);
            let conv = Conv {
                weight: Var::param(w.reshape(&shape)?),
                // copies, as the weight is: the two networks do not share parameters
                bias: linear.bias.as_ref().map(|b| Var::param(b.tensor())),
                options: ConvOptions::default(),
            };
            x = no_grad(|| layer.forward(&x))?;
            out = out.add(&name, conv);
            converted += 1;
            continue;
        }
        x = no_grad(|| layer.forward(&x))?;
        out = out.add_boxed(&name, layer);
    }
    if converted == 0 {
        return Err(Error::Invalid("the network has no fully connected layer to convert".into()));
    }
    Ok(out)
}

/// Class probabilities `[K, rows, cols]` of every `WINDOW` x `WINDOW` window of `picture`
/// (`[3, H, W]`) at `WINDOW_STRIDE`, by cropping each window and running `classifier` on it.
pub fn naive_windows(classifier: &dyn Module, picture: &Tensor) -> Result<Tensor> {
    let (h, w) = (picture.shape()[1], picture.shape()[2]);
    if h < WINDOW || w < WINDOW {
        return Err(Error::Invalid(format!("a {h}x{w} picture is smaller than one {WINDOW}x{WINDOW} window")));
    }
    let (rows, cols) = ((h - WINDOW) / WINDOW_STRIDE + 1, (w - WINDOW) / WINDOW_STRIDE + 1);
    let what = format!("the {} windows of a {w}x{h} picture", rows * cols);
    fovea::budget::check_shape(&what, &[rows, cols, 3, WINDOW, WINDOW])?;
    let mut crops = Vec::with_capacity(rows * cols * 3 * WINDOW * WINDOW);
    for r in 0..rows {
        for c in 0..cols {
            let crop = picture.narrow(1, r * WINDOW_STRIDE, WINDOW)?.narrow(2, c * WINDOW_STRIDE, WINDOW)?;
            crops.extend_from_slice(crop.data());
        }
    }
    // in chunks, so that a big picture's windows never all sit in memory at once
    let crops = Tensor::new(&[rows * cols, 3, WINDOW, WINDOW], crops)?;
    let p = ops::softmax(&Var::constant(crate::train::predict_all(classifier, &crops, 4096)?), 1)?.tensor();
    // [windows, K] -> [K, rows, cols]
    let k = p.shape()[1];
    p.reshape(&[rows, cols, k])?.permute(&[2, 0, 1])
}

/// The same map from the converted network in one pass over the whole picture.
pub fn convolutional_windows(converted: &dyn Module, picture: &Tensor) -> Result<Tensor> {
    let (h, w) = (picture.shape()[1], picture.shape()[2]);
    let p = no_grad(|| -> Result<Tensor> {
        let y = converted.forward(&Var::constant(picture.reshape(&[1, 3, h, w])?))?;
        Ok(ops::softmax(&y, 1)?.tensor())
    })?;
    p.reshape(&p.shape()[1..])
}

/// Boxes for the windows whose most likely class is an object (not `background`) with a
/// probability above `min_score`; `(sx, sy)` map the map's picture back to the original's
/// pixels (original size / scaled size, per axis).
pub fn window_detections(probs: &Tensor, background: usize, min_score: f32, (sx, sy): (f32, f32)) -> Vec<Detection> {
    let (k, rows, cols) = (probs.shape()[0], probs.shape()[1], probs.shape()[2]);
    let p = probs.data();
    let mut out = Vec::new();
    for r in 0..rows {
        for c in 0..cols {
            let at = |class: usize| p[(class * rows + r) * cols + c];
            let class = (0..k).fold(0, |m, j| if at(j) > at(m) { j } else { m });
            if class != background && at(class) > min_score {
                let (x0, y0) = ((c * WINDOW_STRIDE) as f32 * sx, (r * WINDOW_STRIDE) as f32 * sy);
                let (ww, wh) = (WINDOW as f32 * sx, WINDOW as f32 * sy);
                let bbox = Corners { x0, y0, x1: x0 + ww, y1: y0 + wh }.center_form();
                out.push(Detection { bbox, class, score: at(class) });
            }
        }
    }
    out
}

/// What a window classifier's file holds besides its weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WindowRun {
    /// The object classes, then "background".
    pub classes: Vec<String>,
    /// accuracy on the test windows after the last epoch, 0..1
    pub test_accuracy: f32,
}

const WINDOWS_FILE: &str = "windows.safetensors";
const WINDOWS_KEY: &str = "fovea-windows";

/// Writes the classifier and `run` to `dir/windows.safetensors` and `dir/windows.json`.
pub fn save_window_classifier(dir: &Path, net: &Sequential, run: &WindowRun) -> Result<()> {
    fovea::io::save_checkpoint(&dir.join(WINDOWS_FILE), net, None, WINDOWS_KEY, run)
}

/// Reads a run folder written by [`save_window_classifier`] and rebuilds the classifier.
pub fn load_window_classifier(path: &Path) -> Result<(WindowRun, Sequential)> {
    let fovea::io::Checkpoint { meta: run, model: tensors, .. }: fovea::io::Checkpoint<WindowRun> =
        crate::train::load_network(path, WINDOWS_FILE, WINDOWS_KEY, "fovea detect train-windows")?;
    if run.classes.len() < 2 {
        return Err(Error::format(path, "a window classifier needs a class and background"));
    }
    let named = crate::train::about_file(path, WINDOWS_FILE);
    let net = window_net(run.classes.len(), &mut Rng::new(0)).map_err(&named)?;
    fovea::nn::load_state_dict(&net, &tensors).map_err(&named)?;
    Ok((run, net))
}

/// Training windows cut from synthetic pictures, each resized to `WINDOW` x `WINDOW`: per
/// object a square around it (its longer side plus 10%) and a jittered one, labelled with
/// its class; a square on part of it (IoU < 0.35 with every object) and squares that
/// overlap no object (IoU < 0.1), labelled background (`3`). Squares reaching past the
/// picture are skipped.
pub fn window_crops(pictures: usize, seed: u64) -> Result<Dataset> {
    let config = ShapesConfig::default();
    let size = config.size as f32;
    let mut images = Vec::new();
    let mut labels = Vec::new();
    let mut rng = Rng::derive(seed, u64::MAX);
    let set = super::dataset::shapes_in_memory(0, pictures, seed, &config)?;
    for (i, picture_objects) in set.objects.iter().enumerate() {
        let picture = set.pictures.narrow(0, i, 1)?.reshape(&[3, config.size, config.size])?;
        let mut cut = |b: BBox, label: usize| -> Result<()> {
            let c = b.corners();
            if c.x0 < 0.0 || c.y0 < 0.0 || c.x1 > size || c.y1 > size {
                return Ok(());
            }
            let (x0, y0, side) = (c.x0.round() as usize, c.y0.round() as usize, (b.w.round() as usize).max(4));
            if x0 + side > config.size || y0 + side > config.size {
                return Ok(());
            }
            let crop = picture.narrow(1, y0, side)?.narrow(2, x0, side)?;
            images.extend(crate::image::resize_bilinear(&crop, WINDOW, WINDOW)?.into_vec());
            labels.push(label);
            Ok(())
        };
        let objects: Vec<BBox> = picture_objects.iter().map(|o| o.bbox.scale(size, size)).collect();
        let background = shapes::CLASSES.len();
        for (o, b) in picture_objects.iter().zip(&objects) {
            let side = b.w.max(b.h) * 1.1;
            // the object, and the object a little off-centre and off-size
            cut(BBox::new(b.cx, b.cy, side, side), o.class)?;
            let s = side * rng.uniform_range(0.9, 1.15);
            let jitter = BBox::new(
                b.cx + rng.uniform_range(-0.08, 0.08) * side,
                b.cy + rng.uniform_range(-0.08, 0.08) * side,
                s,
                s,
            );
            cut(jitter, o.class)?;
            // a window on part of it is background: the classifier must not call parts objects
            let s = side * rng.uniform_range(0.5, 1.0);
            let (dx, dy) = (rng.uniform_range(0.45, 0.8) * side, rng.uniform_range(-0.3, 0.3) * side);
            let (dx, dy) = if rng.uniform() < 0.5 { (dx, dy) } else { (dy, dx) };
            let sign = |v: f32, r: &mut Rng| if r.uniform() < 0.5 { -v } else { v };
            let part = BBox::new(b.cx + sign(dx, &mut rng), b.cy + sign(dy, &mut rng), s, s);
            if objects.iter().all(|o| o.iou(&part) < 0.35) {
                cut(part, background)?;
            }
        }
        for _ in 0..picture_objects.len().max(1) {
            let side = rng.uniform_range(0.12, 0.45) * size;
            let b = BBox::new(
                rng.uniform_range(side / 2.0, size - side / 2.0),
                rng.uniform_range(side / 2.0, size - side / 2.0),
                side,
                side,
            );
            if objects.iter().all(|o| o.iou(&b) < 0.1) {
                cut(b, background)?;
            }
        }
    }
    let n = labels.len();
    Ok(Dataset { images: Tensor::new(&[n, 3, WINDOW, WINDOW], images)?, labels })
}

/// A window classifier's figures after an epoch.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct WindowEpoch {
    /// epoch number, from 1
    pub epoch: usize,
    /// mean cross-entropy over the epoch's training windows
    pub train_loss: f32,
    /// share of training windows classified right during the epoch, 0..1
    pub train_accuracy: f32,
    /// share of test windows classified right after the epoch, 0..1
    pub test_accuracy: f32,
}

/// Trains the notes' window classifier on windows cut from `pictures` synthetic pictures
/// (500 others give the test windows) for `epochs`, reporting each epoch and the number of
/// training and test windows to `on_epoch`; saves it in the run folder `out` (refused if it
/// holds files, unless `force`).
pub fn train_window_classifier(
    pictures: usize,
    epochs: usize,
    seed: u64,
    out: &Path,
    force: bool,
    on_epoch: &mut dyn FnMut(&WindowEpoch, (usize, usize)),
) -> Result<WindowRun> {
    if epochs == 0 {
        return Err(Error::setting("epochs", "must be 1 or more"));
    }
    crate::train::check_new_folder(out, force)?;
    let train_set = window_crops(pictures, seed).map_err(|e| Error::setting("pictures", e.to_string()))?;
    let test_set = window_crops(500, seed.wrapping_add(1_000_003))?;
    let mut classes: Vec<String> = shapes::CLASSES.iter().map(|s| s.to_string()).collect();
    classes.push("background".into());
    let net = window_net(classes.len(), &mut Rng::new(seed))?;
    let mut optimizer = crate::train::make_optimizer(&net, fovea::optim::OptimizerConfig::adam(0.001, 0.0))?;
    let mut test_accuracy = 0.0;
    for epoch in 1..=epochs {
        let mut rng = Rng::derive(seed, epoch as u64);
        let p = crate::train::train_epoch(&net, &mut optimizer, &train_set, 64, &mut rng, None, &mut |_| {})?;
        test_accuracy = crate::train::evaluate_trained(&net, &test_set, 500)?.accuracy();
        let e = WindowEpoch { epoch, train_loss: p.loss(), train_accuracy: p.accuracy(), test_accuracy };
        on_epoch(&e, (train_set.len(), test_set.len()));
    }
    let run = WindowRun { classes, test_accuracy };
    save_window_classifier(out, &net, &run)?;
    Ok(run)
}

/// One window size's search: how many windows, how far apart, both ways' times and how
/// far apart their answers are.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct WindowSearch {
    /// side of the windows, in the picture's pixels
    pub window: usize,
    /// number of windows searched
    pub windows: usize,
    /// Pixels between neighbouring windows, in the picture.
    #[serde(skip)]
    pub stride: f32,
    /// seconds of the naive search (every window cropped and classified)
    pub naive_seconds: f64,
    /// seconds of the convolutional search (one pass over the picture)
    pub convolutional_seconds: f64,
    /// largest absolute difference between the two searches' probabilities
    pub max_difference: f32,
}

/// What a sliding-window search found and how long each way took.
#[derive(Clone, Debug, Serialize)]
pub struct WindowsFound {
    /// Each window size's search.
    pub windows: Vec<WindowSearch>,
    /// The objects kept by NMS across classes, in the picture's pixels.
    pub objects: Vec<super::FoundObject>,
    /// Seconds of all naive searches.
    pub naive_seconds: f64,
    /// Seconds of all convolutional searches.
    pub convolutional_seconds: f64,
}

impl std::fmt::Display for WindowsFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in &self.windows {
            writeln!(f, "{s}")?;
        }
        let (naive, conv) = (self.naive_seconds, self.convolutional_seconds);
        write!(
            f,
            "in all: naive {:.1} ms, convolutional {:.1} ms ({:.1}x faster); {} window(s) kept after NMS",
            1e3 * naive,
            1e3 * conv,
            naive / conv.max(1e-9),
            self.objects.len()
        )
    }
}

/// Runs the classifier of the run folder `checkpoint` over windows of each size in
/// `windows` (pixels of the `[3, H, W]` picture `rgb`) both ways: each size's search and
/// the objects scoring above `min_score` kept by NMS across classes.
pub fn find_objects(checkpoint: &Path, rgb: &Tensor, windows: &[usize], min_score: f32) -> Result<WindowsFound> {
    let (run, classifier) = load_window_classifier(checkpoint)?;
    // the same weights, converted
    let converted = fc_to_conv(load_window_classifier(checkpoint)?.1, [3, WINDOW, WINDOW])?;
    let (h, w) = (rgb.shape()[1], rgb.shape()[2]);
    let background = run.classes.len() - 1;
    let (mut found, mut searches) = (Vec::new(), Vec::new());
    for &side in windows {
        if side < WINDOW || side > h.min(w) {
            return Err(Error::setting(
                "windows",
                format!("window {side} must be between {WINDOW} and the picture's shorter side ({})", h.min(w)),
            ));
        }
        // scaled so that one window becomes the classifier's 14x14
        let scale = side as f32 / WINDOW as f32;
        let (sh, sw) = ((h as f32 / scale).round() as usize, (w as f32 / scale).round() as usize);
        let scaled = crate::image::resize_bilinear(rgb, sh, sw)?;
        let t = std::time::Instant::now();
        let naive = naive_windows(&classifier, &scaled)?;
        let naive_seconds = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let conv = convolutional_windows(&converted, &scaled)?;
        searches.push(WindowSearch {
            window: side,
            windows: conv.shape()[1] * conv.shape()[2],
            stride: WINDOW_STRIDE as f32 * scale,
            naive_seconds,
            convolutional_seconds: t.elapsed().as_secs_f64(),
            max_difference: conv.max_abs_diff(&naive),
        });
        found.extend(window_detections(&conv, background, min_score, (w as f32 / sw as f32, h as f32 / sh as f32)));
    }
    // one object gets windows of several sizes and classes: suppress across classes
    let options = super::NmsOptions { score_threshold: min_score, per_class: false, ..Default::default() };
    let objects = super::nms(&found, &options).into_iter().map(|k| found[k].found(&run.classes, w as f32, h as f32));
    Ok(WindowsFound {
        naive_seconds: searches.iter().map(|s| s.naive_seconds).sum(),
        convolutional_seconds: searches.iter().map(|s| s.convolutional_seconds).sum(),
        windows: searches,
        objects: objects.collect(),
    })
}

impl std::fmt::Display for WindowEpoch {
    /// The epoch's figures, after `epoch N/M: `.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "loss {:.4}, accuracy {:.2}% | test windows: {:.2}%",
            self.train_loss,
            100.0 * self.train_accuracy,
            100.0 * self.test_accuracy
        )
    }
}

impl std::fmt::Display for WindowSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{0}x{0} windows ({1}, {2:.1} px apart): naive {3:.1} ms, convolutional {4:.1} ms ({5:.1}x), largest \
             difference {6:.1e}",
            self.window,
            self.windows,
            self.stride,
            1e3 * self.naive_seconds,
            1e3 * self.convolutional_seconds,
            self.naive_seconds / self.convolutional_seconds.max(1e-9),
            self.max_difference
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_converted_network_on_16x16_equals_the_four_14x14_crops() {
        let net = window_net(4, &mut Rng::new(1)).unwrap();
        let picture = Tensor::rand_uniform(&[3, 16, 16], 0.0, 1.0, &mut Rng::new(2));
        let naive = naive_windows(&net, &picture).unwrap();
        assert_eq!(naive.shape(), [4, 2, 2]);
        let converted = fc_to_conv(net, [3, 14, 14]).unwrap();
        // the notes' shapes: fc1 is 400 5x5x16 filters, fc2 400 1x1 filters
        let shapes: Vec<Vec<usize>> =
            fovea::nn::state_dict(&converted).iter().map(|(_, v)| v.shape()).filter(|s| s.len() == 4).collect();
        assert_eq!(shapes[1..], [vec![400, 16, 5, 5], vec![400, 400, 1, 1], vec![4, 400, 1, 1]]);
        let conv = convolutional_windows(&converted, &picture).unwrap();
        assert_eq!(conv.shape(), [4, 2, 2]);
        let err = conv.max_abs_diff(&naive);
        assert!(err < 1e-5, "the two ways differ by {err}");
        // and on a bigger picture, every window
        let big = Tensor::rand_uniform(&[3, 30, 24], 0.0, 1.0, &mut Rng::new(3));
        let net = window_net(4, &mut Rng::new(1)).unwrap();
        let naive = naive_windows(&net, &big).unwrap();
        assert_eq!(naive.shape(), [4, 9, 6]);
        assert!(convolutional_windows(&converted, &big).unwrap().max_abs_diff(&naive) < 1e-5);
    }

    #[test]
    fn conversion_needs_a_flatten_before_the_fully_connected_layers() {
        let rng = &mut Rng::new(0);
        let net = Sequential::new().add("fc", Linear::config(4, 2).build(rng).unwrap());
        let err = fc_to_conv(net, [4, 1, 1]).err().expect("refused").to_string();
        assert!(err.contains("no flatten"), "{err}");
    }
}
