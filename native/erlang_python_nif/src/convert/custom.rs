//! Decoders registered for Python types (`erlang.register_decoder` in
//! Python, `ErlangPython.register_decoder/2` in Elixir).
//!
//! The registry is a dict in `_erlang_impl._types`, keyed by a type's
//! `module.QualName`, whose values are Python callables taking the object
//! and returning what to convert in its place. It is consulted for objects
//! no builtin rule converts (so never on the hot paths of lists, dicts and
//! numbers), and before the rules for dates, numpy scalars, decimals and
//! UUIDs, so a registered decoder can replace those too.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::handles::type_name;
use crate::interpreters::sys_module;

/// The registry of decoders (a dict, changed in place by registrations).
/// [`replacement`] looks in it; `external` keeps it for a whole result and
/// leaves values alone while it is not empty (a decoder is Python code,
/// which must run once per object).
pub(super) fn registry(py: Python<'_>) -> Option<Bound<'_, PyDict>> {
    sys_module(py, "_erlang_impl._types")
        .ok()
        .flatten()
        .and_then(|helpers| helpers.getattr("decoders").ok())
        .and_then(|decoders| decoders.cast_into::<PyDict>().ok())
}

/// Conversion hook: what the decoder registered for `obj`'s type returns,
/// to be converted in its place; `None` when none is registered.
pub(super) fn replacement<'py>(obj: &Bound<'py, PyAny>) -> Option<PyResult<Bound<'py, PyAny>>> {
    let decoders = registry(obj.py())?;
    if decoders.is_empty() {
        return None;
    }
    let name = type_name(obj);
    let decoder = decoders.get_item(&name).ok()??;
    Some(decoder.call1((obj,)).and_then(|value| {
        if value.get_type().is(obj.get_type()) {
            Err(PyTypeError::new_err(format!(
                "the decoder registered for {name} returned another {name}"
            )))
        } else {
            Ok(value)
        }
    }))
}
