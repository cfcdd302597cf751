//! Object handles: Python objects held from Elixir: `%ErlangPython.Object{ref: resource, type: name}`.
//!
//! A value with no Elixir form (a class instance, a module, a function, a
//! numpy array) reaches Elixir as a handle to the live object, and comes back
//! as that same object when passed as an argument.
//!
//! The resource owns a strong reference (`Py<PyAny>`) and the id of the
//! interpreter that made the object (own-GIL contexts run on interpreters of
//! their own). When the Elixir term is garbage-collected, its destructor runs
//! on whatever thread ERTS chooses, usually a scheduler that must not wait for
//! the GIL: the reference is handed to [`interpreters::release`], and a thread
//! of that interpreter decrements it with that interpreter's GIL. A handle
//! used in another interpreter is refused: objects never cross interpreters.

use pyo3::prelude::*;
use rustler::{Encoder, Env, ResourceArc, Term};

use crate::atoms;
use crate::interpreters;
use crate::terms::elixir_struct;

/// The resource behind `%ErlangPython.Object{ref: ...}`.
pub(crate) struct PyHandle {
    /// Always `Some` until the destructor takes it.
    object: Option<Py<PyAny>>,
    interpreter: i64,
}

#[rustler::resource_impl]
impl rustler::Resource for PyHandle {}

impl PyHandle {
    fn object(&self) -> &Py<PyAny> {
        self.object
            .as_ref()
            .expect("a live handle holds its object")
    }
}

impl Drop for PyHandle {
    fn drop(&mut self) {
        if let Some(object) = self.object.take() {
            interpreters::release(self.interpreter, object);
        }
    }
}

/// `%ErlangPython.Object{ref: handle, type: "module.Type"}`.
pub(crate) fn to_term<'a>(env: Env<'a>, object: &Bound<'_, PyAny>) -> Term<'a> {
    let type_name = type_name(object);
    let handle = ResourceArc::new(PyHandle {
        object: Some(object.clone().unbind()),
        interpreter: interpreters::current(object.py()),
    });
    elixir_struct(
        env,
        atoms::object_module(),
        &[
            (atoms::ref_(), handle.encode(env)),
            (atoms::type_(), type_name.encode(env)),
        ],
    )
}

/// The object behind a `%ErlangPython.Object{}` map: `None` when `term` is
/// not one, an error when it is one without a live handle (made in another
/// VM, or forged): it must never pass for a plain map.
pub(crate) fn from_term<'py>(
    py: Python<'py>,
    term: Term<'_>,
) -> Option<PyResult<Bound<'py, PyAny>>> {
    let env = term.get_env();
    if term.map_get(atoms::__struct__()).ok()? != atoms::object_module().to_term(env) {
        return None;
    }
    let handle: Option<ResourceArc<PyHandle>> = term
        .map_get(atoms::ref_())
        .ok()
        .and_then(|reference| reference.decode().ok());
    Some(match handle {
        Some(handle) if handle.interpreter == interpreters::current(py) => {
            Ok(handle.object().bind(py).clone())
        }
        Some(_) => Err(pyo3::exceptions::PyTypeError::new_err(
            "this ErlangPython.Object belongs to another interpreter (an own-GIL context has its own): \
             objects never cross interpreters; pass plain data instead",
        )),
        None => Err(pyo3::exceptions::PyTypeError::new_err(
            "this ErlangPython.Object has no live handle: handles are valid only in the VM that made them",
        )),
    })
}

/// A number identifying the object behind a handle term, for pinning work.
pub(crate) fn identity(term: Term<'_>) -> Option<usize> {
    let handle: ResourceArc<PyHandle> = term.map_get(atoms::ref_()).ok()?.decode().ok()?;
    // Object addresses are 16-byte aligned: drop the always-zero bits.
    Some((handle.object().as_ptr() as usize) >> 4)
}

/// `module.QualName` of an object's type, for error messages.
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
