//! The allocator hooks: where Python's memory comes from, counted.
//!
//! Two hooks see (nearly) all of the interpreter's memory without touching
//! its fast path for small objects:
//!
//! * the object arena allocator: pymalloc carves every object of up to 512
//!   bytes out of 1 MiB arenas, and thread frame stacks come from it too.
//!   An arena is charged to whoever made pymalloc ask for it; a table maps
//!   each arena to its account until it is freed.
//! * the raw domain (`PyMem_RawMalloc`): everything larger than 512 bytes
//!   that goes through `PyMem_Malloc`/`PyObject_Malloc` (bytes, bytearray,
//!   list item arrays, dict tables, buffers) ends up here, as do small
//!   objects pymalloc could not place because an arena was refused. Each
//!   block gets a 16-byte header with its size and its context account.
//!
//! A refused charge makes the hook return NULL: the caller raises
//! `MemoryError` right there, before any memory is touched (a refused arena
//! makes pymalloc fall back to the raw domain, which then refuses too).
//!
//! # When installing is legal
//!
//! CPython documents that `PyMem_SetAllocator` may install any allocator
//! after `Py_PreInitialize` and before `Py_InitializeFromConfig`: blocks
//! made before then are freed with the allocator that made them. We install
//! exactly there ([`install`]), wrapping whatever pre-initialisation chose
//! (`PYTHONMALLOC` included). As a second line, a header carries a tag that
//! neither glibc's chunk size word nor the debug hooks' guard bytes can
//! match, so a block the hooks did not make is passed through untouched.
//!
//! Not seen: memory C code gets from `malloc` itself (numpy's array data,
//! which goes through its own `PyDataMem` handler; many extensions' own
//! buffers), `mmap`, and under `PYTHONMALLOC=malloc` the small objects.

use std::collections::HashMap;
use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use pyo3::ffi::{self, PyMemAllocatorDomain, PyMemAllocatorEx, PyObjectArenaAllocator};

use super::account::{self, Account};
use super::large_blocks;

/// Header before each raw block: [account pointer][size ^ TAG]. Sixteen
/// bytes keep the block 16-aligned, as CPython's allocators guarantee.
const HEADER: usize = 16;

/// Occupies the top 16 bits of the size word: a glibc chunk size (below
/// 2^48) or the debug hooks' 0xFD guard bytes never carry it.
const TAG: usize = 0xE9A7 << 48;
const TAG_MASK: usize = 0xFFFF << 48;

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Whether the hooks are installed (the runtime started).
pub(crate) fn installed() -> bool {
    INSTALLED.load(Ordering::Acquire)
}

/// Installs the hooks, wrapping the current raw and arena allocators.
///
/// # Safety
///
/// Call once, after `Py_PreInitialize` and before `Py_InitializeFromConfig`.
pub(crate) unsafe fn install() {
    if INSTALLED.swap(true, Ordering::AcqRel) {
        return;
    }
    let mut raw = MaybeUninit::<PyMemAllocatorEx>::zeroed();
    ffi::PyMem_GetAllocator(PyMemAllocatorDomain::PYMEM_DOMAIN_RAW, raw.as_mut_ptr());
    // Leaked on purpose: the interpreter is never finalized, and the hooks
    // reach the wrapped allocator through their `ctx` argument.
    let base: &'static PyMemAllocatorEx = Box::leak(Box::new(raw.assume_init()));
    let mut wrapper = PyMemAllocatorEx {
        ctx: base as *const PyMemAllocatorEx as *mut c_void,
        malloc: Some(raw_malloc),
        calloc: Some(raw_calloc),
        realloc: Some(raw_realloc),
        free: Some(raw_free),
    };
    ffi::PyMem_SetAllocator(PyMemAllocatorDomain::PYMEM_DOMAIN_RAW, &mut wrapper);

    let mut arena = MaybeUninit::<PyObjectArenaAllocator>::zeroed();
    ffi::PyObject_GetArenaAllocator(arena.as_mut_ptr());
    let base: &'static PyObjectArenaAllocator = Box::leak(Box::new(arena.assume_init()));
    let mut wrapper = PyObjectArenaAllocator {
        ctx: base as *const PyObjectArenaAllocator as *mut c_void,
        alloc: Some(arena_alloc),
        free: Some(arena_free),
    };
    ffi::PyObject_SetArenaAllocator(&mut wrapper);
}

