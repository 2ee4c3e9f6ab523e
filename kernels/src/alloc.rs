//! Keeping freed memory for reuse. A training step allocates and frees the same large tensors again and again
//! (every op's output, every gradient); glibc's defaults hand blocks above its mmap threshold back to the
//! kernel on free and return the top of the heap when more than the trim threshold is free, so each step
//! faults the same pages in again (zero-filled by the kernel): measured at a third of the SRN outer step's
//! time. `retain_freed_memory` keeps every block in the heap (no per-block mmap at all: tensors of the Circles
//! decoder pass 32 MiB, the most glibc's mmap threshold can be raised to) and never trims it, once per process,
//! so that freed tensors are reused. It also makes every thread allocate from that one heap (`M_ARENA_MAX`
//! 1): a thread with an arena of its own gets blocks larger than the arena's 64 MiB from a fresh mmap each
//! time, so the Circles convolutions ran 20-30% slower on a rayon thread (`on_pool`) than on the main one.
//! A thread keeps the arena of its first allocation: call this before starting threads (the experiments and
//! benches do, first thing); the tape calls it too, for programs that do not.

use std::sync::Once;

/// Largest block served from the heap rather than by its own mmap (glibc accepts at most 32 MiB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Blocks the main arena may hold as separate mmaps: none, so larger blocks come from the heap too.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_MAX: i32 = 0;
/// Arenas: the main one only, shared by every thread (the engine allocates whole tensors, rarely enough that
/// the shared lock does not contend).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENA_MAX: i32 = 1;
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
            libc::mallopt(libc::M_MMAP_MAX, MMAP_MAX);
            libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
        }
    });
}
