//! The operators of an inference graph, built once from ONNX nodes (attributes parsed and
//! checked at load) and run on [`Value`]s. One file per family:
//! - [`conv`]: Conv, ConvTranspose, BatchNormalization, pooling;
//! - [`elementwise`]: activations, arithmetic with broadcasting, Clip, Cast;
//! - [`reduce`]: ReduceMean/Max/Sum, Softmax, LogSoftmax;
//! - [`matmul`]: MatMul, Gemm;
//! - [`layout`]: reshapes, transposes, joins, splits, slices, gathers, padding;
//! - [`resize`]: Resize and Upsample;
//! - [`blocked`]: the channel-blocked forms of convolution and pooling, and the reorders.

pub mod blocked;
pub mod conv;
pub mod elementwise;
pub mod layout;
pub mod matmul;
pub mod reduce;
pub mod resize;

use super::value::{CastOptions, Value};
use crate::io::onnx::{AttributeValue, Node, TensorData};
use crate::{Error, Result};

/// Every ONNX operator (default domain) fovea runs.
pub const SUPPORTED: &[&str] = &[
    "Abs",
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "CastLike",
    "Ceil",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvTranspose",
    "Div",
    "Dropout",
    "Elu",
    "Equal",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "GatherND",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LogSoftmax",
    "MatMul",
    "Max",
    "MaxPool",
    "Min",
    "Mul",
    "Neg",
    "Pad",
    "Pow",
    "PRelu",
    "Range",
    "ReduceMax",
    "ReduceMean",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Resize",
    "Shape",
    "Sigmoid",
    "Sign",
    "Slice",
    "Softmax",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Tanh",
    "Transpose",
    "Unsqueeze",
    "Upsample",
    "Where",
];

/// One operator with its attributes, ready to run.
#[derive(Clone, Debug)]
pub enum Op {
    /// Conv, with batch norm and an activation folded in at load
    Conv(conv::Conv),
    /// ConvTranspose
    ConvTranspose(conv::ConvTranspose),
    /// BatchNormalization (inference, or training mode's batch statistics)
    BatchNorm(conv::BatchNorm),
    /// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool
    Pool(conv::Pool),
    /// an elementwise function of one value (activations, Exp, Log, Sqrt, Neg)
    Unary(elementwise::Activation),
    /// Add, Sub, Mul, Div, Pow, PRelu with broadcasting
    Binary(elementwise::Binary),
    /// Max, Min of any number of inputs
    Variadic(elementwise::BinaryKind),
    /// Equal, Greater, GreaterOrEqual, Less, LessOrEqual
    Compare(elementwise::Comparison),
    /// Where
    Where,
    /// Range
    Range,
    /// Clip with its bounds as inputs
    Clip,
    /// Cast: to the element type, rounding as the options say
    Cast(i32, CastOptions),
    /// CastLike: to the type of the second input
    CastLike(CastOptions),
    /// Softmax, LogSoftmax
    Softmax(reduce::Softmax),
    /// ReduceMean, ReduceMax, ReduceSum
    Reduce(reduce::Reduce),
    /// MatMul
    MatMul,
    /// Gemm
    Gemm(matmul::Gemm),
    /// Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Split, Slice, Shape,
    /// Gather, ConstantOfShape, Pad
    Layout(layout::Layout),
    /// Resize, Upsample
    Resize(resize::Resize),
    /// Identity
    Identity,
    /// Dropout, at inference: its input and a mask that keeps everything
    Dropout,
    /// an operator on the channel-blocked layout (the graph's blocked plan)
    Blocked(blocked::Blocked),
}

