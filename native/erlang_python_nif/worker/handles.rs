//! Python objects held from Elixir: each handle is
//! `%ErlangPython.Object{ref: {:isolated, os_pid, id}}`, valid only in the
//! worker process `os_pid` that made it. A handle from a worker that has
//! since exited (the context restarted) is refused with a clear error
//! instead of reaching another object.
//!
//! The VM tells the worker when it no longer holds a handle: each message
//! the worker sends lists the handles it made while encoding (see
//! [`made_during`]); the context's server wraps each in a NIF resource
//! whose destructor asks for `{:release, [id]}` when the VM
//! garbage-collects the last copy (guides/isolation.md).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

struct Table {
    next: u64,
    objects: HashMap<u64, Py<PyAny>>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

thread_local! {
    /// Ids [`put`] made on this thread since [`made_during`] began, when
    /// one is running.
    static MADE: RefCell<Option<Vec<u64>>> = const { RefCell::new(None) };
}

/// Runs `encode` and gives back, with its result, the ids of the handles it
/// made: the VM must learn them to release them when it drops them.
pub(crate) fn made_during<T>(encode: impl FnOnce() -> T) -> (T, Vec<u64>) {
    let outer = MADE.with(|made| made.borrow_mut().replace(Vec::new()));
    let result = encode();
    let ids = MADE.with(|made| std::mem::replace(&mut *made.borrow_mut(), outer));
    (result, ids.unwrap_or_default())
}

/// How many objects the VM holds handles to now.
pub(crate) fn count() -> usize {
    let guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_ref().map_or(0, |table| table.objects.len())
}

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
    MADE.with(|made| {
        if let Some(made) = made.borrow_mut().as_mut() {
            made.push(id);
        }
    });
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
    let mut released = Vec::with_capacity(ids.len());
    {
        let mut guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(table) = guard.as_mut() {
            released.extend(ids.iter().filter_map(|id| table.objects.remove(id)));
        }
    }
    // Dropped outside the lock: a `__del__` may make handles itself.
    drop(released);
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
