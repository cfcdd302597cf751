//! Buffers: bytes written by Erlang, read by Python as a file or, without a
//! copy, through the buffer protocol (`memoryview(buf)`).
//!
//! A buffer is a NIF resource (an Erlang reference) owning one growing byte
//! vector. Erlang appends (`buffer_write/2`) and finally closes it (EOF).
//! Passed to Python, the reference becomes an `erlang.PyBuffer`: a read-only
//! file object with its own read position, whose blocking reads wait with
//! the GIL released. `memoryview(buf)` points straight at the vector, so the
//! vector must not move while a view is exported: a write that would grow it
//! past its capacity then fails with `{:error, :pinned}` instead.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use rustler::{Binary, Encoder, Env, ResourceArc, Term};

use crate::pytypes::Interrupted;

mod atoms {
    rustler::atoms! {
        ok,
        error,
        closed,
        pinned,
        size,
        capacity,
        views,
    }
}

/// How a blocking read learns that the call it runs in was cancelled. Set
/// by [`crate::erlang_module`] (the worker thread lives in a higher layer
/// than this module, which conversion needs).
static CANCEL_CHECK: std::sync::OnceLock<fn() -> bool> = std::sync::OnceLock::new();

pub(crate) fn set_cancel_check(check: fn() -> bool) {
    let _ = CANCEL_CHECK.set(check);
}

fn call_cancelled() -> bool {
    CANCEL_CHECK.get().is_some_and(|check| check())
}

/// Capacity of a buffer made without a size hint.
const DEFAULT_CAPACITY: usize = 64 * 1024;

pub(crate) struct Buffer {
    state: Mutex<State>,
    /// Signalled on every write and on close.
    grown: Condvar,
}

struct State {
    data: Vec<u8>,
    /// The total size announced at creation (`new(content_length)`), if any:
    /// `read()` without a size waits for that much.
    expected: Option<usize>,
    closed: bool,
    /// memoryviews exported right now.
    views: usize,
}

#[rustler::resource_impl]
impl rustler::Resource for Buffer {}

impl Buffer {
    pub(crate) fn new(expected: Option<usize>) -> Self {
        let capacity = expected.unwrap_or(DEFAULT_CAPACITY);
        Buffer {
            state: Mutex::new(State {
                data: Vec::with_capacity(capacity),
                expected,
                closed: false,
                views: 0,
            }),
            grown: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is one append or one flag: a poisoned lock is consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, bytes: &[u8]) -> Result<(), rustler::Atom> {
        let mut state = self.lock();
        if state.closed {
            return Err(atoms::closed());
        }
        if state.views > 0 && state.data.len() + bytes.len() > state.data.capacity() {
            // Growing would move the bytes a memoryview points at.
            return Err(atoms::pinned());
        }
        // Within capacity this only writes past the exported length, which
        // no view covers; it reallocates only when no view exists.
        state.data.extend_from_slice(bytes);
        drop(state);
        self.grown.notify_all();
        Ok(())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.grown.notify_all();
    }

    /// Waits (GIL released by the caller) until `ready(len, closed)` holds or
    /// `until` passes. Returns the state's lock either way.
    fn wait_until(
        &self,
        until: Instant,
        ready: impl Fn(&State) -> bool,
    ) -> (MutexGuard<'_, State>, bool) {
        let mut state = self.lock();
        loop {
            if ready(&state) {
                return (state, true);
            }
            let now = Instant::now();
            if now >= until {
                return (state, false);
            }
            state = self
                .grown
                .wait_timeout(state, until - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

// ---------------------------------------------------------------------------
// NIFs (registered by rustler::init! in lib.rs)

/// `size`: the expected total, preallocated; 0 for a chunked buffer of
/// unknown length.
#[rustler::nif]
fn buffer_new(size: usize) -> ResourceArc<Buffer> {
    ResourceArc::new(Buffer::new((size > 0).then_some(size)))
}

/// `:ok`, `{:error, :closed}` or `{:error, :pinned}`. Copies the binary;
/// a large one is copied on a dirty scheduler (see the facade).
#[rustler::nif]
fn buffer_write<'a>(env: Env<'a>, buffer: ResourceArc<Buffer>, data: Binary<'a>) -> Term<'a> {
    write_reply(env, &buffer, data)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn buffer_write_dirty<'a>(env: Env<'a>, buffer: ResourceArc<Buffer>, data: Binary<'a>) -> Term<'a> {
    write_reply(env, &buffer, data)
}

fn write_reply<'a>(env: Env<'a>, buffer: &Buffer, data: Binary<'a>) -> Term<'a> {
    match buffer.write(data.as_slice()) {
        Ok(()) => atoms::ok().encode(env),
        Err(reason) => (atoms::error(), reason).encode(env),
    }
}

#[rustler::nif]
fn buffer_close(buffer: ResourceArc<Buffer>) -> rustler::Atom {
    buffer.close();
    atoms::ok()
}

/// `%{size: bytes_written, capacity: bytes_allocated, closed: bool, views: n}`.
#[rustler::nif]
fn buffer_info<'a>(env: Env<'a>, buffer: ResourceArc<Buffer>) -> rustler::NifResult<Term<'a>> {
    let state = buffer.lock();
    let keys = [
        atoms::size().encode(env),
        atoms::capacity().encode(env),
        atoms::closed().encode(env),
        atoms::views().encode(env),
    ];
    let values = [
        state.data.len().encode(env),
        state.data.capacity().encode(env),
        state.closed.encode(env),
        state.views.encode(env),
    ];
    Term::map_from_term_arrays(env, &keys, &values)
}

// ---------------------------------------------------------------------------
// Conversion hooks (called by convert.rs)

/// The `erlang.PyBuffer` for `term` if it is a buffer reference.
pub(crate) fn to_python<'py>(
    py: Python<'py>,
    term: Term<'_>,
) -> Option<PyResult<Bound<'py, PyAny>>> {
    let buffer: ResourceArc<Buffer> = term.decode().ok()?;
    Some(Bound::new(py, PyBufferFile::new(buffer)).map(Bound::into_any))
}

/// The buffer reference behind an `erlang.PyBuffer`.
pub(crate) fn to_term<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>) -> Option<Term<'a>> {
    let file = obj.cast::<PyBufferFile>().ok()?;
    Some(file.get().buffer.encode(env))
}

