//! The dedicated OS thread that owns the interpreter, and its request queue.
//!
//! NIFs never run Python on a BEAM scheduler. `submit` copies the request's
//! terms into a process-independent environment, pushes it on a crossbeam
//! channel and returns. This thread takes requests, runs them holding the
//! GIL, and sends `{ref, result}` to the caller. While idle it blocks on the
//! channel with the GIL released, so Python threads keep running; when
//! requests are already waiting it drains them under one GIL acquisition.
//!
//! Every request has a [`JobState`] shared with the caller's handle. The
//! state machine (pending -> running -> done, or -> cancelled) guarantees a
//! reply is sent only if the caller has not given up: a caller that timed out
//! or died never receives a stale message later.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use pyo3::prelude::*;
use rustler::{LocalPid, OwnedEnv, Term};

use crate::awaitable;
use crate::errors::Failure;
use crate::interpreter::{self, StartConfig};
use crate::interrupt::{self, Interruptible};
use crate::job::{JobState, Request};
use crate::ops::Executor;
use crate::panics;
use crate::reply::{self, Outcome};
use crate::serving::{self, ServingThread};

/// Why `submit` refused a request.
#[derive(Debug)]
pub enum SubmitError {
    NotStarted,
    Overloaded,
}

struct Runtime {
    workers: Vec<(Sender<Request>, Arc<WorkerShared>)>,
    /// Requests waiting on all workers together (the queue limit's count).
    queued: Arc<AtomicUsize>,
    max_queue: AtomicUsize,
}

/// What a worker thread shares with submitters and the interrupter.
#[derive(Default)]
pub struct WorkerShared {
    pub index: usize,
    queued: AtomicUsize,
    running: AtomicUsize,
    interruptible: Arc<Interruptible>,
}

impl WorkerShared {
    fn load(&self) -> usize {
        self.queued.load(Ordering::Relaxed) + self.running.load(Ordering::Relaxed)
    }
}

