//! Numbers and identifiers beyond the builtin types: numpy scalars,
//! `decimal.Decimal`, `uuid.UUID` (guides/type-conversion.md has the table).
//!
//! numpy is optional: a numpy scalar is recognised by its type's module
//! (`numpy`) and by `numpy.generic` from `sys.modules`, never by importing
//! numpy. It converts as its `item()` does (an int, float, bool, complex,
//! datetime...).
//!
//! Attribute and method names are [`py_name`]'s: interned in the main
//! interpreter only, as objects must not cross into own-GIL ones.

use std::borrow::Cow;
use std::sync::Once;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use rustler::{Binary, Encoder, Env, Term};

use super::bignum::{self, bignum_etf};
use super::decimal_text::{self, Coefficient, DecimalParts};
use super::error::{ConvertError, Result};
use crate::etf::{Forms, Writer};
use crate::interpreters::{loaded_module, py_name, sys_module};
use crate::terms::{binary_term, elixir_struct, make_atoms};

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

/// The types converted here, known by their type's module and name.
enum Kind {
    Decimal,
    Uuid,
}

fn kind(obj: &Bound<'_, PyAny>) -> Option<Kind> {
    let ty = obj.get_type();
    let module = ty.module().ok()?;
    let name = ty.qualname().ok()?;
    match (module.to_cow().ok()?.as_ref(), name.to_cow().ok()?.as_ref()) {
        ("decimal", "Decimal") => Some(Kind::Decimal),
        ("uuid", "UUID") => Some(Kind::Uuid),
        _ => None,
    }
}

/// Conversion hook: the Elixir form of a `Decimal` or `UUID`.
pub(super) fn to_term<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>) -> Option<Result<Term<'a>>> {
    Some(match kind(obj)? {
        Kind::Decimal => decimal_to_term(env, obj),
        Kind::Uuid => uuid_text(obj)
            .map(|text| binary_term(env, &text))
            .map_err(Into::into),
    })
}

/// Writes a `uuid.UUID` or a `decimal.Decimal` straight into the external
/// format as [`to_term`] converts it, for the writer of large results
/// (`convert::external`); `None` for anything else, and for a value
/// [`to_term`] reports an error for. Otherwise each was built as a term,
/// then encoded and copied: 100,000 Decimals from Python took 253-352 ms
/// that way on the development VM, and those of 30 digits 541-574 ms.
pub(super) fn write_external<F: Forms>(
    writer: &mut Writer<F>,
    obj: &Bound<'_, PyAny>,
) -> Option<()> {
    match kind(obj)? {
        Kind::Uuid => writer.binary(&uuid_text(obj).ok()?),
        Kind::Decimal => write_decimal(writer, obj)?,
    }
    Some(())
}

/// Every atom [`write_decimal`] writes.
const DECIMAL_ATOMS: [&str; 7] = [
    "__struct__",
    "Elixir.Decimal",
    "sign",
    "coef",
    "exp",
    "NaN",
    "inf",
];

