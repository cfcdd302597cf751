//! The pool: starting the interpreter and its worker threads, placing each
//! request (see [`super::dispatch`]), the queue limit, interrupting by
//! scope and the pool's figures.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustler::{LocalPid, NifMap, Term};

use super::dispatch::{Dispatch, MAX_WORKERS};
use super::worker_thread;
use crate::callbacks;
use crate::convert;
use crate::interpreter;
use crate::interrupt;
use crate::job::{JobState, Request};
use crate::ops::Submission;
use crate::own_gil;
use crate::panics;
use crate::polled_reply;
use crate::thread_priority::{self, ThreadPriority};

/// `ErlangPython.Runtime`'s start options. Every field is required: the
/// defaults live on the Elixir side only.
#[derive(NifMap)]
pub(crate) struct StartOptions {
    /// Absolute path of the package's `priv/` directory (holds `_erlang_impl`).
    priv_dir: String,
    /// Extra directories appended to `sys.path`.
    paths: Vec<String>,
    /// Requests that may wait before `submit` answers `:overloaded`.
    max_queue: usize,
    /// How long Python waits for a registered Elixir function, in ms.
    callback_timeout: u64,
    /// Worker threads (at most 64).
    workers: usize,
    /// The running Elixir's `%MapSet{}` `version` field, `nil` when it has
    /// none (Elixir 1.18 and later): sets from Python are built in its shape.
    mapset_version: Option<i64>,
    /// The running OTP's full version (`"27.3.4"`): decides how large maps
    /// are built (see `convert::set_otp_version`).
    otp_version: String,
    /// How every worker thread is scheduled (see `thread_priority`).
    thread_priority: ThreadPriority,
}

/// Why `submit` refused a request.
#[derive(Debug)]
pub(crate) enum SubmitError {
    NotStarted,
    Overloaded,
    /// Not a request `ops::Submission` describes.
    Malformed,
}

struct Pool {
    dispatch: &'static Dispatch,
    max_queue: AtomicUsize,
}

/// The pool's figures, for `ErlangPython.pool_stats/0`.
#[derive(NifMap)]
pub(crate) struct PoolStats {
    /// Requests not bound to a worker, waiting for any free one.
    shared_queue: usize,
    workers: Vec<WorkerStats>,
}

/// One worker's figures.
#[derive(NifMap)]
pub(crate) struct WorkerStats {
    /// Position in the pool (a context's requests always go to the same).
    index: usize,
    /// Requests bound to this worker, waiting for it.
    queued: usize,
    /// Whether it is running a request now.
    busy: bool,
    /// Microseconds spent running requests since start, the current one
    /// included.
    busy_us: u64,
    /// Requests it has run to the end.
    completed: u64,
    /// Waits for a request that ended with one arriving while it spun.
    caught_spinning: u64,
    /// Waits in which it spun, then parked and was woken.
    parked_after_spin: u64,
    /// Waits in which it parked at once: requests had been coming too
    /// slowly for spinning to pay.
    parked_slow_arrivals: u64,
    /// Waits in which no core was free, but it spun briefly, as requests
    /// had been coming within microseconds, and one came.
    caught_brief_spin: u64,
    /// Waits in which it parked as no core was free to spin on (at once, or
    /// after a brief spin that nothing came in).
    parked_no_free_core: u64,
    /// Of the waits that spun, those that spun as a probe although
    /// requests had come slowly.
    probes: u64,
    /// Of those probes, the ones a request arrived in.
    probes_caught: u64,
}

static POOL: OnceLock<Pool> = OnceLock::new();
static START_LOCK: Mutex<()> = Mutex::new(());

/// Stack of a worker thread: conversion of deeply nested values recurses.
const THREAD_STACK: usize = 256 * 1024 * 1024;

