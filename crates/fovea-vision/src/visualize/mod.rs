//! What deep ConvNets learn (Zeiler & Fergus, as the notes show it): where in the input a
//! unit looks (receptive-field arithmetic), the input patches that excite a unit most,
//! and pictures of filters and feature maps.

use fovea::nn::{Conv, Flatten, Linear, Module, Pool, Sequential};
use fovea::ops::Padding;
use fovea::{no_grad, Error, Result, Tensor, Var};
use std::collections::BinaryHeap;

/// Where one unit of a layer looks in the input, along one axis: `size` pixels wide, the
/// first unit's field centred at `start` (pixel coordinates; negative when padding reaches
/// past the edge), neighbouring units `jump` pixels apart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReceptiveField {
    /// width of the field, in input pixels
    pub size: usize,
    /// input pixels between neighbouring units
    pub jump: usize,
    /// centre of the first unit's field, in input pixels
    pub start: f64,
}

impl ReceptiveField {
    /// An input pixel.
    pub const PIXEL: ReceptiveField = ReceptiveField { size: 1, jump: 1, start: 0.0 };

    /// The field after a layer with kernel `k` (dilation included), stride `s` and `p`
    /// padding before: size grows by (k - 1) jumps, the jump multiplies by s, the start
    /// moves by ((k - 1) / 2 - p) jumps.
    pub fn then(&self, k: usize, s: usize, p: usize) -> ReceptiveField {
        ReceptiveField {
            size: self.size + (k - 1) * self.jump,
            jump: self.jump * s,
            start: self.start + ((k as f64 - 1.0) / 2.0 - p as f64) * self.jump as f64,
        }
    }

    /// The input pixels `[from, to)` (possibly past the edges) seen by unit `i`.
    pub fn span(&self, i: usize) -> (i64, i64) {
        let centre = self.start + (i * self.jump) as f64;
        let from = (centre - (self.size as f64 - 1.0) / 2.0).round() as i64;
        (from, from + self.size as i64)
    }
}

/// The layers of a sequential network in order, nested sequential blocks opened up, each
/// named by its path (`features.3` in VGG).
pub fn leaves(model: &Sequential) -> Vec<(String, &dyn Module)> {
    fn walk<'a>(seq: &'a Sequential, prefix: &str, out: &mut Vec<(String, &'a dyn Module)>) {
        for (name, layer) in seq.layers() {
            let path = fovea::nn::join_name(prefix, name);
            match layer.as_any().and_then(|a| a.downcast_ref::<Sequential>()) {
                Some(inner) => walk(inner, &path, out),
                None => out.push((path, layer.as_ref())),
            }
        }
    }
    let mut out = Vec::new();
    walk(model, "", &mut out);
    out
}

/// The receptive field (along the height) after each layer of `model` (nested sequential
/// blocks opened up, see [`leaves`]) for inputs of `input` (`[C, H, W]`), up to the first
/// fully connected layer; layers that do not move it (activations, batch norm) keep their
/// predecessor's.
pub fn receptive_fields(model: &Sequential, input: [usize; 3]) -> Result<Vec<(String, ReceptiveField)>> {
    let mut field = ReceptiveField::PIXEL;
    let mut n = input[1];
    let mut out = Vec::new();
    for (name, layer) in leaves(model) {
        let any = layer.as_any();
        if any.is_some_and(|a| a.is::<Flatten>() || a.is::<Linear>()) {
            break;
        }
        if let Some(conv) = any.and_then(|a| a.downcast_ref::<Conv>()) {
            let shape = conv.weight.shape();
            let k = shape[2];
            let (s, d) = (conv.options.stride[0], conv.options.dilation[0]);
            let k_eff = d * (k - 1) + 1;
            let p = match &conv.options.padding {
                Padding::Valid => 0,
                Padding::Same => ((n.div_ceil(s) - 1) * s + k_eff).saturating_sub(n) / 2,
                Padding::Explicit(pads) => pads[0].0,
            };
            field = field.then(k_eff, s, p);
            n = (n + 2 * p).saturating_sub(k_eff) / s + 1;
        } else if let Some(pool) = any.and_then(|a| a.downcast_ref::<Pool>()) {
            let k = pool.options.kernel[0];
            let s = pool.options.stride.as_ref().map_or(k, |s| s[0]);
            let p = pool.options.padding.first().copied().unwrap_or(0);
            field = field.then(k, s, p);
            n = (n + 2 * p).saturating_sub(k) / s + 1;
        }
        out.push((name, field));
    }
    Ok(out)
}

