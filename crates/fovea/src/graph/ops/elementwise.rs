//! Elementwise operators: activations (which a convolution can also apply to its own
//! output, fused), arithmetic with NumPy broadcasting on floats and integers, Clip and
//! Dropout.

use crate::graph::value::{elem_name, float_to_int, int_to_f64, is_float, wrap_int, Value};
use crate::io::onnx::data_type::BOOL;
use crate::tensor::{broadcast_map, broadcast_shapes};
use crate::{Error, Result, Tensor};

/// A function applied to every element of a float tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// max(x, 0)
    Relu,
    /// x, or alpha·x below 0
    LeakyRelu(f32),
    /// x, or alpha·(e^x - 1) below 0
    Elu(f32),
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// tanh x
    Tanh,
    /// max(0, min(1, alpha·x + beta))
    HardSigmoid(f32, f32),
    /// x · max(0, min(1, x/6 + 1/2))
    HardSwish,
    /// min(max(x, lo), hi)
    Clip(f32, f32),
    /// e^x
    Exp,
    /// ln x
    Log,
    /// √x
    Sqrt,
    /// -x
    Neg,
    /// |x|
    Abs,
    /// the largest whole number not above x
    Floor,
    /// the smallest whole number not below x
    Ceil,
    /// -1, 0 or 1
    Sign,
}

impl Activation {
    /// The ONNX operator's name.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Relu => "Relu",
            Activation::LeakyRelu(_) => "LeakyRelu",
            Activation::Elu(_) => "Elu",
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
            Activation::HardSigmoid(..) => "HardSigmoid",
            Activation::HardSwish => "HardSwish",
            Activation::Clip(..) => "Clip",
            Activation::Exp => "Exp",
            Activation::Log => "Log",
            Activation::Sqrt => "Sqrt",
            Activation::Neg => "Neg",
            Activation::Abs => "Abs",
            Activation::Floor => "Floor",
            Activation::Ceil => "Ceil",
            Activation::Sign => "Sign",
        }
    }

    /// Its value at `x`.
    #[inline(always)]
    pub fn apply(&self, x: f32) -> f32 {
        match *self {
            // NaN stays NaN (f32::max would drop it), as in PyTorch and onnxruntime
            Activation::Relu => relu(x),
            Activation::LeakyRelu(a) => {
                if x < 0.0 {
                    a * x
                } else {
                    x
                }
            }
            Activation::Elu(a) => {
                if x < 0.0 {
                    a * x.exp_m1()
                } else {
                    x
                }
            }
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::HardSigmoid(a, b) => (a * x + b).clamp(0.0, 1.0),
            Activation::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Activation::Clip(lo, hi) => clip_value(x, lo, hi),
            Activation::Exp => x.exp(),
            Activation::Log => x.ln(),
            Activation::Sqrt => x.sqrt(),
            Activation::Neg => -x,
            Activation::Abs => x.abs(),
            Activation::Floor => x.floor(),
            Activation::Ceil => x.ceil(),
            Activation::Sign if x == 0.0 || x.is_nan() => x,
            Activation::Sign => x.signum(),
        }
    }

    /// Its value at the integer `x`, for the functions defined on integers.
    fn apply_int(&self, x: i64) -> Option<i64> {
        Some(match self {
            Activation::Relu => x.max(0),
            Activation::Neg => x.wrapping_neg(),
            Activation::Abs => x.wrapping_abs(),
            Activation::Sign => x.signum(),
            Activation::Floor | Activation::Ceil => x,
            _ => return None,
        })
    }

    /// Whether it is a function a convolution can apply to its output (an activation,
    /// not arithmetic that would change a model's meaning if it moved).
    pub fn fusable(&self) -> bool {
        !matches!(
            self,
            Activation::Exp
                | Activation::Log
                | Activation::Sqrt
                | Activation::Neg
                | Activation::Abs
                | Activation::Floor
                | Activation::Ceil
                | Activation::Sign
        )
    }

    /// Applies it in place (a fused activation).
    pub fn apply_slice(&self, values: &mut [f32]) {
        match *self {
            // the common cases as plain loops, which vectorise
            Activation::Relu => values.iter_mut().for_each(|v| *v = relu(*v)),
            Activation::Clip(lo, hi) => values.iter_mut().for_each(|v| *v = clip_value(*v, lo, hi)),
            f => values.iter_mut().for_each(|v| *v = f.apply(*v)),
        }
    }

    /// Applies it to a value: floats, and integers where it is defined on them (exactly).
    pub fn run(&self, x: &Value) -> Result<Value> {
        match x {
            Value::Float { elem, tensor } => Ok(Value::float_of(*elem, tensor.map(|v| self.apply(v)))),
            Value::Int { elem, shape, values } => {
                let values: Option<Vec<i64>> = values.iter().map(|&v| self.apply_int(v)).collect();
                match values {
                    Some(v) => Ok(Value::int_of(*elem, shape.clone(), v)),
                    None => Err(Error::shape(self.name(), format!("expects a float tensor, got {}", elem_name(*elem)))),
                }
            }
        }
    }
}