// ---------------------------------------------------------------------------
// Python side

/// `erlang.PyBuffer`: a read-only, seekable binary file over a buffer, and a
/// buffer-protocol exporter of everything written so far.
#[pyclass(module = "erlang", name = "PyBuffer", frozen)]
pub(crate) struct PyBufferFile {
    buffer: ResourceArc<Buffer>,
    position: Mutex<usize>,
}

impl PyBufferFile {
    fn new(buffer: ResourceArc<Buffer>) -> Self {
        PyBufferFile {
            buffer,
            position: Mutex::new(0),
        }
    }

    fn position(&self) -> MutexGuard<'_, usize> {
        self.position.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits, GIL released, until `ready` holds for the state; checks for
    /// cancellation of the running call every tick.
    fn block_until(
        &self,
        py: Python<'_>,
        ready: impl Fn(&State) -> bool + Send + Copy,
    ) -> PyResult<()> {
        let tick = Duration::from_millis(50);
        loop {
            if call_cancelled() {
                return Err(Interrupted::new_err(
                    "the call was interrupted while waiting on a buffer",
                ));
            }
            let buffer = self.buffer.clone();
            let done = py.detach(move || buffer.wait_until(Instant::now() + tick, ready).1);
            if done {
                return Ok(());
            }
            py.check_signals()?;
        }
    }

    /// Copies up to `limit` bytes from the read position and advances it.
    fn take<'py>(&self, py: Python<'py>, limit: Option<usize>) -> Bound<'py, PyBytes> {
        let state = self.buffer.lock();
        let mut position = self.position();
        let start = (*position).min(state.data.len());
        let end = match limit {
            Some(n) => start.saturating_add(n).min(state.data.len()),
            None => state.data.len(),
        };
        *position = end;
        PyBytes::new(py, &state.data[start..end])
    }

    fn available(&self) -> usize {
        let length = self.buffer.lock().data.len();
        length.saturating_sub(*self.position())
    }
}

fn size_arg(size: Option<isize>) -> Option<usize> {
    size.and_then(|n| usize::try_from(n).ok())
}

#[pymethods]
impl PyBufferFile {
    /// A closed-or-open buffer holding `data`, for tests and examples.
    #[staticmethod]
    fn _test_create(data: &[u8]) -> Self {
        let buffer = Buffer::new(None);
        let _ = buffer.write(data);
        PyBufferFile::new(ResourceArc::new(buffer))
    }