/// The activations `[N, C, H, W]` of the layer `layer` (a path from [`leaves`]) of `model`
/// for `x`, in evaluation mode; the error lists the layers there are.
pub fn activations(model: &Sequential, x: &Tensor, layer: &str) -> Result<Tensor> {
    let layers = leaves(model);
    if !layers.iter().any(|(n, _)| n == layer) {
        let names: Vec<&str> = layers.iter().map(|(n, _)| n.as_str()).collect();
        return Err(Error::Invalid(format!("no layer '{layer}' (the layers are {})", names.join(", "))));
    }
    no_grad(|| {
        let mut h = Var::constant(x.clone());
        for (name, l) in &layers {
            h = l.forward(&h)?;
            if name == layer {
                break;
            }
        }
        Ok(h.tensor())
    })
}

/// One of a unit's strongest responses: picture `image`, at position (`y`, `x`) of the map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// the unit's activation there
    pub value: f32,
    /// index of the picture
    pub image: usize,
    /// row in the activation map
    pub y: usize,
    /// column in the activation map
    pub x: usize,
}

// a min-heap on value (the weakest kept hit on top); ties: the later image is weaker
impl Eq for Hit {}
impl Ord for Hit {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.value.total_cmp(&self.value).then(self.image.cmp(&o.image))
    }
}
impl PartialOrd for Hit {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// Keeps the `k` strongest hits seen, one per picture (its strongest position).
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Hit>,
}

impl TopK {
    /// Keeps the `k` strongest.
    pub fn new(k: usize) -> TopK {
        TopK { k, heap: BinaryHeap::new() }
    }

    /// Adds a hit, dropping the weakest when more than `k` are kept.
    pub fn push(&mut self, hit: Hit) {
        self.heap.push(hit);
        if self.heap.len() > self.k {
            self.heap.pop();
        }
    }

    /// The hits, strongest first (equal values: the earlier picture first).
    pub fn into_sorted(self) -> Vec<Hit> {
        self.heap.into_sorted_vec()
    }
}

/// For each of the first `units` channels of `maps` (`[N, C, H, W]`, picture `first + n`),
/// each picture's strongest position, added to that unit's `TopK`.
pub fn collect_hits(maps: &Tensor, first: usize, tops: &mut [TopK]) {
    let s = maps.shape();
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    for img in 0..n {
        for (unit, top) in tops.iter_mut().enumerate().take(c) {
            let plane = &maps.data()[(img * c + unit) * h * w..][..h * w];
            // the first position of the maximum
            let best = (0..h * w).fold(0, |m, i| if plane[i] > plane[m] { i } else { m });
            top.push(Hit { value: plane[best], image: first + img, y: best / w, x: best % w });
        }
    }
}

/// The input patch (`[C, size, size]`, grey 0.5 past the edges) under a unit's field at
/// map position (`y`, `x`) of picture `picture` (`[C, H, W]`).
pub fn patch(picture: &Tensor, field: &ReceptiveField, y: usize, x: usize) -> Tensor {
    let (c, h, w) = (picture.shape()[0], picture.shape()[1], picture.shape()[2]);
    let ((y0, _), (x0, _)) = (field.span(y), field.span(x));
    let size = field.size;
    let mut out = vec![0.5f32; c * size * size];
    for ch in 0..c {
        for dy in 0..size {
            for dx in 0..size {
                let (yy, xx) = (y0 + dy as i64, x0 + dx as i64);
                if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                    out[(ch * size + dy) * size + dx] = picture.data()[(ch * h + yy as usize) * w + xx as usize];
                }
            }
        }
    }
    Tensor::new(&[c, size, size], out).expect("patch shape")
}

