//! Large raw-domain blocks kept for reuse after Python frees them.
//!
//! Inside the VM, glibc serves each `malloc` of 128 KiB or more with a fresh
//! `mmap` and returns it with `munmap` when it is freed: traced on a
//! 1,000,000-integer list sent to Python, every request mapped and unmapped
//! the list's 8 MB item array anew (glibc's adaptive mmap threshold never
//! rose, as it does in a plain process), and faulting those pages in cost
//! more than filling them. Dict tables (2.5 MB, then 5 MB, for 100,000
//! keys) and large bytes objects go the same way. The arena cache
//! (`crate::arena_cache`) keeps pymalloc's arenas; this keeps the large
//! blocks of the raw domain, where the hooks see them with their size.
//!
//! A freed block of at least [`LARGE_FROM`] bytes rests here, up to
//! [`MAX_KEPT`] bytes in all (the oldest go back to the allocator first),
//! and is handed out again for a request of nearly its size: at most
//! [`SLACK`] larger, so little memory is wasted. Resting blocks are charged to
//! nobody; the hooks charge a reused block's whole size to its new owner.

use std::sync::{Mutex, MutexGuard};

/// Blocks smaller than this are left to the allocator (glibc's default
/// mmap threshold: below it, freed memory stays in malloc's own heap).
pub(super) const LARGE_FROM: usize = 128 * 1024;

/// Most bytes kept in resting blocks.
const MAX_KEPT: usize = 32 * 1024 * 1024;

/// A resting block is reused for a request at most this fraction of the
/// request larger (1/8: a block of 9 MB serves requests from 8 MB).
const SLACK: usize = 8;

/// Resting blocks as (start, size), oldest first; addresses as integers so
/// the list is `Send`. A lock, not the GIL: own-GIL sub-interpreters share
/// the raw domain, and may free and allocate at once.
static KEPT: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

fn kept() -> MutexGuard<'static, Vec<(usize, usize)>> {
    KEPT.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A resting block of at least `size` bytes and at most [`SLACK`] larger,
/// taken out: (start, its size). The smallest that fits.
pub(super) fn take(size: usize) -> Option<(*mut u8, usize)> {
    if size < LARGE_FROM {
        return None;
    }
    let most = size.saturating_add(size / SLACK);
    let mut kept = kept();
    let at = kept
        .iter()
        .enumerate()
        .filter(|(_, &(_, len))| (size..=most).contains(&len))
        .min_by_key(|(_, &(_, len))| len)
        .map(|(at, _)| at)?;
    let (start, len) = kept.remove(at);
    Some((start as *mut u8, len))
}

/// Keeps the freed block at `start` of `size` bytes, if it is large enough.
/// Returns the blocks the caller must now free itself: `start`'s when it is
/// not kept, and the oldest resting ones that no longer fit in
/// [`MAX_KEPT`].
pub(super) fn keep(start: *mut u8, size: usize) -> Vec<(*mut u8, usize)> {
    if !(LARGE_FROM..=MAX_KEPT).contains(&size) {
        return vec![(start, size)];
    }
    let mut kept = kept();
    kept.push((start as usize, size));
    let mut total: usize = kept.iter().map(|&(_, len)| len).sum();
    let mut evicted = Vec::new();
    while total > MAX_KEPT {
        let (old, len) = kept.remove(0);
        total -= len;
        evicted.push((old as *mut u8, len));
    }
    evicted
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test, since the list is process-wide.
    #[test]
    fn blocks_are_reused_for_near_sizes_and_the_oldest_go_past_the_bound() {
        let block = |n: usize| (n * 4096) as *mut u8;
        // Small blocks are never kept.
        assert_eq!(keep(block(1), 4096), vec![(block(1), 4096)]);
        assert_eq!(take(4096), None);

        let size = 8 * 1024 * 1024;
        assert!(keep(block(2), size).is_empty());
        // Far larger than asked: not handed out.
        assert_eq!(take(size / 2), None);
        // Up to 1/8 larger: handed out once.
        assert_eq!(take(size - size / 16), Some((block(2), size)));
        assert_eq!(take(size), None);

        // The smallest that fits wins.
        assert!(keep(block(3), size + 4096).is_empty());
        assert!(keep(block(4), size).is_empty());
        assert_eq!(take(size), Some((block(4), size)));
        assert_eq!(take(size), Some((block(3), size + 4096)));

        // Past MAX_KEPT, the oldest go back.
        let count = MAX_KEPT / size;
        for n in 0..count {
            assert!(keep(block(10 + n), size).is_empty());
        }
        assert_eq!(keep(block(99), size), vec![(block(10), size)]);
        while take(size).is_some() {}
    }
}
