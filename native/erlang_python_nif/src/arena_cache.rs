//! Keeps the memory of Python's freed object arenas for reuse.
//!
//! CPython's small-object allocator takes memory from the OS in arenas of
//! 1 MiB (256 KiB before 3.10), each one `mmap`, and gives an arena back
//! with `munmap` as soon as its last object is freed. A request that builds
//! a million integers (a list coming in, or going out) thus maps 32 MiB,
//! faults every page in (the kernel zeroes and charges each one), and
//! unmaps it all again when the objects die: measured on a 1M-integer list,
//! the page faults and the unmapping took about a fifth of the request's
//! CPU time. Installed with `PyObject_SetArenaAllocator`, this cache keeps
//! up to [`MAX_CACHED`] of freed arenas mapped and hands them out again, so
//! the next large request reuses pages already faulted in.
//!
//! The cost is memory: up to [`MAX_CACHED`] that the process keeps resident
//! after a burst of objects died, instead of returning it at once.
//!
//! The cache wraps the arena allocator it finds (CPython's own `mmap` one)
//! and is installed before the interpreter starts, so any allocator
//! installed later to account for memory wraps the cache in turn: arenas
//! resting in the cache are charged to nobody, and one taken from it is
//! charged to whoever takes it.

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::sync::Mutex;

use pyo3::ffi::{self, PyObjectArenaAllocator};

/// Most memory kept in freed arenas. Enough for the objects of a
/// million-element list of integers (32 MiB on 3.11) with room to spare.
const MAX_CACHED: usize = 64 * 1024 * 1024;

/// Freed arenas, as (address, size): addresses are kept as integers so the
/// list is `Send`. A lock, not the GIL, guards it: with sub-interpreters
/// that have their own GIL (3.12+), arenas are allocated and freed by
/// several interpreters at once, through this one process-wide allocator.
static FREED: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// Installs the cache as CPython's arena allocator, wrapping the current
/// one.
///
/// # Safety
///
/// Call once, before `Py_InitializeFromConfig` and before any other
/// allocator hook is installed (nothing allocates arenas yet, and hooks
/// installed later wrap this one).
pub(crate) unsafe fn install() {
    let mut base = MaybeUninit::<PyObjectArenaAllocator>::zeroed();
    ffi::PyObject_GetArenaAllocator(base.as_mut_ptr());
    // Leaked on purpose: the interpreter is never finalized; the cache
    // reaches the wrapped allocator through its `ctx` argument.
    let base: &'static PyObjectArenaAllocator = Box::leak(Box::new(base.assume_init()));
    let mut cache = PyObjectArenaAllocator {
        ctx: base as *const PyObjectArenaAllocator as *mut c_void,
        alloc: Some(alloc),
        free: Some(free),
    };
    ffi::PyObject_SetArenaAllocator(&mut cache);
}

fn base(ctx: *mut c_void) -> &'static PyObjectArenaAllocator {
    // SAFETY: `install` gave the cache this leaked, never-freed struct as
    // its `ctx` (and the unit tests a static one).
    unsafe { &*(ctx as *const PyObjectArenaAllocator) }
}

fn freed() -> std::sync::MutexGuard<'static, Vec<(usize, usize)>> {
    FREED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

extern "C" fn alloc(ctx: *mut c_void, size: usize) -> *mut c_void {
    let reused = {
        let mut freed = freed();
        freed
            .iter()
            .rposition(|&(_, len)| len == size)
            .map(|at| freed.swap_remove(at).0)
    };
    if let Some(address) = reused {
        return address as *mut c_void;
    }
    let base = base(ctx);
    match base.alloc {
        Some(alloc) => alloc(base.ctx, size),
        None => std::ptr::null_mut(),
    }
}

extern "C" fn free(ctx: *mut c_void, address: *mut c_void, size: usize) {
    if address.is_null() {
        return;
    }
    {
        let mut freed = freed();
        let cached: usize = freed.iter().map(|&(_, len)| len).sum();
        if cached + size <= MAX_CACHED {
            freed.push((address as usize, size));
            return;
        }
    }
    let base = base(ctx);
    if let Some(free) = base.free {
        free(base.ctx, address, size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static MAPPED: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn base_alloc(_ctx: *mut c_void, size: usize) -> *mut c_void {
        MAPPED.fetch_add(size, Ordering::Relaxed);
        // SAFETY: a plain allocation of `size` bytes, freed by base_free.
        unsafe { libc::malloc(size) }
    }

    extern "C" fn base_free(_ctx: *mut c_void, address: *mut c_void, size: usize) {
        MAPPED.fetch_sub(size, Ordering::Relaxed);
        // SAFETY: `address` came from base_alloc.
        unsafe { libc::free(address) }
    }

    struct Base(PyObjectArenaAllocator);
    // SAFETY: the struct holds only function pointers and a null context.
    unsafe impl Sync for Base {}

    static BASE: Base = Base(PyObjectArenaAllocator {
        ctx: std::ptr::null_mut(),
        alloc: Some(base_alloc),
        free: Some(base_free),
    });

    #[test]
    fn a_freed_arena_is_handed_out_again_and_the_cache_is_bounded() {
        let ctx = &BASE.0 as *const PyObjectArenaAllocator as *mut c_void;
        let size = 1 << 20;
        let first = alloc(ctx, size);
        assert!(!first.is_null());
        // SAFETY: `first` is `size` writable bytes.
        unsafe { std::ptr::write_bytes(first as *mut u8, 7, size) };
        free(ctx, first, size);
        assert_eq!(alloc(ctx, size), first, "the cached arena comes back");

        // Freeing more than the cap keeps the cap and returns the rest.
        let many: Vec<_> = (0..MAX_CACHED / size + 4)
            .map(|_| alloc(ctx, size))
            .collect();
        for arena in many.into_iter().chain([first]) {
            free(ctx, arena, size);
        }
        let cached: usize = freed().iter().map(|&(_, len)| len).sum();
        assert_eq!(cached, MAX_CACHED);
        assert_eq!(MAPPED.load(Ordering::Relaxed), MAX_CACHED);
    }
}
