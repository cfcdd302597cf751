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
//!
//! An own-GIL context's thread runs in an interpreter of its own, whose GIL
//! and thread list the main interpreter's do not cover: it registers its
//! slot under an index from [`SUB_INTERPRETER_BASE`] on
//! ([`register_sub_interpreter`]), and the interrupter enters *that*
//! interpreter (a thread state of its own there, for the moment of the
//! interrupt) and raises that interpreter's own `erlang.Interrupted`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crossbeam_channel::Sender;
use pyo3::ffi;
use pyo3::prelude::*;

use crate::pytypes::interrupted_type;
use crate::sandbox;

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
    /// Called twice per request: a plain load first, so the common case
    /// (nothing sent) takes no locked instruction.
    pub(crate) fn clear_stale(&self, _py: Python<'_>) {
        if self.interrupt_sent.load(Ordering::Acquire)
            && self.interrupt_sent.swap(false, Ordering::AcqRel)
        {
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
            ffi::PyThreadState_SetAsyncExc(thread_id as _, interrupted_type(py).as_ptr());
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
            // It attaches to the interpreter, so it is one of Python's
            // threads too (and Python code could wake on it).
            sandbox::confine_current_thread_or_warn();
            while let Ok((worker, target)) = receiver.recv() {
                if worker >= SUB_INTERPRETER_BASE {
                    interrupt_sub_interpreter(worker, target);
                } else {
                    Python::attach(|py| interrupt(py, &workers, worker, target));
                    // "Whatever runs" covers the own-GIL contexts' threads
                    // too: their interpreters are entered one by one, with
                    // the main interpreter's GIL released.
                    if let Target::Job(ANY_JOB) = target {
                        for index in sub_interpreter_indexes() {
                            interrupt_sub_interpreter(index, target);
                        }
                    }
                }
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

/// Worker indexes from here on are own-GIL contexts' threads, each in an
/// interpreter of its own.
pub(crate) const SUB_INTERPRETER_BASE: usize = 1 << 32;

/// An own-GIL context's thread, as the interrupter knows it.
struct SubInterpreterSlot {
    interruptible: Arc<Interruptible>,
    /// Its `PyInterpreterState`; valid while `alive` holds.
    interpreter: usize,
    /// Cleared (with the interpreter's GIL released) before it ends: the
    /// interrupter enters the interpreter only while holding this lock.
    alive: Mutex<bool>,
}

static SUB_INTERPRETERS: Mutex<Option<HashMap<usize, Arc<SubInterpreterSlot>>>> = Mutex::new(None);

/// Makes the own-GIL context thread `index` (from [`SUB_INTERPRETER_BASE`])
/// interruptible. Called on that thread, with its interpreter's GIL held.
pub(crate) fn register_sub_interpreter(
    _py: Python<'_>,
    index: usize,
    interruptible: Arc<Interruptible>,
) {
    // SAFETY: the thread is attached (`py`), so there is a current interpreter.
    let interpreter = unsafe { ffi::PyInterpreterState_Get() } as usize;
    let slot = Arc::new(SubInterpreterSlot {
        interruptible,
        interpreter,
        alive: Mutex::new(true),
    });
    SUB_INTERPRETERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(index, slot);
}

/// Thread `index`'s interpreter is about to end: no interrupt enters it
/// from now on. Call with that interpreter's GIL *released* (an interrupt in
/// progress holds the slot's lock while it waits for that GIL).
pub(crate) fn unregister_sub_interpreter(index: usize) {
    let slot = SUB_INTERPRETERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()
        .and_then(|slots| slots.remove(&index));
    if let Some(slot) = slot {
        *slot.alive.lock().unwrap_or_else(|p| p.into_inner()) = false;
    }
}

/// The own-GIL contexts' threads registered now.
fn sub_interpreter_indexes() -> Vec<usize> {
    SUB_INTERPRETERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|slots| slots.keys().copied().collect())
        .unwrap_or_default()
}

fn interrupt_sub_interpreter(index: usize, target: Target) {
    let slot = SUB_INTERPRETERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(|slots| slots.get(&index).cloned());
    let Some(slot) = slot else { return };
    let alive = slot.alive.lock().unwrap_or_else(|p| p.into_inner());
    if !*alive {
        return;
    }
    // SAFETY: the interpreter is alive and stays so while `alive` is held
    // (its thread clears the flag under this lock before ending it). This
    // thread is attached to no interpreter here (the main one's GIL is only
    // taken inside Python::attach, elsewhere in the loop), so it may make a
    // thread state in the target interpreter and take that interpreter's
    // GIL with it; the busy worker lets go at its next eval-loop check. The
    // thread state is cleared and deleted, GIL released, before returning.
    unsafe {
        let thread_state = ffi::PyThreadState_New(slot.interpreter as *mut ffi::PyInterpreterState);
        if thread_state.is_null() {
            return;
        }
        ffi::PyEval_RestoreThread(thread_state);
        slot.interruptible
            .interrupt(Python::assume_attached(), target);
        ffi::PyThreadState_Clear(thread_state);
        ffi::PyThreadState_DeleteCurrent();
    }
    drop(alive);
}
