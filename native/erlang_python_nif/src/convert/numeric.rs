//! Numbers and identifiers beyond the builtin types: numpy scalars,
//! `decimal.Decimal`, `uuid.UUID` (guides/type-conversion.md has the table).
//!
//! numpy is optional: a numpy scalar is recognised by its type's module
//! (`numpy`) and by `numpy.generic` from `sys.modules`, never by importing
//! numpy. It converts as its `item()` does (an int, float, bool, complex,
//! datetime...).

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use rustler::{Binary, Encoder, Env, Term};

use super::error::Result;
use crate::interpreters::{loaded_module, sys_module};
use crate::terms::elixir_struct;

mod atoms {
    rustler::atoms! {
        decimal_module = "Elixir.Decimal",
        sign,
        coef,
        exp,
        nan = "NaN",
        inf,
        uuid,
    }
}

/// The helper module that builds and reads `Decimal` and `UUID`.
const HELPERS: &str = "_erlang_impl._types";

/// Conversion hook: what a numpy scalar stands for (its `item()`), to be
/// converted in its place; `None` for anything else.
pub(super) fn replacement<'py>(obj: &Bound<'py, PyAny>) -> Option<PyResult<Bound<'py, PyAny>>> {
    let ty = obj.get_type();
    if ty.module().ok()?.to_cow().ok()? != "numpy" {
        return None;
    }
    let generic = sys_module(obj.py(), "numpy")
        .ok()??
        .getattr("generic")
        .ok()?;
    if !obj.is_instance(&generic).ok()? {
        return None;
    }
    Some(obj.call_method0("item").and_then(|item| {
        if item.get_type().is(&ty) {
            Err(PyTypeError::new_err(format!(
                "{}.item() is another {0}",
                super::handles::type_name(obj)
            )))
        } else {
            Ok(item)
        }
    }))
}

/// Conversion hook: the Elixir form of a `Decimal` or `UUID`.
/// `convert` converts the parts (a coefficient beyond 64 bits).
pub(super) fn to_term<'a>(
    env: Env<'a>,
    obj: &Bound<'_, PyAny>,
    convert: &dyn Fn(&Bound<'_, PyAny>) -> Result<Term<'a>>,
) -> Option<Result<Term<'a>>> {
    let ty = obj.get_type();
    let module = ty.module().ok()?;
    let module = module.to_cow().ok()?;
    let name = ty.qualname().ok()?;
    let name = name.to_cow().ok()?;
    match (module.as_ref(), name.as_ref()) {
        ("decimal", "Decimal") => Some(decimal_to_term(env, obj, convert)),
        ("uuid", "UUID") => Some(
            obj.str()
                .and_then(|text| Ok(text.to_str()?.encode(env)))
                .map_err(Into::into),
        ),
        _ => None,
    }
}

/// `%Decimal{sign: 1 | -1, coef: integer | :NaN | :inf, exp: integer}`, the
/// `decimal` package's struct (a plain map where that package is absent).
fn decimal_to_term<'a>(
    env: Env<'a>,
    obj: &Bound<'_, PyAny>,
    convert: &dyn Fn(&Bound<'_, PyAny>) -> Result<Term<'a>>,
) -> Result<Term<'a>> {
    let helpers = loaded_module(obj.py(), HELPERS)?;
    let (sign, coef, exp): (i64, Bound<'_, PyAny>, i64) =
        helpers.call_method1("decimal_parts", (obj,))?.extract()?;
    let coef = if let Ok(text) = coef.extract::<String>() {
        match text.as_str() {
            "NaN" => atoms::nan().encode(env),
            _ => atoms::inf().encode(env),
        }
    } else {
        convert(&coef)?
    };
    Ok(elixir_struct(
        env,
        atoms::decimal_module(),
        &[
            (atoms::sign(), sign.encode(env)),
            (atoms::coef(), coef),
            (atoms::exp(), exp.encode(env)),
        ],
    ))
}

/// Conversion hook for maps: a `%Decimal{}` as `decimal.Decimal`;
/// `convert` converts its coefficient.
pub(super) fn struct_to_py<'py, 'a>(
    py: Python<'py>,
    term: Term<'a>,
    module: Term<'a>,
    convert: &dyn Fn(Term<'_>) -> Result<Bound<'py, PyAny>>,
) -> Option<Result<Bound<'py, PyAny>>> {
    if module != atoms::decimal_module().to_term(term.get_env()) {
        return None;
    }
    Some(decimal_to_py(py, term, convert))
}

fn decimal_to_py<'py>(
    py: Python<'py>,
    term: Term<'_>,
    convert: &dyn Fn(Term<'_>) -> Result<Bound<'py, PyAny>>,
) -> Result<Bound<'py, PyAny>> {
    let bad = || PyTypeError::new_err("a Decimal needs sign: 1 | -1, coef and exp: integers");
    let sign: i64 = term
        .map_get(atoms::sign())
        .ok()
        .and_then(|t| t.decode().ok())
        .ok_or_else(bad)?;
    let exp: i64 = term
        .map_get(atoms::exp())
        .ok()
        .and_then(|t| t.decode().ok())
        .ok_or_else(bad)?;
    let coef = term.map_get(atoms::coef()).map_err(|_| bad())?;
    let coef = if coef == atoms::nan().to_term(term.get_env()) {
        PyString::new(py, "NaN").into_any()
    } else if coef == atoms::inf().to_term(term.get_env()) {
        PyString::new(py, "inf").into_any()
    } else if coef.get_type() == rustler::TermType::Integer {
        convert(coef)?
    } else {
        return Err(bad().into());
    };
    Ok(loaded_module(py, HELPERS)?.call_method1("decimal_from_elixir", (sign, coef, exp))?)
}

/// Conversion hook for tuples: `{:uuid, "8-4-4-4-12 hex"}` or
/// `{:uuid, <<16 bytes>>}` as `uuid.UUID`.
pub(super) fn tagged_to_py<'py>(
    py: Python<'py>,
    items: &[Term<'_>],
) -> Option<Result<Bound<'py, PyAny>>> {
    if items.len() != 2 || items[0] != atoms::uuid().to_term(items[0].get_env()) {
        return None;
    }
    let bin = Binary::from_term(items[1]).ok()?;
    let made = if bin.len() == 16 {
        loaded_module(py, HELPERS).and_then(|helpers| {
            helpers.call_method1("uuid_from_bytes", (pyo3::types::PyBytes::new(py, &bin),))
        })
    } else {
        match std::str::from_utf8(&bin) {
            Ok(text) => loaded_module(py, HELPERS)
                .and_then(|helpers| helpers.call_method1("uuid_from_text", (text,))),
            Err(_) => Err(PyTypeError::new_err("{:uuid, value}: a string or 16 bytes")),
        }
    };
    Some(made.map_err(Into::into))
}
