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

use std::sync::OnceLock;

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
    if let Some(existing) = BLOCKED_TYPE.get() {
        return Ok(existing.bind(py).clone());
    }
    let namespace = PyDict::new(py);
    namespace.set_item("__builtins__", py.import("builtins")?)?;
    py.run(DEFINITION, Some(&namespace), None)?;
    let blocked = namespace
        .get_item("SandboxBlocked")?
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("SandboxBlocked not defined"))?
        .cast_into::<PyType>()?;
    let _ = BLOCKED_TYPE.set(blocked.clone().unbind());
    Ok(blocked)
}

/// The exception type, once created.
pub fn blocked_type(py: Python<'_>) -> Option<Bound<'_, PyType>> {
    BLOCKED_TYPE.get().map(|t| t.bind(py).clone())
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
