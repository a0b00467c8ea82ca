//! The values that flow through an inference graph: a tensor of one ONNX element type.
//! Floating types (float, double, float16, bfloat16, the float8 and float4 formats) are
//! held as f32 [`Tensor`]s, rounded to their own precision; integer types (4- and 2-bit
//! ones too) and booleans as i64, wrapped to their own range.
//! The CNN operators work on f32; integers carry shapes, axes and indices.

use crate::io::narrow::{self, E8m0Rounding};
use crate::io::onnx::{data_type::*, TensorData};
use crate::tensor::fmt_shape;
use crate::{Error, Result, Tensor};

/// A tensor of one ONNX element type.
#[derive(Clone, Debug)]
pub enum Value {
    /// float, double, float16 or bfloat16, as f32
    Float {
        /// the ONNX element type
        elem: i32,
        /// the values
        tensor: Tensor,
    },
    /// an integer type or bool, as i64
    Int {
        /// the ONNX element type
        elem: i32,
        /// the shape
        shape: Vec<usize>,
        /// the values, row-major
        values: Vec<i64>,
    },
}

/// The name of an ONNX element type, for messages.
pub fn elem_name(elem: i32) -> &'static str {
    match elem {
        FLOAT => "float",
        UINT8 => "uint8",
        INT8 => "int8",
        UINT16 => "uint16",
        INT16 => "int16",
        INT32 => "int32",
        INT64 => "int64",
        8 => "string",
        BOOL => "bool",
        FLOAT16 => "float16",
        DOUBLE => "double",
        UINT32 => "uint32",
        UINT64 => "uint64",
        BFLOAT16 => "bfloat16",
        FLOAT8E4M3FN => "float8e4m3fn",
        FLOAT8E4M3FNUZ => "float8e4m3fnuz",
        FLOAT8E5M2 => "float8e5m2",
        FLOAT8E5M2FNUZ => "float8e5m2fnuz",
        UINT4 => "uint4",
        INT4 => "int4",
        FLOAT4E2M1 => "float4e2m1",
        FLOAT8E8M0 => "float8e8m0",
        UINT2 => "uint2",
        INT2 => "int2",
        _ => "an unknown type",
    }
}

/// Whether fovea computes with `elem` as a float (else as an integer).
pub fn is_float(elem: i32) -> bool {
    matches!(elem, FLOAT | DOUBLE | FLOAT16 | BFLOAT16) || narrow::is_narrow_float(elem)
}

/// Refuses element types fovea does not compute with.
pub fn check_elem(elem: i32) -> Result<()> {
    match elem {
        FLOAT | DOUBLE | FLOAT16 | BFLOAT16 | UINT8 | INT8 | UINT16 | INT16 | INT32 | INT64 | BOOL | UINT32
        | UINT64 => Ok(()),
        e if narrow::is_narrow(e) => Ok(()),
        _ => Err(Error::Invalid(format!("element type {} ({elem}) is not supported", elem_name(elem)))),
    }
}

/// `v` rounded to float16 precision (round to nearest even, overflow to infinity).
pub fn round_to_f16(v: f32) -> f32 {
    if !v.is_finite() || v == 0.0 {
        return v;
    }
    let a = v.abs();
    if a >= 65520.0 {
        return f32::INFINITY.copysign(v);
    }
    // the spacing of float16 values around `a`: 2^(e-10) for normal numbers, 2^-24 below
    let e = a.log2().floor().max(-14.0);
    let step = (e - 10.0).exp2();
    ((a / step).round_ties_even() * step).copysign(v)
}

/// `v` rounded to bfloat16 precision (round to nearest even).
pub fn round_to_bf16(v: f32) -> f32 {
    if v.is_nan() {
        return v;
    }
    let bits = v.to_bits();
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) & 0xffff_0000;
    f32::from_bits(rounded)
}

/// `v` wrapped to the range of the integer type `elem` (as a C cast would).
pub fn wrap_int(elem: i32, v: i64) -> i64 {
    if let Some(w) = narrow::wrap_narrow_int(elem, v) {
        return w;
    }
    match elem {
        UINT8 => v as u8 as i64,
        INT8 => v as i8 as i64,
        UINT16 => v as u16 as i64,
        INT16 => v as i16 as i64,
        INT32 => v as i32 as i64,
        UINT32 => v as u32 as i64,
        BOOL => (v != 0) as i64,
        _ => v,
    }
}

