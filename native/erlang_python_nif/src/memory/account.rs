//! Accounts: who is charged for Python's allocations, and their ceilings.
//!
//! Every allocation the hooks see is charged to the interpreter's account
//! and, when a context's request runs on the thread, to that context's
//! account as well. A block remembers its context account (the hooks keep a
//! reference in its header), so whoever frees it later, on whatever thread,
//! credits the account that paid for it.
//!
//! The fast path is two relaxed atomic additions (three with a context),
//! and a load of this thread's current account. A context's account lives as
//! long as its resource or any block charged to it, whichever is longer.

use std::cell::Cell;
use std::collections::HashMap;
use std::ptr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

/// Allocations of at most this many bytes may go [`RESERVE`] bytes past a
/// ceiling. Larger ones (arenas, big buffers, list item arrays: what a
/// runaway loop asks for) stop at the ceiling itself.
pub(crate) const SMALL: usize = 64 * 1024;

/// Room past a ceiling for small allocations, so that code at its ceiling
/// can still compile `del big`, raise and format its `MemoryError`, and
/// reply: without it a namespace holding data up to the ceiling could never
/// be cleaned. Code that keeps allocating past it still gets `MemoryError`.
pub(crate) const RESERVE: usize = 1024 * 1024;

/// Bytes charged to one owner, and its ceiling (0: none).
#[derive(Default)]
pub(crate) struct Account {
    used: AtomicUsize,
    peak: AtomicUsize,
    limit: AtomicUsize,
    refused: AtomicU64,
}

/// What [`Account::usage`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) used: usize,
    pub(crate) peak: usize,
    pub(crate) limit: usize,
    pub(crate) refused: u64,
}

impl Account {
    /// A const-initialised account, for the interpreter's static one.
    pub(crate) const fn new() -> Self {
        Account {
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            limit: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Charges `size` bytes, or refuses (and charges nothing) when that
    /// would take the account past its ceiling. Racing charges may refuse a
    /// little early, never let usage run more than one request past.
    pub(crate) fn charge(&self, size: usize) -> bool {
        let now = self.used.fetch_add(size, Relaxed).wrapping_add(size);
        let limit = self.limit.load(Relaxed);
        if limit != 0 && now > limit && (size > SMALL || now > limit.saturating_add(RESERVE)) {
            self.used.fetch_sub(size, Relaxed);
            self.refused.fetch_add(1, Relaxed);
            return false;
        }
        // A plain load first: the peak rarely moves, and a read-modify-write
        // on every allocation would cost more than the charge itself.
        if now > self.peak.load(Relaxed) {
            self.peak.fetch_max(now, Relaxed);
        }
        true
    }

    /// Gives back `size` bytes charged earlier.
    pub(crate) fn credit(&self, size: usize) {
        self.used.fetch_sub(size, Relaxed);
    }

    /// Sets the ceiling in bytes; 0 removes it (accounting goes on).
    pub(crate) fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Relaxed);
    }

    /// Forgets the peak: it restarts from the current usage.
    pub(crate) fn reset_peak(&self) {
        self.peak.store(self.used.load(Relaxed), Relaxed);
    }

    pub(crate) fn usage(&self) -> Usage {
        Usage {
            used: self.used.load(Relaxed),
            peak: self.peak.load(Relaxed),
            limit: self.limit.load(Relaxed),
            refused: self.refused.load(Relaxed),
        }
    }
}

/// The interpreter's account: every counted allocation is charged here.
pub(crate) static INTERPRETER: Account = Account::new();

/// Charges `size` to `context` (may be null) and to the interpreter; all or
/// nothing.
pub(crate) fn charge(context: *const Account, size: usize) -> bool {
    // SAFETY: a non-null `context` is the current account of this thread
    // (kept alive by its `Entered` guard) or a block's account (kept alive
    // by the reference the block's header holds).
    let context = unsafe { context.as_ref() };
    if let Some(account) = context {
        if !account.charge(size) {
            return false;
        }
    }
    if INTERPRETER.charge(size) {
        return true;
    }
    if let Some(account) = context {
        account.credit(size);
    }
    false
}

/// Gives `size` back to `context` (may be null) and to the interpreter.
pub(crate) fn credit(context: *const Account, size: usize) {
    // SAFETY: as in `charge`.
    if let Some(account) = unsafe { context.as_ref() } {
        account.credit(size);
    }
    INTERPRETER.credit(size);
}

