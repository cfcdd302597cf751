//! Large results as one external-format binary, which the caller decodes
//! with `:erlang.binary_to_term/2`: a BIF that yields, so no scheduler is
//! blocked, and that builds maps of any size on the caller's own heap
//! (off-scheduler map building is slow on OTP before 27.3, where a large
//! map must be grown key by key: see `to_term`), and builds every term
//! once, where the direct way builds them in the reply environment and the
//! send copies them all again (figures at [`THRESHOLD`]).
//!
//! Only plain data takes this route: None, bools, ints, floats, str,
//! bytes, bytearray, lists, tuples, dicts and sets of them, which the
//! shared codec (`crate::etf`) writes exactly as `to_term` builds them.
//! Anything else (a pid, a handle, a date, an object a decoder replaces)
//! is converted the direct way on its own, into a scratch environment, and
//! its external form spliced in, when that form decodes to the very same
//! term: one without references, ports or funs (a handle holds a
//! reference), and not a dict key or set element (the writer's duplicate
//! check reads only its own forms), while no decoder is registered (its
//! Python code must not run in an attempt that may be thrown away). Otherwise the writer stops and the
//! whole value goes the direct way, which also gives every error its usual
//! form. (Before the splice, a large value whose first non-plain item came
//! late was written up to it in vain, then converted again.)

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use rustler::{OwnedEnv, Term, TermType};

use crate::etf::{Forms, Reader, Writer};

/// Results that hold at least this many items (counted as [`items`]
/// counts) take this route. Paired runs, median microseconds per call of
/// an existing value returned, direct / this route, load 5-9:
///
/// | value                      | OTP 25 (puts per key) | OTP 27.3 (from arrays) |
/// |----------------------------|-----------------------|------------------------|
/// | dict of 64 str keys        | 23-30 / 16-23         | 17-23 / 14-18          |
/// | dict of 1,000 str keys     | 376-600 / 163-170     | 258-342 / 148-160      |
/// | dict of 19,999 str keys    | 16,467-18,314 / 4,509-4,894 | 5,538-10,026 / 3,988-8,103 |
/// | list of 64 ints            | 9-22 / 10-14          | 8 / 10-14              |
/// | list of 1,000 strs         | 86-266 / 32-52        | 89-93 / 51-52          |
/// | list of 100,000 strs       | 21,253-45,675 / 8,185-9,311 | 21,770-28,248 / 4,147-9,015 |
/// | 100,000 (int, str, float)  | 24,265-52,366 / 22,486-28,163 | 24,372-32,654 / 10,806-23,989 |
/// | list of 100,000 ints       | 2,850-8,136 / 2,940-6,334 | 3,136-3,286 / 2,902-4,890 |
/// | 20,000 dicts of 10 keys    | 73,731-114,728 / 20,294-33,807 | |
///
/// The direct way builds every binary and map in the reply environment
/// and the send then copies it all; this one writes bytes and lets
/// `binary_to_term` build the terms once, on the caller's heap. From 64
/// items it is never slower on either; below, the two cost the same.
/// (Until these tables only maps took this route, from 20,000 items, and a
/// 19,999-key dict took 4x as long as a 20,000-key one on OTP 25.)
const THRESHOLD: usize = 64;

/// Most bytes of external format a thread keeps between results (16 MB):
/// the memory of the last large result is reused by the next one.
const KEEP_BYTES: usize = 16 << 20;

thread_local! {
    /// The vector the last large result on this thread was written in.
    static BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };

    /// The decoder registry, looked up once per large result being written
    /// on this thread, and asked whether it is empty once per odd value (it
    /// is changed in place, so a registration made meanwhile is seen). Its
    /// lookup per value, a module and an attribute found by name, cost more
    /// than writing a timedelta: 100,000 returned took 43-56 ms with it,
    /// 22-27 without; 100,000 dates 117-151 and 92-97 (3 runs alternated,
    /// `bench/worker_costs.exs`).
    static REGISTRY: std::cell::Cell<Option<Py<PyDict>>> = const { std::cell::Cell::new(None) };
}

