//! Python -> Erlang.

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PySet};
use pyo3::Borrowed;
use rustler::types::tuple::make_tuple;
use rustler::{Encoder, Env, Term};

use super::arrays;
use super::bignum::bignum_etf;
use super::custom;
use super::datetime;
use super::error::{enter, ConvertError, Result};
use super::handles;
use super::mapset;
use super::numeric;
use crate::atoms;
use crate::pytypes::{OpaqueTerm, Pid};
use crate::terms::binary_term;

/// Converts a Python object to a term in `env`.
pub(crate) fn to_term<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>) -> Result<Term<'a>> {
    let _plain = arrays::ArraysAsked::new(false);
    py_to_term(env, obj, 0)
}

/// Converts `obj` as [`to_term`] does, as an item `depth` containers down
/// in a value being converted (`external` converts the odd item of a large
/// value this way).
pub(crate) fn to_term_at<'a>(
    env: Env<'a>,
    obj: &Bound<'_, PyAny>,
    depth: usize,
) -> Result<Term<'a>> {
    let _plain = arrays::ArraysAsked::new(false);
    py_to_term(env, obj, depth)
}

/// Converts `obj` as [`to_term`] does, except that every object with the
/// buffer protocol in it (other than `bytes` and `bytearray`, which are
/// binaries anyway) becomes an `%ErlangPython.Array{}` (`arrays: true`).
pub(crate) fn to_term_with_arrays<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>) -> Result<Term<'a>> {
    let _asked = arrays::ArraysAsked::new(true);
    py_to_term(env, obj, 0)
}

fn py_to_term<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>, depth: usize) -> Result<Term<'a>> {
    let ptr = obj.as_ptr();
    // SAFETY (all ffi type checks below): `ptr` is a valid, borrowed object
    // for the duration of this call, and the GIL is held.
    unsafe {
        if ptr == ffi::Py_None() {
            return Ok(atoms::nil().to_term(env));
        }
        if ffi::PyBool_Check(ptr) != 0 {
            let value = ptr == ffi::Py_True();
            return Ok(value.encode(env));
        }
        if ffi::PyLong_Check(ptr) != 0 {
            return int_to_term(env, obj);
        }
        if ffi::PyFloat_Check(ptr) != 0 {
            return Ok(float_to_term(env, ffi::PyFloat_AsDouble(ptr)));
        }
        if ffi::PyUnicode_Check(ptr) != 0 {
            let mut size: ffi::Py_ssize_t = 0;
            let data = ffi::PyUnicode_AsUTF8AndSize(ptr, &mut size);
            if data.is_null() {
                return Err(PyErr::fetch(obj.py()).into());
            }
            let bytes = std::slice::from_raw_parts(data as *const u8, size as usize);
            return Ok(binary_term(env, bytes));
        }
        if ffi::PyBytes_Check(ptr) != 0 {
            let data = ffi::PyBytes_AsString(ptr);
            let size = ffi::PyBytes_Size(ptr);
            let bytes = std::slice::from_raw_parts(data as *const u8, size as usize);
            return Ok(binary_term(env, bytes));
        }
        if ffi::PyByteArray_Check(ptr) != 0 {
            let data = ffi::PyByteArray_AsString(ptr);
            let size = ffi::PyByteArray_Size(ptr);
            let bytes = std::slice::from_raw_parts(data as *const u8, size as usize);
            return Ok(binary_term(env, bytes));
        }
        if ffi::PyList_Check(ptr) != 0 {
            enter(depth)?;
            let len = ffi::PyList_GET_SIZE(ptr);
            let mut items = Vec::with_capacity(len as usize);
            // Index each time: Python code cannot run during conversion of
            // our own builtin types, but a list subclass's items are still
            // read through the C API, never through a cached pointer.
            for index in 0..len {
                if index >= ffi::PyList_GET_SIZE(ptr) {
                    break;
                }
                // Borrowed: no reference count traffic per item.
                let item = Borrowed::from_ptr(obj.py(), ffi::PyList_GET_ITEM(ptr, index));
                items.push(py_to_term(env, &item, depth + 1)?);
            }
            return Ok(items.encode(env));
        }
        if ffi::PyTuple_Check(ptr) != 0 {
            enter(depth)?;
            let len = ffi::PyTuple_GET_SIZE(ptr);
            let mut items = Vec::with_capacity(len as usize);
            for index in 0..len {
                let item = Borrowed::from_ptr(obj.py(), ffi::PyTuple_GET_ITEM(ptr, index));
                items.push(py_to_term(env, &item, depth + 1)?);
            }
            return Ok(make_tuple(env, &items));
        }
        if ffi::PyDict_Check(ptr) != 0 {
            enter(depth)?;
            return dict_to_term(env, obj.cast::<PyDict>().map_err(PyErr::from)?, depth);
        }
        if ffi::PyAnySet_Check(ptr) != 0 {
            enter(depth)?;
            return set_to_term(env, obj, depth);
        }
    }
    // PyO3's classes exist in the main interpreter only (own-GIL contexts
    // run on sub-interpreters): elsewhere no object is one of them.
    if crate::interpreters::is_main(obj.py()) {
        if let Ok(pid) = obj.cast::<Pid>() {
            return Ok(pid.get().pid.encode(env));
        }
        if let Ok(held) = obj.cast::<OpaqueTerm>() {
            return Ok(held.get().to_term(env));
        }
        if let Some(buffer) = crate::buffer::to_term(env, obj) {
            return Ok(buffer);
        }
    } else if let Some(pid) = crate::interpreters::pid_value(obj) {
        return Ok(pid.encode(env));
    }
    if let Some(channel) = crate::capsule::to_term(env, obj) {
        return Ok(channel);
    }
    if let Some(term) = other_forms(env, obj, depth) {
        return term;
    }
    // No Elixir form: a handle to the live object.
    Ok(handles::to_term(env, obj))
}