/// A new counted reference to `account` (null stays null), for a block's
/// header or the arena table.
pub(crate) fn retain(account: *const Account) -> *const Account {
    if !account.is_null() {
        // SAFETY: a non-null account pointer always comes from
        // `Arc::into_raw`/`Arc::as_ptr` of a live `Arc<Account>` (see `charge`).
        unsafe { Arc::increment_strong_count(account) };
    }
    account
}

/// Drops a reference taken with [`retain`]. May free the account: its
/// memory is Rust's (the system allocator), never a hooked domain's.
pub(crate) fn release(account: *const Account) {
    if !account.is_null() {
        // SAFETY: pairs with the increment in `retain`.
        unsafe { Arc::decrement_strong_count(account) };
    }
}

thread_local! {
    /// The account of the context whose request this thread runs (null:
    /// none). Const-initialised, without destructor: the hooks read it on
    /// every allocation, including during thread exit.
    static CURRENT: Cell<*const Account> = const { Cell::new(ptr::null()) };
}

/// This thread's current context account, or null.
pub(crate) fn current() -> *const Account {
    CURRENT.try_with(Cell::get).unwrap_or(ptr::null())
}

/// Context accounts by scope key (`ErlangPython.Context` scopes).
static SCOPES: Mutex<Option<HashMap<u64, Arc<Account>>>> = Mutex::new(None);

/// How many scopes have an account: 0 lets [`enter`] skip the lookup.
static SCOPE_COUNT: AtomicUsize = AtomicUsize::new(0);

fn scopes() -> MutexGuard<'static, Option<HashMap<u64, Arc<Account>>>> {
    SCOPES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Gives scope `key` an account (a fresh one; it replaces an earlier one).
pub(crate) fn open(key: u64) -> Arc<Account> {
    let account = Arc::new(Account::new());
    let mut table = scopes();
    let map = table.get_or_insert_with(HashMap::new);
    if map.insert(key, account.clone()).is_none() {
        SCOPE_COUNT.fetch_add(1, Relaxed);
    }
    account
}

/// Removes scope `key`'s account if it is `account`. Blocks charged to it
/// keep it alive until they are freed.
pub(crate) fn close(key: u64, account: &Arc<Account>) {
    let mut table = scopes();
    if let Some(map) = table.as_mut() {
        if map
            .get(&key)
            .is_some_and(|found| Arc::ptr_eq(found, account))
        {
            map.remove(&key);
            SCOPE_COUNT.fetch_sub(1, Relaxed);
        }
    }
}

/// While alive, the thread's allocations are charged to a scope's account.
/// Restores the previous one when dropped (requests nest during callbacks).
pub(crate) struct Entered {
    previous: *const Account,
    _account: Option<Arc<Account>>,
}

/// Makes scope `key`'s account (if it has one) current on this thread.
pub(crate) fn enter(key: u64) -> Entered {
    let account = if key == 0 || SCOPE_COUNT.load(Relaxed) == 0 {
        None
    } else {
        scopes().as_ref().and_then(|map| map.get(&key).cloned())
    };
    let pointer = account.as_ref().map_or(ptr::null(), Arc::as_ptr);
    let previous = CURRENT.with(|current| current.replace(pointer));
    Entered {
        previous,
        _account: account,
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ceiling_refuses_large_charges_and_keeps_a_reserve_for_small_ones() {
        let account = Account::new();
        account.set_limit(1 << 20);
        assert!(account.charge(1 << 20));
        assert!(!account.charge(SMALL + 1), "large past the ceiling");
        assert!(account.charge(SMALL), "small within the reserve");
        assert!(!account.charge(RESERVE), "small past the reserve");
        let usage = account.usage();
        assert_eq!((usage.used, usage.refused), ((1 << 20) + SMALL, 2));
        account.credit(SMALL);
        account.set_limit(0);
        assert!(account.charge(1 << 30), "no ceiling");
        assert_eq!(account.usage().peak, (1 << 20) + (1 << 30));
    }

    #[test]
    fn entering_a_scope_makes_its_account_current_until_the_guard_drops() {
        let account = open(u64::MAX - 7);
        {
            let _entered = enter(u64::MAX - 7);
            assert_eq!(current(), Arc::as_ptr(&account));
            {
                let _nested = enter(0);
                assert!(current().is_null());
            }
            assert_eq!(current(), Arc::as_ptr(&account));
        }
        assert!(current().is_null());
        close(u64::MAX - 7, &account);
        assert!(enter(u64::MAX - 7)._account.is_none());
    }
}
