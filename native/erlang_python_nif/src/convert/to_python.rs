//! Erlang -> Python.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFloat, PyInt, PySet, PyString};
use rustler::{Binary, Term, TermType};

use super::atom_cache;
use super::bignum::parse_bignum_etf;
use super::binary_view;
use super::datetime;
use super::error::{enter, internal, Result};
use super::handles;
use super::mapset;
use super::numeric;
use super::packed;
use super::pyobjects::{binary_to_py, bytes_to_py, presized_dict};
use crate::atoms;
use crate::pytypes::{OpaqueTerm, Pid};
use crate::terms::{binary_bytes, tuple_items, MapEntries};

/// Converts an Erlang term to a new Python object.
pub(crate) fn to_python<'py>(py: Python<'py>, term: Term<'_>) -> Result<Bound<'py, PyAny>> {
    term_to_py(py, term, 0)
}
fn term_to_py<'py>(py: Python<'py>, term: Term<'_>, depth: usize) -> Result<Bound<'py, PyAny>> {
    // SAFETY: `term` is a term of its own environment. The pointer from
    // scalar_to_py is a new reference, owned from here by the Bound.
    match unsafe { scalar_to_py(py, term.get_env(), term.as_c_arg()) } {
        Some(item) => Ok(unsafe { Bound::from_owned_ptr(py, item?) }),
        None => other_to_py(py, term, depth),
    }
}

/// [`term_to_py`] for a term that `scalar_to_py` did not take: it took
/// every float, atom and binary, so what is left is a bignum, a container,
/// a bitstring whose size is not a whole number of bytes (opaque), or one
/// of the terms below.
fn other_to_py<'py>(py: Python<'py>, term: Term<'_>, depth: usize) -> Result<Bound<'py, PyAny>> {
    match term.get_type() {
        TermType::Integer => integer_to_py(py, term),
        TermType::List => list_to_py(py, term, depth),
        TermType::Tuple => tuple_to_py(py, term, depth),
        TermType::Map => map_to_py(py, term, depth),
        // A long list of scalars, packed on the caller's dirty scheduler
        // (`packed`): a plain list in any interpreter.
        TermType::Ref if packed::is_packed(term) => packed::to_py(py, term),
        // PyO3's classes (erlang.Pid, erlang.Term, buffers) belong to the
        // main interpreter: an own-GIL context has an erlang.Pid of its own,
        // and no form for the others.
        TermType::Pid | TermType::Ref | TermType::Port | TermType::Fun
            if !crate::interpreters::is_main(py) =>
        {
            let pid = term.decode().ok();
            match pid.and_then(|pid| crate::interpreters::new_pid(py, pid)) {
                Some(pid) => Ok(pid?),
                None => Err(no_class_here(py, term)),
            }
        }
        TermType::Pid => {
            let pid = term.decode().map_err(|_| internal("pid"))?;
            Ok(Bound::new(py, Pid { pid })?.into_any())
        }
        TermType::Ref => match crate::buffer::to_python(py, term) {
            Some(buffer) => Ok(buffer?),
            None => match crate::capsule::to_python(py, term) {
                Some(channel) => Ok(channel?),
                None => opaque(py, term),
            },
        },
        _ => opaque(py, term),
    }
}
fn opaque<'py>(py: Python<'py>, term: Term<'_>) -> Result<Bound<'py, PyAny>> {
    if !crate::interpreters::is_main(py) {
        return Err(no_class_here(py, term));
    }
    Ok(Bound::new(py, OpaqueTerm::new(term))?.into_any())
}

/// An atom's Python value: `True`, `False`, `None` (`nil`, `:none`,
/// `:undefined`), the special floats, else its name as an interned `str`;
/// made once per thread (`atom_cache`).
fn atom_to_py<'py>(py: Python<'py>, term: Term<'_>) -> Bound<'py, PyAny> {
    atom_cache::object_for(py, term.as_c_arg(), || atom_value(py, term))
}