/// A `%Decimal{}`'s coefficient as [`write_decimal`] writes it.
enum WrittenCoefficient {
    Int(u64),
    /// A little-endian magnitude beyond 64 bits.
    Big(Vec<u8>),
    Atom(&'static str),
}

/// A `%Decimal{}`; `None`, having written nothing, for one whose
/// coefficient is beyond the writer's bignums (the direct way then reports
/// it).
fn write_decimal<F: Forms>(writer: &mut Writer<F>, obj: &Bound<'_, PyAny>) -> Option<()> {
    let (negative, coef, exp) = match decimal_parts(obj).ok()? {
        DecimalParts::NaN { negative } => (negative, WrittenCoefficient::Atom("NaN"), 0),
        DecimalParts::Infinity { negative } => (negative, WrittenCoefficient::Atom("inf"), 0),
        DecimalParts::Finite {
            negative,
            coefficient,
            exponent,
        } => {
            let coef = match coefficient {
                Coefficient::Small(value) => WrittenCoefficient::Int(value),
                Coefficient::Large(digits) => {
                    let magnitude = bignum::magnitude_of_digits(digits.as_bytes());
                    match small_magnitude(&magnitude) {
                        Some(value) => WrittenCoefficient::Int(value),
                        None if magnitude.len() <= F::MAX_BIGNUM_BYTES => {
                            WrittenCoefficient::Big(magnitude)
                        }
                        None => return None,
                    }
                }
            };
            (negative, coef, exponent)
        }
    };
    static MADE: Once = Once::new();
    make_atoms(&MADE, &DECIMAL_ATOMS);
    writer.map(4);
    writer.atom("__struct__");
    writer.atom("Elixir.Decimal");
    writer.atom("sign");
    writer.int(if negative { -1 } else { 1 });
    writer.atom("coef");
    match coef {
        WrittenCoefficient::Int(value) => match i64::try_from(value) {
            Ok(value) => writer.int(value),
            Err(_) => writer.big(false, &value.to_le_bytes()).ok()?,
        },
        // Within MAX_BIGNUM_BYTES (checked above), so `big` writes it.
        WrittenCoefficient::Big(magnitude) => writer.big(false, &magnitude).ok()?,
        WrittenCoefficient::Atom(atom) => writer.atom(atom),
    }
    writer.atom("exp");
    writer.int(exp);
    Some(())
}

/// A `uuid.UUID`'s text, as its `__str__` writes it (8-4-4-4-12 lowercase
/// hex digits), from its 128-bit `int`: the Python method, formatting and
/// slicing its hex text, cost 1.3 us of a UUID's 3.6 us on the
/// development VM.
fn uuid_text(obj: &Bound<'_, PyAny>) -> PyResult<[u8; 36]> {
    let value: u128 = obj.getattr(py_name!(obj.py(), "int"))?.extract()?;
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

/// `decimal.Decimal`, of the interpreter converting.
fn decimal_class(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    loaded_module(py, "decimal")?.getattr(py_name!(py, "Decimal"))
}

/// A `Decimal`'s parts, read from its text ([`decimal_text`]).
fn decimal_parts(obj: &Bound<'_, PyAny>) -> PyResult<DecimalParts> {
    let text = obj.str()?;
    decimal_text::parse(text.to_str()?)
        .ok_or_else(|| PyValueError::new_err(format!("a Decimal's text that is not one: {text}")))
}

/// A coefficient's magnitude as an integer term: [`bignum`] reads its
/// digits, whatever their number (`int(text)` stops at Python's
/// `sys.get_int_max_str_digits()`, 4,300 digits by default, which a
/// `Decimal` does not have).
fn coefficient_term<'a>(env: Env<'a>, digits: &str) -> Result<Term<'a>> {
    let magnitude = bignum::magnitude_of_digits(digits.as_bytes());
    if let Some(small) = small_magnitude(&magnitude) {
        return Ok(small.encode(env));
    }
    bignum_etf(false, &magnitude)
        .and_then(|etf| env.binary_to_term(&etf))
        .map(|(term, _)| term)
        .ok_or_else(|| ConvertError::IntegerTooLarge(magnitude.len() as u64 * 8))
}

/// The value of a magnitude of at most 8 bytes.
fn small_magnitude(magnitude: &[u8]) -> Option<u64> {
    let mut bytes = [0; 8];
    bytes.get_mut(..magnitude.len())?.copy_from_slice(magnitude);
    Some(u64::from_le_bytes(bytes))
}

/// `%Decimal{sign: 1 | -1, coef: integer | :NaN | :inf, exp: integer}`, the
/// `decimal` package's struct (a plain map where that package is absent).
fn decimal_to_term<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>) -> Result<Term<'a>> {
    let (negative, coef, exp) = match decimal_parts(obj)? {
        DecimalParts::NaN { negative } => (negative, atoms::nan().encode(env), 0),
        DecimalParts::Infinity { negative } => (negative, atoms::inf().encode(env), 0),
        DecimalParts::Finite {
            negative,
            coefficient,
            exponent,
        } => {
            let coef = match coefficient {
                Coefficient::Small(value) => value.encode(env),
                Coefficient::Large(digits) => coefficient_term(env, &digits)?,
            };
            (negative, coef, exponent)
        }
    };
    let sign: i64 = if negative { -1 } else { 1 };
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

/// Conversion hook for maps: a `%Decimal{}` as `decimal.Decimal`.
pub(super) fn struct_to_py<'py, 'a>(
    py: Python<'py>,
    term: Term<'a>,
    module: Term<'a>,
) -> Option<Result<Bound<'py, PyAny>>> {
    if module != atoms::decimal_module().to_term(term.get_env()) {
        return None;
    }
    Some(decimal_to_py(py, term))
}