/// max(x, 0), NaN kept; a select, so that loops of it vectorise.
#[inline(always)]
fn relu(x: f32) -> f32 {
    if x < 0.0 {
        0.0
    } else {
        x
    }
}

/// min(max(x, lo), hi), NaN kept; hi when lo > hi, as NumPy's clip (f32::clamp panics).
#[inline(always)]
fn clip_value(x: f32, lo: f32, hi: f32) -> f32 {
    let y = if x < lo { lo } else { x };
    if y > hi {
        hi
    } else {
        y
    }
}

/// Clip with bounds given as inputs (opset 11 and later).
pub fn clip(x: &Value, lo: Option<&Value>, hi: Option<&Value>) -> Result<Value> {
    let bound = |b: Option<&Value>, default: f32| -> Result<f32> {
        match b {
            None => Ok(default),
            Some(v) if v.len() == 1 => Ok(v.to_f64s()[0] as f32),
            Some(v) => Err(Error::shape("Clip", format!("a bound must be a scalar, got shape {:?}", v.shape()))),
        }
    };
    let (lo, hi) = (bound(lo, f32::NEG_INFINITY)?, bound(hi, f32::INFINITY)?);
    if let Value::Int { elem, shape, values } = x {
        // exact on every integer, however large
        let (lo, hi) = (lo as f64, hi as f64);
        let clipped = values.iter().map(|&v| {
            let f = int_to_f64(*elem, v);
            if f < lo {
                float_to_int(*elem, lo)
            } else if f > hi {
                float_to_int(*elem, hi)
            } else {
                v
            }
        });
        return Ok(Value::Int { elem: *elem, shape: shape.clone(), values: clipped.collect() });
    }
    Activation::Clip(lo, hi).run(x)
}

/// Dropout at inference: the input unchanged and a mask of trues. Training mode (a true
/// third input) with a non-zero ratio drops at random, which an inference runtime refuses.
pub fn dropout(x: &Value, ratio: Option<&Value>, training: Option<&Value>) -> Result<Vec<Value>> {
    let training = training.is_some_and(|t| t.to_f64s().first().is_some_and(|&v| v != 0.0));
    let ratio = ratio.and_then(|r| r.to_f64s().first().copied()).unwrap_or(0.5);
    if training && ratio != 0.0 {
        return Err(Error::shape("Dropout", "training mode drops at random; fovea runs graphs for inference"));
    }
    let mask = Value::Int { elem: BOOL, shape: x.shape().to_vec(), values: vec![1; x.len()] };
    Ok(vec![x.clone(), mask])
}

/// The arithmetic operators.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinaryKind {
    /// a + b
    Add,
    /// a - b
    Sub,
    /// a · b
    Mul,
    /// a / b (integers: toward zero)
    Div,
    /// a ^ b
    Pow,
    /// a, or b·a where a < 0
    PRelu,
    /// the larger (NaN if either is)
    Max,
    /// the smaller (NaN if either is)
    Min,
}

/// A broadcasting binary operator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Binary(pub BinaryKind);