impl Op {
    /// The operator of `node`, for the ONNX operator set `opset`.
    pub fn from_node(node: &Node, opset: i64) -> Result<Op> {
        let a = Attrs(node);
        use elementwise::{Activation as Act, BinaryKind as B};
        Ok(match node.op_type.as_str() {
            "Conv" if node.inputs.len() > 3 => return Err(a.invalid("takes at most 3 inputs (X, W, B)")),
            "Conv" => Op::Conv(conv::Conv::from_node(&a)?),
            "ConvTranspose" => Op::ConvTranspose(conv::ConvTranspose::from_node(&a)?),
            "BatchNormalization" => Op::BatchNorm(conv::BatchNorm::from_node(&a, opset)?),
            "MaxPool" | "AveragePool" | "GlobalAveragePool" | "GlobalMaxPool" => Op::Pool(conv::Pool::from_node(&a)?),
            "Relu" => Op::Unary(Act::Relu),
            "LeakyRelu" => Op::Unary(Act::LeakyRelu(a.float("alpha", 0.01)?)),
            "Elu" => Op::Unary(Act::Elu(a.float("alpha", 1.0)?)),
            "Sigmoid" => Op::Unary(Act::Sigmoid),
            "Tanh" => Op::Unary(Act::Tanh),
            "HardSigmoid" => Op::Unary(Act::HardSigmoid(a.float("alpha", 0.2)?, a.float("beta", 0.5)?)),
            "HardSwish" => Op::Unary(Act::HardSwish),
            "Exp" => Op::Unary(Act::Exp),
            "Log" => Op::Unary(Act::Log),
            "Sqrt" => Op::Unary(Act::Sqrt),
            "Neg" => Op::Unary(Act::Neg),
            "Abs" => Op::Unary(Act::Abs),
            "Floor" => Op::Unary(Act::Floor),
            "Ceil" => Op::Unary(Act::Ceil),
            "Sign" => Op::Unary(Act::Sign),
            "Max" => Op::Variadic(B::Max),
            "Min" => Op::Variadic(B::Min),
            "Equal" => Op::Compare(elementwise::Comparison::Equal),
            "Greater" => Op::Compare(elementwise::Comparison::Greater),
            "GreaterOrEqual" => Op::Compare(elementwise::Comparison::GreaterOrEqual),
            "Less" => Op::Compare(elementwise::Comparison::Less),
            "LessOrEqual" => Op::Compare(elementwise::Comparison::LessOrEqual),
            "Where" => Op::Where,
            "Range" => Op::Range,
            "CastLike" => Op::CastLike(cast_options(&a)?),
            "Clip" if opset < 11 => {
                Op::Unary(Act::Clip(a.float("min", f32::NEG_INFINITY)?, a.float("max", f32::INFINITY)?))
            }
            "Clip" => Op::Clip,
            "Add" => Op::Binary(elementwise::Binary(B::Add)),
            "Sub" => Op::Binary(elementwise::Binary(B::Sub)),
            "Mul" => Op::Binary(elementwise::Binary(B::Mul)),
            "Div" => Op::Binary(elementwise::Binary(B::Div)),
            "Pow" => Op::Binary(elementwise::Binary(B::Pow)),
            "PRelu" => Op::Binary(elementwise::Binary(B::PRelu)),
            "Cast" => Op::Cast(a.int("to", 0)? as i32, cast_options(&a)?),
            "Softmax" | "LogSoftmax" => Op::Softmax(reduce::Softmax::from_node(&a, opset)?),
            "ReduceMean" | "ReduceMax" | "ReduceSum" => Op::Reduce(reduce::Reduce::from_node(&a, opset)?),
            "MatMul" => Op::MatMul,
            "Gemm" => Op::Gemm(matmul::Gemm::from_node(&a)?),
            "Resize" | "Upsample" => Op::Resize(resize::Resize::from_node(&a, opset)?),
            "Identity" => Op::Identity,
            "Dropout" => Op::Dropout,
            _ => Op::Layout(layout::Layout::from_node(&a, opset)?),
        })
    }

    /// Whether the values of input `i` (not only its shape) decide the output's shape:
    /// a trial run on zeros cannot stand in for such an input.
    pub fn decides_shape(&self, i: usize) -> bool {
        use layout::Layout as L;
        match self {
            Op::Resize(_) | Op::Reduce(_) => i >= 1,
            Op::Layout(L::ConstantOfShape(_)) | Op::Range => true,
            Op::Layout(L::Expand) => i == 1,
            Op::Layout(
                L::Reshape { .. } | L::Squeeze(_) | L::Unsqueeze(_) | L::Split { .. } | L::Slice(_) | L::Pad { .. },
            ) => i >= 1,
            _ => false,
        }
    }