/// The Elixir forms of types beyond the builtins (guides/type-conversion.md):
/// arrays when asked for, registered decoders, dates and times, numpy
/// scalars, decimals and UUIDs. `None`: the object stays a handle.
fn other_forms<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>, depth: usize) -> Option<Result<Term<'a>>> {
    if let Some(array) = arrays::to_term(env, obj) {
        return Some(array);
    }
    let replaced = custom::replacement(obj).or_else(|| numeric::replacement(obj));
    if let Some(replaced) = replaced {
        return Some(
            enter(depth)
                .and_then(|()| Ok(replaced?))
                .and_then(|value| py_to_term(env, &value, depth + 1)),
        );
    }
    datetime::to_term(env, obj).or_else(|| numeric::to_term(env, obj))
}
fn float_to_term(env: Env<'_>, value: f64) -> Term<'_> {
    if value.is_nan() {
        atoms::nan().to_term(env)
    } else if value == f64::INFINITY {
        atoms::infinity().to_term(env)
    } else if value == f64::NEG_INFINITY {
        atoms::neg_infinity().to_term(env)
    } else {
        value.encode(env)
    }
}

fn int_to_term<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>) -> Result<Term<'a>> {
    let mut overflow: std::ffi::c_int = 0;
    // SAFETY: obj is an int (checked by the caller); the GIL is held.
    let value = unsafe { ffi::PyLong_AsLongLongAndOverflow(obj.as_ptr(), &mut overflow) };
    if overflow == 0 {
        if value == -1 {
            if let Some(err) = PyErr::take(obj.py()) {
                return Err(err.into());
            }
        }
        return Ok(value.encode(env));
    }
    let negative = overflow < 0;
    let magnitude = if negative { obj.neg()? } else { obj.clone() };
    let bits: u64 = magnitude.call_method0("bit_length")?.extract()?;
    let nbytes = bits.div_ceil(8);
    let bytes = magnitude.call_method1("to_bytes", (nbytes, "little"))?;
    let bytes = bytes.cast::<PyBytes>().map_err(PyErr::from)?;
    let etf = bignum_etf(negative, bytes.as_bytes()).ok_or(ConvertError::IntegerTooLarge(bits))?;
    match env.binary_to_term(&etf) {
        Some((term, _)) => Ok(term),
        None => Err(ConvertError::IntegerTooLarge(bits)),
    }
}

