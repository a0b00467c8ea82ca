//! Value parsers for number options: NaN, infinities and values outside the option's range
//! are refused with the range in the message (clap adds the option's name and value).

/// f32 or f64, from an f64 that must stay finite in it.
pub trait Real: Copy + Into<f64> {
    fn from_f64(v: f64) -> Option<Self>;
}
impl Real for f32 {
    fn from_f64(v: f64) -> Option<f32> {
        Some(v as f32).filter(|v| v.is_finite())
    }
}
impl Real for f64 {
    fn from_f64(v: f64) -> Option<f64> {
        Some(v).filter(|v| v.is_finite())
    }
}

fn parse<T: Real>(s: &str, ok: impl Fn(f64) -> bool, range: &str) -> Result<T, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("not a number; {range}"))?;
    // the range holds for the value as stored: 1e-50 is 0 as an f32
    T::from_f64(v).filter(|&t| ok(t.into())).ok_or_else(|| range.to_string())
}
/// Above 0 (learning rates, weights of costs).
pub fn positive<T: Real>(s: &str) -> Result<T, String> {
    parse(s, |v| v > 0.0, "must be a finite number above 0")
}
/// Above 0 and at most 1: a step on pixels in 0..1.
pub fn learning_rate_on_pixels(s: &str) -> Result<f32, String> {
    parse(s, |v| v > 0.0 && v <= 1.0, "must be above 0 and at most 1 (the pixels are in 0..1)")
}
/// 0 or more (weight decay, margins, distances).
pub fn non_negative<T: Real>(s: &str) -> Result<T, String> {
    parse(s, |v| v >= 0.0, "must be a finite number, 0 or more")
}
/// From 0 to 1 (scores, probabilities, IoU, momentum).
pub fn fraction<T: Real>(s: &str) -> Result<T, String> {
    parse(s, |v| (0.0..=1.0).contains(&v), "must be from 0 to 1")
}
/// A count of at least 1.
pub fn count(s: &str) -> Result<usize, String> {
    whole(1, usize::MAX)(s)
}
/// A whole number from `lo` to `hi` (`usize::MAX`: no upper end).
pub fn whole(lo: usize, hi: usize) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    move |s| {
        s.trim().parse::<usize>().ok().filter(|n| (lo..=hi).contains(n)).ok_or_else(|| match hi {
            usize::MAX => format!("must be a whole number, {lo} or more"),
            _ => format!("must be a whole number from {lo} to {hi}"),
        })
    }
}
