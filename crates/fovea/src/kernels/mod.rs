//! Slice-level CPU kernels with no autograd: GEMM, im2col/col2im convolution, pooling,
//! batch-norm loops, bilinear sampling.
//! This is the only module that knows about threads and SIMD instruction levels
//! ([`isa`]); keep its interface narrow so that another backend can be added behind it.

pub mod blocked;
pub mod conv;
pub mod gemm;
pub mod isa;
pub(crate) mod norm;
pub mod pool;
pub mod sample;

pub use isa::Isa;
use rayon::prelude::*;

/// Values per parallel chunk of an elementwise op: below this, waking a thread costs
/// more than it saves.
const ELEMENTWISE_CHUNK: usize = 1 << 15;

/// A new buffer of `len` values, `f(range, out)` writing every value of each chunk `out`
/// of it (`range` is where the chunk lies), on all threads when there are many values.
/// The buffer is not zeroed first: `f` must write the whole chunk.
pub(crate) fn par_elementwise(
    len: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [std::mem::MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    par_filled(len, ELEMENTWISE_CHUNK, |i, chunk| {
        let start = i * ELEMENTWISE_CHUNK;
        f(start..start + chunk.len(), chunk)
    })
}

/// A new buffer of `len` values, `f(i, out)` writing every value of its `i`-th chunk of
/// `chunk` values (the last may be shorter), chunks in parallel. Not zeroed first (a
/// serial memset of a large buffer costs more than many kernels): `f` must write the
/// whole chunk.
pub(crate) fn par_filled(
    len: usize,
    chunk: usize,
    f: impl Fn(usize, &mut [std::mem::MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    par_fill(&mut out.spare_capacity_mut()[..len], chunk, f);
    // SAFETY: the chunks cover 0..len and `f` wrote each of their values.
    unsafe { out.set_len(len) };
    out
}

/// [`par_filled`] into `out`, a part of a buffer the caller allocated.
pub(crate) fn par_fill(
    out: &mut [std::mem::MaybeUninit<f32>],
    chunk: usize,
    f: impl Fn(usize, &mut [std::mem::MaybeUninit<f32>]) + Sync,
) {
    out.par_chunks_mut(chunk.max(1)).enumerate().for_each(|(i, c)| f(i, c));
}

/// `len` zeros, written on all threads.
pub(crate) fn par_zeros(len: usize) -> Vec<f32> {
    par_filled(len, ELEMENTWISE_CHUNK, |_, c| c.fill(std::mem::MaybeUninit::new(0.0)))
}

/// `dst[l·dst_stride + i] = src[i·stride + l]` for `l < rows`, `i < count` of an 8 x 8
/// block (`[rows, count]` = `size`).
///
/// # Safety
/// The CPU must have AVX2, `src` hold `7·stride + 8` values, and `dst` be valid for
/// those writes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn transpose_8x8(
    src: &[f32],
    stride: usize,
    dst: *mut f32,
    dst_stride: usize,
    [rows, count]: [usize; 2],
) {
    use std::arch::x86_64::*;
    debug_assert!(src.len() >= 7 * stride + 8);
    let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.as_ptr().add(i * stride)));
    // pairs of rows interleaved, then quads, then the two 128-bit halves
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xee>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xee>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xee>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xee>(t5, t7);
    let out = [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ];
    if count == 8 {
        for (l, v) in out.into_iter().take(rows).enumerate() {
            _mm256_storeu_ps(dst.add(l * dst_stride), v);
        }
    } else {
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(count as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (l, v) in out.into_iter().take(rows).enumerate() {
            _mm256_maskstore_ps(dst.add(l * dst_stride), mask, v);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) unsafe fn transpose_8x8(src: &[f32], stride: usize, dst: *mut f32, dst_stride: usize, size: [usize; 2]) {
    unreachable!("the 8 x 8 transpose needs x86-64 ({}, {stride}, {dst:?}, {dst_stride}, {size:?})", src.len())
}

/// Copies a short row (patch rows and pooling planes are often under 32 values) in
/// fixed blocks of 8, which compile to vector moves; a plain `copy_from_slice` becomes a
/// `memmove` call per row.
#[inline(always)]
pub(crate) fn copy_short(dst: &mut [f32], src: &[f32]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (a, b) in (&mut d).zip(&mut s) {
        let b: &[f32; 8] = b.try_into().expect("chunk of 8");
        a.copy_from_slice(b);
    }
    for (a, &b) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *a = b;
    }
}

/// `Σ f(i)` for `i < len` in 8 independent f32 lanes (value i in lane i % 8): more
/// accurate than one running sum, and whole groups of 8 vectorise.
#[inline]
pub(crate) fn lane_sum(len: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut lanes = [0.0f32; 8];
    let full = len / 8 * 8;
    for i in (0..full).step_by(8) {
        for (l, lane) in lanes.iter_mut().enumerate() {
            *lane += f(i + l);
        }
    }
    for i in full..len {
        lanes[i % 8] += f(i);
    }
    lanes.iter().sum()
}

/// Runs `f` with the pool's other threads kept awake: each spins, running pool work as
/// soon as it appears, until `f` returns. A sleeping thread takes 40-100 µs to wake on a
/// virtual machine, which for a network of many short parallel steps at batch 1 costs as
/// much as the second thread gives (ONNX Runtime's threads spin between operators too).
/// For a sequence of kernels on one input: the threads burn CPU while `f` runs. One such
/// section at a time in the process: a spinner runs whatever pool work it finds, so
/// concurrent sections (a server's requests) would wait on each other's; they run `f`
/// plainly. (Not for pools built with `breadth_first`, where a thread could pick up its
/// own spinner before `f`; fovea builds none.)
pub fn with_warm_threads<R>(f: impl FnOnce() -> R) -> R {
    use std::sync::atomic::{AtomicBool, Ordering};
    static WARM: AtomicBool = AtomicBool::new(false);
    if WARM.swap(true, Ordering::AcqRel) {
        return f();
    }
    /// Stops the spinners when `f` returns or panics (else the scope would wait forever).
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    /// Lets the next section warm the threads once this one's spinners are gone.
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            WARM.store(false, Ordering::Release);
        }
    }
    let _release = Release;
    let done = AtomicBool::new(false);
    rayon::in_place_scope(|s| {
        for _ in 1..num_threads() {
            s.spawn(|_| {
                while !done.load(Ordering::Acquire) {
                    if rayon::yield_now() != Some(rayon::Yield::Executed) {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        let _stop = Stop(&done);
        f()
    })
}

/// Number of worker threads used by the kernels (rayon's global pool).
pub fn num_threads() -> usize {
    rayon::current_num_threads()
}

/// The most kernel threads a process may ask for.
pub const MAX_THREADS: usize = 1024;

/// Sets the kernel thread count once per process: `threads`, else `FOVEA_THREADS`, else
/// all cores (under an MPI launcher, the cores it bound the process to, or the machine's
/// shared among the processes it started here: [`crate::dist::local_size`]); a count that is not from 1 to [`MAX_THREADS`] is refused. Later calls have
/// no effect (rayon's pool is global). The calling thread is one of the pool's threads (a
/// program that computes on its main thread wastes none); a server, whose main thread
/// waits on connections, calls [`init_service_threads`] instead.
pub fn init_threads(threads: Option<usize>) -> crate::Result<()> {
    init_pool(threads, true)
}

/// [`init_threads`] for a program whose calling thread does other work (a server's event
/// loop): the pool's threads are all its own, so that work handed to it from other
/// threads gets every one of them.
pub fn init_service_threads(threads: Option<usize>) -> crate::Result<()> {
    init_pool(threads, false)
}

fn init_pool(threads: Option<usize>, caller_joins: bool) -> crate::Result<()> {
    let n = match threads {
        Some(n) => Some((n, None)),
        None => match std::env::var("FOVEA_THREADS") {
            Ok(v) => Some((v.trim().parse().unwrap_or(0), Some(v))),
            Err(_) => None,
        },
    };
    let mut builder = rayon::ThreadPoolBuilder::new();
    if caller_joins {
        builder = builder.use_current_thread();
    }
    if let Some((n, given)) = n {
        if !(1..=MAX_THREADS).contains(&n) {
            let range = format!("the thread count must be from 1 to {MAX_THREADS}");
            return Err(match given {
                None => crate::Error::setting("threads", format!("{range}, got {n}")),
                Some(v) => crate::Error::Invalid(format!("FOVEA_THREADS='{v}': {range}")),
            });
        }
        builder = builder.num_threads(n);
    } else if crate::dist::local_size() > 1 {
        // the cores this process may run on: those the launcher bound it to, if it did
        // (then they are its own), else the machine's, shared with the other ranks
        let usable = std::thread::available_parallelism().map_or(1, |n| n.get());
        #[cfg(unix)]
        // SAFETY: sysconf reads a value
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
        #[cfg(not(unix))]
        let online = usable;
        let share = if usable < online { usable } else { usable / crate::dist::local_size() };
        builder = builder.num_threads(share.max(1));
    }
    let _ = builder.build_global();
    Ok(())
}

/// Runs `f` with the kernels at level `isa` on a pool of its own with `threads` threads,
/// apart from the process-wide settings, so that tests and benchmarks can run every level
/// and thread count in one process. A level the CPU lacks is an error.
pub fn scoped<R: Send>(isa: Isa, threads: usize, f: impl FnOnce() -> R + Send) -> crate::Result<R> {
    if isa > Isa::detected() {
        return Err(crate::Error::Invalid(format!("this CPU runs at most {}, not {isa}", Isa::detected())));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .start_handler(move |_| isa::SCOPED.set(Some(isa)))
        .build()
        .map_err(|e| crate::Error::Invalid(format!("cannot start {threads} kernel threads: {e}")))?;
    Ok(pool.install(f))
}

/// Thread counts [`for_each_level`] runs: one, the common two, an odd count that splits
/// work unevenly, and more threads than most work has units.
pub const TEST_THREADS: [usize; 4] = [1, 2, 3, 16];

/// Runs `f(level, threads)` [`scoped`] at every level this CPU supports with each of
/// `threads` threads: how tests check every kernel on every machine, so that a developer
/// with AVX-512 also runs the AVX2 and scalar kernels. A panic in `f` is raised again
/// with the level and thread count in front of its message.
pub fn for_each_level(threads: &[usize], f: impl Fn(Isa, usize) + Sync) {
    for isa in Isa::supported() {
        for &t in threads {
            let run = std::panic::AssertUnwindSafe(|| scoped(isa, t, || f(isa, t)));
            match std::panic::catch_unwind(run) {
                Ok(result) => result.expect("a level this CPU supports"),
                Err(panic) => {
                    let msg = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("(no message)");
                    panic!("at {isa} with {t} threads: {msg}");
                }
            }
        }
    }
}

/// Asks the C allocator to keep freed memory for reuse instead of returning it to the
/// operating system. Training frees and reallocates the same large buffers every step;
/// by default glibc maps buffers over 128 KiB afresh each time and pays a page fault per
/// 4 KiB on first touch (measured: 190,000 faults and 23% of the time in 300 LeNet-5
/// steps). The mapping threshold cannot be raised past 32 MiB, so mapping is switched
/// off for the main thread's heap, where the training loop allocates: VGG's 400 MB
/// classifier gradients were mapped afresh every step (a vgg11_bn step at 32x32 took
/// 1.47 s, 0.87 s without). Every thread allocates from that one heap: glibc's other
/// threads' heaps (64 MiB each) are made and unmapped as a network's activations come
/// and go, so a server's request, computed on a pool thread, took 1,000 page faults and
/// about 8 ms more than on the main thread (2026-12-03; a LeNet-5 or ResNet-18 training
/// step is no slower for it). The price: the process keeps its peak memory (freed chunks
/// stay for reuse; glibc still maps when the heap cannot grow). For programs (the CLI,
/// benchmarks) to call once at start, before other threads allocate; a no-op elsewhere.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator settings; any value is valid.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_threads_run_parallel_work_nested_and_from_outside_the_pool() {
        let work = || {
            with_warm_threads(|| {
                let a: u64 = (0..100_000u64).into_par_iter().sum();
                a + with_warm_threads(|| (0..1000u64).into_par_iter().map(|v| 2 * v).sum::<u64>())
            })
        };
        let want = 4_999_950_000 + 999_000;
        for threads in TEST_THREADS {
            assert_eq!(scoped(Isa::Scalar, threads, work).unwrap(), want, "{threads} threads");
        }
        // this test's own thread is not one of the global pool's
        assert_eq!(work(), want);
        // a panic in `f` stops the spinners and reaches the caller
        let panicked = std::panic::catch_unwind(|| with_warm_threads(|| panic!("in f")));
        assert!(panicked.is_err());
    }
}
