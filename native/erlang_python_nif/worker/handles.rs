//! Python objects held from Elixir: each handle is
//! `%ErlangPython.Object{ref: {:isolated, os_pid, id}}`, valid only in the
//! worker process `os_pid` that made it. A handle from a worker that has
//! since exited (the context restarted) is refused with a clear error
//! instead of reaching another object.
//!
//! Handles are dropped with their worker: the worker cannot see when the
//! VM garbage-collects a handle term (see guides/isolation.md).

use std::collections::HashMap;
use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

struct Table {
    next: u64,
    objects: HashMap<u64, Py<PyAny>>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

fn own_pid() -> u64 {
    std::process::id() as u64
}

/// Keeps `obj` alive under a new id: `(owner, id)`.
pub(crate) fn put(obj: &Bound<'_, PyAny>) -> (u64, u64) {
    let mut guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let table = guard.get_or_insert_with(|| Table {
        next: 1,
        objects: HashMap::new(),
    });
    let id = table.next;
    table.next += 1;
    table.objects.insert(id, obj.clone().unbind());
    (own_pid(), id)
}

/// The object of handle `(owner, id)`.
pub(crate) fn get<'py>(py: Python<'py>, owner: u64, id: u64) -> PyResult<Bound<'py, PyAny>> {
    if owner != own_pid() {
        return Err(PyValueError::new_err(
            "the handle belongs to an isolated worker that has exited (the context restarted)",
        ));
    }
    let guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .as_ref()
        .and_then(|table| table.objects.get(&id))
        .map(|obj| obj.bind(py).clone())
        .ok_or_else(|| PyValueError::new_err("the handle was released"))
}

/// Drops handles Elixir no longer holds; unknown ids are ignored.
pub(crate) fn release(ids: &[u64]) {
    let mut guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(table) = guard.as_mut() {
        for id in ids {
            table.objects.remove(id);
        }
    }
}

/// `module.QualName` of the object's type (`builtins` omitted), as the
/// embedded handles name it.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    let ty = obj.get_type();
    let qualname = ty
        .qualname()
        .map(|q| q.to_string())
        .unwrap_or_else(|_| "?".into());
    match ty.module().map(|m| m.to_string()) {
        Ok(module) if module != "builtins" => format!("{module}.{qualname}"),
        _ => qualname,
    }
}
