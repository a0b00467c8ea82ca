//! Per-layer summaries: output shape, activation size, parameters and multiply-adds, as
//! in the notes' LeNet-5 table and bottleneck cost example.
//!
//! Shapes are per sample in fovea's (PyTorch's) order, channels first: the notes'
//! (28, 28, 6) is `6x28x28` here. Multiply-adds count convolutions and fully connected
//! layers (what dominates, and what the notes count); pooling and activations count 0.
//! The conv-versus-dense comparison ([`compare_dense`]) keeps the notes' `h x w x c`.

use super::{LayerShape, Module};
use crate::error::{Error, Result};

/// One row of a summary.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerSummary {
    /// Dotted path, as in parameter names (`conv1`, `layer1.0.conv2`, `inception3a`).
    pub name: String,
    /// Layer type, e.g. `Conv2d`, `Linear`, `MaxPool`, `Inception` (an ONNX graph's
    /// operator, with `+` joining the ones fused into one step).
    pub kind: String,
    /// Output shape of one sample.
    pub output_shape: Vec<usize>,
    /// Values in the output of one sample.
    pub activation_size: usize,
    /// Parameters of the layer, frozen ones included (buffers are not counted).
    pub params: usize,
    /// Multiply-adds for one sample.
    pub macs: usize,
}

impl From<LayerShape<'_>> for LayerSummary {
    /// The row for a leaf's report, with its costs per sample.
    fn from(l: LayerShape<'_>) -> LayerSummary {
        let batch = l.output.first().copied().unwrap_or(1).max(1);
        let per_sample = l.output.get(1..).unwrap_or_default();
        LayerSummary {
            name: l.name.to_string(),
            kind: l.kind.to_string(),
            output_shape: per_sample.to_vec(),
            activation_size: per_sample.iter().product(),
            params: l.params,
            macs: l.macs / batch,
        }
    }
}

/// A model's rows and totals for one input shape.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Input shape of one sample.
    pub input: Vec<usize>,
    /// One row per layer (containers contribute their leaves), in order.
    pub layers: Vec<LayerSummary>,
    /// Parameters of the evaluation-mode forward pass (the sum of the rows).
    pub total_params: usize,
    /// Parameters used in training only (GoogLeNet's auxiliary classifiers).
    pub training_only_params: usize,
    /// Multiply-adds for one sample (the sum of the rows).
    pub total_macs: usize,
}

/// A row per layer of `model` for one sample of shape `input` (no batch axis), from the
/// shapes alone: nothing is allocated for activations and nothing runs.
pub fn summarize(model: &dyn Module, input: &[usize]) -> Result<Summary> {
    if input.is_empty() || input.contains(&0) {
        return Err(Error::Invalid(format!("summary input shape {input:?} must be non-empty with no zero size")));
    }
    let mut shape = vec![1];
    shape.extend(input);
    let mut layers = Vec::new();
    model.shapes("", &shape, &mut |l| layers.push(LayerSummary::from(l)))?;
    let total_params = layers.iter().map(|l| l.params).sum();
    let training_only_params = super::parameter_count(model).saturating_sub(total_params);
    let total_macs = layers.iter().map(|l| l.macs).sum();
    Ok(Summary { input: input.to_vec(), layers, total_params, training_only_params, total_macs })
}

/// A shape written as `3x224x224`.
pub fn parse_dims(s: &str) -> Result<Vec<usize>> {
    s.split('x')
        .map(|d| d.trim().parse::<usize>().map_err(|_| Error::Invalid(format!("'{s}' is not a shape like 3x224x224"))))
        .collect()
}

