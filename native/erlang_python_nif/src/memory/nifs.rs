//! The NIFs behind `ErlangPython.Memory`: ceilings and usage figures.

use std::sync::Arc;

use rustler::{NifMap, ResourceArc};

use super::account::{self, Account, Usage, INTERPRETER};
use super::hooks;

/// A context's account, held by its context process: when the process
/// exits the resource is collected and the scope loses its account (blocks
/// charged to it keep it alive until freed).
pub(crate) struct ScopeAccount {
    key: u64,
    account: Arc<Account>,
}

#[rustler::resource_impl]
impl rustler::Resource for ScopeAccount {}

impl Drop for ScopeAccount {
    fn drop(&mut self) {
        account::close(self.key, &self.account);
    }
}

/// What `ErlangPython.Memory.usage/1` returns, in bytes.
#[derive(NifMap)]
pub(crate) struct UsageMap {
    used: usize,
    peak: usize,
    /// 0 when there is no ceiling.
    limit: usize,
    /// Allocations refused because of the ceiling.
    refused: u64,
}

impl From<Usage> for UsageMap {
    fn from(usage: Usage) -> Self {
        UsageMap {
            used: usage.used,
            peak: usage.peak,
            limit: usage.limit,
            refused: usage.refused,
        }
    }
}

/// Gives scope `key` (a context's) an account with ceiling `limit` bytes
/// (0: none). Its requests are charged to it from now on.
#[rustler::nif]
fn memory_open_scope(key: u64, limit: usize) -> ResourceArc<ScopeAccount> {
    let account = account::open(key);
    account.set_limit(limit);
    ResourceArc::new(ScopeAccount { key, account })
}

/// Sets a context's ceiling (0: none).
#[rustler::nif]
fn memory_set_scope_limit(scope: ResourceArc<ScopeAccount>, limit: usize) -> rustler::Atom {
    scope.account.set_limit(limit);
    crate::atoms::ok()
}

/// A context's figures.
#[rustler::nif]
fn memory_scope_usage(scope: ResourceArc<ScopeAccount>) -> UsageMap {
    scope.account.usage().into()
}

/// Restarts a context's peak from its current usage.
#[rustler::nif]
fn memory_reset_scope_peak(scope: ResourceArc<ScopeAccount>) -> rustler::Atom {
    scope.account.reset_peak();
    crate::atoms::ok()
}

/// Sets the interpreter's ceiling (0: none); false before the runtime
/// started (the hooks are not installed yet).
#[rustler::nif]
fn memory_set_interpreter_limit(limit: usize) -> bool {
    INTERPRETER.set_limit(limit);
    hooks::installed()
}

/// The interpreter's figures, or `nil` before the runtime started.
#[rustler::nif]
fn memory_interpreter_usage() -> Option<UsageMap> {
    hooks::installed().then(|| INTERPRETER.usage().into())
}

/// Restarts the interpreter's peak from its current usage.
#[rustler::nif]
fn memory_reset_interpreter_peak() -> rustler::Atom {
    INTERPRETER.reset_peak();
    crate::atoms::ok()
}
