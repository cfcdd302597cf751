//! Large results as one external-format binary, which the caller decodes
//! with `:erlang.binary_to_term/2`: a BIF that yields, so no scheduler is
//! blocked, and that builds maps of any size on the caller's own heap
//! (off-scheduler map building is slow on OTP before 27.3, where a large
//! map must be grown key by key: see `to_term`).
//!
//! Only plain data takes this route: None, bools, ints, floats, str,
//! bytes, bytearray, lists, tuples, dicts and sets of them, which the
//! shared codec (`crate::etf`) writes exactly as `to_term` builds them.
//! Anything else (a pid, a handle, a date, an object a decoder replaces)
//! makes the writer stop, and the value goes the direct way, which also
//! gives every error its usual form.

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;

use crate::etf::{Forms, Reader, Writer};

/// Results whose maps hold fewer items than this (counted as
/// [`map_items`] counts) are converted directly. Only maps pay for the
/// detour (bench/external_route.exs, paired): 20,000- and 100,000-key maps
/// return in about half the time on OTP 25, and in 0.7x and 0.97x of it on
/// OTP 27.3, where the direct way builds them from arrays; a
/// 1,000,000-integer list gained nothing and peaked higher (a list is
/// cheap to build off-scheduler, and decoding it costs as much).
const THRESHOLD: usize = 20_000;

/// The external form of `{:ok, value}`, when `value` is large and plain.
pub(crate) fn ok_result(value: &Bound<'_, PyAny>) -> Option<Vec<u8>> {
    if map_items(value) < THRESHOLD {
        return None;
    }
    let mut writer = Writer::<PlainOnly>::term();
    writer.tuple(2);
    writer.atom("ok");
    writer.python(value).ok()?;
    Some(writer.buf)
}

/// The items of `value` when it is a dict or a set, or else of the dicts
/// and sets among the first few items of a list or tuple: a cheap look
/// that finds both a big map and `{:ok, big_map}`.
fn map_items(value: &Bound<'_, PyAny>) -> usize {
    const LOOK_AT: usize = 8;
    let map_len = |obj: &Bound<'_, PyAny>| -> usize {
        let ptr = obj.as_ptr();
        // SAFETY: `ptr` is a live object and the GIL is held; PyObject_Size
        // of a dict or set reads its size, running no Python code.
        unsafe {
            if ffi::PyDict_Check(ptr) != 0 || ffi::PyAnySet_Check(ptr) != 0 {
                ffi::PyObject_Size(ptr).max(0) as usize
            } else {
                0
            }
        }
    };
    let ptr = value.as_ptr();
    // SAFETY: as above; items are borrowed by index within the size.
    unsafe {
        let (len, item): (
            isize,
            unsafe fn(*mut ffi::PyObject, isize) -> *mut ffi::PyObject,
        ) = if ffi::PyList_Check(ptr) != 0 {
            (ffi::PyList_GET_SIZE(ptr), list_item)
        } else if ffi::PyTuple_Check(ptr) != 0 {
            (ffi::PyTuple_GET_SIZE(ptr), tuple_item)
        } else {
            return map_len(value);
        };
        (0..len.min(LOOK_AT as isize))
            .map(|index| map_len(&pyo3::Borrowed::from_ptr(value.py(), item(ptr, index))))
            .sum()
    }
}

/// `PyList_GET_ITEM` as a function. SAFETY: the caller passes a list and an
/// index within its size, with the GIL held.
unsafe fn list_item(list: *mut ffi::PyObject, index: isize) -> *mut ffi::PyObject {
    ffi::PyList_GET_ITEM(list, index)
}

/// `PyTuple_GET_ITEM` as a function. SAFETY: as [`list_item`], for a tuple.
unsafe fn tuple_item(tuple: *mut ffi::PyObject, index: isize) -> *mut ffi::PyObject {
    ffi::PyTuple_GET_ITEM(tuple, index)
}

/// Forms for plain data only: every other object stops the writer.
struct PlainOnly;

impl Forms for PlainOnly {
    /// The VM's own limit on bignums is far above this; larger ones take
    /// the direct way, which reports one beyond the limit as an error.
    const MAX_BIGNUM_BYTES: usize = 1 << 16;

    fn pid<'py>(_: Python<'py>, _: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        Err(not_plain())
    }

    fn opaque<'py>(_: Python<'py>, _: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        Err(not_plain())
    }

    fn handle<'py>(_: Python<'py>, _: &mut Reader<'_, Self>) -> PyResult<Bound<'py, PyAny>> {
        Err(not_plain())
    }

    fn write_other(_: &mut Writer<Self>, _: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(not_plain())
    }
}

fn not_plain() -> PyErr {
    PyTypeError::new_err("not plain data")
}
