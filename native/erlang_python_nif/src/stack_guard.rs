//! Whether the current thread's stack has room for one more level of a
//! recursive walk.
//!
//! The term converters recurse per nesting level. The interpreter's own
//! threads have large stacks, but Python can call into the converters from
//! any thread it started (`erlang.send` from a `threading.Thread`), whose
//! stack may be far smaller. A depth limit alone cannot know that; this
//! compares the stack pointer with the thread's real stack bounds.

use std::cell::Cell;

/// Room kept free below the deepest converter frame: enough for the
/// Python and ERTS calls a conversion step makes.
const MARGIN: usize = 256 * 1024;

thread_local! {
    /// Lowest address the stack may grow to on this thread, plus
    /// [`MARGIN`]; 0 until computed, 1 when the bounds are unknown (then
    /// there is always room, as before this guard).
    static LIMIT: Cell<usize> = const { Cell::new(0) };
}

/// True while the stack has more than [`MARGIN`] (or a quarter of a small
/// stack) left below the caller.
#[inline]
pub fn has_room() -> bool {
    let marker = 0u8;
    let here = std::ptr::addr_of!(marker) as usize;
    let limit = LIMIT.with(|limit| {
        if limit.get() == 0 {
            limit.set(compute_limit());
        }
        limit.get()
    });
    here > limit
}

/// The stack's low end plus the margin, from the thread's attributes; 1
/// (no limit known) when they cannot be read.
fn compute_limit() -> usize {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::zeroed();
    // SAFETY: pthread_getattr_np initializes `attr` for the calling thread;
    // on success we read the stack bounds and destroy it.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return 1;
        }
        let mut low: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(attr.as_ptr(), &mut low, &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        if rc != 0 || low.is_null() {
            return 1;
        }
        low as usize + MARGIN.min(size / 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_reached(level: usize) -> usize {
        if !has_room() {
            return level;
        }
        let padding = [level as u8; 512];
        std::hint::black_box(&padding);
        depth_reached(level + 1) + std::hint::black_box(0)
    }

    #[test]
    fn a_small_stack_stops_recursion_before_it_overflows() {
        let reached = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(|| depth_reached(0))
            .unwrap()
            .join()
            .expect("no overflow");
        assert!(reached > 100, "reached {reached}");
    }
}