/// A float converted to the integer type `elem`: truncated toward zero and saturated to
/// i64 (NaN is 0), then wrapped; for bool, whether it is not zero.
pub fn float_to_int(elem: i32, v: f64) -> i64 {
    if elem == BOOL {
        return (v != 0.0) as i64;
    }
    if elem == UINT64 && v >= 9.223_372_036_854_776e18 {
        return (v as u64) as i64;
    }
    if let Some(n) = narrow::float_to_narrow_int(elem, v) {
        return n;
    }
    wrap_int(elem, v as i64)
}

/// The value an integer of type `elem` stands for, as f64 (UINT64 is held in i64's bits).
pub fn int_to_f64(elem: i32, v: i64) -> f64 {
    if elem == UINT64 {
        v as u64 as f64
    } else {
        v as f64
    }
}

impl Value {
    /// A float tensor.
    pub fn float(tensor: Tensor) -> Value {
        Value::Float { elem: FLOAT, tensor }
    }

    /// An int64 tensor.
    pub fn int64(shape: Vec<usize>, values: Vec<i64>) -> Value {
        Value::Int { elem: INT64, shape, values }
    }

    /// A tensor of the floating type `elem`, its values rounded to that type's precision
    /// (as [`Value::cast`] does).
    pub fn float_of(elem: i32, tensor: Tensor) -> Value {
        Value::float_rounded(elem, tensor, CastOptions::default())
    }

    fn float_rounded(elem: i32, tensor: Tensor, options: CastOptions) -> Value {
        let tensor = match elem {
            FLOAT16 => tensor.map(round_to_f16),
            BFLOAT16 => tensor.map(round_to_bf16),
            e if narrow::is_narrow_float(e) => {
                tensor.map(narrow::float_rounder(e, options.saturate, options.round_mode))
            }
            _ => tensor,
        };
        Value::Float { elem, tensor }
    }

    /// A tensor of the integer type `elem`, its values wrapped to that type's range.
    pub fn int_of(elem: i32, shape: Vec<usize>, mut values: Vec<i64>) -> Value {
        values.iter_mut().for_each(|v| *v = wrap_int(elem, *v));
        Value::Int { elem, shape, values }
    }

