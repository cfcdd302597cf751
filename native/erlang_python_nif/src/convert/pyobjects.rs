//! Python objects made fast from plain data: `str` or `bytes` from a
//! binary's bytes, and dicts sized for their entries up front. Shared by
//! the converters that read terms (`to_python`) and packed arguments
//! (`packed`), so both make the same objects.
//!
//! A copy of many megabytes goes into memory the allocator has just mapped,
//! so it faults each 4 KiB page in on first touch, which cost more than the
//! copy itself on the development VM. The buffer's whole 2 MiB pages are
//! asked to be huge pages first ([`copy_into_new`]). `{:bytes, <<100 MB>>}`
//! to Python, 2 rounds alternated with the build before: 24,416 minor
//! faults a call before, 399 after; median 66-76 ms before, 30-33 after;
//! a 100 MB ASCII binary to `str` 74-82 ms before, 42-53 after.

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
        Err(_) => bytes_to_py(py, data)?,
    })
}

/// `bytes` holding a copy of `data`.
pub(super) fn bytes_to_py<'py>(py: Python<'py>, data: &[u8]) -> Result<Bound<'py, PyAny>> {
    if data.len() < HUGE_PAGE_COPY {
        return Ok(PyBytes::new(py, data).into_any());
    }
    // SAFETY: the GIL is held; PyBytes_FromStringAndSize with a NULL source
    // returns a new reference to a bytes object of `data.len()` bytes whose
    // contents are left for the caller to fill, or NULL with an exception
    // set. Its buffer (PyBytes_AS_STRING) is `data.len()` bytes, apart from
    // `data`, and no other code sees the object before it is returned.
    unsafe {
        let bytes = ffi::PyBytes_FromStringAndSize(std::ptr::null(), data.len() as ffi::Py_ssize_t);
        let bytes = Bound::from_owned_ptr_or_err(py, bytes)?;
        copy_into_new(ffi::PyBytes_AS_STRING(bytes.as_ptr()) as *mut u8, data);
        Ok(bytes)
    }
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
        copy_into_new(ffi::PyUnicode_DATA(text.as_ptr()) as *mut u8, data);
        Ok(text)
    }
}

/// From this many bytes a new object's buffer is asked for huge pages.
/// Smaller buffers often come from memory the allocator has touched before,
/// and a 10 MB binary already went in at 9-10 GB/s.
const HUGE_PAGE_COPY: usize = 8 << 20;

/// A transparent huge page: 2 MiB on x86-64 and on arm64 with 4 KiB pages.
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

/// Copies `data` into `dst`, the buffer of an object made to hold it; a
/// large one is asked to be backed by huge pages first (see the module
/// doc). Only whole huge pages inside the buffer are asked, so nothing else
/// in the process changes; where transparent huge pages are off (`never`)
/// or the call fails, the copy is the same as before.
///
/// # Safety
/// `dst` must be valid for writes of `data.len()` bytes and must not
/// overlap `data`.
unsafe fn copy_into_new(dst: *mut u8, data: &[u8]) {
    #[cfg(target_os = "linux")]
    if data.len() >= HUGE_PAGE_COPY {
        let start = (dst as usize).next_multiple_of(HUGE_PAGE);
        let end = (dst as usize + data.len()) / HUGE_PAGE * HUGE_PAGE;
        if end > start {
            // SAFETY: [start, end) lies inside `dst`'s buffer (the caller's
            // contract), and MADV_HUGEPAGE changes only how the kernel backs
            // those pages, never their contents; a failure is ignored, as
            // the copy needs nothing from it.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    // SAFETY: the caller's contract.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
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