/// Starts the interpreter on worker 0 (Python's main thread) and the other
/// workers, then the interrupter. Idempotent: a second call returns
/// `Ok(false)` and changes nothing (the interpreter is one per process).
pub(crate) fn start(options: StartOptions) -> Result<bool, String> {
    let _guard = START_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if POOL.get().is_some() {
        return Ok(false);
    }
    callbacks::set_timeout(Duration::from_millis(options.callback_timeout.max(1)));
    convert::set_mapset_version(options.mapset_version);
    convert::set_otp_version(&options.otp_version);
    // Leaked on purpose: the workers live as long as the VM.
    let dispatch: &'static Dispatch =
        Box::leak(Box::new(Dispatch::new(options.workers.min(MAX_WORKERS))));
    crate::serving::register_helper(&super::helping::PoolHelper);
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
    let (priv_dir, paths) = (options.priv_dir, options.paths);
    let priority = options.thread_priority;
    std::thread::Builder::new()
        .name("erlang_python".into())
        .stack_size(THREAD_STACK)
        .spawn(move || {
            // Before the interpreter starts: threads Python starts from
            // here inherit the priority.
            let started = thread_priority::apply_to_current_thread(priority).and_then(|()| {
                panics::catch(|| interpreter::initialize(&priv_dir, &paths)).unwrap_or_else(Err)
            });
            let ok = started.is_ok();
            let _ = ready_tx.send(started);
            if ok {
                worker_thread::run(dispatch, 0);
            }
        })
        .map_err(|e| format!("could not spawn the Python thread: {e}"))?;
    ready_rx
        .recv()
        .map_err(|_| "the Python thread exited during start".to_string())??;
    // The other workers attach to the running interpreter, each setting
    // its priority first. Lowering a priority needs no privilege, so a
    // refusal is a kernel's oddity: the worker says so and serves anyway,
    // since the interpreter is running and contexts are bound to it.
    for index in 1..dispatch.slots().len() {
        std::thread::Builder::new()
            .name(format!("erlang_python_{index}"))
            .stack_size(THREAD_STACK)
            .spawn(move || {
                if let Err(why) = thread_priority::apply_to_current_thread(priority) {
                    eprintln!("erlang_python: worker {index} keeps its priority: {why}");
                }
                worker_thread::run(dispatch, index)
            })
            .map_err(|e| format!("could not spawn a Python worker thread: {e}"))?;
    }
    interrupt::start(
        dispatch
            .slots()
            .iter()
            .map(|slot| slot.interruptible.clone())
            .collect(),
    )?;
    let _ = POOL.set(Pool {
        dispatch,
        max_queue: AtomicUsize::new(options.max_queue.max(1)),
    });
    Ok(true)
}

pub(crate) fn is_started() -> bool {
    POOL.get().is_some()
}

/// How many worker threads serve requests.
pub(crate) fn worker_count() -> usize {
    POOL.get().map_or(0, |pool| pool.dispatch.slots().len())
}

/// Changes the queue limit; false if the runtime is not started.
pub(crate) fn set_max_queue(limit: usize) -> bool {
    match POOL.get() {
        Some(pool) => {
            pool.max_queue.store(limit.max(1), Ordering::Relaxed);
            true
        }
        None => false,
    }
}

/// Requests waiting in the queue right now.
pub(crate) fn queue_length() -> usize {
    POOL.get()
        .map_or(0, |pool| pool.dispatch.queued.load(Ordering::Relaxed))
}

/// Queue lengths and busy time of every worker; `None` before start.
pub(crate) fn stats() -> Option<PoolStats> {
    let dispatch = POOL.get()?.dispatch;
    Some(PoolStats {
        shared_queue: dispatch.shared_queued(),
        workers: (0..dispatch.slots().len())
            .map(|index| {
                let stats = dispatch.stats(index);
                WorkerStats {
                    index,
                    queued: stats.queued,
                    busy: stats.busy,
                    busy_us: stats.busy_us,
                    completed: stats.completed,
                    caught_spinning: stats.caught_spinning,
                    parked_after_spin: stats.parked_after_spin,
                    parked_slow_arrivals: stats.parked_slow_arrivals,
                    caught_brief_spin: stats.caught_brief_spin,
                    parked_no_free_core: stats.parked_no_free_core,
                    probes: stats.probes,
                    probes_caught: stats.probes_caught,
                }
            })
            .collect(),
    })
}