fn atom_value<'py>(py: Python<'py>, term: Term<'_>) -> Bound<'py, PyAny> {
    if term == atoms::true_().to_term(term.get_env()) {
        return pyo3::types::PyBool::new(py, true).to_owned().into_any();
    }
    if term == atoms::false_().to_term(term.get_env()) {
        return pyo3::types::PyBool::new(py, false).to_owned().into_any();
    }
    let env = term.get_env();
    if term == atoms::nil().to_term(env)
        || term == atoms::none().to_term(env)
        || term == atoms::undefined().to_term(env)
    {
        return py.None().into_bound(py);
    }
    // The special floats travel as atoms so they survive a round trip.
    if term == atoms::nan().to_term(env) {
        return PyFloat::new(py, f64::NAN).into_any();
    }
    if term == atoms::infinity().to_term(env) {
        return PyFloat::new(py, f64::INFINITY).into_any();
    }
    if term == atoms::neg_infinity().to_term(env) {
        return PyFloat::new(py, f64::NEG_INFINITY).into_any();
    }
    // Every atom has a name (`atom_text` reads it whatever its characters).
    let name = crate::terms::atom_text(term).unwrap_or_default();
    PyString::intern(py, &name).into_any()
}

fn integer_to_py<'py>(py: Python<'py>, term: Term<'_>) -> Result<Bound<'py, PyAny>> {
    if let Ok(small) = term.decode::<i64>() {
        return Ok(PyInt::new(py, small).into_any());
    }
    if let Ok(unsigned) = term.decode::<u64>() {
        return Ok(PyInt::new(py, unsigned).into_any());
    }
    // A bignum: read its magnitude from the external term format.
    let etf = term.to_binary();
    let (negative, magnitude) =
        parse_bignum_etf(etf.as_slice()).ok_or_else(|| internal("bignum"))?;
    let int_type = py.get_type::<PyInt>();
    let value = int_type.call_method1("from_bytes", (PyBytes::new(py, magnitude), "little"))?;
    if negative {
        Ok(value.neg()?)
    } else {
        Ok(value)
    }
}
fn list_to_py<'py>(py: Python<'py>, term: Term<'_>, depth: usize) -> Result<Bound<'py, PyAny>> {
    enter(depth)?;
    // One pass over the cells: asking for the length first would walk a
    // long list twice (a million cells are megabytes of cache misses).
    // The items wait in this thread's staging vector, whose memory is kept
    // from one list to the next (see `Staged`).
    let mut items = Staged::take();
    let env = term.get_env();
    let raw_env = env.as_c_arg();
    let mut cell = term.as_c_arg();
    let (mut head, mut tail) = (cell, cell);
    // The cells are read through the raw NIF calls: rustler's wrappers
    // return a `Result` per cell and per integer, whose building and
    // dropping cost more than the reads themselves (12 of the 20 ms this
    // loop took for a million integers, in a profile).
    // SAFETY: `cell`, `head` and `tail` are terms of `env`, which outlives
    // this loop; these calls only read them.
    while unsafe { rustler::sys::enif_get_list_cell(raw_env, cell, &mut head, &mut tail) } != 0 {
        // SAFETY: `head` is a term of `env`.
        let item = match unsafe { scalar_to_py(py, env, head) } {
            Some(item) => item?,
            None => {
                // SAFETY: `head` is a term of `env`.
                let head = unsafe { Term::new(env, head) };
                match other_to_py(py, head, depth + 1) {
                    Ok(item) => item.into_ptr(),
                    // An improper list is kept intact whatever its items hold.
                    Err(_) if term.list_length().is_err() => return opaque(py, term),
                    Err(error) => return Err(error),
                }
            }
        };
        items.0.push(item);
        cell = tail;
    }
    // SAFETY: `cell` is a term of `env`.
    let cell = unsafe { Term::new(env, cell) };
    if !cell.is_empty_list() {
        // Improper list: no Python equivalent, keep it intact.
        return opaque(py, term);
    }
    // SAFETY: PyList_New returns a new reference (or NULL with an exception
    // set, handled by from_owned_ptr_or_err).
    let list = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyList_New(items.0.len() as ffi::Py_ssize_t))?
    };
    for (index, item) in items.0.drain(..).enumerate() {
        // SAFETY: `list` has exactly `items.len()` empty slots, each filled
        // once with a new reference, which PyList_SET_ITEM steals.
        unsafe { ffi::PyList_SET_ITEM(list.as_ptr(), index as ffi::Py_ssize_t, item) };
    }
    Ok(list)
}

thread_local! {
    /// The staging vector of the last list converted on this thread, empty,
    /// kept so the next long list neither grows a vector by doubling nor
    /// faults its pages in again (for a million items, 8 MB copied and
    /// faulted per request).
    static STAGING: std::cell::Cell<Vec<*mut ffi::PyObject>> =
        const { std::cell::Cell::new(Vec::new()) };
}

/// Most items whose staging memory a thread keeps (8 MB); a longer list's
/// vector is freed after use.
const STAGING_KEPT: usize = 1 << 20;

