//! ONNX's 8-, 4- and 2-bit element types, the storage of quantized models: the
//! minifloats (float8 E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ; float4 E2M1; the exponent-only
//! E8M0) and the 4- and 2-bit integers. fovea computes with them as f32 and i64 values;
//! this module decodes their bytes and rounds values to them as ONNX's `Cast` does
//! (its reference implementation: ml_dtypes, then onnx's own E8M0 conversion).

use super::onnx::data_type::*;

/// A float8 or float4 format.
struct Minifloat {
    exponent_bits: u32,
    mantissa_bits: u32,
    bias: i32,
    /// E5M2: the all-ones exponent holds infinities and NaN, as in IEEE formats
    ieee: bool,
    /// the FNUZ formats: no negative zero; the code of negative zero is their one NaN
    unsigned_zero: bool,
    /// E2M1 has no NaN and no infinity
    has_nan: bool,
}

/// The minifloat of an element type, if it is one.
fn minifloat(elem: i32) -> Option<Minifloat> {
    let f = |exponent_bits, mantissa_bits, bias, ieee, unsigned_zero, has_nan| Minifloat {
        exponent_bits,
        mantissa_bits,
        bias,
        ieee,
        unsigned_zero,
        has_nan,
    };
    match elem {
        FLOAT8E4M3FN => Some(f(4, 3, 7, false, false, true)),
        FLOAT8E4M3FNUZ => Some(f(4, 3, 8, false, true, true)),
        FLOAT8E5M2 => Some(f(5, 2, 15, true, false, true)),
        FLOAT8E5M2FNUZ => Some(f(5, 2, 16, false, true, true)),
        FLOAT4E2M1 => Some(f(2, 1, 1, false, false, false)),
        _ => None,
    }
}

impl Minifloat {
    fn bits(&self) -> u32 {
        1 + self.exponent_bits + self.mantissa_bits
    }

    /// The value of `code` (the format's bits, right-aligned).
    fn decode(&self, code: u32) -> f32 {
        let sign_bit = 1 << (self.bits() - 1);
        let magnitude = code & (sign_bit - 1);
        let exponent = magnitude >> self.mantissa_bits;
        let mantissa = magnitude & ((1 << self.mantissa_bits) - 1);
        let all_ones = (1 << self.exponent_bits) - 1;
        if self.unsigned_zero && code == sign_bit {
            return f32::NAN;
        }
        if self.ieee && exponent == all_ones {
            return if mantissa == 0 {
                f32::INFINITY.copysign(if code & sign_bit != 0 { -1.0 } else { 1.0 })
            } else {
                f32::NAN
            };
        }
        // E4M3FN: S.1111.111 is NaN
        if !self.ieee && !self.unsigned_zero && self.has_nan && magnitude == sign_bit - 1 {
            return f32::NAN;
        }
        let m = mantissa as f32 / (1 << self.mantissa_bits) as f32;
        let value = if exponent == 0 {
            m * ((1 - self.bias) as f32).exp2()
        } else {
            (1.0 + m) * ((exponent as i32 - self.bias) as f32).exp2()
        };
        if code & sign_bit != 0 {
            -value
        } else {
            value
        }
    }

    /// The finite non-negative values, ascending, with their codes.
    fn finite_values(&self) -> Vec<(f32, u32)> {
        let sign_bit = 1u32 << (self.bits() - 1);
        (0..sign_bit).map(|c| (self.decode(c), c)).filter(|(v, _)| v.is_finite()).collect()
    }

