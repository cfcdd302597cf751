//! The exception a refused operation raises, and how Elixir knows it is real.
//!
//! `erlang.SandboxBlocked` subclasses both `PermissionError` (an `OSError`
//! with errno EPERM, so library code that falls back on `except OSError:`,
//! like `ctypes.util` and `platform`, keeps working) and `RuntimeError` (so
//! `except RuntimeError:` catches it, as the contract shows). It prints as
//! the contract does, `RuntimeError: os.fork is blocked in Erlang VM
//! context.` ..., and carries the event in `.event`.
//!
//! Only the sandbox can raise one that counts: every genuine instance holds
//! a seal, an object Python cannot create, bound to that very instance by a
//! weak reference. Elixir tags an error `{:sandbox_blocked, ...}` only when
//! the seal checks out, and takes event and message from the seal, not from
//! the exception's (mutable) text. An exception Python code makes itself,
//! with any text, or a copy of a genuine one, is an ordinary error.
//!
//! Own-GIL contexts run on sub-interpreters, where neither the main
//! interpreter's class nor the `Seal` class (PyO3's, made in the main
//! interpreter) may be used: each sub-interpreter gets its own class
//! ([`create_type`] run there), and its seals are kept on this side instead,
//! as weak references to the genuine instances ([`SubInterpreter`]), which
//! Python code cannot reach at all.

use std::sync::{Mutex, OnceLock};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType, PyWeakrefMethods, PyWeakrefReference};

use super::policy::{block_message, Kind};

/// Proof that the sandbox raised the exception it is attached to.
#[pyclass(module = "erlang", name = "_SandboxSeal", frozen)]
pub struct Seal {
    owner: Py<PyWeakrefReference>,
    event: String,
    kind: Kind,
}

static BLOCKED_TYPE: OnceLock<Py<PyType>> = OnceLock::new();

/// A sub-interpreter's class and seals: its objects, touched only with its GIL.
struct SubInterpreter {
    blocked: Py<PyType>,
    /// Genuine instances (weakly) with their event, pruned as they die.
    seals: Vec<(Py<PyWeakrefReference>, String, Kind)>,
}

static SUB_INTERPRETERS: Mutex<Vec<(i64, SubInterpreter)>> = Mutex::new(Vec::new());

fn interpreter_id() -> i64 {
    // SAFETY: called with a Python token (the thread is attached), so there
    // is a current interpreter.
    unsafe { ffi::PyInterpreterState_GetID(ffi::PyInterpreterState_Get()) }
}

fn with_sub<R>(id: i64, f: impl FnOnce(&mut SubInterpreter) -> R) -> Option<R> {
    let mut subs = SUB_INTERPRETERS.lock().unwrap_or_else(|p| p.into_inner());
    subs.iter_mut()
        .find(|(key, _)| *key == id)
        .map(|(_, sub)| f(sub))
}

/// The calling thread's sub-interpreter ends: drops its class and seals
/// (with its GIL held, the caller's contract).
pub fn forget_interpreter(_py: Python<'_>) {
    let id = interpreter_id();
    let removed = {
        let mut subs = SUB_INTERPRETERS.lock().unwrap_or_else(|p| p.into_inner());
        let at = subs.iter().position(|(key, _)| *key == id);
        at.map(|at| subs.swap_remove(at))
    };
    drop(removed);
}

const SEAL_ATTRIBUTE: &str = "_sandbox_seal";

const DEFINITION: &std::ffi::CStr = cr#"
class SandboxBlocked(PermissionError, RuntimeError):
    """An operation refused by the erlang_python sandbox.

    Raised only by the sandbox. It is an OSError (errno EPERM) and a
    RuntimeError; ``event`` names the refused operation and ``str()`` is
    the sandbox's message.
    """

    def __str__(self):
        return self.strerror if isinstance(self.strerror, str) else super().__str__()

    def __repr__(self):
        return "RuntimeError(%r)" % (str(self),)


