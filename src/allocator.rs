//! Tuning of mimalloc, the allocator of the binary and of the core benchmark.
//!
//! mimalloc hands a freed page back to the kernel after 1 s by default. The
//! router frees and reuses memory at a steady rate (records forgotten, buffers
//! of finished messages), so it faulted the same pages in again seconds
//! later; the kernel backs them with 2 MiB transparent huge pages and zeroes
//! each one on the fault. In the core benchmark that was ~8 % of the CPU
//! (3,700 page faults in 9 s; 480 with a 10 s delay). A longer delay keeps
//! pages that steady work reuses, and still returns memory after a burst.

use std::ffi::c_long;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (the `-sys` crate
/// names only some options). `purge_delay_is_set` checks it by reading back.
const PURGE_DELAY_OPTION: libmimalloc_sys::mi_option_t = 15;

/// How long a freed page stays with the process before it is purged.
pub const PURGE_DELAY_MS: c_long = 10_000;

/// Sets the options above unless the environment sets them
/// (`MIMALLOC_PURGE_DELAY`, in ms; mimalloc reads it itself). Call first
/// thing in `main`. Harmless when mimalloc is not the global allocator.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: a plain setter of a process-wide integer option, which
    // mimalloc allows at any time from any thread.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY_OPTION, PURGE_DELAY_MS) }
}

/// The purge delay in force, in milliseconds.
pub fn purge_delay_ms() -> c_long {
    // SAFETY: a plain getter of a process-wide integer option.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY_OPTION) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_set_is_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // Option 15 reads mimalloc v3's documented purge-delay default until
        // it is set (nothing else in this test binary sets it), so the
        // number names the right option.
        assert_eq!(purge_delay_ms(), 1_000);
        tune();
        assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
    }
}
