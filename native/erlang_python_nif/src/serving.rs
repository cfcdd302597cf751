//! The worker thread, as seen by code running on it.
//!
//! A callback into Elixir waits on the worker thread that runs the Python
//! code calling it, and must keep that thread serving its queue meanwhile
//! (the callback may call back into Python). `erlang.self()` must know which
//! caller's request is running. Both reach the thread through the small
//! [`ServingThread`] trait, registered by the runtime when a worker starts,
//! so neither depends on the runtime itself.

use std::cell::{Cell, OnceCell};
use std::time::{Duration, Instant};

use pyo3::Python;
use rustler::LocalPid;

use crate::interpreters;
use crate::job::Request;

/// What a worker thread offers to code that runs on it.
pub(crate) trait ServingThread {
    /// Waits with the GIL released until `answered()` may be true or
    /// `until` passes (then `None`), or a request for this thread arrives:
    /// the caller serves it and waits again.
    fn wait_serving(
        &self,
        py: Python<'_>,
        answered: &(dyn Fn() -> bool + Sync),
        until: Instant,
    ) -> Option<Request>;
    /// How long after its wait began an answer arrived: tells the thread
    /// whether spinning for the next one pays.
    fn record_answer_gap(&self, gap: Duration);
    /// Runs a request that arrived while the thread waits (re-entrant).
    fn serve(&self, py: Python<'_>, request: Request);
    /// Whether the innermost running job has been cancelled.
    fn innermost_cancelled(&self) -> bool;
    /// The Elixir process whose request runs innermost, if any.
    fn caller(&self) -> Option<LocalPid>;
}

thread_local! {
    /// Set on worker threads only, for their whole life.
    static CURRENT: OnceCell<&'static dyn ServingThread> = const { OnceCell::new() };
}

/// Declares the calling thread to be `thread`; called once, as it starts.
pub(crate) fn register_current(thread: &'static dyn ServingThread) {
    CURRENT.with(|cell| {
        let _ = cell.set(thread);
    });
}

/// The worker thread we are on, if we are on one.
pub(crate) fn current() -> Option<&'static dyn ServingThread> {
    CURRENT.with(|cell| cell.get().copied())
}

/// The Elixir process whose request is running on this thread, if any.
pub(crate) fn current_caller() -> Option<LocalPid> {
    current().and_then(|thread| thread.caller())
}

/// Running a request on a Python thread that is not a worker (one that
/// waits for a callback's answer, see `callbacks::divert`): registered once
/// by the runtime for the main interpreter, and once by own-GIL contexts
/// for theirs.
pub(crate) trait Helper: Sync {
    /// Runs `request` and replies. Called holding the GIL of the
    /// interpreter the request is for (the calling thread's).
    fn serve(&self, py: Python<'_>, request: Request);
    /// The requests this helper runs on the calling thread: those routed by
    /// this key ([`MAIN_HOME`]: the shared workers'; an own-GIL context's
    /// scope: that context's). `None`: none.
    fn home(&self, _py: Python<'_>) -> Option<u64> {
        Some(MAIN_HOME)
    }
}

/// The [`Helper::home`] of requests for the shared workers (the main
/// interpreter). Scopes start at 1, so no own-GIL context has it.
pub(crate) const MAIN_HOME: u64 = 0;

static HELPER: std::sync::OnceLock<&'static dyn Helper> = std::sync::OnceLock::new();
static SUB_INTERPRETER_HELPER: std::sync::OnceLock<&'static dyn Helper> =
    std::sync::OnceLock::new();

/// Declares the runtime's [`Helper`]; called once, as the pool starts.
pub(crate) fn register_helper(helper: &'static dyn Helper) {
    let _ = HELPER.set(helper);
}

/// Declares the [`Helper`] of threads in sub-interpreters; called as the
/// first own-GIL context starts.
pub(crate) fn register_sub_interpreter_helper(helper: &'static dyn Helper) {
    let _ = SUB_INTERPRETER_HELPER.set(helper);
}

/// The [`Helper`] for the calling thread's interpreter, with its home.
pub(crate) fn helper_here(py: Python<'_>) -> Option<(&'static dyn Helper, u64)> {
    let helper = match interpreters::is_main(py) {
        true => HELPER.get(),
        false => SUB_INTERPRETER_HELPER.get(),
    }?;
    Some((*helper, helper.home(py)?))
}

thread_local! {
    /// Whether Python output of a request on this thread waits in a line
    /// buffer (priv/_erlang_impl/_io.py), to be flushed when a request ends.
    static OUTPUT_PENDING: Cell<bool> = const { Cell::new(false) };
}

/// Notes that output waits in a line buffer (`_erlang_native.output_pending()`).
pub(crate) fn note_output_pending() {
    OUTPUT_PENDING.with(|pending| pending.set(true));
}

/// Whether output waits, clearing the note: a thread-local read per request
/// when nothing was printed.
pub(crate) fn take_output_pending() -> bool {
    OUTPUT_PENDING.with(|pending| pending.replace(false))
}
