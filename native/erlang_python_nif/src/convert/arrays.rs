//! Arrays without copies, both ways.
//!
//! * Python -> Elixir, when asked (`arrays: true`, [`ArraysAsked`]):
//!   an object with the buffer protocol (a numpy array, `array.array`, a
//!   `memoryview`) becomes `%ErlangPython.Array{data:, type:, shape:}`,
//!   whose `data` is a resource binary pointing at the Python buffer
//!   itself. The resource ([`Export`]) owns a `memoryview` that keeps the
//!   buffer exported; when the binary is garbage-collected the resource's
//!   destructor gives that `memoryview` up without the GIL to the
//!   interpreter that made it, whose thread decrements it when it next
//!   takes its GIL (as for object handles, see `handles` and
//!   `interpreters::release`): no scheduler ever waits for a GIL, and the
//!   buffer is released under the right one.
//! * Elixir -> Python: `{:buffer, binary}` and `%ErlangPython.Array{}`
//!   become a read-only `memoryview` over the BEAM's own bytes
//!   (`binary_view.rs`).
//!
//! An Elixir binary must never change. So a buffer Python could still write
//! is exported without a copy only when nothing but the object itself can
//! write it: a numpy array owning its data is made read-only
//! (`flags.writeable = False`) first; any other writable buffer (a numpy
//! view into another array, an `array.array`, a writable `memoryview`) is
//! copied once.

use std::cell::Cell;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rustler::types::tuple::make_tuple;
use rustler::{Encoder, Env, NewBinary, ResourceArc, Term};

use super::array_format::{atoms, memoryview, nx_type};
use super::error::Result;
use crate::interpreters;
use crate::terms::elixir_struct;

thread_local! {
    /// Whether the conversion running on this thread turns buffers into
    /// `%ErlangPython.Array{}` (set by [`ArraysAsked`]).
    static ARRAYS: Cell<bool> = const { Cell::new(false) };
}

/// While alive, conversions on this thread turn buffers into arrays
/// (`to_term::to_term_with_arrays`); dropping it restores what was before.
pub(super) struct ArraysAsked(bool);

impl ArraysAsked {
    /// Arrays (`asked`) or not, until dropped. Every conversion sets it: a
    /// request served on this thread while another's conversion waits (a
    /// decoder calling Elixir) must not inherit that one's choice.
    pub(super) fn new(asked: bool) -> Self {
        ArraysAsked(ARRAYS.with(|flag| flag.replace(asked)))
    }
}

impl Drop for ArraysAsked {
    fn drop(&mut self) {
        ARRAYS.with(|flag| flag.set(self.0));
    }
}

/// Conversion hook: the array for `obj` when arrays were asked for and it
/// has the buffer protocol; `None` otherwise.
pub(super) fn to_term<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>) -> Option<Result<Term<'a>>> {
    if !ARRAYS.with(Cell::get) {
        return None;
    }
    // SAFETY: `obj` is a live object and the GIL is held.
    if unsafe { ffi::PyObject_CheckBuffer(obj.as_ptr()) } == 0 {
        return None;
    }
    Some(export(env, obj).map_err(Into::into))
}

/// What an exported binary points into: a `memoryview` that keeps the
/// Python buffer exported (and its object alive) while the binary lives.
pub(crate) struct Export {
    /// Given up by the resource's destructor, without the GIL, to the
    /// interpreter that made it (`interpreters::release`), whose own thread
    /// decrements it: never PyO3's process-wide pool, which any
    /// interpreter's thread may drain (own-GIL contexts).
    view: Option<Py<PyAny>>,
    interpreter: i64,
    data: *const u8,
    len: usize,
}

impl Drop for Export {
    fn drop(&mut self) {
        if let Some(view) = self.view.take() {
            interpreters::release(self.interpreter, view);
        }
    }
}

// SAFETY: `data` points into memory owned by the buffer `_view` keeps
// exported; it is only ever read (as the bytes of an immutable binary),
// from any thread, and it stays valid until the resource is destroyed.
// `Py<PyAny>` is itself Send + Sync.
unsafe impl Send for Export {}
// SAFETY: as above: shared reads of bytes nobody writes.
unsafe impl Sync for Export {}

#[rustler::resource_impl]
impl rustler::Resource for Export {}

/// The layout of a C-contiguous buffer, read from its `Py_buffer`.
struct Layout {
    format: String,
    itemsize: usize,
    shape: Vec<usize>,
    data: *const u8,
    len: usize,
}

