//! A request's names, code and arguments, checked and turned into what
//! Python takes. Each refusal names what is wrong: `{:badarg, text}`.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rustler::{Binary, Term, TermType};

use crate::atoms;
use crate::convert;
use crate::errors::Failure;

pub(super) fn bad(text: &str) -> Failure {
    Failure::BadArg(text.to_string())
}

/// A module or function name given as an atom or a UTF-8 binary.
pub(super) fn name_text(term: Term<'_>, what: &str) -> Result<String, Failure> {
    let text = match term.get_type() {
        TermType::Atom => crate::terms::atom_text(term).ok_or_else(|| bad(what))?,
        TermType::Binary => {
            let bin = Binary::from_term(term)
                .map_err(|_| bad(&format!("{what} name must be an atom or a string")))?;
            String::from_utf8(bin.as_slice().to_vec())
                .map_err(|_| bad(&format!("{what} name is not valid UTF-8")))?
        }
        _ => return Err(bad(&format!("{what} name must be an atom or a string"))),
    };
    if text.is_empty() {
        return Err(bad(&format!("{what} name is empty")));
    }
    if text.contains('\0') {
        return Err(bad(&format!("{what} name contains a NUL byte")));
    }
    Ok(text)
}

/// Python source given as a UTF-8 binary.
pub(super) fn code_text(term: Term<'_>) -> Result<String, Failure> {
    let bin = Binary::from_term(term).map_err(|_| bad("code must be a string"))?;
    let text =
        String::from_utf8(bin.as_slice().to_vec()).map_err(|_| bad("code is not valid UTF-8"))?;
    if text.contains('\0') {
        return Err(bad("code contains a NUL byte"));
    }
    Ok(text)
}

pub(super) fn positional_args<'py>(
    py: Python<'py>,
    args: Term<'_>,
) -> Result<Bound<'py, PyTuple>, Failure> {
    let Ok(len) = args.list_length() else {
        return Err(bad("args must be a list"));
    };
    let items = args
        .into_list_iterator()
        .map_err(|_| bad("args must be a list"))?;
    // SAFETY: PyTuple_New returns a new reference or NULL with an exception
    // set; each slot is filled once with a new reference, which
    // PyTuple_SET_ITEM steals. A slot left NULL after an error is fine for
    // tuple_dealloc (it uses Py_XDECREF).
    let tuple =
        unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyTuple_New(len as ffi::Py_ssize_t))? };
    for (index, item) in items.enumerate() {
        let value = convert::to_python(py, item)?;
        unsafe {
            ffi::PyTuple_SET_ITEM(tuple.as_ptr(), index as ffi::Py_ssize_t, value.into_ptr());
        }
    }
    Ok(tuple.cast_into::<PyTuple>().map_err(PyErr::from)?)
}

pub(super) fn keyword_args<'py>(
    py: Python<'py>,
    kwargs: Term<'_>,
) -> Result<Option<Bound<'py, PyDict>>, Failure> {
    match kwargs.get_type() {
        TermType::Map if kwargs.map_size().unwrap_or(0) == 0 => Ok(None),
        TermType::Map => {
            let dict = convert::to_python(py, kwargs)?;
            Ok(Some(dict.cast_into::<PyDict>().map_err(PyErr::from)?))
        }
        TermType::Atom if kwargs == atoms::nil().to_term(kwargs.get_env()) => Ok(None),
        _ => Err(bad("kwargs must be a map")),
    }
}