# Tracebacks print "RuntimeError: <message>", exactly as the contract shows.
SandboxBlocked.__name__ = SandboxBlocked.__qualname__ = "RuntimeError"
SandboxBlocked.__module__ = "builtins"
"#;

/// Creates the exception type. Runs once, right after the interpreter
/// starts and before any user code; until then refusals raise a plain
/// RuntimeError with the same text.
pub fn create_type(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    if let Some(existing) = blocked_type(py) {
        return Ok(existing);
    }
    let namespace = PyDict::new(py);
    namespace.set_item("__builtins__", py.import("builtins")?)?;
    py.run(DEFINITION, Some(&namespace), None)?;
    let blocked = namespace
        .get_item("SandboxBlocked")?
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("SandboxBlocked not defined"))?
        .cast_into::<PyType>()?;
    match interpreter_id() {
        0 => {
            let _ = BLOCKED_TYPE.set(blocked.clone().unbind());
        }
        id => SUB_INTERPRETERS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((
                id,
                SubInterpreter {
                    blocked: blocked.clone().unbind(),
                    seals: Vec::new(),
                },
            )),
    }
    Ok(blocked)
}

/// The exception type of the calling thread's interpreter, once created.
pub fn blocked_type(py: Python<'_>) -> Option<Bound<'_, PyType>> {
    match interpreter_id() {
        0 => BLOCKED_TYPE.get().map(|t| t.bind(py).clone()),
        id => with_sub(id, |sub| sub.blocked.bind(py).clone()),
    }
}

/// Sets the current Python exception to a sealed `SandboxBlocked` for
/// `event` (or a plain RuntimeError before the type exists).
pub fn raise(py: Python<'_>, event: &str, kind: Kind) {
    let message = block_message(event, kind);
    let err = match sealed(py, event, kind, &message) {
        Ok(exception) => PyErr::from_value(exception),
        Err(_) => pyo3::exceptions::PyRuntimeError::new_err(message),
    };
    err.restore(py);
}

fn sealed<'py>(
    py: Python<'py>,
    event: &str,
    kind: Kind,
    message: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let blocked =
        blocked_type(py).ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("not ready"))?;
    let exception = blocked.call1((libc::EPERM, message))?;
    exception.setattr("event", event)?;
    let id = interpreter_id();
    if id != 0 {
        let owner = PyWeakrefReference::new(&exception)?.unbind();
        with_sub(id, |sub| {
            // Dead instances' seals go; the list stays as short as the
            // number of refusals still referenced somewhere.
            sub.seals
                .retain(|(owner, _, _)| owner.bind(py).upgrade().is_some());
            sub.seals.push((owner, event.to_string(), kind));
        });
        return Ok(exception);
    }
    let seal = Seal {
        owner: PyWeakrefReference::new(&exception)?.unbind(),
        event: event.to_string(),
        kind,
    };
    exception.setattr(SEAL_ATTRIBUTE, Py::new(py, seal)?)?;
    Ok(exception)
}

/// `(event, message)` when `err` is a refusal the sandbox raised itself.
pub fn genuine(py: Python<'_>, err: &PyErr) -> Option<(String, String)> {
    let blocked = blocked_type(py)?;
    let value = err.value(py);
    if !value.is_instance(&blocked).unwrap_or(false) {
        return None;
    }
    let id = interpreter_id();
    if id != 0 {
        return with_sub(id, |sub| {
            sub.seals.iter().find_map(|(owner, event, kind)| {
                let owner = owner.bind(py).upgrade()?;
                owner
                    .is(value)
                    .then(|| (event.clone(), block_message(event, *kind)))
            })
        })
        .flatten();
    }
    // Read the instance's own dictionary: a subclass could answer any
    // attribute lookup with anything.
    let dict = value.getattr("__dict__").ok()?.cast_into::<PyDict>().ok()?;
    let seal = dict.get_item(SEAL_ATTRIBUTE).ok()??;
    let seal = seal.cast::<Seal>().ok()?.get();
    let owner = seal.owner.bind(py).upgrade()?;
    owner
        .is(value)
        .then(|| (seal.event.clone(), block_message(&seal.event, seal.kind)))
}
