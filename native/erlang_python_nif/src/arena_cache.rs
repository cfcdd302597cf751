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

use std::ffi::c_void;
use std::sync::Mutex;

use pyo3::ffi;

/// Most memory kept in freed arenas. Enough for the objects of a
/// million-element list of integers (32 MiB on 3.11) with room to spare.
const MAX_CACHED: usize = 64 * 1024 * 1024;

/// Freed arenas, as (address, size): addresses are kept as integers so the
/// list is `Send`. A lock, not the GIL, guards it: with sub-interpreters
/// that have their own GIL (3.12+), arenas are allocated and freed by
/// several interpreters at once, through this one process-wide allocator.
static FREED: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// Installs the cache as CPython's arena allocator. Call once, after the
/// interpreter is initialized. Arenas the default allocator mapped before
/// are released through [`free`] later, which is fine: both map anonymous
/// memory and unmap it with its size.
pub(crate) fn install() {
    let mut allocator = ffi::PyObjectArenaAllocator {
        ctx: std::ptr::null_mut(),
        alloc: Some(alloc),
        free: Some(free),
    };
    // SAFETY: CPython copies the struct; the functions are plain `extern
    // "C"` functions that live as long as the process, and follow the
    // arena allocator's contract (alloc returns `size` bytes or NULL; free
    // receives exactly what alloc or the previous allocator returned).
    unsafe { ffi::PyObject_SetArenaAllocator(&mut allocator) };
}

extern "C" fn alloc(_ctx: *mut c_void, size: usize) -> *mut c_void {
    let reused = {
        let mut freed = FREED.lock().unwrap_or_else(|p| p.into_inner());
        freed
            .iter()
            .rposition(|&(_, len)| len == size)
            .map(|at| freed.swap_remove(at).0)
    };
    if let Some(address) = reused {
        return address as *mut c_void;
    }
    // SAFETY: an anonymous private mapping of `size` bytes, as CPython's own
    // arena allocator makes; MAP_FAILED is turned into NULL, which CPython
    // handles as out of memory.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if address == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        address
    }
}

extern "C" fn free(_ctx: *mut c_void, address: *mut c_void, size: usize) {
    if address.is_null() {
        return;
    }
    {
        let mut freed = FREED.lock().unwrap_or_else(|p| p.into_inner());
        let cached: usize = freed.iter().map(|&(_, len)| len).sum();
        if cached + size <= MAX_CACHED {
            freed.push((address as usize, size));
            return;
        }
    }
    // SAFETY: `address` is a mapping of `size` bytes made by `alloc` (or by
    // CPython's default allocator, also an anonymous mapping), no longer
    // used by CPython.
    unsafe { libc::munmap(address, size) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_arena_is_handed_out_again_and_the_cache_is_bounded() {
        let size = 1 << 20;
        let first = alloc(std::ptr::null_mut(), size);
        assert!(!first.is_null());
        // SAFETY: `first` is `size` writable bytes.
        unsafe { std::ptr::write_bytes(first as *mut u8, 7, size) };
        free(std::ptr::null_mut(), first, size);
        assert_eq!(alloc(std::ptr::null_mut(), size), first);

        // Freeing more than the cap keeps at most the cap.
        let many: Vec<_> = (0..MAX_CACHED / size + 4)
            .map(|_| alloc(std::ptr::null_mut(), size))
            .collect();
        for arena in many.into_iter().chain([first]) {
            free(std::ptr::null_mut(), arena, size);
        }
        let cached: usize = FREED.lock().unwrap().iter().map(|&(_, len)| len).sum();
        assert!(cached <= MAX_CACHED, "{cached}");
        assert!(cached > 0);
    }
}
