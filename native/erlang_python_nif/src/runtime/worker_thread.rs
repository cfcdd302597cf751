//! One worker thread: takes requests from the pool's queues, runs them
//! holding the GIL, and replies.
//!
//! While idle it waits in [`Dispatch::next`] with the GIL released, so
//! Python threads keep running; when requests are already waiting it drains
//! them under one GIL acquisition. It is re-entrant: a callback into Elixir
//! waiting on this thread serves the requests that arrive meanwhile through
//! [`ServingThread`], so Python -> Elixir -> Python nests without deadlock.
//!
//! [`run`] is the thread's body, for every worker alike (worker 0 runs it
//! once it has initialized the interpreter).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use rustler::{LocalPid, OwnedEnv};

use super::dispatch::Dispatch;
use super::wait_strategy::SpinBudget;
use crate::awaitable;
use crate::errors::Failure;
use crate::interpreters;
use crate::job::{JobState, Request};
use crate::memory;
use crate::ops::Executor;
use crate::panics;
use crate::reply::Outcome;
use crate::sandbox;
use crate::schedule;
use crate::serving::{self, ServingThread};

/// A worker thread's state, reachable from code running on that thread:
/// a callback waiting for Elixir keeps serving the queue through it.
struct WorkerThread {
    index: usize,
    dispatch: &'static Dispatch,
    executor: Executor,
    replies: RefCell<OwnedEnv>,
    /// Requests running on this thread, innermost last (more than one when
    /// a callback wait serves nested requests).
    running: RefCell<Vec<Running>>,
    /// How soon callbacks' answers have been coming.
    callback_budget: RefCell<SpinBudget>,
}

struct Running {
    caller: LocalPid,
    job: Arc<JobState>,
}

/// The body of worker `index`'s thread; never returns (workers live as
/// long as the VM).
pub(super) fn run(dispatch: &'static Dispatch, index: usize) {
    // Before this thread runs any Python (worker 0 is already confined by
    // `interpreter::initialize`; for it this changes nothing).
    sandbox::confine_current_thread_or_warn();
    dispatch.slots()[index]
        .interruptible
        .bind_to_current_thread();
    dispatch.register_thread(index);
    // Leaked on purpose: worker threads live as long as the VM.
    let thread: &'static WorkerThread = Box::leak(Box::new(WorkerThread {
        index,
        dispatch,
        executor: Executor::default(),
        replies: RefCell::new(OwnedEnv::new()),
        running: RefCell::new(Vec::new()),
        // Without probes: with them the callback round trip measured
        // 17-65 us against main's 11-43 us in alternated runs on a 2-vCPU
        // VM, and main's own spread is as wide (10-70 us): no gain shown,
        // while a spin for an answer holds a core the VM's schedulers
        // need to produce it (the dispatcher and the callback's process).
        callback_budget: RefCell::new(SpinBudget::default()),
    }));
    serving::register_current(thread);
    let mut budget = SpinBudget::with_probes();
    loop {
        // Waits without the GIL; then drains everything already queued
        // under a single acquisition.
        let first = dispatch.next(index, &mut budget);
        Python::attach(|py| {
            // Handles Elixir dropped since (`interpreters::release`).
            interpreters::drain(py);
            let mut next = Some(first);
            while let Some(request) = next {
                thread.handle(py, request);
                next = dispatch.try_next(index);
            }
        });
    }
}

impl ServingThread for WorkerThread {
    fn wait_serving(
        &self,
        py: Python<'_>,
        answered: &(dyn Fn() -> bool + Sync),
        until: Instant,
    ) -> Option<Request> {
        let spin = self.callback_budget.borrow_mut().spin_for();
        let (dispatch, index) = (self.dispatch, self.index);
        py.detach(|| dispatch.wait_serving(index, spin, answered, until))
    }

    fn record_answer_gap(&self, gap: Duration) {
        self.callback_budget.borrow_mut().record(gap);
    }

    fn serve(&self, py: Python<'_>, request: Request) {
        self.handle(py, request);
    }

    fn innermost_cancelled(&self) -> bool {
        self.running
            .borrow()
            .last()
            .is_some_and(|r| r.job.is_cancelled())
    }

    fn caller(&self) -> Option<LocalPid> {
        self.running.borrow().last().map(|r| r.caller)
    }
}

impl WorkerThread {
    /// Runs one request and replies. Reentrant: a callback waiting for
    /// Elixir calls it for requests that arrive meanwhile.
    fn handle(&self, py: Python<'_>, request: Request) {
        if !request.job.start(self.index) {
            return; // the caller gave up before we got to it
        }
        let interruptible = &self.dispatch.slots()[self.index].interruptible;
        // An interrupt that arrived after its job finished must not hit this
        // one: clear whatever asynchronous exception is still pending here.
        interruptible.clear_stale(py);
        let outermost = {
            let mut running = self.running.borrow_mut();
            running.push(Running {
                caller: request.reply_to,
                job: request.job.clone(),
            });
            running.len() == 1
        };
        if outermost {
            self.dispatch.busy(self.index);
        }
        interruptible.set_current_job(py, request.job.id, request.job.scope);
        // The context's allocations (its arguments' conversion included) are
        // charged to its account, if it has one, until the guard drops.
        let charged_to = memory::enter(request.job.scope);
        // A returned `erlang.schedule*` marker continues within the job.
        let outcome = panics::catch(|| {
            request.with_op(|op| schedule::resolve(py, self.executor.execute(py, op)))
        })
        .unwrap_or_else(|text| Err(Failure::Internal(text)));
        // Output the request left in a line buffer goes out before its
        // reply, while it is still the innermost (so erlang.self() names
        // its caller).
        if serving::take_output_pending() {
            flush_output(py);
        }
        drop(charged_to);
        let (outer, outer_scope) = {
            let mut running = self.running.borrow_mut();
            running.pop();
            running.last().map_or((0, 0), |r| (r.job.id, r.job.scope))
        };
        interruptible.set_current_job(py, outer, outer_scope);
        // Only the innermost job is ever targeted, so an exception still
        // pending now was meant for the job that just ended. Cleared here, it
        // cannot fire in the job this one ran nested in (a callback wait).
        interruptible.clear_stale(py);
        self.dispatch.completed(self.index);
        self.answer(py, request, outcome);
        self.dispatch.finished(self.index, outermost);
    }

    /// Replies with `outcome`, unless the caller gave up; an awaitable goes
    /// to the asyncio loop and replies later.
    fn answer(&self, py: Python<'_>, request: Request, outcome: Result<Outcome<'_>, Failure>) {
        // The shared reply env is never held across Python code, so it is
        // free here even for a nested request; fall back to a fresh one anyway.
        match self.replies.try_borrow_mut() {
            Ok(mut replies) => awaitable::answer_or_schedule(py, &mut replies, request, outcome),
            Err(_) => awaitable::answer_or_schedule(py, &mut OwnedEnv::new(), request, outcome),
        }
    }
}

/// Flushes the innermost caller's buffered output (`_erlang_impl._io`); if
/// other callers' output still waits (a request suspended in a callback),
/// the note stays for their end. A failure to flush never fails the request.
fn flush_output(py: Python<'_>) {
    let more = py
        .import("_erlang_impl._io")
        .and_then(|io| io.call_method0("end_of_call"))
        .and_then(|more| more.is_truthy())
        .unwrap_or(false);
    if more {
        serving::note_output_pending();
    }
}