fn export<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>) -> PyResult<Term<'a>> {
    let view = exportable_view(obj)?;
    let layout = layout(&view)?;
    let kind = nx_type(&layout.format, layout.itemsize).ok_or_else(|| {
        PyTypeError::new_err(format!(
            "a buffer of format {:?} has no ErlangPython.Array type",
            layout.format
        ))
    })?;
    let data = if layout.len == 0 {
        let empty: Term<'a> = NewBinary::new(env, 0).into();
        empty
    } else {
        let resource = ResourceArc::new(Export {
            interpreter: interpreters::current(obj.py()),
            view: Some(view.unbind()),
            data: layout.data,
            len: layout.len,
        });
        // SAFETY: `data`/`len` describe the bytes of the buffer the
        // resource's memoryview keeps exported (so they neither move nor
        // are freed) until the resource, which the binary references, is
        // destroyed; nothing writes them (see `exportable_view`).
        resource
            .make_binary(env, |export| unsafe {
                std::slice::from_raw_parts(export.data, export.len)
            })
            .to_term(env)
    };
    let shape: Vec<Term<'a>> = layout.shape.iter().map(|n| n.encode(env)).collect();
    Ok(elixir_struct(
        env,
        atoms::array_module(),
        &[
            (atoms::data(), data),
            (atoms::type_(), kind.encode(env)),
            (atoms::shape(), make_tuple(env, &shape)),
        ],
    ))
}

/// A C-contiguous `memoryview` of `obj` whose bytes nobody can write any
/// more: the object's own buffer when that holds, otherwise a copy.
fn exportable_view<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let mut view = memoryview(obj)?;
    let readonly: bool = view.getattr("readonly")?.extract()?;
    let contiguous: bool = view.getattr("c_contiguous")?.extract()?;
    if !readonly && contiguous && owns_numpy_data(obj)? {
        // Nothing else writes an array's own data once it is read-only
        // (views made earlier aside: documented).
        obj.getattr("flags")?.setattr("writeable", false)?;
        view = memoryview(obj)?;
    } else if !readonly || !contiguous {
        // One copy, in C order, then exported from an immutable bytes.
        let bytes = view
            .call_method1("tobytes", ("C",))?
            .cast_into::<PyBytes>()?;
        let format = view.getattr("format")?;
        let shape = view.getattr("shape")?;
        let copy = memoryview(bytes.as_any())?;
        view = if view.getattr("ndim")?.extract::<usize>()? == 0 {
            copy.call_method1("cast", (format, pyo3::types::PyTuple::empty(py)))?
        } else {
            copy.call_method1("cast", (format, shape))?
        };
    }
    Ok(view)
}

/// Whether `obj` is a numpy array that owns its data (a view's base
/// could still be written through).
fn owns_numpy_data(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let ty = obj.get_type();
    if ty.module()?.to_cow()? != "numpy" || ty.qualname()?.to_cow()? != "ndarray" {
        return Ok(false);
    }
    obj.getattr("flags")?.getattr("owndata")?.extract()
}

fn layout(view: &Bound<'_, PyAny>) -> PyResult<Layout> {
    // SAFETY: Py_buffer is plain data; zeroed is the documented initial
    // state before PyObject_GetBuffer fills it.
    let mut buffer: ffi::Py_buffer = unsafe { std::mem::zeroed() };
    // SAFETY: `view` is a live memoryview and the GIL is held; on success
    // `buffer` is filled and released below, exactly once.
    if unsafe { ffi::PyObject_GetBuffer(view.as_ptr(), &mut buffer, ffi::PyBUF_FULL_RO) } != 0 {
        return Err(PyErr::fetch(view.py()));
    }
    // SAFETY: a successful PyObject_GetBuffer filled `buffer`: `format` is
    // NUL-terminated (FULL_RO asks for it), `shape` holds `ndim` entries.
    // The pointers are copied out before the release; `buf` stays valid
    // after it, because the memoryview itself holds its own export of the
    // underlying object for as long as it lives.
    let layout = unsafe {
        let format = if buffer.format.is_null() {
            "B".to_string()
        } else {
            std::ffi::CStr::from_ptr(buffer.format)
                .to_string_lossy()
                .into_owned()
        };
        let ndim = buffer.ndim.max(0) as usize;
        let shape = if buffer.shape.is_null() {
            if ndim == 0 {
                Vec::new()
            } else {
                vec![buffer.len as usize / buffer.itemsize.max(1) as usize]
            }
        } else {
            std::slice::from_raw_parts(buffer.shape, ndim)
                .iter()
                .map(|&n| n as usize)
                .collect()
        };
        Layout {
            format,
            itemsize: buffer.itemsize as usize,
            shape,
            data: buffer.buf as *const u8,
            len: buffer.len as usize,
        }
    };
    // SAFETY: `buffer` was filled by the successful call above.
    unsafe { ffi::PyBuffer_Release(&mut buffer) };
    Ok(layout)
}
