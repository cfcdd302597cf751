//! Python objects made fast from plain data: `str` or `bytes` from a
//! binary's bytes, and dicts sized for their entries up front. Shared by
//! the converters that read terms (`to_python`) and packed arguments
//! (`packed`), so both make the same objects.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::error::Result;

/// A binary's Python value: `str` when it is valid UTF-8, `bytes`
/// otherwise.
pub(super) fn binary_to_py<'py>(py: Python<'py>, data: &[u8]) -> Result<Bound<'py, PyAny>> {
    if data.is_ascii() {
        return ascii_to_py(py, data);
    }
    Ok(match std::str::from_utf8(data) {
        Ok(text) => PyString::new(py, text).into_any(),
        Err(_) => PyBytes::new(py, data).into_any(),
    })
}

/// A `str` of ASCII bytes, copied straight in: the commonest binary (map
/// keys, identifiers, most text) needs neither Rust's UTF-8 check nor
/// Python's decoder, which would each read it once more.
fn ascii_to_py<'py>(py: Python<'py>, data: &[u8]) -> Result<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held; PyUnicode_New returns a new reference (a
    // compact ASCII string of `data.len()` characters, since the maximum
    // character is 127) or NULL with an exception set. Its data holds
    // exactly `data.len()` one-byte characters (and the NUL after them,
    // written by PyUnicode_New), which the copy fills; `data` is ASCII, as
    // such a string must hold.
    unsafe {
        let text = ffi::PyUnicode_New(data.len() as ffi::Py_ssize_t, 127);
        let text = Bound::from_owned_ptr_or_err(py, text)?;
        std::ptr::copy_nonoverlapping(
            data.as_ptr(),
            ffi::PyUnicode_DATA(text.as_ptr()) as *mut u8,
            data.len(),
        );
        Ok(text)
    }
}

/// An empty dict with room for `size` entries, so filling it resizes at
/// most once (each resize rehashes every entry so far; CPython caps the
/// presized table at 2^17 slots, so past 87,381 entries it resizes once). CPython exports the
/// presizing constructor without declaring it stable, so it is looked up
/// once at run time; without it, a plain dict.
pub(super) fn presized_dict(py: Python<'_>, size: usize) -> Result<Bound<'_, PyAny>> {
    type NewPresized = unsafe extern "C" fn(ffi::Py_ssize_t) -> *mut ffi::PyObject;
    static NEW_PRESIZED: std::sync::OnceLock<Option<NewPresized>> = std::sync::OnceLock::new();
    let new_presized = NEW_PRESIZED.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads
        // the loaded objects' symbol tables (libpython is loaded RTLD_GLOBAL
        // before Python starts, see `interpreter`). A non-NULL result is the
        // address of `_PyDict_NewPresized`, whose signature (3.8 to 3.13) is
        // `PyObject *(Py_ssize_t minused)`.
        unsafe {
            let symbol = libc::dlsym(libc::RTLD_DEFAULT, c"_PyDict_NewPresized".as_ptr());
            (!symbol.is_null())
                .then(|| std::mem::transmute::<*mut libc::c_void, NewPresized>(symbol))
        }
    });
    // Small dicts gain nothing from it.
    let ptr = match new_presized {
        Some(new_presized) if size > 8 => {
            // SAFETY: the GIL is held; returns a new reference or NULL with an
            // exception set (handled below).
            unsafe { new_presized(size as ffi::Py_ssize_t) }
        }
        // SAFETY: the GIL is held; a new reference or NULL with an exception.
        _ => unsafe { ffi::PyDict_New() },
    };
    // SAFETY: `ptr` is a new reference or NULL with an exception set.
    Ok(unsafe { Bound::from_owned_ptr_or_err(py, ptr)? })
}
