//! Requests of a blocked worker, served by a Python thread that waits for a
//! callback's answer.
//!
//! A request may start Python threads and join them; if such a thread calls
//! an Elixir function that calls back into the same context, the nested
//! request is bound to the worker that is blocked in `join()`, and would
//! wait there until the callback timed out. So a Python thread waiting for
//! a callback's answer (`callbacks::wait`) runs the requests queued for a
//! worker that is in the middle of a request and not serving its queue
//! itself, as the isolated worker's reader does (`worker/inbox.rs`). Only in
//! the main interpreter, whose state every pool worker shares.
//!
//! A request served here cannot be interrupted (the interrupter targets the
//! worker's thread); a caller that times out still gets its timeout, and
//! the late reply is dropped.

use std::cell::RefCell;

use pyo3::prelude::*;
use rustler::OwnedEnv;

use super::dispatch::Dispatch;
use crate::awaitable;
use crate::errors::Failure;
use crate::job::Request;
use crate::memory;
use crate::ops::Executor;
use crate::panics;
use crate::reply::{self, Outcome};
use crate::schedule;
use crate::serving::Helper;

/// The pool's [`Helper`].
pub(super) struct PoolHelper {
    pub(super) dispatch: &'static Dispatch,
}

thread_local! {
    /// Code and name caches of the Python threads that help.
    static EXECUTOR: RefCell<Option<Executor>> = const { RefCell::new(None) };
}

impl Helper for PoolHelper {
    fn help(&self, py: Python<'_>) -> bool {
        let mut served = false;
        while let Some((index, request)) = self.dispatch.take_for_helper() {
            served = true;
            self.serve(py, index, request);
        }
        served
    }
}

impl PoolHelper {
    /// Runs `request`, bound to worker `index`, on this thread, and replies.
    fn serve(&self, py: Python<'_>, index: usize, request: Request) {
        if !request.job.start(index) {
            return; // the caller gave up before we got to it
        }
        let charged_to = memory::enter(request.job.scope);
        let outcome = EXECUTOR.with(|cell| {
            // Taken out while it runs: the request may wait for a callback
            // of its own and help again, re-entering here.
            let executor = cell.borrow_mut().take().unwrap_or_default();
            let outcome = panics::catch(|| {
                request.with_op(|op| schedule::resolve(py, executor.execute(py, op)))
            })
            .unwrap_or_else(|text| Err(Failure::Internal(text)));
            *cell.borrow_mut() = Some(executor);
            outcome
        });
        drop(charged_to);
        self.dispatch.completed(index);
        if request.job.is_cancelled() {
            return;
        }
        if let Ok(Outcome::Value(value) | Outcome::ValueThenFree(value, _)) = &outcome {
            if awaitable::is_awaitable(value) {
                let value = value.clone();
                drop(outcome);
                awaitable::schedule(py, &value, request);
                return;
            }
        }
        reply::send(py, &mut OwnedEnv::new(), &request, &outcome);
    }
}