fn dict_to_term<'a>(env: Env<'a>, dict: &Bound<'_, PyDict>, depth: usize) -> Result<Term<'a>> {
    let len = dict.len();
    let mut keys = Vec::with_capacity(len);
    let mut values = Vec::with_capacity(len);
    // Distinct str keys stay distinct as binaries, distinct ints as
    // integers, and the two never meet: such a dict cannot make duplicate
    // keys. (Other keys can: "a" and b"a" both become <<"a">>.)
    let mut keys_unique = true;
    for (key, value) in dict.iter() {
        // SAFETY: `key` is a live object and the GIL is held.
        keys_unique &= unsafe {
            ffi::PyUnicode_CheckExact(key.as_ptr()) != 0
                || ffi::PyLong_CheckExact(key.as_ptr()) != 0
        };
        keys.push(py_to_term(env, &key, depth + 1)?);
        values.push(py_to_term(env, &value, depth + 1)?);
    }
    if keys_unique && large_maps_from_arrays() {
        return Term::map_from_term_arrays(env, &keys, &values)
            .map_err(|_| ConvertError::DuplicateKey);
    }
    make_map(env, &keys, &values)
}

/// Whether this VM builds a map of any size from arrays safely on a thread
/// that is not a scheduler: OTP 27.3 and later (erlang/otp#8208).
static LARGE_MAPS_FROM_ARRAYS: AtomicBool = AtomicBool::new(false);

/// Declares the running OTP's version (`"27.3.4"`); called once at start.
pub(crate) fn set_otp_version(version: &str) {
    let mut parts = version
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    LARGE_MAPS_FROM_ARRAYS.store((major, minor) >= (27, 3), Ordering::Relaxed);
}

fn large_maps_from_arrays() -> bool {
    LARGE_MAPS_FROM_ARRAYS.load(Ordering::Relaxed)
}

/// Largest map built in one call with `enif_make_map_from_arrays` (a flatmap).
const FLATMAP_MAX: usize = 32;

/// Builds a map, refusing duplicate keys.
///
/// Larger maps are grown with `enif_make_map_put`, because OTP 25.1 to 27.2
/// crash when a thread that is not a scheduler builds a map of more than 128
/// keys from arrays (erlang/otp#8208), and `from_arrays` does not detect
/// duplicates once a map is larger than a flatmap (erlang/otp#10975). A put
/// that does not grow the map found a duplicate. (Keys known to be distinct
/// skip this on OTP 27.3 and later: see `dict_to_term`.)
fn make_map<'a>(env: Env<'a>, keys: &[Term<'a>], values: &[Term<'a>]) -> Result<Term<'a>> {
    let split = keys.len().min(FLATMAP_MAX);
    let mut map = Term::map_from_term_arrays(env, &keys[..split], &values[..split])
        .map_err(|_| ConvertError::DuplicateKey)?;
    let mut size = split;
    for (key, value) in keys[split..].iter().zip(&values[split..]) {
        map = map
            .map_put(*key, *value)
            .map_err(|_| ConvertError::DuplicateKey)?;
        size += 1;
        if map.map_size().map_err(|_| ConvertError::DuplicateKey)? != size {
            return Err(ConvertError::DuplicateKey);
        }
    }
    Ok(map)
}

fn set_to_term<'a>(env: Env<'a>, set: &Bound<'_, PyAny>, depth: usize) -> Result<Term<'a>> {
    let mut keys = Vec::new();
    let iter = if let Ok(s) = set.cast::<PySet>() {
        s.iter().collect::<Vec<_>>()
    } else if let Ok(s) = set.cast::<PyFrozenSet>() {
        s.iter().collect::<Vec<_>>()
    } else {
        set.try_iter()?.collect::<PyResult<Vec<_>>>()?
    };
    for element in iter {
        keys.push(py_to_term(env, &element, depth + 1)?);
    }
    let empty = Term::list_new_empty(env);
    let values = vec![empty; keys.len()];
    let elements = make_map(env, &keys, &values)?;
    Ok(mapset::build(env, elements))
}
