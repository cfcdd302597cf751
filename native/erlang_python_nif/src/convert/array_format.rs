//! What `%ErlangPython.Array{}` and Python buffers have in common, for both
//! ways (`arrays.rs` exports Python buffers, `binary_view.rs` views Elixir
//! binaries): the struct's atoms, the Nx-style types (`{:f, 64}`) against
//! Python's buffer formats, and making a `memoryview`.

use pyo3::ffi;
use pyo3::prelude::*;
use rustler::Atom;

pub(super) mod atoms {
    rustler::atoms! {
        array_module = "Elixir.ErlangPython.Array",
        data,
        shape,
        type_ = "type",
        s,
        u,
        f,
        c,
    }
}

/// The buffer format of an Nx-style type (`{:f, 64}` is `"d"`); `None` for
/// a type Python's buffers have no format for.
pub(super) fn format_of(kind: Atom, bits: usize) -> Option<&'static str> {
    let kind = [atoms::s(), atoms::u(), atoms::f(), atoms::c()]
        .into_iter()
        .zip(['s', 'u', 'f', 'c'])
        .find_map(|(atom, letter)| (atom == kind).then_some(letter))?;
    Some(match (kind, bits) {
        ('s', 8) => "b",
        ('s', 16) => "h",
        ('s', 32) => "i",
        ('s', 64) => "q",
        ('u', 8) => "B",
        ('u', 16) => "H",
        ('u', 32) => "I",
        ('u', 64) => "Q",
        ('f', 16) => "e",
        ('f', 32) => "f",
        ('f', 64) => "d",
        ('c', 64) => "Zf",
        ('c', 128) => "Zd",
        _ => return None,
    })
}

/// The Nx-style type of a buffer format (`{:f, 64}`): `None` for formats
/// with no such type (structs, pointers, big-endian data).
pub(super) fn nx_type(format: &str, itemsize: usize) -> Option<(Atom, usize)> {
    let code = match format.chars().next() {
        Some('@' | '=' | '<') => &format[1..],
        // Non-native byte order is fine only for single bytes.
        Some('>' | '!') if itemsize == 1 => &format[1..],
        Some('>' | '!') => return None,
        _ => format,
    };
    let kind = match code {
        "b" | "h" | "i" | "l" | "q" | "n" => atoms::s(),
        "B" | "H" | "I" | "L" | "Q" | "N" | "?" | "c" => atoms::u(),
        "e" | "f" | "d" => atoms::f(),
        "Zf" | "Zd" => atoms::c(),
        _ => return None,
    };
    Some((kind, itemsize * 8))
}

/// `memoryview(obj)`.
pub(super) fn memoryview<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `obj` is live and the GIL is held; the result is a new
    // reference or NULL with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(obj.py(), ffi::PyMemoryView_FromObject(obj.as_ptr())) }
}