/// Pictures `[C, h, w]` (C = 1 or 3, values 0..1) laid out in a grid of `columns`, each
/// scaled by `zoom`, with a 2-pixel white gap: an RGB canvas.
pub fn grid(tiles: &[Tensor], columns: usize, zoom: usize) -> Result<crate::draw::Canvas> {
    let (th, tw) = tiles.first().map_or((1, 1), |t| (t.shape()[1], t.shape()[2]));
    let (cell_h, cell_w) = (th * zoom + 2, tw * zoom + 2);
    let rows = tiles.len().div_ceil(columns.max(1));
    let (width, height) = (columns as u64 * cell_w as u64 + 2, rows as u64 * cell_h as u64 + 2);
    fovea::budget::check(&format!("a grid of {} pictures ({width}x{height} pixels)", tiles.len()), width * height * 3)?;
    let mut canvas = crate::draw::Canvas::new(columns * cell_w + 2, rows * cell_h + 2, [255, 255, 255]);
    for (i, t) in tiles.iter().enumerate() {
        let (c, h, w) = (t.shape()[0], t.shape()[1], t.shape()[2]);
        let (ox, oy) = (2 + (i % columns) * cell_w, 2 + (i / columns) * cell_h);
        for y in 0..h * zoom {
            for x in 0..w * zoom {
                let at = |ch: usize| t.data()[(ch.min(c - 1) * h + y / zoom) * w + x / zoom];
                let px = [0, 1, 2].map(|ch| (at(ch).clamp(0.0, 1.0) * 255.0).round() as u8);
                canvas.set((ox + x) as i64, (oy + y) as i64, px);
            }
        }
    }
    Ok(canvas)
}

/// Each channel of `t` (`[C, H, W]`) as its own grey picture `[1, H, W]`, scaled to 0..1
/// between its minimum and maximum (flat maps become mid-grey).
pub fn normalized_planes(t: &Tensor) -> Vec<Tensor> {
    let (c, h, w) = (t.shape()[0], t.shape()[1], t.shape()[2]);
    t.data()
        .chunks(h * w)
        .take(c)
        .map(|p| {
            let (lo, hi) = p.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, u), &v| (l.min(v), u.max(v)));
            let scaled = p.iter().map(|&v| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 }).collect();
            Tensor::new(&[1, h, w], scaled).expect("plane shape")
        })
        .collect()
}

/// One unit's strongest hits, strongest first, each with the input patch under the unit.
pub type UnitPatches = Vec<(Hit, Tensor)>;

/// The patches that excite a unit most: for each of the first `units` units (channels)
/// of `layer`, its `top` strongest pictures of `set` (one position each, the strongest,
/// ties to the earlier picture) and the input patch under its receptive field there.
/// Returns the field and, per unit, its hits with their patches, strongest first.
pub fn top_patches(
    net: &Sequential,
    set: &crate::data::Dataset,
    layer: &str,
    units: usize,
    top: usize,
) -> Result<(ReceptiveField, Vec<UnitPatches>)> {
    let shape: [usize; 3] = set.images.shape()[1..]
        .try_into()
        .map_err(|_| Error::shape("top_patches", format!("pictures {:?} are not [N, C, H, W]", set.images.shape())))?;
    let fields = receptive_fields(net, shape)?;
    let field = fields.iter().find(|(n, _)| n == layer).map(|(_, f)| *f).ok_or_else(|| {
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        Error::setting(
            "layer",
            format!("no convolutional layer '{layer}' (the layers with a receptive field: {})", names.join(", ")),
        )
    })?;
    let mut tops: Vec<TopK> = Vec::new();
    for start in (0..set.len()).step_by(500) {
        let idx: Vec<usize> = (start..(start + 500).min(set.len())).collect();
        let maps = activations(net, &set.batch(&idx).0, layer)?;
        if tops.is_empty() {
            tops = (0..units.min(maps.shape()[1])).map(|_| TopK::new(top)).collect();
        }
        collect_hits(&maps, start, &mut tops);
    }
    let per_unit = tops
        .into_iter()
        .map(|unit| {
            let hits = unit.into_sorted();
            hits.into_iter()
                .map(|h| Ok((h, patch(&set.batch(&[h.image]).0.reshape(&shape)?, &field, h.y, h.x))))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    Ok((field, per_unit))
}

/// The filters of the first 2-D convolution of `net` (the one named `layer`, if given),
/// each as a picture scaled to 0..1: its input channels as colours when it has 3, else its
/// first one. Returns the layer's name, its weight's shape and the pictures.
pub fn filter_pictures(net: &Sequential, layer: Option<&str>) -> Result<(String, Vec<usize>, Vec<Tensor>)> {
    let conv = leaves(net)
        .into_iter()
        .filter(|(n, _)| layer.is_none_or(|l| l == n))
        .find_map(|(n, l)| l.as_any().and_then(|x| x.downcast_ref::<Conv>()).map(|c| (n, c)));
    let Some((name, conv)) = conv else {
        let which = layer.map_or("in the network".into(), |l| format!("named '{l}'"));
        return Err(Error::setting("layer", format!("no convolution {which}")));
    };
    let w = conv.weight.tensor();
    let s = w.shape().to_vec();
    if s.len() != 4 {
        return Err(Error::setting("layer", format!("{name} is not a 2-D convolution")));
    }
    let channels = if s[1] == 3 { 3 } else { 1 };
    let pictures = (0..s[0])
        .map(|o| {
            let f = w.narrow(0, o, 1)?.narrow(1, 0, channels)?.reshape(&[channels, s[2], s[3]])?;
            let (lo, hi) = f.data().iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, u), &v| (l.min(v), u.max(v)));
            Ok(f.map(|v| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 }))
        })
        .collect::<Result<_>>()?;
    Ok((name, s, pictures))
}

