//! The process's memory, as the library itself manages it (measurements live in `bench`).

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