/// Whether a decoder is registered, as the result being written on this
/// thread found the registry.
fn any_decoder(py: Python<'_>) -> bool {
    let registry = REGISTRY.take();
    let any = registry
        .as_ref()
        .is_some_and(|decoders| !decoders.bind(py).is_empty());
    REGISTRY.set(registry);
    any
}

/// Gives `with` the external form of `{:ok, value}` when `value` is
/// large and plain, and returns what it returns; `None` otherwise.
pub(crate) fn ok_result<R>(value: &Bound<'_, PyAny>, with: impl FnOnce(&[u8]) -> R) -> Option<R> {
    if items(value, 0) < THRESHOLD {
        return None;
    }
    // A nested result (Python code run by an odd item's conversion)
    // finds its own registry and gives this one back.
    let outer = REGISTRY.replace(super::custom::registry(value.py()).map(Bound::unbind));
    let mut writer = Writer::<PlainOnly>::term_in(BUFFER.take());
    writer.tuple(2);
    writer.atom("ok");
    let written = writer.python(value).ok().map(|()| with(&writer.buf));
    REGISTRY.set(outer);
    if writer.buf.capacity() <= KEEP_BYTES {
        BUFFER.set(writer.buf);
    }
    written
}

/// The items of `value` when it is a dict, set, list or tuple, plus
/// those of the containers among its first few items (or dict values), two
/// levels down: a cheap look that finds a big container, one in
/// `{:ok, value}` or in `%{"data" => value}`, and a list of small maps.
fn items(value: &Bound<'_, PyAny>, depth: usize) -> usize {
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
        items(unsafe { &pyo3::Borrowed::from_ptr(py, item) }, depth + 1)
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
        len.max(0) as usize
            + (0..len.min(LOOK_AT))
                .map(|index| nested(item(ptr, index)))
                .sum::<usize>()
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

    fn write_other(writer: &mut Writer<Self>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        // A decoder may be registered for this object's type, or for one
        // within what it converts to: its Python code runs once per object,
        // so never in an attempt that may be thrown away.
        if writer.in_key() || any_decoder(obj.py()) {
            return Err(not_plain());
        }
        if super::datetime::write_external(writer, obj)
            .or_else(|| super::numeric::write_external(writer, obj))
            .is_some()
        {
            return Ok(());
        }
        let depth = writer.other_depth();
        let mut splice = |env: &mut OwnedEnv| {
            let spliced = env.run(|env| {
                let term = super::to_term::to_term_at(env, obj, depth).map_err(|_| not_plain())?;
                if !decodes_alike(term) {
                    return Err(not_plain());
                }
                // The external form without its version byte.
                let external = term.to_binary();
                writer.buf.extend_from_slice(&external.as_slice()[1..]);
                Ok(())
            });
            env.clear();
            spliced
        };
        // A decoder may run Python code that converts another large result
        // on this thread meanwhile (a nested request): it gets a fresh env.
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut env) => splice(&mut env),
            Err(_) => splice(&mut OwnedEnv::new()),
        })
    }
}

thread_local! {
    /// Where the odd items of large values are converted, one at a time.
    static SCRATCH: std::cell::RefCell<OwnedEnv> = std::cell::RefCell::new(OwnedEnv::new());
}

/// Whether the external form of `term` decodes to `term` itself: no
/// reference (a handle's resource would not survive), port or fun in it.
/// Pids, atoms, numbers, bitstrings and containers of them do.
fn decodes_alike(term: Term<'_>) -> bool {
    match term.get_type() {
        TermType::Atom | TermType::Integer | TermType::Float | TermType::Binary | TermType::Pid => {
            true
        }
        TermType::List => {
            let mut cell = term;
            while let Ok((head, tail)) = cell.list_get_cell() {
                if !decodes_alike(head) {
                    return false;
                }
                cell = tail;
            }
            cell.is_empty_list() || decodes_alike(cell)
        }
        TermType::Tuple => rustler::types::tuple::get_tuple(term)
            .is_ok_and(|items| items.into_iter().all(decodes_alike)),
        TermType::Map => rustler::MapIterator::new(term).is_some_and(|mut entries| {
            entries.all(|(key, value)| decodes_alike(key) && decodes_alike(value))
        }),
        _ => false,
    }
}

fn not_plain() -> PyErr {
    PyTypeError::new_err("not plain data")
}
