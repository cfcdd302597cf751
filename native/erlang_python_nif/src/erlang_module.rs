//! `_erlang_native`: the built-in extension module behind Python's `erlang`
//! package (priv/erlang). It exposes the types of [`crate::pytypes`] and the
//! functions Python uses to reach Erlang: calling registered functions,
//! sending messages, asking who the caller is.
//!
//! The module is registered with `PyImport_AppendInittab` before the
//! interpreter starts (see `interpreter`), so it needs no file on disk.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::pytypes::{describe_pid, CallbackError, Interrupted, OpaqueTerm, Pid, ProcessError};
use crate::{callbacks, registry, sandbox, serving};

/// Whether the sandbox holds for the calling thread (`erlang.is_sandboxed()`).
#[pyfunction]
fn sandbox_active(py: Python<'_>) -> bool {
    sandbox::is_sandboxed(py)
}

/// The exception type the sandbox raises (`erlang.SandboxBlocked`).
#[pyfunction]
fn sandbox_exception(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyType>> {
    sandbox::blocked_type(py)
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the sandbox is not set up"))
}

/// `erlang.call(name, *args, **kwargs)`: calls the Erlang function
/// registered as `name`. Keyword arguments arrive as a trailing map.
#[pyfunction]
#[pyo3(signature = (name, *args, **kwargs))]
fn call<'py>(
    py: Python<'py>,
    name: &str,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    callbacks::call(py, name, args, kwargs)
}

/// `erlang.call`, waiting without serving other requests: for callbacks
/// that never call Python, made where Python code may hold locks (logging).
#[pyfunction]
#[pyo3(signature = (name, *args))]
fn call_blocked<'py>(
    py: Python<'py>,
    name: &str,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    callbacks::call_waiting(py, name, args, None, callbacks::Waiting::Blocked)
}

/// `erlang.send(pid, term)`: sends `term` to a local Erlang process.
#[pyfunction]
fn send(py: Python<'_>, pid: &Bound<'_, PyAny>, message: &Bound<'_, PyAny>) -> PyResult<()> {
    let pid = pid.cast::<Pid>().map_err(|_| {
        PyTypeError::new_err(format!(
            "erlang.send() needs an erlang.Pid, got {}",
            crate::convert::type_name(pid)
        ))
    })?;
    let target = pid.get().pid;
    if callbacks::send(py, target, message)? {
        Ok(())
    } else {
        Err(crate::pytypes::error(
            py,
            crate::interpreters::Exception::ProcessError,
            format!("process {} is not alive", describe_pid(target)),
        ))
    }
}

/// Whether an Erlang function is registered under `name`.
#[pyfunction]
fn is_registered(name: &str) -> bool {
    registry::is_registered(name)
}

/// Names of the registered Erlang functions, sorted.
#[pyfunction]
fn registered() -> Vec<String> {
    registry::names()
}

/// `erlang.self()`: the Elixir process whose request is running, or None
/// outside a request (in a Python thread of its own, for instance).
#[pyfunction(name = "self")]
fn self_pid() -> Option<Pid> {
    serving::current_caller().map(|pid| Pid { pid })
}

/// Notes that the caller's output waits in a line buffer, so the worker
/// flushes it when the request ends (priv/_erlang_impl/_io.py).
#[pyfunction]
fn output_pending() {
    serving::note_output_pending();
}

/// The Python-visible module. Submodules of `erlang` build on these names.
#[pymodule]
pub(crate) fn _erlang_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Pid>()?;
    m.add_class::<OpaqueTerm>()?;
    m.add_function(wrap_pyfunction!(sandbox_active, m)?)?;
    m.add_function(wrap_pyfunction!(sandbox_exception, m)?)?;
    m.add_function(wrap_pyfunction!(call, m)?)?;
    m.add_function(wrap_pyfunction!(call_blocked, m)?)?;
    m.add_function(wrap_pyfunction!(send, m)?)?;
    m.add_function(wrap_pyfunction!(is_registered, m)?)?;
    m.add_function(wrap_pyfunction!(registered, m)?)?;
    m.add_function(wrap_pyfunction!(self_pid, m)?)?;
    m.add_function(wrap_pyfunction!(output_pending, m)?)?;
    m.add("CallbackError", m.py().get_type::<CallbackError>())?;
    m.add("ProcessError", m.py().get_type::<ProcessError>())?;
    m.add("Interrupted", m.py().get_type::<Interrupted>())?;
    crate::channel::register(m)?;
    crate::buffer::register(m)?;
    crate::buffer::set_cancel_check(|| {
        serving::current().is_some_and(|thread| thread.innermost_cancelled())
    });
    Ok(())
}
