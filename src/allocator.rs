//! mimalloc as the allocator of the binary and of the core benchmark, and
//! its tuning.
//!
//! `Mimalloc` asks mimalloc for an aligned block only when the layout needs
//! more alignment than every block has anyway. mimalloc 3's aligned entry
//! point, which the `mimalloc` crate calls for every layout, falls back to
//! over-allocating whenever the size class's current page has no free block
//! and the size is not a power of two. That fallback serves the request from
//! a larger size class and never refills the page of the size asked for, so
//! once a page filled up, most later blocks of that size took the slow path
//! (in the core benchmark 1.6 % more instructions in all, and 8 % more
//! last-level write misses).
//!
//! mimalloc hands a freed page back to the kernel after 1 s by default. The
//! router frees and reuses memory at a steady rate (records forgotten, buffers
//! of finished messages), so it faulted the same pages in again seconds
//! later; the kernel backs them with 2 MiB transparent huge pages and zeroes
//! each one on the fault. In the core benchmark that was ~8 % of the CPU
//! (3,700 page faults in 9 s; 480 with a 10 s delay). A longer delay keeps
//! pages that steady work reuses, and still returns memory after a burst.

use libmimalloc_sys as mi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::{c_long, c_void};

/// Alignment of every block `mi_malloc` returns that is at least this large
/// (`MI_MAX_ALIGN_SIZE`, the alignment of `max_align_t` on 64-bit targets).
const PLAIN_ALIGN: usize = 16;

/// The global allocator: mimalloc, through its plain entry points wherever
/// they already give the alignment asked for.
pub struct Mimalloc;

/// Whether a plain mimalloc block of `size` bytes has `align`: as for the
/// system allocator, a block is aligned to the smaller of its size and 16.
fn plain_fits(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

// SAFETY: every block comes from mimalloc and goes back to it; the plain
// entry points are used only where mimalloc guarantees the alignment.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        // SAFETY: FFI calls with a size and a power-of-two alignment.
        unsafe {
            if plain_fits(align, size) {
                mi::mi_malloc(size).cast()
            } else {
                mi::mi_malloc_aligned(size, align).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        // SAFETY: as in `alloc`.
        unsafe {
            if plain_fits(align, size) {
                mi::mi_zalloc(size).cast()
            } else {
                mi::mi_zalloc_aligned(size, align).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` was allocated by mimalloc (the caller's contract).
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        // SAFETY: `ptr` was allocated by mimalloc with `layout` (the
        // caller's contract); the alignment is kept as in `alloc`.
        unsafe {
            if plain_fits(align, new_size) {
                mi::mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast(), new_size, align).cast()
            }
        }
    }
}

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
    fn blocks_have_the_alignment_asked_for_and_keep_their_bytes() {
        let sizes = [1, 7, 8, 15, 16, 24, 40, 160, 544, 1000, 1032, 5000, 70_000];
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for &size in &sizes {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero sizes; every block is freed with its layout.
                unsafe {
                    let zeroed = Mimalloc.alloc_zeroed(layout);
                    assert_eq!(zeroed as usize % align, 0, "zeroed {size} B aligned {align}");
                    assert!(std::slice::from_raw_parts(zeroed, size).iter().all(|&b| b == 0));
                    Mimalloc.dealloc(zeroed, layout);

                    for new_size in [size / 2 + 1, size * 3] {
                        let p = Mimalloc.alloc(layout);
                        assert_eq!(p as usize % align, 0, "{size} B aligned {align}");
                        for i in 0..size {
                            *p.add(i) = i as u8;
                        }
                        let q = Mimalloc.realloc(p, layout, new_size);
                        assert_eq!(q as usize % align, 0, "{size} B resized to {new_size} aligned {align}");
                        assert!((0..size.min(new_size)).all(|i| *q.add(i) == i as u8), "realloc kept the bytes");
                        Mimalloc.dealloc(q, Layout::from_size_align(new_size, align).unwrap());
                    }
                }
            }
        }
    }

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