fn base_raw(ctx: *mut c_void) -> &'static PyMemAllocatorEx {
    // SAFETY: `install` gave every raw hook this leaked, never-freed struct
    // as its `ctx`.
    unsafe { &*(ctx as *const PyMemAllocatorEx) }
}

/// Writes the header at `base` and returns the block the caller sees.
///
/// # Safety
///
/// `base` points to at least `total` (>= HEADER) writable bytes.
unsafe fn finish(base: *mut c_void, total: usize, owner: *const Account) -> *mut c_void {
    let words = base as *mut usize;
    words.write(account::retain(owner) as usize);
    words.add(1).write(total ^ TAG);
    (base as *mut u8).add(HEADER) as *mut c_void
}

/// The header of `block`, if the hooks made it: (base, total, account).
///
/// # Safety
///
/// `block` is non-null and came from the raw domain (ours or the wrapped
/// allocator's before install), so the 16 bytes before it are readable:
/// our header, or the allocator's own chunk header.
unsafe fn header(block: *mut c_void) -> Option<(*mut c_void, usize, *const Account)> {
    let base = (block as *mut u8).sub(HEADER) as *mut usize;
    let word = base.add(1).read();
    if word & TAG_MASK != TAG {
        return None;
    }
    Some((
        base as *mut c_void,
        word ^ TAG,
        base.read() as *const Account,
    ))
}

extern "C" fn raw_malloc(ctx: *mut c_void, size: usize) -> *mut c_void {
    let Some(total) = size.checked_add(HEADER) else {
        return ptr::null_mut();
    };
    let owner = account::current();
    if let Some(reused) = reuse(ctx, total, owner, false) {
        return reused;
    }
    if !account::charge(owner, total) {
        return ptr::null_mut();
    }
    let base = base_raw(ctx);
    let Some(malloc) = base.malloc else {
        return ptr::null_mut();
    };
    let block = malloc(base.ctx, total);
    if block.is_null() {
        account::credit(owner, total);
        return ptr::null_mut();
    }
    // SAFETY: `block` has `total` bytes.
    unsafe { finish(block, total, owner) }
}

