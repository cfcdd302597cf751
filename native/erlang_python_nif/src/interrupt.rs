//! Interrupting Python code that runs too long or whose caller is gone.
//!
//! A small interrupter thread takes the GIL (which makes a busy worker let
//! go of it at its next eval-loop check) and, if the job is still the
//! innermost one running on its worker, sets an asynchronous exception on
//! that worker's thread (`PyThreadState_SetAsyncExc`): `erlang.Interrupted`,
//! a `BaseException`, so `except Exception:` does not swallow it. Because a
//! worker changes its current job only with the GIL held, the check and the
//! setting cannot race with it; a worker clears a leftover exception before
//! its next job, so a late interrupt never hits the next request. This works
//! for every worker alike (CPython's pending calls reach only the main one).
//!
//! NIFs only send the job to that thread: they never block and never touch
//! the Python API on a scheduler. Python code blocked inside a C call
//! (`time.sleep`, a socket read) sees the interrupt when that call returns.
//! A job suspended in a callback wait is stopped by the wait loop, and a job
//! whose coroutine runs on the asyncio loop has its task cancelled.
//!
//! The workers are known here as [`Interruptible`] slots, handed over by the
//! runtime when it starts the interrupter: this module knows nothing of the
//! runtime itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam_channel::Sender;
use pyo3::ffi;
use pyo3::prelude::*;

use crate::pytypes::Interrupted;

/// Interrupt whatever runs, on every worker.
pub(crate) const ANY_JOB: u64 = 0;

/// What the interrupter knows of one worker thread.
#[derive(Default)]
pub(crate) struct Interruptible {
    /// Id of the job running innermost on this worker, 0 when idle. Changed
    /// only with the GIL held, so a GIL holder reads a stable value.
    current_job: AtomicU64,
    /// That job's scope (0: none), changed together with `current_job`.
    current_scope: AtomicU64,
    /// The worker's CPython thread id.
    thread_id: AtomicU64,
    /// An interrupt was aimed at this worker and may still be pending.
    interrupt_sent: AtomicBool,
}

impl Interruptible {
    /// Records the calling thread as this worker's; called once, as the
    /// worker thread starts.
    pub(crate) fn bind_to_current_thread(&self) {
        // SAFETY: PyThread_get_thread_ident has no preconditions (no GIL needed).
        let thread_id = unsafe { ffi::PyThread_get_thread_ident() };
        self.thread_id.store(thread_id as u64, Ordering::Release);
    }

    /// The job now running innermost (0: none) and its scope (0: none).
    /// Call with the GIL held.
    pub(crate) fn set_current_job(&self, _py: Python<'_>, job_id: u64, scope: u64) {
        self.current_job.store(job_id, Ordering::Release);
        self.current_scope.store(scope, Ordering::Release);
    }

    /// Whether a job of scope `scope` (not 0) runs innermost here now. Read
    /// without the GIL, so only a hint: the interrupter checks again.
    pub(crate) fn runs_scope(&self, scope: u64) -> bool {
        scope != 0
            && self.current_scope.load(Ordering::Acquire) == scope
            && self.current_job.load(Ordering::Acquire) != 0
    }

    /// Drops an asynchronous exception pending on this worker's thread, if
    /// one was set. The GIL is held, so the interrupter cannot interleave.
    pub(crate) fn clear_stale(&self, _py: Python<'_>) {
        if self.interrupt_sent.swap(false, Ordering::AcqRel) {
            let thread_id = self.thread_id.load(Ordering::Acquire);
            // SAFETY: the GIL is held; a NULL exception clears this thread's
            // pending asynchronous exception.
            unsafe {
                ffi::PyThreadState_SetAsyncExc(thread_id as _, std::ptr::null_mut());
            }
        }
    }

    /// Raises `erlang.Interrupted` in this worker if `target` is what runs
    /// innermost there.
    fn interrupt(&self, py: Python<'_>, target: Target) {
        let current = self.current_job.load(Ordering::Acquire);
        let aimed = match target {
            Target::Job(ANY_JOB) => true,
            Target::Job(job_id) => current == job_id,
            Target::Scope(scope) => self.current_scope.load(Ordering::Acquire) == scope,
        };
        if current == 0 || !aimed {
            return;
        }
        let thread_id = self.thread_id.load(Ordering::Acquire);
        self.interrupt_sent.store(true, Ordering::Release);
        // SAFETY: the GIL is held; the exception type is a live class object
        // (CPython takes its own reference).
        unsafe {
            ffi::PyThreadState_SetAsyncExc(thread_id as _, py.get_type::<Interrupted>().as_ptr());
        }
    }
}

/// What an interrupt request is aimed at, on its worker.
#[derive(Clone, Copy)]
enum Target {
    /// A job by id ([`ANY_JOB`]: whatever runs).
    Job(u64),
    /// Whatever job of this scope runs.
    Scope(u64),
}

/// Interrupt requests: (worker index, target).
static INTERRUPTER: OnceLock<Sender<(usize, Target)>> = OnceLock::new();

/// Starts the interrupter thread for `workers` (by index); called once the
/// interpreter is running. Later calls change nothing.
pub(crate) fn start(workers: Vec<Arc<Interruptible>>) -> Result<(), String> {
    if INTERRUPTER.get().is_some() {
        return Ok(());
    }
    let (sender, receiver) = crossbeam_channel::unbounded::<(usize, Target)>();
    std::thread::Builder::new()
        .name("erlang_python_interrupter".into())
        .spawn(move || {
            while let Ok((worker, target)) = receiver.recv() {
                Python::attach(|py| interrupt(py, &workers, worker, target));
            }
        })
        .map_err(|e| format!("could not spawn the interrupter thread: {e}"))?;
    let _ = INTERRUPTER.set(sender);
    Ok(())
}

/// Asks for job `job_id` on `worker` (or [`ANY_JOB`]) to be interrupted.
/// Never blocks; false if the interpreter is not running.
pub(crate) fn request(worker: usize, job_id: u64) -> bool {
    send(worker, Target::Job(job_id))
}

/// Asks for the job of scope `scope` running innermost on `worker` to be
/// interrupted, whichever job that is when the interrupter gets to it.
/// Never blocks; false if the interpreter is not running.
pub(crate) fn request_scope(worker: usize, scope: u64) -> bool {
    send(worker, Target::Scope(scope))
}

fn send(worker: usize, target: Target) -> bool {
    INTERRUPTER
        .get()
        .is_some_and(|sender| sender.send((worker, target)).is_ok())
}

fn interrupt(py: Python<'_>, workers: &[Arc<Interruptible>], worker: usize, target: Target) {
    if let Target::Job(ANY_JOB) = target {
        for slot in workers {
            slot.interrupt(py, target);
        }
        return;
    }
    if let Some(slot) = workers.get(worker) {
        slot.interrupt(py, target);
    }
    // A job whose coroutine runs on the asyncio loop: cancel its task.
    if let Target::Job(job_id) = target {
        let _ = py
            .import("_erlang_impl._async")
            .and_then(|module| module.call_method1("cancel_job", (job_id,)));
    }
}
