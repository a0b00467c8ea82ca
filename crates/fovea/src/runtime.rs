//! The process-wide settings of the kernels: how many worker threads they use and the
//! highest SIMD instruction level they may run (the kernels themselves are internal).

pub use crate::kernels::isa::{current as current_isa, init as init_isa, resolve as resolve_isa};
pub use crate::kernels::{
    init_service_threads, init_threads, keep_freed_memory, num_threads, scoped, Isa, MAX_THREADS,
};