/// How many worker threads serve requests.
pub fn worker_count() -> usize {
    RUNTIME.get().map_or(0, |runtime| runtime.workers.len())
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static START_LOCK: Mutex<()> = Mutex::new(());

/// Stack of the runtime thread: conversion of deeply nested values recurses.
const THREAD_STACK: usize = 256 * 1024 * 1024;

/// Starts the interpreter on worker 0 (Python's main thread) and
/// `workers - 1` more worker threads. Idempotent: a second call returns
/// `Ok(false)` and changes nothing (the interpreter is one per process).
pub fn start(config: StartConfig, max_queue: usize, workers: usize) -> Result<bool, String> {
    let _guard = START_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if RUNTIME.get().is_some() {
        return Ok(false);
    }
    let queued = Arc::new(AtomicUsize::new(0));
    let mut links = Vec::new();
    let mut receivers = Vec::new();
    for index in 0..workers.max(1) {
        let (sender, receiver) = crossbeam_channel::unbounded::<Request>();
        let shared = Arc::new(WorkerShared {
            index,
            ..WorkerShared::default()
        });
        links.push((sender, shared.clone()));
        receivers.push((receiver, shared));
    }
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
    let mut receivers = receivers.into_iter();
    let (main_receiver, main_shared) = receivers.next().expect("at least one worker");
    let main_queued = queued.clone();
    std::thread::Builder::new()
        .name("erlang_python".into())
        .stack_size(THREAD_STACK)
        .spawn(move || {
            let started = panics::catch(|| interpreter::initialize(&config)).unwrap_or_else(Err);
            let ok = started.is_ok();
            let _ = ready_tx.send(started);
            if ok {
                serve(main_receiver, main_shared, main_queued);
            }
        })
        .map_err(|e| format!("could not spawn the Python thread: {e}"))?;
    ready_rx
        .recv()
        .map_err(|_| "the Python thread exited during start".to_string())??;
    let interruptibles = links
        .iter()
        .map(|(_, shared)| shared.interruptible.clone())
        .collect();
    // The other workers attach to the running interpreter.
    for (receiver, shared) in receivers {
        let total = queued.clone();
        std::thread::Builder::new()
            .name(format!("erlang_python_{}", shared.index))
            .stack_size(THREAD_STACK)
            .spawn(move || serve(receiver, shared, total))
            .map_err(|e| format!("could not spawn a Python worker thread: {e}"))?;
    }
    interrupt::start(interruptibles)?;
    let _ = RUNTIME.set(Runtime {
        workers: links,
        queued,
        max_queue: AtomicUsize::new(max_queue),
    });
    Ok(true)
}

pub fn is_started() -> bool {
    RUNTIME.get().is_some()
}

/// Changes the queue limit; false if the runtime is not started.
pub fn set_max_queue(limit: usize) -> bool {
    match RUNTIME.get() {
        Some(runtime) => {
            runtime.max_queue.store(limit.max(1), Ordering::Relaxed);
            true
        }
        None => false,
    }
}

/// Requests waiting in the queue right now.
pub fn queue_length() -> usize {
    RUNTIME
        .get()
        .map_or(0, |runtime| runtime.queued.load(Ordering::Relaxed))
}

/// Most term cells (list cells, tuple elements, map entries) a request may
/// hold to be copied on a normal scheduler. Copying costs about as much as
/// walking, so larger requests go to a dirty scheduler instead, keeping each
/// NIF call well under a millisecond.
pub const INLINE_COPY_BUDGET: usize = 20_000;

/// Deepest nesting walked on a scheduler's (small) stack; anything deeper
/// counts as large and is copied on a dirty scheduler (ERTS's copy does not
/// recurse on the C stack).
const INLINE_COPY_DEPTH: usize = 64;

/// Whether `term` is small enough to copy on a normal scheduler. Stops
/// walking as soon as the budget is spent, so it is cheap either way.
pub fn fits_inline(term: Term<'_>) -> bool {
    let mut budget = INLINE_COPY_BUDGET;
    walk_within(term, &mut budget, 0)
}

fn walk_within(term: Term<'_>, budget: &mut usize, depth: usize) -> bool {
    use rustler::TermType;
    if depth > INLINE_COPY_DEPTH {
        return false;
    }
    match term.get_type() {
        TermType::List => {
            let mut cell = term;
            while let Ok((head, tail)) = cell.list_get_cell() {
                if *budget == 0 || !walk_within(head, budget, depth + 1) {
                    return false;
                }
                *budget -= 1;
                cell = tail;
            }
            true
        }
        TermType::Tuple => match rustler::types::tuple::get_tuple(term) {
            Ok(items) => items.into_iter().all(|item| {
                if *budget == 0 {
                    return false;
                }
                *budget -= 1;
                walk_within(item, budget, depth + 1)
            }),
            Err(_) => true,
        },
        TermType::Map => {
            let size = term.map_size().unwrap_or(0);
            if size > *budget {
                return false;
            }
            *budget -= size;
            match rustler::MapIterator::new(term) {
                Some(entries) => {
                    let mut entries = entries;
                    entries.all(|(key, value)| {
                        walk_within(key, budget, depth + 1) && walk_within(value, budget, depth + 1)
                    })
                }
                None => true,
            }
        }
        _ => true,
    }
}

/// Queues `op` for a worker; the reply `{reference, result}` goes to
/// `reply_to`. Called on a scheduler thread: it only copies terms and sends.
/// `pinned` chooses the worker (a context always runs on the same thread:
/// C extensions such as numpy can break when objects move between OS
/// threads); otherwise the least loaded one takes it.
pub fn submit(
    reference: Term<'_>,
    op: Term<'_>,
    reply_to: LocalPid,
    pinned: Option<usize>,
) -> Result<Arc<JobState>, SubmitError> {
    let runtime = RUNTIME.get().ok_or(SubmitError::NotStarted)?;
    let index = match pinned {
        Some(hint) => hint % runtime.workers.len(),
        None => runtime
            .workers
            .iter()
            .min_by_key(|(_, shared)| shared.load())
            .map_or(0, |(_, shared)| shared.index),
    };
    let (sender, shared) = &runtime.workers[index];
    if runtime.queued.fetch_add(1, Ordering::AcqRel) >= runtime.max_queue.load(Ordering::Relaxed) {
        runtime.queued.fetch_sub(1, Ordering::AcqRel);
        return Err(SubmitError::Overloaded);
    }
    let job = Arc::new(JobState::for_worker(index));
    shared.queued.fetch_add(1, Ordering::AcqRel);
    let request = Request::new(reference, op, reply_to, job.clone());
    match sender.try_send(request) {
        Ok(()) => Ok(job),
        Err(error) => {
            runtime.queued.fetch_sub(1, Ordering::AcqRel);
            shared.queued.fetch_sub(1, Ordering::AcqRel);
            Err(match error {
                TrySendError::Full(_) => SubmitError::Overloaded,
                TrySendError::Disconnected(_) => SubmitError::NotStarted,
            })
        }
    }
}

/// The runtime thread's state, reachable from code running on that thread:
/// a callback waiting for Elixir keeps serving the queue through it.
pub struct Server {
    receiver: Receiver<Request>,
    shared: Arc<WorkerShared>,
    /// The runtime's total of waiting requests.
    queued: Arc<AtomicUsize>,
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

fn serve(receiver: Receiver<Request>, shared: Arc<WorkerShared>, queued: Arc<AtomicUsize>) {
    shared.interruptible.bind_to_current_thread();
    // Leaked on purpose: worker threads live as long as the VM.
    let server: &'static Server = Box::leak(Box::new(Server {
        receiver,
        shared,
        queued,
        executor: Executor::default(),
        replies: RefCell::new(OwnedEnv::new()),
        running: RefCell::new(Vec::new()),
    }));
    serving::register_current(server);
    // Waits without the GIL; then drains everything already queued under a
    // single acquisition.
    while let Some(first) = next_request(&server.receiver) {
        Python::attach(|py| {
            let mut next = Some(first);
            while let Some(request) = next {
                server.handle(py, request);
                next = server.receiver.try_recv().ok();
            }
        });
    }
}