/// A picture drawn of a trained network, and what it shows.
pub struct Drawing {
    /// The picture.
    pub canvas: crate::draw::Canvas,
    /// What it shows, in a line.
    pub caption: String,
}

/// A trained sequential network (LeNet-5, cnn-bn, VGG...) of a `fovea train` run, with the
/// run's metadata: what `fovea visualize` draws.
pub struct TrainedNet {
    /// The run's checkpoint metadata.
    pub meta: crate::train::RunMeta,
    model: Box<dyn Module>,
}

impl TrainedNet {
    /// The network of the run folder (or checkpoint file) `path`; refused unless sequential.
    pub fn load(path: &std::path::Path) -> Result<TrainedNet> {
        let ckpt = crate::train::load_checkpoint(path)?;
        let model = crate::train::model_from_checkpoint(&ckpt)?;
        if model.as_any().and_then(|a| a.downcast_ref::<Sequential>()).is_none() {
            return Err(Error::Invalid(format!(
                "{} is not a sequential network; visualize works on lenet5, cnn-bn and the like",
                ckpt.meta.model
            )));
        }
        Ok(TrainedNet { meta: ckpt.meta, model })
    }

    fn net(&self) -> &Sequential {
        self.model.as_any().and_then(|a| a.downcast_ref::<Sequential>()).expect("checked by load")
    }

    /// For `units` units of `layer`, the `top` input patches that excite each most among
    /// the first `limit` test pictures of `data` (`None`: the run's data): one row a unit.
    pub fn patches(
        &self,
        data: Option<&std::path::Path>,
        layer: &str,
        units: usize,
        top: usize,
        limit: usize,
    ) -> Result<Drawing> {
        let shape = self.meta.input_shape()?;
        let recorded = self.meta.data.as_ref().map(std::path::PathBuf::from);
        let dir = data.map(|d| d.to_path_buf()).or(recorded).unwrap_or_else(crate::data::FashionMnist::default_dir);
        let (set, _) = crate::data::load(&dir, crate::data::Split::Test, shape, Some(limit))?;
        // no more pictures a unit than there are
        let top = top.min(set.len());
        let (field, per_unit) = top_patches(self.net(), &set, layer, units, top)?;
        let mut tiles = Vec::new();
        for hits in &per_unit {
            tiles.extend(hits.iter().map(|(_, patch)| patch.clone()));
            // short rows (fewer pictures than `top`) are padded with blanks
            for _ in hits.len()..top {
                tiles.push(Tensor::full(&[shape[0], field.size, field.size], 1.0));
            }
        }
        let canvas = grid(&tiles, top, (96 / field.size).clamp(1, 8))?;
        let (unit_count, size, jump, pictures) = (per_unit.len(), field.size, field.jump, set.len());
        let caption = format!(
            "{unit_count} units of {layer} (receptive field {size}x{size} pixels, {jump} apart), top {top} of \
             {pictures} pictures each"
        );
        Ok(Drawing { canvas, caption })
    }

    /// The filters of the first convolution (or of `layer`).
    pub fn filters(&self, layer: Option<&str>) -> Result<Drawing> {
        let (name, s, tiles) = filter_pictures(self.net(), layer)?;
        let canvas = grid(&tiles, 8.min(tiles.len()), (48 / s[2]).max(1))?;
        Ok(Drawing { canvas, caption: format!("{} filters of {name} ({}x{}x{})", s[0], s[1], s[2], s[3]) })
    }