/// Queues `op`; the reply `{reference, result}` goes to `reply_to`.
/// Called on a scheduler thread: it only decodes the request's shape,
/// copies its terms and queues them. A scoped request is bound to its
/// scope's worker ([`scope_worker`]), a request in a context to the
/// context's (see `Op::pinning`); any other goes to whichever worker is
/// free first. `cells` says how large `op` is (term cells, from
/// `inline_cells`): a small request's reply is built in its own
/// environment (see `Request::new`). `polled`: the caller polls for the
/// reply, which is then left in the job (`polled_reply`).
pub(crate) fn submit(
    reference: Term<'_>,
    op: Term<'_>,
    reply_to: LocalPid,
    cells: usize,
    polled: bool,
) -> Result<Arc<JobState>, SubmitError> {
    let pool = POOL.get().ok_or(SubmitError::NotStarted)?;
    let dispatch = pool.dispatch;
    let workers = dispatch.slots().len();
    let submission = Submission::from_term(op).ok_or(SubmitError::Malformed)?;
    // An own-GIL context's requests go to its own thread and interpreter.
    if let Some(scope) = submission.scope.filter(|scope| own_gil::is_own_gil(*scope)) {
        let job = Arc::new(JobState::new(scope));
        if polled {
            polled_reply::expect_poll(&job);
        }
        let request = Request::new(reference, submission.term, reply_to, job.clone(), cells);
        // Bounded like the shared queue, per context: its thread alone
        // drains it.
        let limit = pool.max_queue.load(Ordering::Relaxed);
        return match own_gil::route(scope, request, limit) {
            Ok(()) => Ok(job),
            Err(own_gil::Refused::Full) => Err(SubmitError::Overloaded),
            Err(own_gil::Refused::Gone) => Err(SubmitError::NotStarted),
        };
    }
    let bound = match (submission.scope, submission.op.pinning()) {
        (Some(scope), _) => Some(scope_worker(scope, workers)),
        (None, Some(hint)) => Some(hint % workers),
        (None, None) => None,
    };
    if dispatch.queued.fetch_add(1, Ordering::AcqRel) >= pool.max_queue.load(Ordering::Relaxed) {
        dispatch.queued.fetch_sub(1, Ordering::AcqRel);
        return Err(SubmitError::Overloaded);
    }
    let job = Arc::new(JobState::new(submission.scope.unwrap_or(0)));
    if polled {
        polled_reply::expect_poll(&job);
    }
    // The worker is given the op alone: the scope stays with the job.
    let request = Request::new(reference, submission.term, reply_to, job.clone(), cells);
    // A callback's own request, awaited by the Python thread that made the
    // callback: that thread runs it (callbacks::divert).
    let Some(request) = callbacks::divert(request) else {
        dispatch.queued.fetch_sub(1, Ordering::AcqRel);
        return Ok(job);
    };
    dispatch.push(request, bound);
    Ok(job)
}

/// The worker a scope's requests run on: every request of one scope on the
/// same thread, and consecutive scopes (keys increase) spread round-robin.
fn scope_worker(scope: u64, workers: usize) -> usize {
    (scope % workers.max(1) as u64) as usize
}

/// Interrupts the job of scope `scope` running innermost on its worker, as
/// a timeout would: its caller gets an `erlang.Interrupted` error. False
/// when that scope runs nothing (or the runtime is not started).
pub(crate) fn interrupt_scope(scope: u64) -> bool {
    if let Some(interrupted) = own_gil::interrupt_scope(scope) {
        return interrupted;
    }
    let Some(pool) = POOL.get() else {
        return false;
    };
    let slots = pool.dispatch.slots();
    let index = scope_worker(scope, slots.len());
    slots[index].interruptible.runs_scope(scope) && interrupt::request_scope(index, scope)
}
