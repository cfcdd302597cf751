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

/// Results whose maps hold at least this many items (counted as
/// [`map_items`] counts) take this route. Paired runs of an existing dict
/// of N str keys returned (median of 31 calls, direct / this route, in us;
/// load 4-9):
///
/// | N      | OTP 25 (puts per key) | OTP 27.3 (from arrays) |
/// |--------|-----------------------|------------------------|
/// | 64     | 23-30 / 16-23         | 17-23 / 14-18          |
/// | 129    | 46-71 / 27-34         | 34-42 / 26-29          |
/// | 1,000  | 376-600 / 163-170     | 258-342 / 148-160      |
/// | 19,999 | 16,467-18,314 / 4,509-4,894 | 5,538-10,026 / 3,988-8,103 |
///
/// So every map past a flatmap's size gains, on both; at 33-40 keys the
/// two ways cost the same. (Until this table the threshold was 20,000,
/// and a 19,999-key map took 4x as long as a 20,000-key one on OTP 25.)
/// Data without maps gains nothing (a 1,000,000-integer list decodes as
/// slowly as it builds off-scheduler, and peaked higher), so it stays
/// direct.
const THRESHOLD: usize = 64;

/// Most bytes of external format a thread keeps between results (16 MB):
/// the memory of the last large result is reused by the next one.
const KEEP_BYTES: usize = 16 << 20;

thread_local! {
    /// The vector the last large result on this thread was written in.
    static BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Gives `with` the external form of `{:ok, value}` when `value` is
/// large and plain, and returns what it returns; `None` otherwise.
pub(crate) fn ok_result<R>(value: &Bound<'_, PyAny>, with: impl FnOnce(&[u8]) -> R) -> Option<R> {
    if map_items(value, 0) < THRESHOLD {
        return None;
    }
    let mut writer = Writer::<PlainOnly>::term_in(BUFFER.take());
    writer.tuple(2);
    writer.atom("ok");
    let written = writer.python(value).ok().map(|()| with(&writer.buf));
    if writer.buf.capacity() <= KEEP_BYTES {
        BUFFER.set(writer.buf);
    }
    written
}

/// The items of `value` when it is a dict or a set, plus those of the
/// dicts and sets among the first few items (or dict values) of a list,
/// tuple or dict, two levels down: a cheap look that finds a big map, a
/// big map in `{:ok, map}` or in `%{"data" => map}`, and a list of maps.
fn map_items(value: &Bound<'_, PyAny>, depth: usize) -> usize {
    const LOOK_AT: isize = 8;
    const LEVELS: usize = 2;
    let py = value.py();
    let ptr = value.as_ptr();
    let nested = |item: *mut ffi::PyObject| -> usize {
        if depth >= LEVELS {
            return 0;
        }
        // SAFETY: `item` is a borrowed item of `value`, alive while `value`
        // is, and the GIL is held.
        map_items(unsafe { &pyo3::Borrowed::from_ptr(py, item) }, depth + 1)
    };
    // SAFETY: `ptr` is a live object and the GIL is held. PyDict_Size and
    // PySet_Size read the builtin count (never a subclass's __len__) and
    // PyDict_Next walks the builtin storage, so no Python code runs and
    // nothing changes the containers while they are read; list and tuple
    // items are borrowed by index within the current size.
    unsafe {
        if ffi::PyDict_Check(ptr) != 0 {
            let mut total = ffi::PyDict_Size(ptr).max(0) as usize;
            let mut position: ffi::Py_ssize_t = 0;
            let mut key = std::ptr::null_mut();
            let mut item = std::ptr::null_mut();
            let mut looked = 0;
            while looked < LOOK_AT && ffi::PyDict_Next(ptr, &mut position, &mut key, &mut item) != 0
            {
                total += nested(item);
                looked += 1;
            }
            return total;
        }
        if ffi::PyAnySet_Check(ptr) != 0 {
            return ffi::PySet_Size(ptr).max(0) as usize;
        }
        let (len, item): (
            isize,
            unsafe fn(*mut ffi::PyObject, isize) -> *mut ffi::PyObject,
        ) = if ffi::PyList_Check(ptr) != 0 {
            (ffi::PyList_GET_SIZE(ptr), list_item)
        } else if ffi::PyTuple_Check(ptr) != 0 {
            (ffi::PyTuple_GET_SIZE(ptr), tuple_item)
        } else {
            return 0;
        };
        (0..len.min(LOOK_AT))
            .map(|index| nested(item(ptr, index)))
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