    /// Up to `size` bytes (all when omitted or negative). Blocks, GIL
    /// released, while nothing is readable and the buffer is open; without
    /// a size on a buffer made with a known length, waits for all of it.
    #[pyo3(signature = (size=-1))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let limit = size_arg(size);
        if limit == Some(0) {
            return Ok(PyBytes::new(py, b""));
        }
        let position = *self.position();
        self.block_until(py, move |state| {
            let wanted = match (limit, state.expected) {
                (None, Some(expected)) => expected.max(position + 1),
                _ => position + 1,
            };
            state.closed || state.data.len() >= wanted
        })?;
        Ok(self.take(py, limit))
    }

    /// What is readable now, up to `size`; never blocks.
    #[pyo3(signature = (size=-1))]
    fn read_nonblock<'py>(&self, py: Python<'py>, size: Option<isize>) -> Bound<'py, PyBytes> {
        self.take(py, size_arg(size))
    }

    /// One line including its newline, or what remains at EOF (b"" after).
    #[pyo3(signature = (size=-1))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let limit = size_arg(size);
        let position = *self.position();
        self.block_until(py, move |state| {
            let tail = &state.data[position.min(state.data.len())..];
            state.closed || tail.contains(&b'\n') || limit.is_some_and(|n| tail.len() >= n)
        })?;
        let line_end = {
            let state = self.buffer.lock();
            let tail = &state.data[position.min(state.data.len())..];
            let end = tail
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| i + 1)
                .unwrap_or(tail.len());
            limit.map_or(end, |n| end.min(n))
        };
        Ok(self.take(py, Some(line_end)))
    }

    /// Every remaining line (stops after about `hint` bytes when given).
    #[pyo3(signature = (hint=-1))]
    fn readlines<'py>(&self, py: Python<'py>, hint: Option<isize>) -> PyResult<Bound<'py, PyList>> {
        let hint = size_arg(hint).filter(|&n| n > 0);
        let lines = PyList::empty(py);
        let mut total = 0;
        loop {
            let line = self.readline(py, None)?;
            if line.as_bytes().is_empty() {
                break;
            }
            total += line.as_bytes().len();
            lines.append(line)?;
            if hint.is_some_and(|n| total >= n) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.readline(py, None)?;
        Ok((!line.as_bytes().is_empty()).then_some(line))
    }

    /// Moves the read position within the bytes written so far.
    #[pyo3(signature = (offset, whence=0))]
    fn seek(&self, offset: isize, whence: i32) -> PyResult<usize> {
        let state = self.buffer.lock();
        let mut position = self.position();
        let base = match whence {
            0 => 0,
            1 => *position as isize,
            2 if state.closed => state.data.len() as isize,
            2 => {
                return Err(PyValueError::new_err(
                    "seek from the end needs a closed buffer",
                ))
            }
            _ => return Err(PyValueError::new_err("whence must be 0, 1 or 2")),
        };
        let target = base
            .checked_add(offset)
            .filter(|t| (0..=state.data.len() as isize).contains(t))
            .ok_or_else(|| PyValueError::new_err("cannot seek outside the bytes written so far"))?;
        *position = target as usize;
        Ok(*position)
    }

    fn tell(&self) -> usize {
        *self.position()
    }

    /// Index of the first `sub` at or after `start`, or -1 (never blocks).
    #[pyo3(signature = (sub, start=0))]
    fn find(&self, sub: &[u8], start: usize) -> isize {
        let state = self.buffer.lock();
        let data = &state.data;
        if start > data.len() {
            return -1;
        }
        if sub.is_empty() {
            return start as isize;
        }
        data[start..]
            .windows(sub.len())
            .position(|window| window == sub)
            .map_or(-1, |i| (start + i) as isize)
    }

    fn readable_amount(&self) -> usize {
        self.available()
    }

    /// Closed, and everything read.
    fn at_eof(&self) -> bool {
        let state = self.buffer.lock();
        state.closed && *self.position() >= state.data.len()
    }

    /// Marks end of data (no more writes), as Erlang's close does.
    fn close(&self) {
        self.buffer.close();
    }

    #[getter]
    fn closed(&self) -> bool {
        self.buffer.lock().closed
    }

    fn readable(&self) -> bool {
        true
    }

    fn writable(&self) -> bool {
        false
    }

    fn seekable(&self) -> bool {
        true
    }

    /// Bytes written so far.
    fn __len__(&self) -> usize {
        self.buffer.lock().data.len()
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __exit__(&self, _a: &Bound<'_, PyAny>, _b: &Bound<'_, PyAny>, _c: &Bound<'_, PyAny>) {}

    /// Exports everything written so far, read-only, without copying.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: std::os::raw::c_int,
    ) -> PyResult<()> {
        if flags & ffi::PyBUF_WRITABLE != 0 {
            return Err(PyBufferError::new_err("an erlang.PyBuffer is read-only"));
        }
        let this = slf.get();
        let mut state = this.buffer.lock();
        let pointer = state.data.as_ptr() as *mut std::os::raw::c_void;
        let length = state.data.len() as ffi::Py_ssize_t;
        // SAFETY: `view` is the valid Py_buffer the caller passed; `pointer`
        // and `length` describe initialised bytes of the vector, which stays
        // at this address while `views > 0` (writes that would reallocate
        // are refused) and alive while the view holds a reference to `slf`
        // (FillInfo stores and increfs it), which owns the resource.
        let status =
            unsafe { ffi::PyBuffer_FillInfo(view, slf.as_ptr(), pointer, length, 1, flags) };
        if status != 0 {
            return Err(PyErr::fetch(slf.py()));
        }
        state.views += 1;
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        let mut state = self.buffer.lock();
        state.views = state.views.saturating_sub(1);
    }

    fn __repr__(&self) -> String {
        let state = self.buffer.lock();
        format!(
            "<erlang.PyBuffer size={} position={} closed={}>",
            state.data.len(),
            *self.position(),
            state.closed
        )
    }
}

/// Adds `PyBuffer` to `_erlang_native`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBufferFile>()
}
