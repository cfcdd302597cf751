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

use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use crossbeam_channel::Sender;
use pyo3::ffi;
use pyo3::prelude::*;

use crate::pytypes::Interrupted;
use crate::runtime;

/// Interrupt whatever runs, on every worker.
pub const ANY_JOB: u64 = 0;

static INTERRUPTER: OnceLock<Sender<(usize, u64)>> = OnceLock::new();

/// Starts the interrupter thread; called once the interpreter is running.
pub fn start() -> Result<(), String> {
    if INTERRUPTER.get().is_some() {
        return Ok(());
    }
    let (sender, receiver) = crossbeam_channel::unbounded::<(usize, u64)>();
    std::thread::Builder::new()
        .name("erlang_python_interrupter".into())
        .spawn(move || {
            while let Ok((worker, job_id)) = receiver.recv() {
                Python::attach(|py| interrupt(py, worker, job_id));
            }
        })
        .map_err(|e| format!("could not spawn the interrupter thread: {e}"))?;
    let _ = INTERRUPTER.set(sender);
    Ok(())
}

/// Asks for job `job_id` on `worker` (or [`ANY_JOB`]) to be interrupted.
/// Never blocks; false if the interpreter is not running.
pub fn request(worker: usize, job_id: u64) -> bool {
    INTERRUPTER
        .get()
        .is_some_and(|sender| sender.send((worker, job_id)).is_ok())
}

fn interrupt(py: Python<'_>, worker: usize, job_id: u64) {
    let targets: Vec<usize> = if job_id == ANY_JOB {
        (0..runtime::worker_count()).collect()
    } else {
        vec![worker]
    };
    for index in targets {
        let Some(shared) = runtime::worker(index) else {
            continue;
        };
        let current = shared.current_job.load(Ordering::Acquire);
        if current == 0 || (job_id != ANY_JOB && current != job_id) {
            continue;
        }
        let thread_id = shared.thread_id.load(Ordering::Acquire);
        shared.interrupt_sent.store(true, Ordering::Release);
        // SAFETY: the GIL is held; the exception type is a live class object
        // (CPython takes its own reference).
        unsafe {
            ffi::PyThreadState_SetAsyncExc(thread_id as _, py.get_type::<Interrupted>().as_ptr());
        }
    }
    if job_id != ANY_JOB {
        // A job whose coroutine runs on the asyncio loop: cancel its task.
        let _ = py
            .import("_erlang_impl._async")
            .and_then(|module| module.call_method1("cancel_job", (job_id,)));
    }
}
