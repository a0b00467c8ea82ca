//! Kernel instruction levels: the one place that decides which SIMD code the kernels run.
//!
//! The level is the highest the CPU supports, capped by `FOVEA_ISA` (or [`init`], which
//! the CLI calls with its `--isa` option). Kernels read it with [`current`]; nothing else
//! probes the CPU. [`super::scoped`] runs code at another level on a pool of its own, so
//! that one process (a test, a benchmark) can compare the levels side by side.

use crate::{Error, Result};
use std::cell::Cell;
use std::sync::OnceLock;

/// An instruction level, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust compiled for the target's baseline (SSE2 on x86-64): exactly fovea's
    /// own kernels that machines without the x86-64 ones (ARM among them) run. (The GEMM
    /// there is gemm-f32's own choice, NEON on ARM; here its scalar micro-kernels.)
    Scalar,
    /// AVX2 with FMA (x86-64-v3).
    Avx2,
    /// AVX-512F on top of AVX2 and FMA (x86-64-v4).
    Avx512,
}

impl Isa {
    /// Every level, lowest first.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// The name `FOVEA_ISA` and `--isa` take.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The highest level this CPU supports.
    pub fn detected() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            // The GEMM's SIMD tokens decide: AVX2 and FMA (with SSE up to 4.2 and AVX), and
            // AVX-512F on top. fovea's own kernels need no more than those, and a VM that
            // hides one of them (it happens) gets the level below instead of a fault.
            #[cfg(target_arch = "x86_64")]
            {
                use gemm_common::simd::{MixedSimd, V3, V4};
                if <V4 as MixedSimd<f32, f32, f32, f32>>::try_new().is_some() {
                    return Isa::Avx512;
                }
                if <V3 as MixedSimd<f32, f32, f32, f32>>::try_new().is_some() {
                    return Isa::Avx2;
                }
            }
            Isa::Scalar
        })
    }

    /// Every level this CPU runs, lowest first.
    pub fn supported() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|&l| l <= Isa::detected()).collect()
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Isa {
    type Err = Error;
    fn from_str(s: &str) -> Result<Isa> {
        Isa::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::Invalid(format!("unknown instruction level '{s}' (expected scalar, avx2 or avx512)")))
    }
}

/// The process-wide level, set once.
static LEVEL: OnceLock<Isa> = OnceLock::new();

thread_local! {
    /// The level of a scoped pool's worker threads (see [`super::scoped`]).
    pub(super) static SCOPED: Cell<Option<Isa>> = const { Cell::new(None) };
}

/// The level for a cap of `cap` (else `FOVEA_ISA`): the lower of it and the CPU's. A cap
/// above what the CPU supports is no error: the CPU's level runs (as with PyTorch's
/// `ATEN_CPU_CAPABILITY`). An unknown `FOVEA_ISA` value is an error.
pub fn resolve(cap: Option<Isa>) -> Result<Isa> {
    let cap = match (cap, std::env::var("FOVEA_ISA")) {
        (Some(c), _) => Some(c),
        (None, Ok(v)) if !v.trim().is_empty() => {
            Some(v.parse().map_err(|e: Error| Error::Invalid(format!("FOVEA_ISA: {e}")))?)
        }
        _ => None,
    };
    Ok(cap.map_or(Isa::detected(), |c| c.min(Isa::detected())))
}

/// Sets the process-wide level once, to [`resolve`]`(cap)`, and returns it. Later calls
/// return the level already set.
pub fn init(cap: Option<Isa>) -> Result<Isa> {
    let level = resolve(cap)?;
    Ok(*LEVEL.get_or_init(|| level))
}

/// The level the kernels use on this thread: a scoped pool's, else the process-wide one
/// (set by [`init`] or, on first use, from `FOVEA_ISA`; a bad value there is reported on
/// stderr once and ignored, since a library cannot fail here).
pub fn current() -> Isa {
    SCOPED.get().unwrap_or_else(|| {
        *LEVEL.get_or_init(|| {
            resolve(None).unwrap_or_else(|e| {
                eprintln!("warning: {e}; using {}", Isa::detected());
                Isa::detected()
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_refused() {
        for l in Isa::ALL {
            assert_eq!(l.name().parse::<Isa>().unwrap(), l);
        }
        assert_eq!(" AVX2 ".parse::<Isa>().unwrap(), Isa::Avx2);
        let e = "sse9".parse::<Isa>().unwrap_err().to_string();
        assert!(e.contains("sse9") && e.contains("scalar, avx2 or avx512"), "{e}");
    }

    #[test]
    fn supported_levels_start_at_scalar_and_end_at_the_detected_one() {
        let s = Isa::supported();
        assert_eq!(s[0], Isa::Scalar);
        assert_eq!(*s.last().unwrap(), Isa::detected());
    }
}
