//! Requests that a Python thread waiting for a callback's answer runs
//! itself (`callbacks::divert`).
//!
//! A request may start Python threads and join them; if such a thread calls
//! an Elixir function that calls back into the same context, the nested
//! request would be queued for the worker that is blocked in `join()`, and
//! wait there until the callback timed out. So a callback made from a
//! Python thread of its own (in the main interpreter) runs the requests of
//! the process running that callback itself while it waits, as the isolated
//! worker's reader does (`worker/inbox.rs`).
//!
//! A request served here cannot be interrupted (the interrupter targets the
//! workers' threads); a caller that times out still gets its timeout, and
//! the late reply is dropped.

use pyo3::prelude::*;
use rustler::OwnedEnv;

use crate::awaitable;
use crate::job::Request;
use crate::ops::helped;
use crate::schedule;
use crate::serving::Helper;

/// The pool's [`Helper`].
pub(super) struct PoolHelper;

impl Helper for PoolHelper {
    fn serve(&self, py: Python<'_>, request: Request) {
        // Worker 0 stands for this thread: an interrupt for this job finds
        // it not running there, and does nothing.
        if let Some(outcome) = helped::run(py, &request, 0, schedule::resolve) {
            awaitable::answer_or_schedule(py, &mut OwnedEnv::new(), request, outcome);
        }
    }
}
