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
        }
    }

    /// Its value at `x`.
    #[inline(always)]
    pub fn apply(&self, x: f32) -> f32 {
        match *self {
            Activation::Relu => x.max(0.0),
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
            // NaN stays NaN, as in ONNX's definition (f32::clamp would too, but panics on lo > hi)
            Activation::Clip(lo, hi) => x.max(lo).min(hi),
            Activation::Exp => x.exp(),
            Activation::Log => x.ln(),
            Activation::Sqrt => x.sqrt(),
            Activation::Neg => -x,
        }
    }

    /// Applies it in place (a fused activation).
    pub fn apply_slice(&self, values: &mut [f32]) {
        match *self {
            // the common cases as plain loops, which vectorise
            Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Clip(lo, hi) => values.iter_mut().for_each(|v| *v = v.max(lo).min(hi)),
            f => values.iter_mut().for_each(|v| *v = f.apply(*v)),
        }
    }

    /// Applies it to a value: floats; Relu, Neg and Clip also take integers.
    pub fn run(&self, x: &Value) -> Result<Value> {
        match x {
            Value::Float { elem, tensor } => Ok(Value::float_of(*elem, tensor.map(|v| self.apply(v)))),
            Value::Int { .. } if matches!(self, Activation::Relu | Activation::Neg | Activation::Clip(..)) => {
                Ok(x.like(x.to_f32_tensor().map(|v| self.apply(v))))
            }
            Value::Int { elem, .. } => {
                Err(Error::shape(self.name(), format!("expects a float tensor, got {}", elem_name(*elem))))
            }
        }
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
        }
    }

    /// `a op b`, broadcast. Floats compute in f32; integers of one type in wrapping i64;
    /// Pow also takes a base and an exponent of different types (the result has the
    /// base's type).
    pub fn run(&self, a: &Value, b: &Value) -> Result<Value> {
        let name = self.name();
        let out_shape = broadcast_shapes(name, a.shape(), b.shape())?;
        super::check_output(name, &out_shape)?;
        match (a, b) {
            (Value::Float { elem, tensor: x }, Value::Float { tensor: y, .. }) => {
                let f = self.float_fn();
                // PRelu's slope broadcasts to x ([C] or [C, 1, 1] against [N, C, H, W])
                let y = match (self.0, y.ndim()) {
                    (BinaryKind::PRelu, 1) if x.ndim() > 2 && y.numel() == x.shape()[1] && y.numel() > 1 => {
                        let mut shape = vec![1; x.ndim() - 1];
                        shape[0] = y.numel();
                        y.reshape(&shape)?
                    }
                    _ => y.clone(),
                };
                Ok(Value::float_of(*elem, x.zip_broadcast(&y, name, f)?))
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
            BinaryKind::Pow => |x, y| x.wrapping_pow(y.clamp(0, u32::MAX as i64) as u32),
        }
    }
}