    /// Whether only the shape and type of input `i` matter, never its values (Shape's
    /// input, CastLike's model): a trial run's value can stand in for it when folding.
    pub fn reads_only_shape(&self, i: usize) -> bool {
        matches!((self, i), (Op::Layout(layout::Layout::Shape(..)), 0) | (Op::CastLike(_), 1))
    }

    /// The input whose buffer the output may take where the step reads it for the last
    /// time ([`Op::run_reusing`]).
    pub fn reusable_input(&self) -> Option<usize> {
        match self {
            Op::Blocked(b) => b.reusable_input(),
            _ => None,
        }
    }

    /// [`Op::run`] with input [`Op::reusable_input`] given by value, absent from `inputs`.
    pub fn run_reusing(&self, inputs: &[Option<&Value>], reused: Value) -> Result<Vec<Value>> {
        match self {
            Op::Blocked(b) => b.run(inputs, Some(reused)),
            _ => {
                let mut inputs = inputs.to_vec();
                if let Some(slot) = self.reusable_input().and_then(|i| inputs.get_mut(i)) {
                    *slot = Some(&reused);
                }
                self.run(&inputs)
            }
        }
    }

    /// Runs the operator on its inputs (`None` for an optional input left out).
    pub fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
        let input = |i: usize, op: &'static str| -> Result<&Value> {
            inputs.get(i).copied().flatten().ok_or_else(|| Error::shape(op, format!("input {} is missing", i + 1)))
        };
        Ok(match self {
            Op::Conv(c) => {
                let residual = if c.residual { opt(inputs, 3) } else { None };
                vec![c.run(input(0, "Conv")?, input(1, "Conv")?, opt(inputs, 2), residual)?]
            }
            Op::ConvTranspose(c) => {
                vec![c.run(input(0, "ConvTranspose")?, input(1, "ConvTranspose")?, opt(inputs, 2))?]
            }
            Op::BatchNorm(b) => b.run(inputs)?,
            Op::Pool(p) => p.run(input(0, "Pool")?)?,
            Op::Unary(f) => vec![f.run(input(0, f.name())?)?],
            Op::Binary(b) => vec![b.run(input(0, b.name())?, input(1, b.name())?)?],
            Op::Clip => vec![elementwise::clip(input(0, "Clip")?, opt(inputs, 1), opt(inputs, 2))?],
            Op::Cast(to, options) => vec![input(0, "Cast")?.cast_with(*to, *options)?],
            Op::CastLike(options) => {
                vec![input(0, "CastLike")?.cast_with(input(1, "CastLike")?.elem(), *options)?]
            }
            Op::Variadic(kind) => vec![elementwise::variadic(*kind, inputs)?],
            Op::Compare(c) => vec![c.run(input(0, c.name())?, input(1, c.name())?)?],
            Op::Where => vec![elementwise::select(input(0, "Where")?, input(1, "Where")?, input(2, "Where")?)?],
            Op::Range => vec![elementwise::range(input(0, "Range")?, input(1, "Range")?, input(2, "Range")?)?],
            Op::Softmax(s) => vec![s.run(input(0, "Softmax")?)?],
            Op::Reduce(r) => vec![r.run(input(0, r.name())?, opt(inputs, 1))?],
            Op::MatMul => vec![matmul::matmul(input(0, "MatMul")?, input(1, "MatMul")?)?],
            Op::Gemm(g) => vec![g.run(input(0, "Gemm")?, input(1, "Gemm")?, opt(inputs, 2))?],
            Op::Layout(l) => l.run(inputs)?,
            Op::Resize(r) => vec![r.run(inputs)?],
            Op::Identity => vec![input(0, "Identity")?.clone()],
            Op::Dropout => elementwise::dropout(input(0, "Dropout")?, opt(inputs, 1), opt(inputs, 2))?,
            Op::Blocked(b) => b.run(inputs, None)?,
        })
    }
}