/// New references not yet handed to a list, in this thread's staging
/// vector (a nested list, converted meanwhile, stages in a new one);
/// released if conversion stops half-way (an error, or an improper list).
struct Staged(Vec<*mut ffi::PyObject>);

impl Staged {
    fn take() -> Self {
        Staged(STAGING.with(std::cell::Cell::take))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for item in self.0.drain(..) {
            // SAFETY: each pointer is a new reference this struct owns, and
            // it is dropped on the converting thread, with the GIL held.
            unsafe { ffi::Py_DECREF(item) };
        }
        let mine = std::mem::take(&mut self.0);
        if mine.capacity() <= STAGING_KEPT {
            STAGING.with(|kept| {
                let other = kept.take();
                kept.set(if mine.capacity() >= other.capacity() {
                    mine
                } else {
                    other
                });
            });
        }
    }
}

fn tuple_to_py<'py>(py: Python<'py>, term: Term<'_>, depth: usize) -> Result<Bound<'py, PyAny>> {
    enter(depth)?;
    let env = term.get_env();
    // The elements in place: rustler's `get_tuple` made a vector per tuple
    // (a list of `{key, value}` pairs, one per item).
    // SAFETY: `term` is a term of `env`, live for this call.
    let items =
        unsafe { tuple_items(env.as_c_arg(), term.as_c_arg()) }.ok_or_else(|| internal("tuple"))?;
    // The tagged forms are pairs led by an atom.
    if let [tag, value] = items {
        // SAFETY: both are terms of `env`.
        let pair = unsafe { [Term::new(env, *tag), Term::new(env, *value)] };
        if pair[0].is_atom() {
            // {:bytes, binary} is always Python bytes, even when it is valid UTF-8.
            if pair[0] == atoms::bytes().to_term(env) {
                if let Ok(bin) = Binary::from_term(pair[1]) {
                    return bytes_to_py(py, bin.as_slice());
                }
            }
            // {:buffer, binary}, {:timedelta, us}, {:uuid, text}.
            if let Some(value) = binary_view::buffer_tuple(py, &pair)
                .or_else(|| datetime::tagged_to_py(py, &pair))
                .or_else(|| numeric::tagged_to_py(py, &pair))
            {
                return value;
            }
        }
    }
    // SAFETY: PyTuple_New returns a new reference (or NULL with an
    // exception set, handled by from_owned_ptr_or_err), its slots empty.
    let tuple = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyTuple_New(items.len() as ffi::Py_ssize_t))?
    };
    for (index, &item) in items.iter().enumerate() {
        // `item` is a term of `env`.
        let item = item_to_py(py, env, item, depth)?;
        // SAFETY: `tuple` is new and not yet shared; each slot is filled
        // once, with a new reference, which PyTuple_SET_ITEM steals. An
        // error above drops the tuple with its empty slots, which
        // tuple_dealloc skips.
        unsafe { ffi::PyTuple_SET_ITEM(tuple.as_ptr(), index as ffi::Py_ssize_t, item.into_ptr()) };
    }
    Ok(tuple)
}

fn map_to_py<'py>(py: Python<'py>, term: Term<'_>, depth: usize) -> Result<Bound<'py, PyAny>> {
    enter(depth)?;
    // Handles, sets and the structs with a Python form of their own are all
    // structs: one look-up of `__struct__` lets plain maps (rows of data,
    // most maps) skip the three searches, each a few look-ups of its own.
    if is_struct(term) {
        if let Some(object) = handles::from_term(py, term) {
            return Ok(object?);
        }
        if let Some(value) = struct_to_py(py, term) {
            return value;
        }
        if let Some(elements) = mapset::elements(term) {
            let set = PySet::empty(py)?;
            for (element, _) in
                rustler::MapIterator::new(elements).ok_or_else(|| internal("map"))?
            {
                set.add(term_to_py(py, element, depth + 1)?)?;
            }
            return Ok(set.into_any());
        }
    }
    let size = term.map_size().map_err(|_| internal("map"))?;
    let dict = presized_dict(py, size)?;
    let env = term.get_env();
    let mut entries = MapEntries::new(term).ok_or_else(|| internal("map"))?;
    while let Some((key, value)) = entries.next() {
        let key = item_to_py(py, env, key, depth)?;
        let value = item_to_py(py, env, value, depth)?;
        // SAFETY: the GIL is held, `dict` is a dict and both objects are
        // live; PyDict_SetItem takes its own references.
        if unsafe { ffi::PyDict_SetItem(dict.as_ptr(), key.as_ptr(), value.as_ptr()) } != 0 {
            return Err(PyErr::fetch(py).into());
        }
    }
    Ok(dict)
}

