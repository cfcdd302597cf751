//! Numbers and identifiers beyond the builtin types: numpy scalars,
//! `decimal.Decimal`, `uuid.UUID` (guides/type-conversion.md has the table).
//!
//! numpy is optional: a numpy scalar is recognised by its type's module
//! (`numpy`) and by `numpy.generic` from `sys.modules`, never by importing
//! numpy. It converts as its `item()` does (an int, float, bool, complex,
//! datetime...).

use std::borrow::Cow;

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use rustler::{Binary, Encoder, Env, NewBinary, Term};

use super::error::Result;
use crate::etf::{Forms, Writer};
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
        ("uuid", "UUID") => Some(uuid_text(obj).map_err(Into::into).map(|text| {
            let mut binary = NewBinary::new(env, text.len());
            binary.as_mut_slice().copy_from_slice(&text);
            binary.into()
        })),
        _ => None,
    }
}

/// Writes a `uuid.UUID` straight into the external format, as [`to_term`]
/// converts it, for the writer of large results (`convert::external`);
/// `None` for anything else, and for a UUID whose `int` is not one
/// ([`to_term`] then reports it). Otherwise each UUID was built as a term,
/// then encoded and copied.
pub(super) fn write_external<F: Forms>(
    writer: &mut Writer<F>,
    obj: &Bound<'_, PyAny>,
) -> Option<()> {
    if !is_uuid(obj) {
        return None;
    }
    writer.binary(&uuid_text(obj).ok()?);
    Some(())
}

/// Whether `obj` is a `uuid.UUID`, by its type's module and name as
/// [`to_term`] finds it.
fn is_uuid(obj: &Bound<'_, PyAny>) -> bool {
    let ty = obj.get_type();
    let named = |found: PyResult<Bound<'_, PyString>>, wanted: &str| {
        found.is_ok_and(|name| name.to_cow().is_ok_and(|name| name == wanted))
    };
    named(ty.module(), "uuid") && named(ty.qualname(), "UUID")
}

/// A `uuid.UUID`'s text, as its `__str__` writes it (8-4-4-4-12 lowercase
/// hex digits), from its 128-bit `int`: the Python method, formatting and
/// slicing its hex text, cost 1.3 us of a UUID's 3.6 us on the
/// development VM.
fn uuid_text(obj: &Bound<'_, PyAny>) -> PyResult<[u8; 36]> {
    let value: u128 = obj.getattr(intern!(obj.py(), "int"))?.extract()?;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0; 36];
    let mut at = 0;
    for digit in 0..32 {
        if matches!(digit, 8 | 12 | 16 | 20) {
            text[at] = b'-';
            at += 1;
        }
        text[at] = HEX[((value >> (124 - 4 * digit)) & 0xf) as usize];
        at += 1;
    }
    Ok(text)
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
    let from_bytes = |bytes: &[u8]| {
        loaded_module(py, HELPERS)
            .and_then(|helpers| helpers.call_method1("uuid_from_bytes", (PyBytes::new(py, bytes),)))
    };
    let made = if bin.len() == 16 {
        from_bytes(&bin)
    } else {
        match std::str::from_utf8(&bin) {
            Ok(text) => match uuid_bytes(text) {
                Some(bytes) => from_bytes(&bytes),
                // Whatever else `uuid.UUID` makes of it, or its error.
                None => loaded_module(py, HELPERS)
                    .and_then(|helpers| helpers.call_method1("uuid_from_text", (text,))),
            },
            Err(_) => Err(PyTypeError::new_err("{:uuid, value}: a string or 16 bytes")),
        }
    };
    Some(made.map_err(Into::into))
}

/// The 16 bytes of a UUID's text when, as `uuid.UUID(text)` reads it
/// (`urn:` and `uuid:` taken out, then braces at the ends and every
/// hyphen), it leaves 32 hex digits; `None` for anything else, which
/// `uuid.UUID` itself then reads or refuses (it also takes what `int(_,
/// 16)` does, such as underscores). `uuid.UUID(text)` cost 2 us a value.
fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    // The usual text has no colon: nothing to take out, nothing to copy.
    let text = match text.contains(':') {
        true => Cow::Owned(text.replace("urn:", "").replace("uuid:", "")),
        false => Cow::Borrowed(text),
    };
    let mut digits = text
        .trim_matches(['{', '}'])
        .bytes()
        .filter(|&byte| byte != b'-')
        .map(|byte| char::from(byte).to_digit(16));
    let mut bytes = [0; 16];
    for byte in bytes.iter_mut() {
        *byte = (digits.next()?? * 16 + digits.next()??) as u8;
    }
    digits.next().is_none().then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::uuid_bytes;

    const BYTES: [u8; 16] = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32,
        0x10,
    ];

    #[test]
    fn reads_the_forms_uuid_reads_as_32_hex_digits() {
        for text in [
            "01234567-89ab-cdef-fedc-ba9876543210",
            "01234567-89AB-CDEF-FEDC-BA9876543210",
            "0123456789abcdeffedcba9876543210",
            "{01234567-89ab-cdef-fedc-ba9876543210}",
            "urn:uuid:01234567-89ab-cdef-fedc-ba9876543210",
            "uuid:{0123-4567-89ab-cdef-fedc-ba98-7654-3210}",
            // Python strips braces at either end, paired or not.
            "{0123456789abcdeffedcba9876543210",
        ] {
            assert_eq!(uuid_bytes(text), Some(BYTES), "{text}");
        }
    }

    #[test]
    fn leaves_anything_else_to_uuid() {
        // Too short, too long, not hex, and what `int(_, 16)` reads that is
        // not a hex digit here (an underscore, a full-width digit): uuid.UUID
        // reads the last two itself.
        for text in [
            "",
            "0123456789abcdeffedcba987654321",
            "0123456789abcdeffedcba98765432100",
            "0123456789abcdeffedcba987654321g",
            "000000000000000_1111111111111111",
            "０123456789abcdeffedcba9876543210",
        ] {
            assert_eq!(uuid_bytes(text), None, "{text}");
        }
    }
}
