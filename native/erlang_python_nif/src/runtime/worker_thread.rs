//! One worker thread: takes requests from its queue, runs them holding the
//! GIL, and replies.
//!
//! While idle it waits on its channel with the GIL released, so Python
//! threads keep running; when requests are already waiting it drains them
//! under one GIL acquisition. It is re-entrant: a callback into Elixir
//! waiting on this thread serves the requests that arrive meanwhile through
//! [`ServingThread`], so Python -> Elixir -> Python nests without deadlock.
//!
//! [`run`] is the thread's body, for every worker alike (worker 0 runs it
//! once it has initialized the interpreter).

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use pyo3::prelude::*;
use rustler::{LocalPid, OwnedEnv};

use crate::awaitable;
use crate::errors::Failure;
use crate::interrupt::Interruptible;
use crate::job::{JobState, Request};
use crate::ops::Executor;
use crate::panics;
use crate::reply::{self, Outcome};
use crate::sandbox;
use crate::serving::{self, ServingThread};

/// What a worker shares with submitters (its load) and the interrupter.
pub(super) struct WorkerLoad {
    pub(super) index: usize,
    /// Requests queued for this worker and not yet taken.
    pub(super) queued: AtomicUsize,
    /// Requests running on it (more than one when nested).
    running: AtomicUsize,
    pub(super) interruptible: Arc<Interruptible>,
}

impl WorkerLoad {
    pub(super) fn new(index: usize) -> Self {
        WorkerLoad {
            index,
            queued: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            interruptible: Arc::default(),
        }
    }

    /// Requests this worker has to get through.
    pub(super) fn load(&self) -> usize {
        self.queued.load(Ordering::Relaxed) + self.running.load(Ordering::Relaxed)
    }
}

/// A worker thread's state, reachable from code running on that thread:
/// a callback waiting for Elixir keeps serving the queue through it.
struct WorkerThread {
    receiver: Receiver<Request>,
    load: Arc<WorkerLoad>,
    /// The pool's total of waiting requests.
    total_queued: Arc<AtomicUsize>,
    executor: Executor,
    replies: RefCell<OwnedEnv>,
    /// Requests running on this thread, innermost last (more than one when
    /// a callback wait serves nested requests).
    running: RefCell<Vec<Running>>,
}

struct Running {
    caller: LocalPid,
    job: Arc<JobState>,
}

/// The body of a worker thread; returns when its queue is closed.
pub(super) fn run(
    receiver: Receiver<Request>,
    load: Arc<WorkerLoad>,
    total_queued: Arc<AtomicUsize>,
) {
    // Before this thread runs any Python (worker 0 is already confined by
    // `interpreter::initialize`; for it this changes nothing).
    sandbox::confine_current_thread_or_warn();
    load.interruptible.bind_to_current_thread();
    // Leaked on purpose: worker threads live as long as the VM.
    let thread: &'static WorkerThread = Box::leak(Box::new(WorkerThread {
        receiver,
        load,
        total_queued,
        executor: Executor::default(),
        replies: RefCell::new(OwnedEnv::new()),
        running: RefCell::new(Vec::new()),
    }));
    serving::register_current(thread);
    // Waits without the GIL; then drains everything already queued under a
    // single acquisition.
    while let Some(first) = next_request(&thread.receiver) {
        Python::attach(|py| {
            let mut next = Some(first);
            while let Some(request) = next {
                thread.handle(py, request);
                next = thread.receiver.try_recv().ok();
            }
        });
    }
}

/// How long the idle worker thread polls before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

/// The next request. Polls for a moment first: a caller that sends its next
/// request right after a reply (the common sequential pattern) is served
/// without a sleep and wake-up on either side, which costs more than the
/// whole round trip otherwise would.
fn next_request(receiver: &Receiver<Request>) -> Option<Request> {
    let spin_until = Instant::now() + SPIN;
    let mut polls: u32 = 0;
    loop {
        match receiver.try_recv() {
            Ok(request) => return Some(request),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {
                polls = polls.wrapping_add(1);
                // Reading the clock costs more than a poll: look every 64.
                if polls.is_multiple_of(64) && Instant::now() >= spin_until {
                    return receiver.recv().ok();
                }
                std::hint::spin_loop();
            }
        }
    }
}

impl ServingThread for WorkerThread {
    fn queue(&self) -> &Receiver<Request> {
        &self.receiver
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
        self.total_queued.fetch_sub(1, Ordering::AcqRel);
        self.load.queued.fetch_sub(1, Ordering::AcqRel);
        if !request.job.start() {
            return; // the caller gave up before we got to it
        }
        // An interrupt that arrived after its job finished must not hit this
        // one: clear whatever asynchronous exception is still pending here.
        self.load.interruptible.clear_stale(py);
        self.running.borrow_mut().push(Running {
            caller: request.reply_to,
            job: request.job.clone(),
        });
        self.load
            .interruptible
            .set_current_job(py, request.job.id, request.job.scope);
        self.load.running.fetch_add(1, Ordering::AcqRel);
        let outcome = panics::catch(|| request.with_op(|op| self.executor.execute(py, op)))
            .unwrap_or_else(|text| Err(Failure::Internal(text)));
        let (outer, outer_scope) = {
            let mut running = self.running.borrow_mut();
            running.pop();
            running.last().map_or((0, 0), |r| (r.job.id, r.job.scope))
        };
        self.load
            .interruptible
            .set_current_job(py, outer, outer_scope);
        self.load.running.fetch_sub(1, Ordering::AcqRel);
        // Only the innermost job is ever targeted, so an exception still
        // pending now was meant for the job that just ended. Cleared here, it
        // cannot fire in the job this one ran nested in (a callback wait).
        self.load.interruptible.clear_stale(py);
        if request.job.is_cancelled() {
            return;
        }
        // An awaitable result goes to the asyncio loop; the reply comes later.
        if let Ok(Outcome::Value(value) | Outcome::ValueThenFree(value, _)) = &outcome {
            if awaitable::is_awaitable(value) {
                let value = value.clone();
                drop(outcome);
                awaitable::schedule(py, &value, request);
                return;
            }
        }
        // The shared reply env is never held across Python code, so it is
        // free here even for a nested request; fall back to a fresh one anyway.
        match self.replies.try_borrow_mut() {
            Ok(mut replies) => reply::send(py, &mut replies, &request, &outcome),
            Err(_) => reply::send(py, &mut OwnedEnv::new(), &request, &outcome),
        }
    }
}