impl Binary {
    /// The ONNX operator's name.
    pub fn name(&self) -> &'static str {
        match self.0 {
            BinaryKind::Add => "Add",
            BinaryKind::Sub => "Sub",
            BinaryKind::Mul => "Mul",
            BinaryKind::Div => "Div",
            BinaryKind::Pow => "Pow",
            BinaryKind::PRelu => "PRelu",
            BinaryKind::Max => "Max",
            BinaryKind::Min => "Min",
        }
    }

    /// `a op b`, broadcast. Floats compute in f32; integers of one type in wrapping i64;
    /// Pow also takes a base and an exponent of different types (the result has the
    /// base's type).
    pub fn run(&self, a: &Value, b: &Value) -> Result<Value> {
        let name = self.name();
        let out_shape = broadcast_shapes(name, a.shape(), b.shape())?;
        super::check_output_of(name, &out_shape, a.value_bytes())?;
        match (a, b) {
            (Value::Float { elem, tensor: x }, Value::Float { tensor: y, .. }) => {
                let f = self.float_fn();
                Ok(Value::float_of(*elem, x.zip_broadcast(y, name, f)?))
            }
            (Value::Int { elem, shape: sa, values: va }, Value::Int { elem: eb, shape: sb, values: vb })
                if elem == eb && self.0 != BinaryKind::Pow =>
            {
                let f = self.int_fn(*elem);
                let values = broadcast_map(va, sa, vb, sb, &out_shape, |x, y| wrap_int(*elem, f(x, y)));
                Ok(Value::Int { elem: *elem, shape: out_shape, values })
            }
            _ if self.0 == BinaryKind::Pow => {
                let (x, y) = (a.to_f64s(), b.to_f64s());
                let values = broadcast_map(&x, a.shape(), &y, b.shape(), &out_shape, f64::powf);
                let elem = a.elem();
                Ok(if is_float(elem) {
                    Value::float_of(elem, Tensor::from_parts(out_shape, values.into_iter().map(|v| v as f32).collect()))
                } else {
                    Value::Int {
                        elem,
                        shape: out_shape,
                        values: values.into_iter().map(|v| float_to_int(elem, v)).collect(),
                    }
                })
            }
            _ => Err(Error::shape(
                name,
                format!("operands of different types ({} and {})", elem_name(a.elem()), elem_name(b.elem())),
            )),
        }
    }

    fn float_fn(&self) -> fn(f32, f32) -> f32 {
        match self.0 {
            BinaryKind::Add => |x, y| x + y,
            BinaryKind::Sub => |x, y| x - y,
            BinaryKind::Mul => |x, y| x * y,
            BinaryKind::Div => |x, y| x / y,
            BinaryKind::Pow => f32::powf,
            BinaryKind::PRelu => |x, s| if x < 0.0 { s * x } else { x },
            BinaryKind::Max => |x, y| if x.is_nan() || y.is_nan() { f32::NAN } else { x.max(y) },
            BinaryKind::Min => |x, y| if x.is_nan() || y.is_nan() { f32::NAN } else { x.min(y) },
        }
    }

    fn int_fn(&self, elem: i32) -> fn(i64, i64) -> i64 {
        let unsigned = matches!(elem, crate::io::onnx::data_type::UINT64);
        match self.0 {
            BinaryKind::Add => i64::wrapping_add,
            BinaryKind::Sub => i64::wrapping_sub,
            BinaryKind::Mul => i64::wrapping_mul,
            // division by zero has no defined result; 0 rather than a crash
            BinaryKind::Div if unsigned => |x, y| if y == 0 { 0 } else { ((x as u64) / (y as u64)) as i64 },
            BinaryKind::Div => |x, y| if y == 0 { 0 } else { x.wrapping_div(y) },
            BinaryKind::PRelu => |x, s| if x < 0 { s.wrapping_mul(x) } else { x },
            BinaryKind::Max if unsigned => |x, y| (x as u64).max(y as u64) as i64,
            BinaryKind::Min if unsigned => |x, y| (x as u64).min(y as u64) as i64,
            BinaryKind::Max => i64::max,
            BinaryKind::Min => i64::min,
            BinaryKind::Pow => |x, y| x.wrapping_pow(y.clamp(0, u32::MAX as i64) as u32),
        }
    }
}

/// Max or Min of any number of values, broadcast together.
pub fn variadic(kind: BinaryKind, inputs: &[Option<&Value>]) -> Result<Value> {
    let op = Binary(kind);
    let mut values = inputs.iter().flatten();
    let first = values.next().ok_or_else(|| Error::shape(op.name(), "no inputs"))?;
    values.try_fold((*first).clone(), |acc, v| op.run(&acc, v))
}

/// The comparisons, whose result is a bool tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Comparison {
    /// a == b
    Equal,
    /// a > b
    Greater,
    /// a >= b
    GreaterOrEqual,
    /// a < b
    Less,
    /// a <= b
    LessOrEqual,
}

