//! Elixir binaries as Python buffers, without a copy: `{:buffer, binary}`
//! and `%ErlangPython.Array{}` become a read-only `memoryview` over the
//! BEAM's own bytes. [`BinaryView`] holds a reference to the binary for as
//! long as Python holds a view of it. (The other way is `arrays.rs`.)

use std::ffi::CString;

use pyo3::exceptions::{PyBufferError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use rustler::types::tuple::get_tuple;
use rustler::{Binary, Term};

use super::array_format::{atoms as array, format_of, memoryview};
use super::error::Result;
use crate::terms::HeldTerm;

mod atoms {
    rustler::atoms! {
        buffer,
    }
}

/// A read-only buffer over an Elixir binary's own bytes, with a format and
/// a shape. It holds a reference to the binary (its own process-independent
/// copy of the term, which for a large binary shares the bytes rather than
/// copying them), so the bytes live as long as any view of it.
#[pyclass(module = "erlang", name = "BinaryView", frozen)]
pub(crate) struct BinaryView {
    /// Never read: owning it keeps `data` alive.
    _binary: HeldTerm,
    data: *const u8,
    len: usize,
    format: CString,
    itemsize: usize,
    shape: Vec<ffi::Py_ssize_t>,
    strides: Vec<ffi::Py_ssize_t>,
}

// SAFETY: `data` points into the binary `held` keeps alive; binaries are
// immutable, so concurrent reads from any thread are sound. Everything else
// is owned, immutable data.
unsafe impl Send for BinaryView {}
// SAFETY: as above.
unsafe impl Sync for BinaryView {}

#[pymethods]
impl BinaryView {
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: std::os::raw::c_int,
    ) -> PyResult<()> {
        if flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err(
                "an Elixir binary is read-only in Python",
            ));
        }
        let this = slf.get();
        let ndim = this.shape.len();
        // SAFETY: `view` is the valid Py_buffer the caller passed. Every
        // pointer stored in it points into `this` (format, shape, strides)
        // or the binary it holds (buf), which live as long as `view.obj`,
        // a new reference to `slf` released by PyBuffer_Release.
        unsafe {
            (*view).obj = slf.clone().into_any().into_ptr();
            (*view).buf = this.data as *mut std::os::raw::c_void;
            (*view).len = this.len as ffi::Py_ssize_t;
            (*view).readonly = 1;
            (*view).itemsize = this.itemsize as ffi::Py_ssize_t;
            (*view).format = if flags & ffi::PyBUF_FORMAT == ffi::PyBUF_FORMAT {
                this.format.as_ptr() as *mut std::os::raw::c_char
            } else {
                std::ptr::null_mut()
            };
            let nd = flags & ffi::PyBUF_ND == ffi::PyBUF_ND;
            (*view).ndim = if nd { ndim as std::os::raw::c_int } else { 1 };
            (*view).shape = if nd {
                this.shape.as_ptr() as *mut ffi::Py_ssize_t
            } else {
                std::ptr::null_mut()
            };
            (*view).strides = if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES {
                this.strides.as_ptr() as *mut ffi::Py_ssize_t
            } else {
                std::ptr::null_mut()
            };
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}

    fn __len__(&self) -> usize {
        self.len
    }

    fn __repr__(&self) -> String {
        format!(
            "<erlang.BinaryView format={:?} shape={:?}>",
            self.format, self.shape
        )
    }
}

impl BinaryView {
    fn new(binary: Term<'_>, format: &str, itemsize: usize, shape: Vec<usize>) -> PyResult<Self> {
        let held = HeldTerm::new(binary);
        let (data, len) = held.with_term(|term| {
            let bin = Binary::from_term(term).map(|bin| (bin.as_ptr(), bin.len()));
            bin.map_err(|_| PyTypeError::new_err("expected a binary"))
        })?;
        let count: usize = shape.iter().product();
        if count * itemsize != len {
            return Err(PyValueError::new_err(format!(
                "an array of shape {shape:?} and {itemsize}-byte items needs {} bytes, the data has {len}",
                count * itemsize
            )));
        }
        // C order: the last dimension varies fastest.
        let mut strides = vec![0 as ffi::Py_ssize_t; shape.len()];
        let mut step = itemsize;
        for (index, extent) in shape.iter().enumerate().rev() {
            strides[index] = step as ffi::Py_ssize_t;
            step *= (*extent).max(1);
        }
        Ok(BinaryView {
            _binary: held,
            data,
            len,
            format: CString::new(format).expect("formats have no NUL"),
            itemsize,
            shape: shape.iter().map(|&n| n as ffi::Py_ssize_t).collect(),
            strides,
        })
    }
}

/// `memoryview(BinaryView(...))`: what Python code is given.
fn view_of<'py>(py: Python<'py>, view: BinaryView) -> PyResult<Bound<'py, PyAny>> {
    memoryview(Bound::new(py, view)?.as_any())
}

/// Conversion hook for tuples: `{:buffer, binary}` as a read-only
/// `memoryview` of bytes (format `B`) over the binary itself.
pub(super) fn buffer_tuple<'py>(
    py: Python<'py>,
    items: &[Term<'_>],
) -> Option<Result<Bound<'py, PyAny>>> {
    if items.len() != 2 || items[0] != atoms::buffer().to_term(items[0].get_env()) {
        return None;
    }
    let len = Binary::from_term(items[1]).ok()?.len();
    Some(
        BinaryView::new(items[1], "B", 1, vec![len])
            .and_then(|view| view_of(py, view))
            .map_err(Into::into),
    )
}

/// Conversion hook for maps: `%ErlangPython.Array{}` as a read-only,
/// typed and shaped `memoryview` over its `data`.
pub(super) fn from_array_struct<'py>(
    py: Python<'py>,
    term: Term<'_>,
) -> Option<Result<Bound<'py, PyAny>>> {
    let env = term.get_env();
    if term.map_get(crate::atoms::__struct__()).ok()? != array::array_module().to_term(env) {
        return None;
    }
    Some(array_view(py, term).map_err(Into::into))
}

fn array_view<'py>(py: Python<'py>, term: Term<'_>) -> PyResult<Bound<'py, PyAny>> {
    let bad = |what: &str| PyTypeError::new_err(format!("ErlangPython.Array: {what}"));
    let data = term.map_get(array::data()).map_err(|_| bad("no data"))?;
    if Binary::from_term(data).is_err() {
        return Err(bad("data must be a binary"));
    }
    let kind = term
        .map_get(array::type_())
        .ok()
        .and_then(|t| t.decode::<(rustler::Atom, usize)>().ok())
        .ok_or_else(|| bad("type must be {kind, bits}, such as {:f, 64}"))?;
    let format =
        format_of(kind.0, kind.1).ok_or_else(|| bad("type has no Python buffer format"))?;
    let shape_term = term.map_get(array::shape()).map_err(|_| bad("no shape"))?;
    let shape = get_tuple(shape_term)
        .map_err(|_| bad("shape must be a tuple of sizes"))?
        .into_iter()
        .map(|n| n.decode::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| bad("shape must be a tuple of sizes"))?;
    view_of(py, BinaryView::new(data, format, kind.1 / 8, shape)?)
}