/// `1x28x28`-style text for a shape.
pub fn fmt_dims(shape: &[usize]) -> String {
    shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

/// `61706` as `61,706`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Summary {
    /// The table as text: one row per layer, then the totals.
    pub fn table(&self) -> String {
        let header = ["layer", "kind", "output", "activations", "parameters", "multiply-adds"];
        let mut rows: Vec<[String; 6]> = vec![[
            "input".into(),
            String::new(),
            fmt_dims(&self.input),
            thousands(self.input.iter().product()),
            "0".into(),
            "0".into(),
        ]];
        for l in &self.layers {
            rows.push([
                l.name.clone(),
                l.kind.clone(),
                fmt_dims(&l.output_shape),
                thousands(l.activation_size),
                thousands(l.params),
                thousands(l.macs),
            ]);
        }
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.len());
            }
        }
        let line = |cells: [&str; 6]| {
            let mut s = format!(
                "{:<w0$}  {:<w1$}  {:<w2$}",
                cells[0],
                cells[1],
                cells[2],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
            for (c, w) in cells[3..].iter().zip(&widths[3..]) {
                s.push_str(&format!("  {c:>w$}"));
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = line(header);
        for r in &rows {
            out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
        }
        out.push_str(&format!(
            "total: {} parameters, {} multiply-adds per sample\n",
            thousands(self.total_params),
            thousands(self.total_macs)
        ));
        if self.training_only_params > 0 {
            out.push_str(&format!(
                "plus {} parameters used in training only ({} in all)\n",
                thousands(self.training_only_params),
                thousands(self.total_params + self.training_only_params)
            ));
        }
        out
    }
}

/// The notes' "why convolutions" comparison: parameters of a conv layer with `filters`
/// filters of size `f` (stride 1, no padding) on an `h x w x c` input, against a fully
/// connected layer between the same input and output sizes.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DenseComparison {
    /// The input, `[h, w, c]` in the notes' order.
    pub input: [usize; 3],
    /// Filters of the convolution.
    pub filters: usize,
    /// Their side.
    pub filter_size: usize,
    /// Output of the convolution, `[h, w, filters]` in the notes' order.
    pub output: [usize; 3],
    /// `(f·f·c + 1)·filters`.
    pub conv_params: usize,
    /// `input size · output size` (the notes' count, without biases).
    pub dense_weights: usize,
}

impl std::fmt::Display for DenseComparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ([h, w, c], [oh, ow, oc], (n, k)) = (self.input, self.output, (self.filters, self.filter_size));
        writeln!(f, "input {h}x{w}x{c} -> {n} filters of {k}x{k} (stride 1, no padding) -> {oh}x{ow}x{oc}")?;
        writeln!(f, "  conv layer:  ({k}·{k}·{c} + 1)·{n} = {} parameters", thousands(self.conv_params))?;
        writeln!(
            f,
            "  dense layer: {}·{} = {} weights (about {:.0} million)",
            thousands(h * w * c),
            thousands(oh * ow * oc),
            thousands(self.dense_weights),
            self.dense_weights as f64 / 1e6
        )?;
        write!(
            f,
            "  parameter sharing and sparse connections: {}x fewer",
            thousands(self.dense_weights / self.conv_params)
        )
    }
}

/// The [`DenseComparison`] for `filters` filters of size `f` on an `h x w x c` input; an error
/// if the filter does not fit the input or a count overflows.
pub fn compare_dense(h: usize, w: usize, c: usize, filters: usize, f: usize) -> Result<DenseComparison> {
    if f == 0 || f > h || f > w || c == 0 || filters == 0 {
        return Err(Error::Invalid(format!(
            "a {f}x{f} filter does not fit a {h}x{w}x{c} input with {filters} filters"
        )));
    }
    let output = [h - f + 1, w - f + 1, filters];
    let too_large =
        || Error::Invalid(format!("a dense layer for {h}x{w}x{c} with {filters} filters is too large to count"));
    let out_size = output.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(too_large)?;
    let dense_weights =
        h.checked_mul(w).and_then(|n| n.checked_mul(c)).and_then(|n| n.checked_mul(out_size)).ok_or_else(too_large)?;
    let conv_params = f
        .checked_mul(f)
        .and_then(|n| n.checked_mul(c))
        .and_then(|n| (n + 1).checked_mul(filters))
        .ok_or_else(too_large)?;
    Ok(DenseComparison { input: [h, w, c], filters, filter_size: f, output, conv_params, dense_weights })
}
