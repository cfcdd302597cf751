//! Interrupting Python code that runs too long or whose caller is gone.
//!
//! A pending call (`Py_AddPendingCall`) runs on CPython's main thread, our
//! runtime thread, at its next eval-loop check. The callback raises
//! `erlang.Interrupted`, a `BaseException`, so `except Exception:` does not
//! swallow it, but only if the job it was meant for is the innermost one
//! running: a late interrupt never hits the next request.
//!
//! CPython 3.11 decides whether the main thread should look at pending calls
//! in the thread that *adds* the call, where the answer is "no" unless it is
//! the main thread. So the call is added by a small interrupter thread that
//! then takes the GIL for an instant: the main thread is asked to drop the
//! GIL, and when it takes it back it re-evaluates its flags and runs the
//! pending call. NIFs only send a job id to that thread, never block, and
//! never touch the Python API on a scheduler.
//!
//! Python code blocked inside a C call (`time.sleep`, a socket read) sees the
//! interrupt when that call returns. A job suspended while it waits for an
//! Elixir callback is stopped by the wait loop, which checks its job's state.

use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

use crossbeam_channel::Sender;
use pyo3::ffi;
use pyo3::prelude::*;

use crate::python_module::Interrupted;
use crate::runtime;

/// Interrupt whatever job runs innermost, whichever it is.
pub const ANY_JOB: u64 = 0;

static INTERRUPTER: OnceLock<Sender<u64>> = OnceLock::new();

/// Starts the interrupter thread; called once the interpreter is running.
pub fn start() -> Result<(), String> {
    if INTERRUPTER.get().is_some() {
        return Ok(());
    }
    let (sender, receiver) = crossbeam_channel::unbounded::<u64>();
    std::thread::Builder::new()
        .name("erlang_python_interrupter".into())
        .spawn(move || {
            while let Ok(job_id) = receiver.recv() {
                // SAFETY: Py_AddPendingCall may be called from any thread,
                // with or without the GIL. The argument is a plain integer
                // carried in the pointer, never dereferenced.
                unsafe {
                    ffi::Py_AddPendingCall(Some(interrupt_now), job_id as usize as *mut c_void);
                }
                // Take the GIL for an instant so the main thread re-evaluates
                // its eval-breaker and sees the pending call (see above);
                // meanwhile cancel the asyncio task if the job is one.
                Python::attach(|py| {
                    if job_id != ANY_JOB {
                        let _ = py
                            .import("_erlang_impl._async")
                            .and_then(|module| module.call_method1("cancel_job", (job_id,)));
                    }
                });
            }
        })
        .map_err(|e| format!("could not spawn the interrupter thread: {e}"))?;
    let _ = INTERRUPTER.set(sender);
    Ok(())
}

/// Asks for job `job_id` (or [`ANY_JOB`]) to be interrupted. Never blocks;
/// false if the interpreter is not running.
pub fn request(job_id: u64) -> bool {
    INTERRUPTER
        .get()
        .is_some_and(|sender| sender.send(job_id).is_ok())
}

extern "C" fn interrupt_now(argument: *mut c_void) -> c_int {
    let job_id = argument as usize as u64;
    let Some(server) = runtime::current_server() else {
        return 0;
    };
    let Some(running) = server.innermost_job() else {
        return 0;
    };
    if job_id != ANY_JOB && job_id != running {
        return 0;
    }
    // SAFETY: pending calls run on the main thread with the GIL held.
    let py = unsafe { Python::assume_attached() };
    PyErr::new::<Interrupted, _>(
        "the call was interrupted: its caller timed out, was cancelled or exited",
    )
    .restore(py);
    -1
}
