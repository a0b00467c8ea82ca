//! The memory budget: every size that comes from a user or a file (a declared array
//! shape, a padding, a number of classes, the length of a file) is checked here before a
//! buffer is made, so that an absurd size is a clear error instead of an aborted process.
//!
//! The budget is `FOVEA_MAX_MEMORY` (bytes, or with a suffix: `512M`, `4G`, `1T`), else
//! half of the memory this process may use: the least of the machine's available memory,
//! the address-space limit (`ulimit -v`) and the cgroup's `memory.max` (and never more than
//! those limits). A check counts what live tensors already hold.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The budget in bytes, or why `FOVEA_MAX_MEMORY` could not be read.
pub fn limit() -> Result<u64> {
    static LIMIT: OnceLock<std::result::Result<u64, String>> = OnceLock::new();
    LIMIT
        .get_or_init(|| match std::env::var("FOVEA_MAX_MEMORY") {
            // never more than the process can get: past that, allocations fail and abort
            Ok(s) => parse_size(&s).map(|v| v.min(hard_limit())).ok_or_else(|| {
                format!("FOVEA_MAX_MEMORY='{s}' is not a size (bytes, or a number with K, M, G or T, such as 4G)")
            }),
            Err(_) => Ok(usable_memory() / 2),
        })
        .clone()
        .map_err(Error::Invalid)
}

/// Refuses `bytes` for `what` (an option or a file, in the user's words) if it is over the
/// budget.
pub fn check(what: &str, bytes: u64) -> Result<()> {
    let limit = limit()?;
    let in_use = in_use();
    if bytes.saturating_add(in_use) > limit {
        return Err(Error::Budget { what: what.to_string(), bytes, in_use, limit });
    }
    Ok(())
}

/// Refuses an f32 tensor of `shape` for `what` if its size overflows or is over the budget;
/// otherwise its number of values.
pub fn check_shape(what: &str, shape: &[usize]) -> Result<usize> {
    check_values(what, shape, 4)
}

/// [`check_shape`] for values of `value_bytes` bytes each (with what is allocated along
/// with them, such as an index per value).
pub fn check_values(what: &str, shape: &[usize], value_bytes: u64) -> Result<usize> {
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let bytes = n.and_then(|n| u64::try_from(n).ok()?.checked_mul(value_bytes)).unwrap_or(u64::MAX);
    check(what, bytes)?;
    n.ok_or_else(|| Error::Budget { what: what.to_string(), bytes, in_use: in_use(), limit: limit().unwrap_or(0) })
}

/// Reads a whole file, refusing anything that is not a regular file (a device such as
/// `/dev/zero` never ends) or whose length is over the budget.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    // asked before opening: opening a FIFO waits for a writer that may never come
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::format(path, "not a regular file"));
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    crate::io::note_input(path);
    check(&path.display().to_string(), meta.len())?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // the length may grow while reading (a file being written): read no more than was checked
    file.take(meta.len()).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// [`read_file`] for a text file.
pub fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_file(path)?).map_err(|_| Error::format(path, "not UTF-8 text"))
}

/// `123456789` as `118 MiB`, for messages.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if bytes == 1 {
        "1 byte".into()
    } else if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `4G`, `512M`, `1.5G`, `1000000` (bytes); binary multiples.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (number, shift) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 10),
        (i, 'm' | 'M') => (&s[..i], 20),
        (i, 'g' | 'G') => (&s[..i], 30),
        (i, 't' | 'T') => (&s[..i], 40),
        _ => (s, 0),
    };
    let v: f64 = number.trim().parse().ok()?;
    let bytes = v * (1u64 << shift) as f64;
    (v.is_finite() && v > 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// What this process can get at all: the least of the address-space limit (`ulimit -v`),
/// the cgroup's `memory.max` and the machine's memory and swap.
fn hard_limit() -> u64 {
    let mut least = u64::MAX;
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes one rlimit struct, which `lim` is.
        if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } == 0 && lim.rlim_cur != libc::RLIM_INFINITY {
            least = least.min(lim.rlim_cur);
        }
    }
    #[cfg(target_os = "linux")]
    {
        let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max").unwrap_or_default();
        if let Ok(max) = cgroup.trim().parse::<u64>() {
            least = least.min(max);
        }
        if let (Some(total), Some(swap)) = (meminfo("MemTotal:"), meminfo("SwapTotal:")) {
            least = least.min(total.saturating_add(swap));
        }
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    // SAFETY: sysconf only reads system constants.
    unsafe {
        let (pages, size) = (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE));
        if pages > 0 && size > 0 {
            least = least.min(pages as u64 * size as u64);
        }
    }
    least
}

/// The memory this process may use now: the available memory within the hard limit.
fn usable_memory() -> u64 {
    #[cfg(target_os = "linux")]
    let available = meminfo("MemAvailable:").unwrap_or(u64::MAX);
    #[cfg(not(target_os = "linux"))]
    let available = u64::MAX;
    match available.min(hard_limit()) {
        u64::MAX => 8 << 30, // nothing known: assume a small machine
        least => least,
    }
}

/// A `/proc/meminfo` field in bytes.
#[cfg(target_os = "linux")]
fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib =
        text.lines().find_map(|l| l.strip_prefix(field))?.trim().trim_end_matches("kB").trim().parse::<u64>().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Bytes held by live tensors: every tensor's values are counted while they exist, so that
/// the budget bounds what a whole computation holds, not only each buffer.
static IN_USE: AtomicU64 = AtomicU64::new(0);

/// Counts `bytes` of tensor values as in use (the tensor module calls this).
pub(crate) fn track(bytes: u64) {
    IN_USE.fetch_add(bytes, Ordering::Relaxed);
}

/// Counts `bytes` of tensor values as freed.
pub(crate) fn untrack(bytes: u64) {
    IN_USE.fetch_sub(bytes, Ordering::Relaxed);
}

/// Bytes held by live tensors now.
pub fn in_use() -> u64 {
    IN_USE.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes_and_nonsense_is_refused() {
        assert_eq!(parse_size("4G"), Some(4 << 30));
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("1.5K"), Some(1536));
        assert_eq!(parse_size("1000"), Some(1000));
        for bad in ["", "G", "-1G", "0", "nanG", "infG", "4X", "99999999999T"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_machine_has_some_usable_memory() {
        let m = usable_memory();
        assert!(m > 1 << 20 && m <= hard_limit(), "{m}");
    }

    #[test]
    fn shapes_over_the_budget_or_overflowing_are_refused_with_both_sizes() {
        let err = check_shape("--padding", &[usize::MAX, 2]).unwrap_err().to_string();
        assert!(err.starts_with("--padding would take"), "{err}");
        assert!(err.contains("FOVEA_MAX_MEMORY"), "{err}");
        assert_eq!(check_shape("x", &[2, 3]).unwrap(), 6);
    }

    #[test]
    fn devices_are_not_read_to_the_end() {
        #[cfg(unix)]
        {
            let err = read_file(Path::new("/dev/zero")).unwrap_err().to_string();
            assert_eq!(err, "/dev/zero: not a regular file");
        }
        let err = read_file(Path::new("/no/such/file")).unwrap_err().to_string();
        assert!(err.starts_with("/no/such/file: "), "{err}");
    }
}