    /// `v` rounded to the nearest of `values` ([`Minifloat::finite_values`]), ties to the
    /// even code. With
    /// `saturate` a magnitude past the largest value (infinity too) becomes the largest;
    /// without, one that rounds past it becomes infinity where the format has one, else
    /// NaN. NaN stays NaN (float4, which has none, gives -0, as ml_dtypes does).
    fn round(&self, values: &[(f32, u32)], v: f32, saturate: bool) -> f32 {
        if v.is_nan() {
            return if self.has_nan { f32::NAN } else { -0.0 };
        }
        let (max, max_code) = *values.last().expect("a format has values");
        let mut a = v.abs();
        // float4 always saturates (it has nothing else to become)
        if saturate || !self.has_nan {
            a = a.min(max);
        }
        let rounded = match values.partition_point(|&(x, _)| x <= a) {
            i if i == values.len() && a == max => max,
            i if i == values.len() => {
                // between the largest value and where the next code would lie
                let next = max + (max - values[values.len() - 2].0);
                let down = a - max < next - a || (a - max == next - a && max_code % 2 == 0);
                if down {
                    max
                } else if self.ieee {
                    f32::INFINITY
                } else {
                    return f32::NAN;
                }
            }
            i => {
                let ((lo, lo_code), (hi, _)) = (values[i - 1], values[i]);
                if a - lo < hi - a || (a - lo == hi - a && lo_code % 2 == 0) {
                    lo
                } else {
                    hi
                }
            }
        };
        if rounded == 0.0 && self.unsigned_zero {
            0.0
        } else {
            rounded.copysign(v)
        }
    }
}

/// E8M0: `2^(code - 127)`, code 255 is NaN. No sign and no zero.
fn decode_e8m0(code: u32) -> f32 {
    if code == 0xff {
        f32::NAN
    } else {
        f32::from_bits(if code == 0 { 1 << 22 } else { code << 23 })
    }
}

/// How a value becomes an E8M0 power of two (Cast's `round_mode`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum E8m0Rounding {
    /// the next power of two at or above the magnitude (the default)
    Up,
    /// the power of two at or below
    Down,
    /// the nearest, ties to the even code
    Nearest,
}

impl E8m0Rounding {
    /// From `round_mode`'s text.
    pub fn parse(mode: &str) -> Option<E8m0Rounding> {
        match mode {
            "up" => Some(E8m0Rounding::Up),
            "down" => Some(E8m0Rounding::Down),
            "nearest" => Some(E8m0Rounding::Nearest),
            _ => None,
        }
    }
}

/// `v` as E8M0 from its f32 exponent, as onnx's reference does: the sign is dropped,
/// infinity and NaN become NaN, a mantissa rounds the exponent per `mode`, and with
/// `saturate` never past the largest power (2^127).
fn round_e8m0(v: f32, saturate: bool, mode: E8m0Rounding) -> f32 {
    let bits = v.to_bits();
    let exponent = (bits >> 23) & 0xff;
    if exponent == 0xff {
        return f32::NAN;
    }
    let up = match mode {
        E8m0Rounding::Up => bits & 0x7f_ffff != 0,
        E8m0Rounding::Down => false,
        E8m0Rounding::Nearest => {
            let (guard, round, sticky) = (bits & 0x40_0000 != 0, bits & 0x20_0000 != 0, bits & 0x1f_ffff != 0);
            guard && (round || sticky || exponent > 0)
        }
    };
    let exponent = if up && !(saturate && exponent == 0xfe) { exponent + 1 } else { exponent };
    decode_e8m0(exponent)
}

/// The range of a 4- or 2-bit integer type.
fn narrow_int_range(elem: i32) -> Option<(i64, i64)> {
    match elem {
        INT4 => Some((-8, 7)),
        UINT4 => Some((0, 15)),
        INT2 => Some((-2, 1)),
        UINT2 => Some((0, 3)),
        _ => None,
    }
}

/// Whether `elem` is one of this module's types.
pub fn is_narrow(elem: i32) -> bool {
    minifloat(elem).is_some() || elem == FLOAT8E8M0 || narrow_int_range(elem).is_some()
}

/// Bits per element of a narrow type (8, 4 or 2).
pub fn bits(elem: i32) -> usize {
    match elem {
        UINT2 | INT2 => 2,
        UINT4 | INT4 | FLOAT4E2M1 => 4,
        _ => 8,
    }
}