extern "C" fn raw_calloc(ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void {
    let Some(total) = nelem
        .checked_mul(elsize)
        .and_then(|size| size.checked_add(HEADER))
    else {
        return ptr::null_mut();
    };
    let owner = account::current();
    if let Some(reused) = reuse(ctx, total, owner, true) {
        return reused;
    }
    if !account::charge(owner, total) {
        return ptr::null_mut();
    }
    let base = base_raw(ctx);
    let Some(calloc) = base.calloc else {
        return ptr::null_mut();
    };
    let block = calloc(base.ctx, 1, total);
    if block.is_null() {
        account::credit(owner, total);
        return ptr::null_mut();
    }
    // SAFETY: `block` has `total` (zeroed) bytes.
    unsafe { finish(block, total, owner) }
}

/// A resting large block for a request of `total` bytes (header
/// included), charged to `owner` for its whole size; zeroed past the header
/// up to `total` when `zeroed`. `None` when none fits: allocate as usual.
fn reuse(
    ctx: *mut c_void,
    total: usize,
    owner: *const Account,
    zeroed: bool,
) -> Option<*mut c_void> {
    let (start, size) = large_blocks::take(total)?;
    if !account::charge(owner, size) {
        // Refused: the block rests again, and the usual path refuses too.
        let base = base_raw(ctx);
        for (block, _) in large_blocks::keep(start, size) {
            if let Some(free) = base.free {
                free(base.ctx, block as *mut c_void);
            }
        }
        return None;
    }
    // SAFETY: `start` is a block of `size` >= `total` bytes that the wrapped
    // allocator made for these hooks and nobody uses while it rests (it was
    // taken out of the list under its lock).
    unsafe {
        if zeroed {
            std::ptr::write_bytes(start.add(HEADER), 0, total - HEADER);
        }
        Some(finish(start as *mut c_void, size, owner))
    }
}

extern "C" fn raw_realloc(ctx: *mut c_void, block: *mut c_void, size: usize) -> *mut c_void {
    if block.is_null() {
        return raw_malloc(ctx, size);
    }
    let base = base_raw(ctx);
    let Some(realloc) = base.realloc else {
        return ptr::null_mut();
    };
    // SAFETY: `block` is a live raw-domain block (CPython's contract).
    let Some((start, old_total, owner)) = (unsafe { header(block) }) else {
        return realloc(base.ctx, block, size); // made before install
    };
    let Some(total) = size.checked_add(HEADER) else {
        return ptr::null_mut();
    };
    // A block keeps the account that paid for it: growth is charged there.
    if total > old_total && !account::charge(owner, total - old_total) {
        return ptr::null_mut(); // the old block stays valid, as realloc promises
    }
    let moved = realloc(base.ctx, start, total);
    if moved.is_null() {
        if total > old_total {
            account::credit(owner, total - old_total);
        }
        return ptr::null_mut();
    }
    if total < old_total {
        account::credit(owner, old_total - total);
    }
    // SAFETY: `moved` has `total` bytes; its header (copied by realloc)
    // still holds `owner`'s reference, so only the size word changes.
    unsafe {
        (moved as *mut usize).add(1).write(total ^ TAG);
        (moved as *mut u8).add(HEADER) as *mut c_void
    }
}

extern "C" fn raw_free(ctx: *mut c_void, block: *mut c_void) {
    if block.is_null() {
        return;
    }
    let base = base_raw(ctx);
    let Some(free) = base.free else {
        return;
    };
    // SAFETY: `block` is a live raw-domain block (CPython's contract).
    match unsafe { header(block) } {
        None => free(base.ctx, block), // made before install
        Some((start, total, owner)) => {
            // SAFETY: the header is ours; clearing the tag makes a double
            // free pass through to the allocator, which reports it.
            unsafe { (start as *mut usize).add(1).write(0) };
            // A large block rests for reuse (`large_blocks`); what does
            // not fit there goes back to the allocator.
            for (block, _) in large_blocks::keep(start as *mut u8, total) {
                free(base.ctx, block as *mut c_void);
            }
            account::credit(owner, total);
            account::release(owner);
        }
    }
}

/// Arenas made through the hooks, and the account each was charged to.
static ARENAS: Mutex<Option<HashMap<usize, usize>>> = Mutex::new(None);

fn arenas() -> MutexGuard<'static, Option<HashMap<usize, usize>>> {
    ARENAS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn base_arena(ctx: *mut c_void) -> &'static PyObjectArenaAllocator {
    // SAFETY: `install` gave the arena hooks this leaked struct as `ctx`.
    unsafe { &*(ctx as *const PyObjectArenaAllocator) }
}

extern "C" fn arena_alloc(ctx: *mut c_void, size: usize) -> *mut c_void {
    let owner = account::current();
    if !account::charge(owner, size) {
        return ptr::null_mut();
    }
    let base = base_arena(ctx);
    let Some(alloc) = base.alloc else {
        return ptr::null_mut();
    };
    let arena = alloc(base.ctx, size);
    if arena.is_null() {
        account::credit(owner, size);
        return arena;
    }
    // Rust's own allocations (the table) use the system allocator, never
    // a hooked domain: no re-entry.
    arenas()
        .get_or_insert_with(HashMap::new)
        .insert(arena as usize, account::retain(owner) as usize);
    arena
}

extern "C" fn arena_free(ctx: *mut c_void, arena: *mut c_void, size: usize) {
    let owner = arenas()
        .as_mut()
        .and_then(|table| table.remove(&(arena as usize)));
    let base = base_arena(ctx);
    if let Some(free) = base.free {
        free(base.ctx, arena, size);
    }
    if let Some(owner) = owner {
        account::credit(owner as *const Account, size);
        account::release(owner as *const Account);
    }
}
