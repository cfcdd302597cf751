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

use std::cell::{OnceCell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use pyo3::prelude::*;
use rustler::env::SavedTerm;
use rustler::{Encoder, Env, LocalPid, OwnedEnv, Term};

use crate::atoms;
use crate::deferred;
use crate::errors::{reason_term, Failure};
use crate::interpreter::{self, StartConfig};
use crate::interrupt;
use crate::messaging::send_owned;
use crate::ops::{Outcome, Worker};

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;
const CANCELLED: u8 = 3;

/// Where a request stands; shared by the runtime thread and the caller's handle.
#[derive(Debug)]
pub struct JobState {
    /// Unique, never 0 (0 means "any job" to the interrupter).
    pub id: u64,
    state: AtomicU8,
    /// The worker thread the job was queued for.
    worker: AtomicUsize,
}

/// What `cancel` found.
#[derive(Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The reply will never be sent. `was_running`: Python code for it may
    /// be executing right now and should be interrupted.
    Cancelled { was_running: bool },
    /// The reply has been (or is being) sent: the caller must receive it.
    Done,
}

static NEXT_JOB_ID: AtomicU64 = AtomicU64::new(1);

impl Default for JobState {
    fn default() -> Self {
        JobState {
            id: NEXT_JOB_ID.fetch_add(1, Ordering::Relaxed),
            state: AtomicU8::new(PENDING),
            worker: AtomicUsize::new(0),
        }
    }
}

impl JobState {
    fn transition(&self, from: u8, to: u8) -> bool {
        self.state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Runtime thread: claim the job. False when it was cancelled first.
    pub fn start(&self) -> bool {
        self.transition(PENDING, RUNNING)
    }

    /// Runtime thread: commit to replying. False when cancelled meanwhile.
    pub fn finish(&self) -> bool {
        self.transition(RUNNING, DONE)
    }

    /// Caller side: give up on the reply unless it is already committed.
    pub fn cancel(&self) -> CancelOutcome {
        loop {
            match self.state.load(Ordering::Acquire) {
                DONE => return CancelOutcome::Done,
                CANCELLED => return CancelOutcome::Cancelled { was_running: false },
                state => {
                    if self.transition(state, CANCELLED) {
                        return CancelOutcome::Cancelled {
                            was_running: state == RUNNING,
                        };
                    }
                }
            }
        }
    }

    /// Cancels, and interrupts the Python code if it is running.
    pub fn cancel_and_interrupt(&self) -> CancelOutcome {
        let outcome = self.cancel();
        if outcome == (CancelOutcome::Cancelled { was_running: true }) {
            interrupt::request(self.worker.load(Ordering::Relaxed), self.id);
        }
        outcome
    }

    pub fn is_cancelled(&self) -> bool {
        self.state.load(Ordering::Acquire) == CANCELLED
    }
}

/// The caller's side of a request, as a NIF resource. Dropping it (the
/// caller died, or forgot the handle) cancels a request that has not replied.
pub struct JobHandle {
    pub state: Arc<JobState>,
}

#[rustler::resource_impl]
impl rustler::Resource for JobHandle {}

impl Drop for JobHandle {
    fn drop(&mut self) {
        self.state.cancel_and_interrupt();
    }
}

/// One unit of work for the runtime thread.
pub struct Request {
    env: OwnedEnv,
    reference: SavedTerm,
    op: SavedTerm,
    reply_to: LocalPid,
    job: Arc<JobState>,
}

impl Request {
    pub fn job_id(&self) -> u64 {
        self.job.id
    }
}

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
    /// Id of the job running innermost on this worker, 0 when idle. Changed
    /// only with the GIL held, so a GIL holder reads a stable value.
    pub current_job: AtomicU64,
    /// The worker's CPython thread id.
    pub thread_id: AtomicU64,
    /// An interrupt was aimed at this worker and may still be pending.
    pub interrupt_sent: AtomicBool,
}

impl WorkerShared {
    fn load(&self) -> usize {
        self.queued.load(Ordering::Relaxed) + self.running.load(Ordering::Relaxed)
    }
}

