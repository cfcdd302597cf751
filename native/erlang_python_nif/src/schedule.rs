//! Scheduled continuations: `erlang.schedule*` markers a call returns.
//!
//! A Python function may return `erlang.schedule(name, *args)`,
//! `erlang.schedule_py(module, function, args, kwargs)` or
//! `erlang.schedule_inline(...)` instead of a value: the call's result is
//! then that continuation's result. The worker resolves the marker right
//! after the call returns, still inside the job (so the caller's timeout
//! still interrupts it), by handing it to `_erlang_impl._schedule.resolve`,
//! which runs the chain of continuations in Python. Nothing here runs on a
//! BEAM scheduler: in erlang_python the markers release a dirty scheduler,
//! here the interpreter never holds one.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::errors::Failure;
use crate::reply::Outcome;

/// `_erlang_impl._schedule.Marker`, the base class of every marker.
static MARKER: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn marker_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    MARKER.import(py, "_erlang_impl._schedule", "Marker")
}

/// `outcome`, with a returned marker replaced by its continuation's result.
pub(crate) fn resolve<'py>(
    py: Python<'py>,
    outcome: Result<Outcome<'py>, Failure>,
) -> Result<Outcome<'py>, Failure> {
    let value = match &outcome {
        Ok(Outcome::Value(value) | Outcome::ValueThenFree(value, _)) => value,
        _ => return outcome,
    };
    let is_marker = match marker_type(py) {
        // Marker is a plain class (its metaclass is `type`), so isinstance
        // means a subtype check of the value's type: done directly, it
        // skips looking `__instancecheck__` up on every reply (3% of a
        // worker's time with 100 callers). Subclasses still count; only an
        // object faking `__class__` would no longer pass for a marker.
        // SAFETY: attached (`py`); both are live type objects.
        Ok(marker) => unsafe {
            pyo3::ffi::PyType_IsSubtype(pyo3::ffi::Py_TYPE(value.as_ptr()), marker.as_type_ptr())
                != 0
        },
        // Without the module no marker can exist.
        Err(_) => false,
    };
    if !is_marker {
        return outcome;
    }
    let continued = py
        .import("_erlang_impl._schedule")
        .and_then(|module| module.call_method1("resolve", (value,)))
        .map_err(Failure::Python)?;
    Ok(Outcome::Value(continued))
}
