//! Memory: what a process holds (the one reading of `/proc/PID/status` that reports and
//! benchmarks use), and handing freed memory back.

/// Hands freed memory back to the system. glibc keeps what was freed in its per-thread arenas,
/// so after a big temporary (an index build's f32 matrix and k-means blocks, a server session
/// that held large frames) the process otherwise looks as big as its peak for as long as it runs.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of glibc's heaps to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`) in MiB; `pid` `None` is this process
/// (Linux; `None` elsewhere or when the process is gone).
pub fn status_mib(pid: Option<u32>, field: &str) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let s = std::fs::read_to_string(path).ok()?;
    let line = s
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Peak resident memory of this process in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    status_mib(None, "VmHWM")
}

/// Resident memory of this process now, in MiB.
pub fn rss_mib() -> Option<f64> {
    status_mib(None, "VmRSS")
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_has_a_resident_size_and_a_peak_at_least_as_big() {
        let (now, peak) = (super::rss_mib().unwrap(), super::peak_rss_mib().unwrap());
        assert!(now > 0.0 && peak >= now, "{now} {peak}");
        assert_eq!(super::status_mib(Some(u32::MAX), "VmRSS"), None);
    }
}