/// The worker with this index, if the runtime runs.
pub fn worker(index: usize) -> Option<Arc<WorkerShared>> {
    RUNTIME
        .get()?
        .workers
        .get(index)
        .map(|(_, shared)| shared.clone())
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
            let started = catch_unwind(|| interpreter::initialize(&config))
                .unwrap_or_else(|panic| Err(panic_text(&panic)));
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
    // The other workers attach to the running interpreter.
    for (receiver, shared) in receivers {
        let total = queued.clone();
        std::thread::Builder::new()
            .name(format!("erlang_python_{}", shared.index))
            .stack_size(THREAD_STACK)
            .spawn(move || {
                crate::sandbox::confine_current_thread_or_warn();
                serve(receiver, shared, total)
            })
            .map_err(|e| format!("could not spawn a Python worker thread: {e}"))?;
    }
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
    let env = OwnedEnv::new();
    let reference = env.save(reference);
    let op = env.save(op);
    let job = Arc::new(JobState::default());
    job.worker.store(index, Ordering::Relaxed);
    shared.queued.fetch_add(1, Ordering::AcqRel);
    let request = Request {
        env,
        reference,
        op,
        reply_to,
        job: job.clone(),
    };
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
    worker: Worker,
    replies: RefCell<OwnedEnv>,
    /// Requests running on this thread, innermost last (more than one when
    /// a callback wait serves nested requests).
    running: RefCell<Vec<Running>>,
}

struct Running {
    caller: LocalPid,
    job: Arc<JobState>,
}

thread_local! {
    /// Set on the runtime thread only, for its whole life.
    static SERVER: OnceCell<&'static Server> = const { OnceCell::new() };
}

/// The server, when called on the runtime thread.
pub fn current_server() -> Option<&'static Server> {
    SERVER.with(|cell| cell.get().copied())
}

/// The Elixir process whose request is running on this thread, if any.
pub fn current_caller() -> Option<LocalPid> {
    current_server().and_then(|server| server.running.borrow().last().map(|r| r.caller))
}

fn serve(receiver: Receiver<Request>, shared: Arc<WorkerShared>, queued: Arc<AtomicUsize>) {
    // SAFETY: PyThread_get_thread_ident has no preconditions (no GIL needed).
    let thread_id = unsafe { pyo3::ffi::PyThread_get_thread_ident() };
    shared.thread_id.store(thread_id as u64, Ordering::Release);
    // Leaked on purpose: worker threads live as long as the VM.
    let server: &'static Server = Box::leak(Box::new(Server {
        receiver,
        shared,
        queued,
        worker: Worker::new(),
        replies: RefCell::new(OwnedEnv::new()),
        running: RefCell::new(Vec::new()),
    }));
    SERVER.with(|cell| {
        let _ = cell.set(server);
    });
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

impl Server {
    /// The request queue, for code that waits on this thread.
    pub fn receiver(&self) -> &Receiver<Request> {
        &self.receiver
    }

    /// Drops an asynchronous exception pending on this thread, if one was
    /// set. Called with the GIL held, so the interrupter cannot interleave.
    fn clear_stale_interrupt(&self) {
        if self.shared.interrupt_sent.swap(false, Ordering::AcqRel) {
            let thread_id = self.shared.thread_id.load(Ordering::Acquire);
            // SAFETY: the GIL is held; a NULL exception clears this thread's
            // pending asynchronous exception.
            unsafe {
                pyo3::ffi::PyThreadState_SetAsyncExc(thread_id as _, std::ptr::null_mut());
            }
        }
    }

    /// Id of the innermost running job.
    pub fn innermost_job(&self) -> Option<u64> {
        self.running.borrow().last().map(|r| r.job.id)
    }

