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
/// names only some options). The test below checks it against its default.
const PURGE_DELAY_OPTION: libmimalloc_sys::mi_option_t = 15;

/// How long a freed page stays with the process before it is purged.
pub const PURGE_DELAY_MS: c_long = 10_000;

/// Sets the purge delay unless the environment sets it
/// (`MIMALLOC_PURGE_DELAY`, in ms, which mimalloc reads itself). Call first
/// thing in `main`. Harmless when mimalloc is not the global allocator.
pub fn tune() {
    // SAFETY: a plain store into mimalloc's option table, which only takes
    // effect where the environment did not set the option; called before
    // other threads exist.
    unsafe { libmimalloc_sys::mi_option_set_default(PURGE_DELAY_OPTION, PURGE_DELAY_MS) }
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
        if let Ok(from_env) = std::env::var("MIMALLOC_PURGE_DELAY") {
            // The environment wins (run with e.g. MIMALLOC_PURGE_DELAY=2500).
            tune();
            assert_eq!(purge_delay_ms().to_string(), from_env);
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