    /// The feature maps of `layer` for the picture `image`, prepared as the run's pictures.
    pub fn activations(&self, image: &std::path::Path, layer: &str) -> Result<Drawing> {
        let shape = self.meta.input_shape()?;
        let x = if shape == [1, 28, 28] {
            crate::image::load_fashion_input(image)?
        } else {
            let rgb = crate::image::load_rgb(image)?;
            crate::data::image_folder::fit_image(&rgb, shape)?.reshape(&[1, shape[0], shape[1], shape[2]])?
        };
        let maps = activations(self.net(), &x, layer)?;
        if maps.ndim() != 4 {
            return Err(Error::setting("layer", format!("{layer} gives {:?}, not feature maps", maps.shape())));
        }
        let planes = normalized_planes(&maps.reshape(&maps.shape()[1..])?);
        let canvas = grid(&planes, 8.min(planes.len()), (96 / maps.shape()[2]).max(1))?;
        let caption = format!("{} feature maps of {layer} ({}x{})", planes.len(), maps.shape()[2], maps.shape()[3]);
        Ok(Drawing { canvas, caption })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea::Rng;

    #[test]
    fn lenet5_receptive_fields_by_hand() {
        // conv 5x5 same (p = 2), pool 2, conv 5x5 valid, pool 2
        let net = crate::models::lenet5(10, &mut Rng::new(0)).unwrap();
        let fields = receptive_fields(&net, [1, 28, 28]).unwrap();
        let at = |n: &str| fields.iter().find(|(name, _)| name == n).unwrap().1;
        assert_eq!(at("conv1"), ReceptiveField { size: 5, jump: 1, start: 0.0 });
        assert_eq!(at("pool1"), ReceptiveField { size: 6, jump: 2, start: 0.5 });
        assert_eq!(at("conv2"), ReceptiveField { size: 14, jump: 2, start: 4.5 });
        assert_eq!(at("pool2"), ReceptiveField { size: 16, jump: 4, start: 5.5 });
        // pool2's unit (0, 0) sees input rows -2 ..= 13 (with conv1's padding)
        assert_eq!(at("pool2").span(0), (-2, 14));
        assert_eq!(fields.last().unwrap().0, "pool2", "stops at the flatten");
    }

    #[test]
    fn vgg16_receptive_fields_are_the_well_known_ones() {
        // nested blocks are opened up: VGG-16's features.N; conv5_3 sees 196 pixels, pool5 212
        let features = crate::models::vgg_features(16, false, &mut Rng::new(0)).unwrap();
        let net = Sequential::new().add("features", features);
        let fields = receptive_fields(&net, [3, 224, 224]).unwrap();
        let at = |n: &str| fields.iter().find(|(name, _)| name == n).unwrap().1;
        assert_eq!(at("features.0").size, 3);
        assert_eq!(at("features.28").size, 196);
        assert_eq!(at("features.30"), ReceptiveField { size: 212, jump: 32, start: 15.5 });
    }

    #[test]
    fn top_k_is_exact_and_deterministic() {
        let mut rng = Rng::new(4);
        // values with ties
        let values: Vec<f32> = (0..500).map(|_| (rng.below(50) as f32) / 10.0).collect();
        let mut top = TopK::new(9);
        for (i, &v) in values.iter().enumerate() {
            top.push(Hit { value: v, image: i, y: 0, x: 0 });
        }
        let got: Vec<(f32, usize)> = top.into_sorted().iter().map(|h| (h.value, h.image)).collect();
        let mut all: Vec<(f32, usize)> = values.iter().copied().zip(0..).collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        assert_eq!(got, all[..9].to_vec());
    }

    #[test]
    fn patches_follow_the_field_and_pad_with_grey() {
        let pic = Tensor::new(&[1, 4, 4], (0..16).map(|v| v as f32).collect()).unwrap();
        let f = ReceptiveField { size: 3, jump: 2, start: 0.0 };
        // unit 0 looks at rows/cols -1..2: the first row and column are padding
        let p = patch(&pic, &f, 0, 0);
        assert_eq!(p.data(), &[0.5, 0.5, 0.5, 0.5, 0.0, 1.0, 0.5, 4.0, 5.0]);
        let p = patch(&pic, &f, 1, 1); // rows/cols 1..4
        assert_eq!(p.data(), &[5.0, 6.0, 7.0, 9.0, 10.0, 11.0, 13.0, 14.0, 15.0]);
    }
}