/// Optional input `i`.
fn opt<'a>(inputs: &[Option<&'a Value>], i: usize) -> Option<&'a Value> {
    inputs.get(i).copied().flatten()
}

/// A node's attributes, read with the type each should have.
pub struct Attrs<'a>(pub &'a Node);

impl Attrs<'_> {
    fn get(&self, name: &str) -> Option<&AttributeValue> {
        self.0.attribute(name)
    }

    fn wrong(&self, name: &str, what: &str) -> Error {
        Error::Invalid(format!("{} node {:?}: attribute {name} should be {what}", self.0.op_type, self.0.name))
    }

    /// The op type.
    pub fn op(&self) -> &str {
        &self.0.op_type
    }

    /// The INT attribute `name`, else `default`.
    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        match self.get(name) {
            None => Ok(default),
            Some(AttributeValue::Int(v)) => Ok(*v),
            Some(_) => Err(self.wrong(name, "an integer")),
        }
    }

    /// The INTS attribute `name`, if given.
    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::Ints(v)) => Ok(Some(v.clone())),
            Some(_) => Err(self.wrong(name, "a list of integers")),
        }
    }

    /// The FLOAT attribute `name`, else `default`.
    pub fn float(&self, name: &str, default: f32) -> Result<f32> {
        match self.get(name) {
            None => Ok(default),
            Some(AttributeValue::Float(v)) => Ok(*v),
            Some(_) => Err(self.wrong(name, "a float")),
        }
    }

    /// The FLOATS attribute `name`, if given.
    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::Floats(v)) => Ok(Some(v.clone())),
            Some(_) => Err(self.wrong(name, "a list of floats")),
        }
    }

    /// The STRING attribute `name`, else `default`.
    pub fn string(&self, name: &str, default: &str) -> Result<String> {
        match self.get(name) {
            None => Ok(default.to_string()),
            Some(AttributeValue::String(v)) => Ok(String::from_utf8_lossy(v).into_owned()),
            Some(_) => Err(self.wrong(name, "a string")),
        }
    }

    /// The TENSOR attribute `name`, if given.
    pub fn tensor(&self, name: &str) -> Result<Option<&TensorData>> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::Tensor(t)) => Ok(Some(t)),
            Some(_) => Err(self.wrong(name, "a tensor")),
        }
    }

    /// An error about this node's attributes.
    pub fn invalid(&self, msg: impl std::fmt::Display) -> Error {
        Error::Invalid(format!("{} node {:?}: {msg}", self.0.op_type, self.0.name))
    }
}

/// Cast's and CastLike's `saturate` and `round_mode`.
fn cast_options(a: &Attrs) -> Result<CastOptions> {
    let mode = a.string("round_mode", "up")?;
    Ok(CastOptions {
        saturate: a.int("saturate", 1)? != 0,
        round_mode: crate::io::narrow::E8m0Rounding::parse(&mode)
            .ok_or_else(|| a.invalid(format!("round_mode {mode:?} (expected up, down or nearest)")))?,
    })
}

/// The values of a 1-D integer input (shapes, axes, pads), or an error naming `op`.
pub fn int_list(op: &'static str, v: &Value) -> Result<Vec<i64>> {
    if v.shape().len() > 1 {
        return Err(Error::shape(op, format!("expects a 1-D list, got shape {:?}", v.shape())));
    }
    match v {
        Value::Int { values, .. } => Ok(values.clone()),
        Value::Float { .. } => Err(Error::shape(op, "expects an integer list, got floats")),
    }
}

/// Checks a new output of `shape` for `op` against the memory budget, returning its size.
pub fn check_output(op: &'static str, shape: &[usize]) -> Result<usize> {
    check_output_of(op, shape, 4)
}

/// [`check_output`] for values of `value_bytes` bytes each (8 for integers, which are
/// held as i64; more where an index per value is built too).
pub fn check_output_of(op: &'static str, shape: &[usize], value_bytes: u64) -> Result<usize> {
    crate::budget::check_values(&format!("the output of {op} {shape:?}"), shape, value_bytes)
}