/// Whether the map `map` has a `__struct__` key, read through the raw NIF
/// call (rustler's `map_get` builds an error for every plain map).
fn is_struct(map: Term<'_>) -> bool {
    let env = map.get_env();
    let mut value = map.as_c_arg();
    // SAFETY: `map` and the key are terms of `env` (an atom is one in every
    // environment); the out-parameter is ours, written only on success.
    unsafe {
        rustler::sys::enif_get_map_value(
            env.as_c_arg(),
            map.as_c_arg(),
            atoms::__struct__().to_term(env).as_c_arg(),
            &mut value,
        ) != 0
    }
}

/// An item of a container (a list item, a map key or value) at `depth`'s
/// next level, as a new Python object.
fn item_to_py<'py>(
    py: Python<'py>,
    env: rustler::Env<'_>,
    item: rustler::sys::ErlNifTerm,
    depth: usize,
) -> Result<Bound<'py, PyAny>> {
    // SAFETY: `item` is a term of `env`. The pointer from scalar_to_py is a
    // new reference, owned from here by the Bound.
    unsafe {
        match scalar_to_py(py, env, item) {
            Some(item) => Ok(Bound::from_owned_ptr(py, item?)),
            None => other_to_py(py, Term::new(env, item), depth + 1),
        }
    }
}

/// The commonest items of bulk data, small integers, floats, atoms and
/// binaries, as a new reference, read through the raw NIF calls: rustler's
/// decoders build a `Result` per read, and the general path asks for the
/// type first (in a profile of a million integers, those cost more than the
/// reads; a float, which took the general path after two failed reads, cost
/// about 95 ns an item in a list of 1,536, against 40 for an integer). An
/// integer costs one read; anything else one type query, then its read.
/// `None` for any other term: the caller takes the general path.
///
/// # Safety
///
/// `item` is a term of `env`.
unsafe fn scalar_to_py(
    py: Python<'_>,
    env: rustler::Env<'_>,
    item: rustler::sys::ErlNifTerm,
) -> Option<Result<*mut ffi::PyObject>> {
    use rustler::sys::ErlNifTermType as Type;
    let raw_env = env.as_c_arg();
    // The GIL is held: each constructor returns a new reference, or NULL
    // with an exception set.
    let made = |object: *mut ffi::PyObject| {
        if object.is_null() {
            Err(PyErr::fetch(py).into())
        } else {
            Ok(object)
        }
    };
    let mut small: i64 = 0;
    // SAFETY (every read): `item` is a term of `env` (the caller's
    // promise); the out-parameter is written only when the call returns true.
    if rustler::sys::enif_get_int64(raw_env, item, &mut small) != 0 {
        return Some(made(ffi::PyLong_FromLongLong(small)));
    }
    match rustler::sys::enif_term_type(raw_env, item) {
        Type::ERL_NIF_TERM_TYPE_FLOAT => {
            let mut float: f64 = 0.0;
            (rustler::sys::enif_get_double(raw_env, item, &mut float) != 0)
                .then(|| made(ffi::PyFloat_FromDouble(float)))
        }
        Type::ERL_NIF_TERM_TYPE_ATOM => Some(Ok(atom_to_py(py, Term::new(env, item)).into_ptr())),
        Type::ERL_NIF_TERM_TYPE_BITSTRING => {
            let data = binary_bytes(raw_env, item)?;
            Some(binary_to_py(py, data).map(Bound::into_ptr))
        }
        _ => None,
    }
}

/// The Python value of a struct with a form of its own (dates and times,
/// `Decimal`, `ErlangPython.Array`); `None` for other maps.
fn struct_to_py<'py>(py: Python<'py>, term: Term<'_>) -> Option<Result<Bound<'py, PyAny>>> {
    let module = term.map_get(atoms::__struct__()).ok()?;
    if module.get_type() != TermType::Atom {
        return None;
    }
    binary_view::from_array_struct(py, term)
        .or_else(|| datetime::struct_to_py(py, term, module))
        .or_else(|| numeric::struct_to_py(py, term, module))
}

/// The error for a term with no plain Python form (a pid, a reference, a
/// fun, a bitstring) sent into an own-GIL context.
fn no_class_here(_py: Python<'_>, term: Term<'_>) -> super::ConvertError {
    pyo3::exceptions::PyTypeError::new_err(format!(
        "{:?} terms cannot enter an own-GIL context (erlang.Term lives in the main \
         interpreter): pass plain data, or use a context without own_gil",
        term.get_type()
    ))
    .into()
}