/// How long the idle runtime thread polls before it sleeps.
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

impl ServingThread for Server {
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

impl Server {
    /// Runs one request and replies. Reentrant: a callback waiting for
    /// Elixir calls it for requests that arrive meanwhile.
    pub fn handle(&self, py: Python<'_>, request: Request) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
        self.shared.queued.fetch_sub(1, Ordering::AcqRel);
        if !request.job.start() {
            return; // the caller gave up before we got to it
        }
        // An interrupt that arrived after its job finished must not hit this
        // one: clear whatever asynchronous exception is still pending here.
        self.shared.interruptible.clear_stale(py);
        self.running.borrow_mut().push(Running {
            caller: request.reply_to,
            job: request.job.clone(),
        });
        self.shared
            .interruptible
            .set_current_job(py, request.job.id);
        self.shared.running.fetch_add(1, Ordering::AcqRel);
        let outcome = panics::catch(|| request.with_op(|op| self.executor.execute(py, op)))
            .unwrap_or_else(|text| Err(Failure::Internal(text)));
        let outer = {
            let mut running = self.running.borrow_mut();
            running.pop();
            running.last().map_or(0, |r| r.job.id)
        };
        self.shared.interruptible.set_current_job(py, outer);
        self.shared.running.fetch_sub(1, Ordering::AcqRel);
        // Only the innermost job is ever targeted, so an exception still
        // pending now was meant for the job that just ended. Cleared here, it
        // cannot fire in the job this one ran nested in (a callback wait).
        self.shared.interruptible.clear_stale(py);
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