    /// Whether the innermost running job has been cancelled.
    pub fn innermost_cancelled(&self) -> bool {
        self.running
            .borrow()
            .last()
            .is_some_and(|r| r.job.is_cancelled())
    }

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
        self.clear_stale_interrupt();
        self.running.borrow_mut().push(Running {
            caller: request.reply_to,
            job: request.job.clone(),
        });
        self.shared
            .current_job
            .store(request.job.id, Ordering::Release);
        self.shared.running.fetch_add(1, Ordering::AcqRel);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            request
                .env
                .run(|env| self.worker.execute(py, request.op.load(env)))
        }))
        .unwrap_or_else(|panic| Err(Failure::Internal(panic_text(&panic))));
        let outer = {
            let mut running = self.running.borrow_mut();
            running.pop();
            running.last().map_or(0, |r| r.job.id)
        };
        self.shared.current_job.store(outer, Ordering::Release);
        self.shared.running.fetch_sub(1, Ordering::AcqRel);
        // Only the innermost job is ever targeted, so an exception still
        // pending now was meant for the job that just ended. Cleared here, it
        // cannot fire in the job this one ran nested in (a callback wait).
        self.clear_stale_interrupt();
        if request.job.is_cancelled() {
            return;
        }
        // An awaitable result goes to the asyncio loop; the reply comes later.
        if let Ok(Outcome::Value(value) | Outcome::ValueThenFree(value, _)) = &outcome {
            if deferred::is_awaitable(value) {
                let value = value.clone();
                drop(outcome);
                deferred::schedule(py, &value, request);
                return;
            }
        }
        // The shared reply env is never held across Python code, so it is
        // free here even for a nested request; fall back to a fresh one anyway.
        match self.replies.try_borrow_mut() {
            Ok(mut replies) => reply(py, &mut replies, &request, &outcome),
            Err(_) => reply(py, &mut OwnedEnv::new(), &request, &outcome),
        }
    }
}

/// Sends the outcome of `request` to its caller (unless it gave up).
pub fn reply(
    py: Python<'_>,
    replies: &mut OwnedEnv,
    request: &Request,
    outcome: &Result<Outcome<'_>, Failure>,
) {
    // Building the reply converts Python values; guard it like the work.
    let sent = catch_unwind(AssertUnwindSafe(|| {
        send_reply(replies, request, |env| result_term(env, py, outcome))
    }));
    if sent.is_err() {
        replies.clear();
        let failure = Failure::Internal("panic while encoding the reply".into());
        let _ = catch_unwind(AssertUnwindSafe(|| {
            send_reply(replies, request, |env| {
                (atoms::error(), reason_term(env, py, &failure)).encode(env)
            })
        }));
    }
}

fn result_term<'a>(
    env: Env<'a>,
    py: Python<'_>,
    outcome: &Result<Outcome<'_>, Failure>,
) -> Term<'a> {
    match outcome {
        Ok(Outcome::Pong) => atoms::pong().encode(env),
        Ok(Outcome::Value(value)) | Ok(Outcome::ValueThenFree(value, _)) => {
            match crate::convert::to_term(env, value) {
                Ok(term) => (atoms::ok(), term).encode(env),
                Err(err) => (atoms::error(), reason_term(env, py, &Failure::from(err))).encode(env),
            }
        }
        Ok(Outcome::Handle(value)) => (atoms::ok(), crate::handles::encode(env, value)).encode(env),
        Ok(Outcome::Ok) => atoms::ok().encode(env),
        Err(failure) => (atoms::error(), reason_term(env, py, failure)).encode(env),
    }
}

/// Builds `{reference, result}` in `replies` and sends it, but only if the
/// job can still be committed to done. Clears `replies` afterwards.
fn send_reply(
    replies: &mut OwnedEnv,
    request: &Request,
    build: impl for<'a> FnOnce(Env<'a>) -> Term<'a>,
) {
    replies.run(|env| {
        let reference = request
            .env
            .run(|request_env| request.reference.load(request_env).in_env(env));
        let message = (reference, build(env)).encode(env);
        // Commit to replying only now that the message exists: from here on
        // the caller's cancel() answers :done and waits for this message.
        if request.job.finish() {
            send_owned(env, &request.reply_to, message);
        }
    });
    replies.clear();
}

pub fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        format!("panic: {text}")
    } else if let Some(text) = panic.downcast_ref::<String>() {
        format!("panic: {text}")
    } else {
        "panic with a non-string payload".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_is_sent_only_when_not_cancelled() {
        let job = JobState::default();
        assert!(job.start());
        assert_eq!(job.cancel(), CancelOutcome::Cancelled { was_running: true });
        assert!(!job.finish(), "a cancelled job must not reply");

        let job = JobState::default();
        assert!(job.start());
        assert!(job.finish());
        assert_eq!(
            job.cancel(),
            CancelOutcome::Done,
            "caller must then receive"
        );
    }

    #[test]
    fn cancelled_before_start_is_skipped() {
        let job = JobState::default();
        assert_eq!(
            job.cancel(),
            CancelOutcome::Cancelled { was_running: false }
        );
        assert!(!job.start());
        assert_eq!(
            job.cancel(),
            CancelOutcome::Cancelled { was_running: false }
        );
        assert_ne!(JobState::default().id, JobState::default().id);
    }
}