impl Comparison {
    /// The ONNX operator's name.
    pub fn name(&self) -> &'static str {
        match self {
            Comparison::Equal => "Equal",
            Comparison::Greater => "Greater",
            Comparison::GreaterOrEqual => "GreaterOrEqual",
            Comparison::Less => "Less",
            Comparison::LessOrEqual => "LessOrEqual",
        }
    }

    /// `a op b`, broadcast, compared as f64 (exact for floats and for integers up to 2^53).
    pub fn run(&self, a: &Value, b: &Value) -> Result<Value> {
        let out_shape = broadcast_shapes(self.name(), a.shape(), b.shape())?;
        // booleans as i64, and both sides as f64 (neither larger than the output)
        super::check_output_of(self.name(), &out_shape, 24)?;
        let (x, y) = (a.to_f64s(), b.to_f64s());
        let f: fn(f64, f64) -> bool = match self {
            Comparison::Equal => |x, y| x == y,
            Comparison::Greater => |x, y| x > y,
            Comparison::GreaterOrEqual => |x, y| x >= y,
            Comparison::Less => |x, y| x < y,
            Comparison::LessOrEqual => |x, y| x <= y,
        };
        let values = broadcast_map(&x, a.shape(), &y, b.shape(), &out_shape, |x, y| f(x, y) as i64);
        Ok(Value::Int { elem: BOOL, shape: out_shape, values })
    }
}

/// Where: `x` where `condition` is true, else `y`, all three broadcast.
pub fn select(condition: &Value, x: &Value, y: &Value) -> Result<Value> {
    const OP: &str = "Where";
    if x.elem() != y.elem() {
        return Err(Error::shape(OP, format!("x is {} but y is {}", elem_name(x.elem()), elem_name(y.elem()))));
    }
    let shape = broadcast_shapes(OP, &broadcast_shapes(OP, condition.shape(), x.shape())?, y.shape())?;
    let (c, x, y) = (
        super::layout::expand(condition, &shape)?,
        super::layout::expand(x, &shape)?,
        super::layout::expand(y, &shape)?,
    );
    let c = c.to_f64s();
    Ok(match (x, y) {
        (Value::Float { elem, tensor: a }, Value::Float { tensor: b, .. }) => {
            let v = c.iter().zip(a.data().iter().zip(b.data())).map(|(&c, (&a, &b))| if c != 0.0 { a } else { b });
            Value::Float { elem, tensor: Tensor::from_parts(shape, v.collect()) }
        }
        (Value::Int { elem, values: a, .. }, Value::Int { values: b, .. }) => {
            let v = c.iter().zip(a.iter().zip(&b)).map(|(&c, (&a, &b))| if c != 0.0 { a } else { b });
            Value::Int { elem, shape, values: v.collect() }
        }
        _ => return Err(Error::shape(OP, "x and y differ in type")),
    })
}

/// Range: `start, start + delta, ...` below `limit` (above, for a negative delta).
pub fn range(start: &Value, limit: &Value, delta: &Value) -> Result<Value> {
    const OP: &str = "Range";
    let scalar = |v: &Value| -> Result<f64> {
        match v.to_f64s().as_slice() {
            [x] => Ok(*x),
            _ => Err(Error::shape(OP, format!("expects scalars, got shape {:?}", v.shape()))),
        }
    };
    let (s, l, d) = (scalar(start)?, scalar(limit)?, scalar(delta)?);
    if d == 0.0 || !(s.is_finite() && l.is_finite() && d.is_finite()) {
        return Err(Error::shape(OP, format!("no range from {s} to {l} by {d}")));
    }
    let n = ((l - s) / d).ceil().max(0.0);
    if n > (1u64 << 40) as f64 {
        return Err(Error::shape(OP, format!("a range of {n} values")));
    }
    let n = n as usize;
    super::check_output_of(OP, &[n], start.value_bytes())?;
    Ok(match start {
        Value::Float { elem, .. } => {
            let (s, d) = (s as f32, d as f32);
            Value::float_of(*elem, Tensor::from_parts(vec![n], (0..n).map(|i| s + i as f32 * d).collect()))
        }
        Value::Int { elem, .. } => {
            let (s, d) = (s as i64, d as i64);
            Value::int_of(*elem, vec![n], (0..n as i64).map(|i| s.wrapping_add(i.wrapping_mul(d))).collect())
        }
    })
}