    /// A tensor read from an ONNX file (an initializer, a `Constant`, a test's data), its
    /// size checked against the memory budget first.
    pub fn from_onnx(t: &TensorData) -> Result<Value> {
        check_elem(t.data_type).map_err(|e| Error::Invalid(format!("ONNX tensor {:?}: {e}", t.name)))?;
        let shape = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| Error::Invalid(format!("ONNX tensor {:?}: negative dimension in {:?}", t.name, t.dims)))?;
        if is_float(t.data_type) {
            Ok(Value::Float { elem: t.data_type, tensor: t.to_tensor()? })
        } else {
            crate::budget::check(&format!("ONNX tensor {:?}", t.name), (t.len()? as u64).saturating_mul(8))?;
            let values = if t.data_type == UINT64 {
                t.to_f64s()?.into_iter().map(|v| float_to_int(UINT64, v)).collect()
            } else {
                t.to_i64s()?
            };
            Ok(Value::Int { elem: t.data_type, shape, values })
        }
    }

    /// Bytes each value takes in memory: 4 (f32) or 8 (i64).
    pub fn value_bytes(&self) -> u64 {
        match self {
            Value::Float { .. } => 4,
            Value::Int { .. } => 8,
        }
    }

    /// The ONNX element type.
    pub fn elem(&self) -> i32 {
        match self {
            Value::Float { elem, .. } | Value::Int { elem, .. } => *elem,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Value::Float { tensor, .. } => tensor.shape(),
            Value::Int { shape, .. } => shape,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The float tensor, or an error naming `op` if this is an integer tensor.
    pub fn tensor(&self, op: &'static str) -> Result<&Tensor> {
        match self {
            Value::Float { tensor, .. } => Ok(tensor),
            Value::Int { elem, .. } => {
                Err(Error::shape(op, format!("expects a float tensor, got {}", elem_name(*elem))))
            }
        }
    }

    /// The integer values, or an error naming `op` if this is a float tensor.
    pub fn ints(&self, op: &'static str) -> Result<&[i64]> {
        match self {
            Value::Int { values, .. } => Ok(values),
            Value::Float { elem, .. } => {
                Err(Error::shape(op, format!("expects an integer tensor, got {}", elem_name(*elem))))
            }
        }
    }

    /// The values as f32, whatever the type (integers convert exactly up to 2^24), for
    /// the operators that compute in f32 on every type (pooling, clipping).
    pub fn to_f32_tensor(&self) -> Tensor {
        match self {
            Value::Float { tensor, .. } => tensor.clone(),
            Value::Int { shape, values, elem } => {
                Tensor::from_parts(shape.clone(), values.iter().map(|&v| int_to_f64(*elem, v) as f32).collect())
            }
        }
    }

    /// `tensor` converted back to this value's element type (the inverse of
    /// [`Value::to_f32_tensor`]).
    pub fn like(&self, tensor: Tensor) -> Value {
        match self.elem() {
            e if is_float(e) => Value::float_of(e, tensor),
            e => {
                let shape = tensor.shape().to_vec();
                let values = tensor.data().iter().map(|&v| float_to_int(e, v as f64)).collect();
                Value::Int { elem: e, shape, values }
            }
        }
    }

    /// The values as f64 (for comparisons and printing).
    pub fn to_f64s(&self) -> Vec<f64> {
        match self {
            Value::Float { tensor, .. } => tensor.data().iter().map(|&v| v as f64).collect(),
            Value::Int { elem, values, .. } => values.iter().map(|&v| int_to_f64(*elem, v)).collect(),
        }
    }

    /// This value with another shape of the same number of elements (free for floats).
    pub fn reshaped(&self, op: &'static str, shape: &[usize]) -> Result<Value> {
        if crate::tensor::shape_numel(op, shape)? != self.len() {
            return Err(Error::shape(
                op,
                format!("cannot reshape {} to {} (different sizes)", fmt_shape(self.shape()), fmt_shape(shape)),
            ));
        }
        Ok(match self {
            Value::Float { elem, tensor } => Value::Float { elem: *elem, tensor: tensor.reshape(shape)? },
            Value::Int { elem, values, .. } => {
                Value::Int { elem: *elem, shape: shape.to_vec(), values: values.clone() }
            }
        })
    }

    /// Picks elements: output element `i` is input element `index[i]`, in `shape`.
    pub fn gather_flat(&self, shape: Vec<usize>, index: &[usize]) -> Value {
        match self {
            Value::Float { elem, tensor } => {
                let d = tensor.data();
                Value::Float { elem: *elem, tensor: Tensor::from_parts(shape, index.iter().map(|&i| d[i]).collect()) }
            }
            Value::Int { elem, values, .. } => {
                Value::Int { elem: *elem, shape, values: index.iter().map(|&i| values[i]).collect() }
            }
        }
    }

    /// This value converted to the element type `to`, as ONNX's `Cast` does by default.
    pub fn cast(&self, to: i32) -> Result<Value> {
        self.cast_with(to, CastOptions::default())
    }

    /// This value converted to the element type `to`, as ONNX's `Cast` does with
    /// `options`.
    pub fn cast_with(&self, to: i32, options: CastOptions) -> Result<Value> {
        check_elem(to)?;
        Ok(match self {
            Value::Float { tensor, .. } if is_float(to) => Value::float_rounded(to, tensor.clone(), options),
            Value::Float { tensor, .. } => Value::Int {
                elem: to,
                shape: tensor.shape().to_vec(),
                values: tensor.data().iter().map(|&v| float_to_int(to, v as f64)).collect(),
            },
            Value::Int { elem, shape, values } if is_float(to) => Value::float_rounded(
                to,
                Tensor::from_parts(shape.clone(), values.iter().map(|&v| int_to_f64(*elem, v) as f32).collect()),
                options,
            ),
            Value::Int { shape, values, .. } => Value::int_of(to, shape.clone(), values.clone()),
        })
    }
}

/// How `Cast` rounds to the float8, float4 and E8M0 types (its attributes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CastOptions {
    /// a magnitude too large for a float8 type becomes its largest value (else infinity
    /// or NaN)
    pub saturate: bool,
    /// how a value becomes an E8M0 power of two
    pub round_mode: E8m0Rounding,
}

impl Default for CastOptions {
    fn default() -> Self {
        CastOptions { saturate: true, round_mode: E8m0Rounding::Up }
    }
}

/// Resolves an ONNX axis (negative counts from the end) against `rank`.
pub fn axis(op: &'static str, a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    if a < -r || a >= r {
        return Err(Error::shape(op, format!("axis {a} is out of range for rank {rank}")));
    }
    Ok(if a < 0 { (a + r) as usize } else { a as usize })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float16_rounding_matches_ieee() {
        assert_eq!(round_to_f16(1.0 + 1.0 / 4096.0), 1.0); // below half a step: down
        assert_eq!(round_to_f16(1.0 + 3.0 / 2048.0), 1.0 + 2.0 / 1024.0); // tie to even
        assert_eq!(round_to_f16(65504.0), 65504.0);
        assert_eq!(round_to_f16(70000.0), f32::INFINITY);
        assert_eq!(round_to_f16(3e-8), 2f32.powi(-24)); // subnormal
        assert_eq!(round_to_bf16(1.0 + 1.0 / 256.0), 1.0); // tie to even
        assert_eq!(round_to_bf16(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
    }
}
