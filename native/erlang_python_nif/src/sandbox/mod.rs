//! The sandbox that keeps Python from forking, replacing, stopping or
//! hijacking the signals of the BEAM process.
//!
//! Three layers, all in place before any user code runs:
//!
//! | layer | module | what it does |
//! |-------|--------|--------------|
//! | kernel | [`seccomp`] | a seccomp-BPF filter on every thread that runs Python: no fork, exec, process exit, signal to the VM, signal handler, rlimit or process timer, whatever the technique |
//! | audit hook | [`audit`] | refuses audited operations first, with the contract's exact messages; judges ctypes lookups, `kill` targets, second copies of guarded modules |
//! | guards | [`patches`] | C functions CPython does not audit (`_posixsubprocess.fork_exec`, `os._exit`, `signal.signal`, faulthandler, ...) are refused; `sys.setrecursionlimit` gets a ceiling and `threading.stack_size` a floor that keep C stacks safe; `os.close`/`dup2` refuse the VM's descriptors and `os.closerange` is refused |
//!
//! A refusal raises `erlang.SandboxBlocked` ([`exception`]): an `OSError`
//! (EPERM) and a `RuntimeError`, printed exactly as the contract shows, and
//! sealed so that Elixir's `{:sandbox_blocked, event, message}` cannot be
//! forged by Python code raising the same text. [`policy`] holds the names
//! and messages.

mod audit;
mod descriptors;
mod exception;
mod patches;
mod policy;
pub(crate) mod seccomp;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyType;

/// What the kernel filter knows about the VM, taken at the first
/// confinement (before the interpreter starts).
static VM: OnceLock<seccomp::Vm> = OnceLock::new();

/// Set when some thread that runs Python could not be confined.
static CONFINEMENT_FAILED: AtomicBool = AtomicBool::new(false);

/// Whether `fd` is one of the VM's own descriptors (0-2, or one it had open
/// when Python started and that still names the same file): code outside
/// the sandbox (the NIF's descriptor helpers) refuses to close these too.
pub fn belongs_to_vm(fd: i64) -> bool {
    descriptors::belongs_to_vm(fd)
}

/// The VM's `erl_child_setup`, when it has one.
pub fn child_setup() -> Option<i32> {
    VM.get().and_then(|vm| vm.child_setup)
}

/// Installs the audit hook. Must run before the interpreter initializes.
pub fn install() -> Result<(), String> {
    audit::install()
}

/// Puts the calling thread, and every thread it creates from now on, under
/// the kernel filter. Every thread that runs Python calls this before it
/// runs any; calling it again (or on a thread that inherited the filter)
/// changes nothing.
pub fn confine_current_thread() -> Result<(), String> {
    if seccomp::active_on_this_thread() {
        return Ok(());
    }
    descriptors::snapshot();
    let vm = VM.get_or_init(seccomp::Vm::current);
    let result = seccomp::install(vm).map(|_| ());
    if result.is_err() {
        CONFINEMENT_FAILED.store(true, Ordering::Release);
    }
    result.map_err(|why| format!("sandbox: cannot confine a Python thread: {why}"))
}

/// [`confine_current_thread`] for threads that start after the interpreter:
/// a failure (which the first thread's success makes unexpected) is
/// reported on stderr and makes `is_sandboxed()` False everywhere.
pub fn confine_current_thread_or_warn() {
    if let Err(why) = confine_current_thread() {
        eprintln!("erlang_python: {why}");
    }
}

/// Sets up the Python side: the exception type, the guards on unaudited
/// functions, and the default stack of threads Python starts. Runs once,
/// right after the interpreter starts, before any user code.
///
/// # Safety
/// The GIL must be held (`py`), on a confined thread.
pub unsafe fn guard_interpreter(py: Python<'_>) -> PyResult<()> {
    exception::create_type(py)?;
    // SAFETY: the GIL is held (caller's contract).
    unsafe { patches::apply() }.map_err(pyo3::exceptions::PyRuntimeError::new_err)?;
    // Through the guard: 0 ("the default") becomes STACK_FLOOR.
    py.import("_thread")?.call_method1("stack_size", (0,))?;
    Ok(())
}

/// Sets up a sub-interpreter (an own-GIL context) as [`guard_interpreter`]
/// does the main one: its own exception type (the C guards and the audit
/// hook are process-wide and already cover it), and its threads' stack.
///
/// # Safety
/// The GIL of the new interpreter must be held (`py`), on a confined thread.
pub unsafe fn guard_sub_interpreter(py: Python<'_>) -> PyResult<()> {
    exception::create_type(py)?;
    py.import("_thread")?.call_method1("stack_size", (0,))?;
    Ok(())
}

/// The calling thread's sub-interpreter is about to end: drops what the
/// sandbox keeps of it (its GIL held).
pub fn forget_sub_interpreter(py: Python<'_>) {
    exception::forget_interpreter(py);
}

/// The type of the exception refusals raise (`erlang.SandboxBlocked`).
pub fn blocked_type(py: Python<'_>) -> Option<Bound<'_, PyType>> {
    exception::blocked_type(py)
}

/// Whether the sandbox holds for the calling thread, checked live: the
/// audit hook answers a probe, the kernel filter answers for this thread,
/// every guard is still in its table, and no Python thread went unconfined.
pub fn is_sandboxed(py: Python<'_>) -> bool {
    !CONFINEMENT_FAILED.load(Ordering::Acquire)
        && audit::effective(py)
        && seccomp::active_on_this_thread()
        && patches::intact()
}

/// `(event, message)` when `err` is a refusal the sandbox raised itself
/// (never one Python code made, whatever its text).
pub fn blocked_by_sandbox(py: Python<'_>, err: &PyErr) -> Option<(String, String)> {
    exception::genuine(py, err)
}