fn decimal_to_py<'py>(py: Python<'py>, term: Term<'_>) -> Result<Bound<'py, PyAny>> {
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
    let text = if coef == atoms::nan().to_term(term.get_env()) {
        "NaN".to_owned()
    } else if coef == atoms::inf().to_term(term.get_env()) {
        if sign < 0 { "-Infinity" } else { "Infinity" }.to_owned()
    } else if coef.get_type() == rustler::TermType::Integer {
        let digits = match coef.decode::<i64>() {
            Ok(small) => small.to_string(),
            // A bignum (a positive one beyond u64 included): its digits
            // from its magnitude in the external format.
            Err(_) => match coef.decode::<u64>() {
                Ok(large) => large.to_string(),
                Err(_) => {
                    let etf = coef.to_binary();
                    let (negative, magnitude) = bignum::parse_bignum_etf(etf.as_slice())
                        .ok_or_else(|| {
                            PyValueError::new_err("a Decimal's coefficient that is not an integer")
                        })?;
                    let digits = bignum::digits_of_magnitude(magnitude);
                    if negative {
                        format!("-{digits}")
                    } else {
                        digits
                    }
                }
            },
        };
        if !matches!(sign, 1 | -1) || digits.starts_with('-') {
            return Err(PyValueError::new_err(
                "a Decimal needs sign 1 or -1 and a coefficient >= 0",
            )
            .into());
        }
        decimal_text::finite_text(sign < 0, &digits, exp)
    } else {
        return Err(bad().into());
    };
    Ok(decimal_class(py)?.call1((text,))?)
}

/// Conversion hook for tuples: `{:uuid, text}` (any text `uuid.UUID`
/// reads, such as `"8-4-4-4-12"` hex) or `{:uuid, <<16 bytes>>}` as
/// `uuid.UUID`.
pub(super) fn tagged_to_py<'py>(
    py: Python<'py>,
    items: &[Term<'_>],
) -> Option<Result<Bound<'py, PyAny>>> {
    if items.len() != 2 || items[0] != atoms::uuid().to_term(items[0].get_env()) {
        return None;
    }
    let bin = Binary::from_term(items[1]).ok()?;
    let made = if let Ok(bytes) = <[u8; 16]>::try_from(bin.as_slice()) {
        uuid_of(py, u128::from_be_bytes(bytes))
    } else {
        match std::str::from_utf8(&bin) {
            Ok(text) => match uuid_bytes(text) {
                Some(bytes) => uuid_of(py, u128::from_be_bytes(bytes)),
                // Whatever else `uuid.UUID` makes of it, or its error.
                None => loaded_module(py, HELPERS)
                    .and_then(|helpers| helpers.call_method1("uuid_from_text", (text,))),
            },
            Err(_) => Err(PyTypeError::new_err("{:uuid, value}: a string or 16 bytes")),
        }
    };
    Some(made.map_err(Into::into))
}

/// The `uuid.UUID` of `value`: the state `UUID.__init__` leaves (its `int`,
/// `is_safe` unknown), set as it sets it, without its checks of the other
/// ways to give a UUID (the Python helper that did this from 16 bytes cost
/// 1.2 us a UUID on the development VM).
fn uuid_of(py: Python<'_>, value: u128) -> PyResult<Bound<'_, PyAny>> {
    let uuid = loaded_module(py, "uuid")?;
    let class = uuid.getattr(py_name!(py, "UUID"))?;
    let unknown = uuid
        .getattr(py_name!(py, "SafeUUID"))?
        .getattr(py_name!(py, "unknown"))?;
    let made = py
        .get_type::<PyAny>()
        .call_method1(py_name!(py, "__new__"), (class,))?;
    let int = value.into_pyobject(py)?;
    let slots = [
        (py_name!(py, "int"), int.as_any()),
        (py_name!(py, "is_safe"), &unknown),
    ];
    for (slot, value) in slots {
        // SAFETY: the GIL is held and the three objects are alive for the
        // call. Generic attribute setting (object.__setattr__) fills UUID's
        // slots past its own __setattr__, which refuses every write; it
        // returns -1 with an exception set on failure.
        if unsafe {
            pyo3::ffi::PyObject_GenericSetAttr(made.as_ptr(), slot.as_ptr(), value.as_ptr())
        } < 0
        {
            return Err(PyErr::fetch(py));
        }
    }
    Ok(made)
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
