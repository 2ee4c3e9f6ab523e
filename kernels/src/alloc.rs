//! Keeping freed memory for reuse. A training step allocates and frees the same large tensors again and again
//! (every op's output, every gradient); glibc's defaults hand blocks above its mmap threshold back to the
//! kernel on free and return the top of the heap when more than the trim threshold is free, so each step
//! faults the same pages in again (zero-filled by the kernel): measured at a third of the SRN outer step's
//! time. `retain_freed_memory` raises both limits once per process, so that freed tensors are reused.

use std::sync::Once;

/// Largest block served from the heap rather than by its own mmap (glibc accepts at most 32 MiB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory at the top of the heap kept rather than returned to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = i32::MAX;

static TUNED: Once = Once::new();

/// Configure the allocator to keep freed memory (glibc on Linux; elsewhere nothing to do). Idempotent and
/// cheap after the first call; the tape calls it when it is created.
pub fn retain_freed_memory() {
    TUNED.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator parameters; it is called once, before the tensors of a tape
        // are allocated, and takes plain integers.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    });
}
