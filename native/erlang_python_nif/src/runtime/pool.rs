//! The pool: starting the interpreter and its worker threads, choosing a
//! worker for each request, the queue limit, and interrupting by scope.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use rustler::{LocalPid, NifMap, Term};

use super::worker_thread::{self, WorkerLoad};
use crate::callbacks;
use crate::convert;
use crate::interpreter;
use crate::interrupt;
use crate::job::{JobState, Request};
use crate::ops::Submission;
use crate::panics;

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
    workers: Vec<(Sender<Request>, Arc<WorkerLoad>)>,
    /// Requests waiting on all workers together (the queue limit's count).
    queued: Arc<AtomicUsize>,
    max_queue: AtomicUsize,
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
    let queued = Arc::new(AtomicUsize::new(0));
    let mut links = Vec::new();
    let mut receivers = Vec::new();
    for index in 0..options.workers.clamp(1, 64) {
        let (sender, receiver) = crossbeam_channel::unbounded::<Request>();
        let load = Arc::new(WorkerLoad::new(index));
        links.push((sender, load.clone()));
        receivers.push((receiver, load));
    }
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
    let mut receivers = receivers.into_iter();
    let (main_receiver, main_load) = receivers.next().expect("at least one worker");
    let main_queued = queued.clone();
    let (priv_dir, paths) = (options.priv_dir, options.paths);
    std::thread::Builder::new()
        .name("erlang_python".into())
        .stack_size(THREAD_STACK)
        .spawn(move || {
            let started =
                panics::catch(|| interpreter::initialize(&priv_dir, &paths)).unwrap_or_else(Err);
            let ok = started.is_ok();
            let _ = ready_tx.send(started);
            if ok {
                worker_thread::run(main_receiver, main_load, main_queued);
            }
        })
        .map_err(|e| format!("could not spawn the Python thread: {e}"))?;
    ready_rx
        .recv()
        .map_err(|_| "the Python thread exited during start".to_string())??;
    // The other workers attach to the running interpreter.
    for (receiver, load) in receivers {
        let total = queued.clone();
        std::thread::Builder::new()
            .name(format!("erlang_python_{}", load.index))
            .stack_size(THREAD_STACK)
            .spawn(move || worker_thread::run(receiver, load, total))
            .map_err(|e| format!("could not spawn a Python worker thread: {e}"))?;
    }
    interrupt::start(
        links
            .iter()
            .map(|(_, load)| load.interruptible.clone())
            .collect(),
    )?;
    let _ = POOL.set(Pool {
        workers: links,
        queued,
        max_queue: AtomicUsize::new(options.max_queue.max(1)),
    });
    Ok(true)
}

pub(crate) fn is_started() -> bool {
    POOL.get().is_some()
}

/// How many worker threads serve requests.
pub(crate) fn worker_count() -> usize {
    POOL.get().map_or(0, |pool| pool.workers.len())
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
        .map_or(0, |pool| pool.queued.load(Ordering::Relaxed))
}

/// Queues `op` for a worker; the reply `{reference, result}` goes to
/// `reply_to`. Called on a scheduler thread: it only decodes the request's
/// shape, copies its terms and sends. A scoped request goes to its scope's
/// worker ([`scope_worker`]), a request in a context to the context's (see
/// `Op::pinning`), any other to the least loaded one.
pub(crate) fn submit(
    reference: Term<'_>,
    op: Term<'_>,
    reply_to: LocalPid,
) -> Result<Arc<JobState>, SubmitError> {
    let pool = POOL.get().ok_or(SubmitError::NotStarted)?;
    let submission = Submission::from_term(op).ok_or(SubmitError::Malformed)?;
    let index = match (submission.scope, submission.op.pinning()) {
        (Some(scope), _) => scope_worker(scope, pool.workers.len()),
        (None, Some(hint)) => hint % pool.workers.len(),
        (None, None) => pool
            .workers
            .iter()
            .min_by_key(|(_, load)| load.load())
            .map_or(0, |(_, load)| load.index),
    };
    let (sender, load) = &pool.workers[index];
    if pool.queued.fetch_add(1, Ordering::AcqRel) >= pool.max_queue.load(Ordering::Relaxed) {
        pool.queued.fetch_sub(1, Ordering::AcqRel);
        return Err(SubmitError::Overloaded);
    }
    let job = Arc::new(JobState::for_worker(index, submission.scope.unwrap_or(0)));
    load.queued.fetch_add(1, Ordering::AcqRel);
    // The worker is given the op alone: the scope stays with the job.
    let request = Request::new(reference, submission.term, reply_to, job.clone());
    match sender.try_send(request) {
        Ok(()) => Ok(job),
        Err(error) => {
            pool.queued.fetch_sub(1, Ordering::AcqRel);
            load.queued.fetch_sub(1, Ordering::AcqRel);
            Err(match error {
                TrySendError::Full(_) => SubmitError::Overloaded,
                TrySendError::Disconnected(_) => SubmitError::NotStarted,
            })
        }
    }
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
    let Some(pool) = POOL.get() else {
        return false;
    };
    let index = scope_worker(scope, pool.workers.len());
    pool.workers[index].1.interruptible.runs_scope(scope) && interrupt::request_scope(index, scope)
}