/// The `n` values packed in `bytes` (lowest bits first), or `None` if `bytes` does not
/// hold exactly `n` of them.
pub fn decode(elem: i32, bytes: &[u8], n: usize) -> Option<Vec<f64>> {
    let per_byte = 8 / bits(elem);
    if bytes.len() != n.div_ceil(per_byte) {
        return None;
    }
    let mask = (1u32 << bits(elem)) - 1;
    let code = |i: usize| (bytes[i / per_byte] as u32 >> (bits(elem) * (i % per_byte))) & mask;
    let value = |c: u32| -> f64 {
        if let Some(f) = minifloat(elem) {
            f.decode(c) as f64
        } else if elem == FLOAT8E8M0 {
            decode_e8m0(c) as f64
        } else {
            // two's complement for the signed ones
            let signed = matches!(elem, INT4 | INT2) && c >> (bits(elem) - 1) != 0;
            c as f64 - if signed { (mask + 1) as f64 } else { 0.0 }
        }
    };
    Some((0..n).map(|i| value(code(i))).collect())
}

/// Rounds values to the narrow float type `elem` as Cast does (`saturate`, `mode` for
/// E8M0); the format's table of values is made once.
pub fn float_rounder(elem: i32, saturate: bool, mode: E8m0Rounding) -> impl Fn(f32) -> f32 {
    let format = minifloat(elem).map(|f| {
        let values = f.finite_values();
        (f, values)
    });
    move |v| match &format {
        Some((f, values)) => f.round(values, v, saturate),
        None => round_e8m0(v, saturate, mode),
    }
}

/// Whether `elem` is a narrow float type.
pub fn is_narrow_float(elem: i32) -> bool {
    minifloat(elem).is_some() || elem == FLOAT8E8M0
}

/// A float converted to the narrow integer type `elem`: truncated toward zero; outside
/// the type's range (and NaN) it is 0, as ml_dtypes gives.
pub fn float_to_narrow_int(elem: i32, v: f64) -> Option<i64> {
    let (lo, hi) = narrow_int_range(elem)?;
    let t = v.trunc();
    Some(if t >= lo as f64 && t <= hi as f64 { t as i64 } else { 0 })
}

/// An integer wrapped to the narrow integer type `elem` (two's complement, as a C cast).
pub fn wrap_narrow_int(elem: i32, v: i64) -> Option<i64> {
    let (lo, hi) = narrow_int_range(elem)?;
    let span = hi - lo + 1;
    // (span divides 2^64, so the wrapped difference leaves the same remainder)
    Some(v.wrapping_sub(lo).rem_euclid(span) + lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_decodes_and_rounds_back_to_itself() {
        for elem in [FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ, FLOAT4E2M1] {
            let f = minifloat(elem).unwrap();
            let values = f.finite_values();
            for code in 0..1u32 << f.bits() {
                let v = f.decode(code);
                let back = f.round(&values, v, false);
                assert!(
                    back.to_bits() == v.to_bits() || (v.is_nan() && back.is_nan()),
                    "{elem} code {code}: {v} -> {back}"
                );
            }
        }
    }

    #[test]
    fn the_formats_largest_values_and_nan() {
        let max = |elem| minifloat(elem).unwrap().finite_values().last().unwrap().0;
        assert_eq!(
            [448.0, 240.0, 57344.0, 57344.0, 6.0],
            [FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ, FLOAT4E2M1].map(max)
        );
        assert!(minifloat(FLOAT8E4M3FN).unwrap().decode(0x7f).is_nan());
        assert!(minifloat(FLOAT8E4M3FNUZ).unwrap().decode(0x80).is_nan());
        assert_eq!(decode_e8m0(127), 1.0);
        assert_eq!(wrap_narrow_int(INT4, 8), Some(-8));
        assert_eq!(wrap_narrow_int(INT4, i64::MAX), Some(-1));
        assert_eq!(wrap_narrow_int(UINT2, i64::MIN), Some(0));
        assert_eq!(decode(INT4, &[0x8f], 2), Some(vec![-1.0, -8.0]));
        // three 4-bit values need two bytes; four 2-bit ones one
        assert_eq!(decode(UINT4, &[0x8f], 3), None);
        assert_eq!(decode(UINT2, &[0b11_10_01_00], 4), Some(vec![0.0, 1.0, 2.0, 3.0]));
    }
}
