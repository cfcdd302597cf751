//! Conversion between Erlang terms and Python objects, both directions.
//!
//! The mapping is documented in guides/type-conversion.md. Rules that matter
//! for safety: no atom is ever created from Python data, integers convert
//! exactly at any size, and nesting deeper than [`MAX_DEPTH`] is an error
//! rather than a stack overflow.
//!
//! Everything here runs on a Python thread with the GIL held; terms are read
//! from and written to process-independent environments, which ERTS allows
//! from non-scheduler threads.

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PySet, PyString, PyTuple};
use rustler::types::tuple::{get_tuple, make_tuple};
use rustler::{Binary, Encoder, Env, NewBinary, Term, TermType};

use crate::atoms;
use crate::python_module::{OpaqueTerm, Pid};

/// Most levels of nested lists, tuples, maps and sets converted either way
/// (`[[1]]` has two levels; scalars do not count).
pub const MAX_DEPTH: usize = 10_000;

/// Why a value could not be converted.
#[derive(Debug)]
pub enum ConvertError {
    /// Nesting exceeded [`MAX_DEPTH`].
    TooDeep,
    /// Two Python keys became the same Erlang term (e.g. `"a"` and `b"a"`).
    DuplicateKey,
    /// An integer too large for an Erlang bignum; carries its bit length.
    IntegerTooLarge(u64),
    /// Python raised while converting (unhashable key, bad surrogate, ...).
    Python(PyErr),
}

impl From<PyErr> for ConvertError {
    fn from(err: PyErr) -> Self {
        ConvertError::Python(err)
    }
}

type Result<T> = std::result::Result<T, ConvertError>;

// ---------------------------------------------------------------------------
// Erlang -> Python
// ---------------------------------------------------------------------------

/// Converts an Erlang term to a new Python object.
pub fn to_python<'py>(py: Python<'py>, term: Term<'_>) -> Result<Bound<'py, PyAny>> {
    term_to_py(py, term, 0)
}

/// `depth` is the number of containers around `term`; entering one more
/// container than [`MAX_DEPTH`] allows is an error.
fn enter(depth: usize) -> Result<()> {
    if depth >= MAX_DEPTH || !crate::stack_guard::has_room() {
        Err(ConvertError::TooDeep)
    } else {
        Ok(())
    }
}

fn term_to_py<'py>(py: Python<'py>, term: Term<'_>, depth: usize) -> Result<Bound<'py, PyAny>> {
    // Fast path for the commonest value in bulk data: one call instead of
    // a type query followed by a decode.
    if let Ok(small) = term.decode::<i64>() {
        return Ok(PyInt::new(py, small).into_any());
    }
    match term.get_type() {
        TermType::Integer => integer_to_py(py, term),
        TermType::Float => {
            let value: f64 = term.decode().map_err(|_| internal("float"))?;
            Ok(PyFloat::new(py, value).into_any())
        }
        TermType::Atom => Ok(atom_to_py(py, term)),
        TermType::Binary => match Binary::from_term(term) {
            Ok(bin) => Ok(binary_to_py(py, bin.as_slice())),
            // A bitstring whose size is not a whole number of bytes.
            Err(_) => opaque(py, term),
        },
        TermType::List => list_to_py(py, term, depth),
        TermType::Tuple => tuple_to_py(py, term, depth),
        TermType::Map => map_to_py(py, term, depth),
        TermType::Pid => {
            let pid = term.decode().map_err(|_| internal("pid"))?;
            Ok(Bound::new(py, Pid { pid })?.into_any())
        }
        _ => opaque(py, term),
    }
}

fn internal(what: &str) -> ConvertError {
    ConvertError::Python(PyTypeError::new_err(format!(
        "internal error decoding an Erlang {what}"
    )))
}

fn opaque<'py>(py: Python<'py>, term: Term<'_>) -> Result<Bound<'py, PyAny>> {
    Ok(Bound::new(py, OpaqueTerm::new(term))?.into_any())
}

fn atom_to_py<'py>(py: Python<'py>, term: Term<'_>) -> Bound<'py, PyAny> {
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
    let name = term.atom_to_string().unwrap_or_default();
    PyString::new(py, &name).into_any()
}

fn binary_to_py<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyAny> {
    match std::str::from_utf8(data) {
        Ok(text) => PyString::new(py, text).into_any(),
        Err(_) => PyBytes::new(py, data).into_any(),
    }
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

/// Splits an external-term-format bignum into (negative, little-endian magnitude).
pub fn parse_bignum_etf(etf: &[u8]) -> Option<(bool, &[u8])> {
    match etf {
        [131, 110, n, sign, rest @ ..] if rest.len() == *n as usize => Some((*sign == 1, rest)),
        [131, 111, a, b, c, d, sign, rest @ ..]
            if rest.len() == u32::from_be_bytes([*a, *b, *c, *d]) as usize =>
        {
            Some((*sign == 1, rest))
        }
        _ => None,
    }
}

/// Builds the external term format of an integer from its magnitude.
pub fn bignum_etf(negative: bool, magnitude_le: &[u8]) -> Option<Vec<u8>> {
    let mut etf = Vec::with_capacity(magnitude_le.len() + 7);
    etf.push(131);
    if magnitude_le.len() <= u8::MAX as usize {
        etf.extend_from_slice(&[110, magnitude_le.len() as u8]);
    } else {
        let len = u32::try_from(magnitude_le.len()).ok()?;
        etf.push(111);
        etf.extend_from_slice(&len.to_be_bytes());
    }
    etf.push(u8::from(negative));
    etf.extend_from_slice(magnitude_le);
    Some(etf)
}

fn list_to_py<'py>(py: Python<'py>, term: Term<'_>, depth: usize) -> Result<Bound<'py, PyAny>> {
    enter(depth)?;
    let Ok(len) = term.list_length() else {
        // Improper list: no Python equivalent, keep it intact.
        return opaque(py, term);
    };
    let iter = term.into_list_iterator().map_err(|_| internal("list"))?;
    // SAFETY: PyList_New returns a new reference (or NULL with an exception
    // set, handled by from_owned_ptr_or_err). Each slot is filled exactly
    // once with a new reference, which PyList_SetItem steals; a slot left
    // NULL after an error is fine, list_dealloc uses Py_XDECREF.
    let list =
        unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyList_New(len as ffi::Py_ssize_t))? };
    for (index, item) in iter.enumerate() {
        let value = term_to_py(py, item, depth + 1)?;
        unsafe {
            ffi::PyList_SET_ITEM(list.as_ptr(), index as ffi::Py_ssize_t, value.into_ptr());
        }
    }
    Ok(list)
}

fn tuple_to_py<'py>(py: Python<'py>, term: Term<'_>, depth: usize) -> Result<Bound<'py, PyAny>> {
    enter(depth)?;
    let items = get_tuple(term).map_err(|_| internal("tuple"))?;
    // {:bytes, binary} is always Python bytes, even when it is valid UTF-8.
    if items.len() == 2 && items[0] == atoms::bytes().to_term(term.get_env()) {
        if let Ok(bin) = Binary::from_term(items[1]) {
            return Ok(PyBytes::new(py, bin.as_slice()).into_any());
        }
    }
    let mut converted = Vec::with_capacity(items.len());
    for item in items {
        converted.push(term_to_py(py, item, depth + 1)?);
    }
    Ok(PyTuple::new(py, converted)?.into_any())
}

fn map_to_py<'py>(py: Python<'py>, term: Term<'_>, depth: usize) -> Result<Bound<'py, PyAny>> {
    enter(depth)?;
    if let Some(object) = crate::handles::decode(py, term) {
        return Ok(object?);
    }
    if let Some(elements) = mapset_elements(term) {
        let set = PySet::empty(py)?;
        for (element, _) in rustler::MapIterator::new(elements).ok_or_else(|| internal("map"))? {
            set.add(term_to_py(py, element, depth + 1)?)?;
        }
        return Ok(set.into_any());
    }
    let dict = PyDict::new(py);
    for (key, value) in rustler::MapIterator::new(term).ok_or_else(|| internal("map"))? {
        let key = term_to_py(py, key, depth + 1)?;
        let value = term_to_py(py, value, depth + 1)?;
        dict.set_item(key, value)?;
    }
    Ok(dict.into_any())
}

/// The inner element map when `term` is a `%MapSet{}`.
fn mapset_elements<'a>(term: Term<'a>) -> Option<Term<'a>> {
    let env = term.get_env();
    if term.map_size().ok()? != 3 {
        return None;
    }
    let module = term.map_get(atoms::__struct__()).ok()?;
    if module != atoms::mapset_module().to_term(env) {
        return None;
    }
    let elements = term.map_get(atoms::map()).ok()?;
    elements.is_map().then_some(elements)
}

// ---------------------------------------------------------------------------
// Python -> Erlang
// ---------------------------------------------------------------------------

/// Converts a Python object to a term in `env`.
pub fn to_term<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>) -> Result<Term<'a>> {
    py_to_term(env, obj, 0)
}

fn py_to_term<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>, depth: usize) -> Result<Term<'a>> {
    let ptr = obj.as_ptr();
    // SAFETY (all ffi type checks below): `ptr` is a valid, borrowed object
    // for the duration of this call, and the GIL is held.
    unsafe {
        if ptr == ffi::Py_None() {
            return Ok(atoms::nil().to_term(env));
        }
        if ffi::PyBool_Check(ptr) != 0 {
            let value = ptr == ffi::Py_True();
            return Ok(value.encode(env));
        }
        if ffi::PyLong_Check(ptr) != 0 {
            return int_to_term(env, obj);
        }
        if ffi::PyFloat_Check(ptr) != 0 {
            return Ok(float_to_term(env, ffi::PyFloat_AsDouble(ptr)));
        }
        if ffi::PyUnicode_Check(ptr) != 0 {
            let mut size: ffi::Py_ssize_t = 0;
            let data = ffi::PyUnicode_AsUTF8AndSize(ptr, &mut size);
            if data.is_null() {
                return Err(PyErr::fetch(obj.py()).into());
            }
            let bytes = std::slice::from_raw_parts(data as *const u8, size as usize);
            return Ok(bytes_to_term(env, bytes));
        }
        if ffi::PyBytes_Check(ptr) != 0 {
            let data = ffi::PyBytes_AsString(ptr);
            let size = ffi::PyBytes_Size(ptr);
            let bytes = std::slice::from_raw_parts(data as *const u8, size as usize);
            return Ok(bytes_to_term(env, bytes));
        }
        if ffi::PyByteArray_Check(ptr) != 0 {
            let data = ffi::PyByteArray_AsString(ptr);
            let size = ffi::PyByteArray_Size(ptr);
            let bytes = std::slice::from_raw_parts(data as *const u8, size as usize);
            return Ok(bytes_to_term(env, bytes));
        }
        if ffi::PyList_Check(ptr) != 0 {
            enter(depth)?;
            let len = ffi::PyList_GET_SIZE(ptr);
            let mut items = Vec::with_capacity(len as usize);
            // Index each time: Python code cannot run during conversion of
            // our own builtin types, but a list subclass's items are still
            // read through the C API, never through a cached pointer.
            for index in 0..len {
                if index >= ffi::PyList_GET_SIZE(ptr) {
                    break;
                }
                let item = Bound::from_borrowed_ptr(obj.py(), ffi::PyList_GET_ITEM(ptr, index));
                items.push(py_to_term(env, &item, depth + 1)?);
            }
            return Ok(items.encode(env));
        }
        if ffi::PyTuple_Check(ptr) != 0 {
            enter(depth)?;
            let len = ffi::PyTuple_GET_SIZE(ptr);
            let mut items = Vec::with_capacity(len as usize);
            for index in 0..len {
                let item = Bound::from_borrowed_ptr(obj.py(), ffi::PyTuple_GET_ITEM(ptr, index));
                items.push(py_to_term(env, &item, depth + 1)?);
            }
            return Ok(make_tuple(env, &items));
        }
        if ffi::PyDict_Check(ptr) != 0 {
            enter(depth)?;
            return dict_to_term(env, obj.cast::<PyDict>().map_err(PyErr::from)?, depth);
        }
        if ffi::PyAnySet_Check(ptr) != 0 {
            enter(depth)?;
            return set_to_term(env, obj, depth);
        }
    }
    if let Ok(pid) = obj.cast::<Pid>() {
        return Ok(pid.get().pid.encode(env));
    }
    if let Ok(held) = obj.cast::<OpaqueTerm>() {
        return Ok(held.get().to_term(env));
    }
    // No Elixir form: a handle to the live object.
    Ok(crate::handles::encode(env, obj))
}

/// `module.QualName` of an object's type, for error messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    let ty = obj.get_type();
    let qualname = ty
        .qualname()
        .map(|q| q.to_string())
        .unwrap_or_else(|_| "?".into());
    match ty.module().map(|m| m.to_string()) {
        Ok(module) if module != "builtins" => format!("{module}.{qualname}"),
        _ => qualname,
    }
}

fn bytes_to_term<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
    let mut binary = NewBinary::new(env, bytes.len());
    binary.as_mut_slice().copy_from_slice(bytes);
    binary.into()
}

fn float_to_term(env: Env<'_>, value: f64) -> Term<'_> {
    if value.is_nan() {
        atoms::nan().to_term(env)
    } else if value == f64::INFINITY {
        atoms::infinity().to_term(env)
    } else if value == f64::NEG_INFINITY {
        atoms::neg_infinity().to_term(env)
    } else {
        value.encode(env)
    }
}

fn int_to_term<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>) -> Result<Term<'a>> {
    let mut overflow: std::ffi::c_int = 0;
    // SAFETY: obj is an int (checked by the caller); the GIL is held.
    let value = unsafe { ffi::PyLong_AsLongLongAndOverflow(obj.as_ptr(), &mut overflow) };
    if overflow == 0 {
        if value == -1 {
            if let Some(err) = PyErr::take(obj.py()) {
                return Err(err.into());
            }
        }
        return Ok(value.encode(env));
    }
    let negative = overflow < 0;
    let magnitude = if negative { obj.neg()? } else { obj.clone() };
    let bits: u64 = magnitude.call_method0("bit_length")?.extract()?;
    let nbytes = bits.div_ceil(8);
    let bytes = magnitude.call_method1("to_bytes", (nbytes, "little"))?;
    let bytes = bytes.cast::<PyBytes>().map_err(PyErr::from)?;
    let etf = bignum_etf(negative, bytes.as_bytes()).ok_or(ConvertError::IntegerTooLarge(bits))?;
    match env.binary_to_term(&etf) {
        Some((term, _)) => Ok(term),
        None => Err(ConvertError::IntegerTooLarge(bits)),
    }
}

fn dict_to_term<'a>(env: Env<'a>, dict: &Bound<'_, PyDict>, depth: usize) -> Result<Term<'a>> {
    let len = dict.len();
    let mut keys = Vec::with_capacity(len);
    let mut values = Vec::with_capacity(len);
    for (key, value) in dict.iter() {
        keys.push(py_to_term(env, &key, depth + 1)?);
        values.push(py_to_term(env, &value, depth + 1)?);
    }
    make_map(env, &keys, &values)
}

/// Largest map built in one call with `enif_make_map_from_arrays` (a flatmap).
const FLATMAP_MAX: usize = 32;

/// Builds a map, refusing duplicate keys.
///
/// Larger maps are grown with `enif_make_map_put`, because OTP 25.1 to 27.2
/// crash when a thread that is not a scheduler builds a map of more than 128
/// keys from arrays (erlang/otp#8208), and `from_arrays` does not detect
/// duplicates once a map is larger than a flatmap (erlang/otp#10975). A put
/// that does not grow the map found a duplicate.
pub fn make_map<'a>(env: Env<'a>, keys: &[Term<'a>], values: &[Term<'a>]) -> Result<Term<'a>> {
    let split = keys.len().min(FLATMAP_MAX);
    let mut map = Term::map_from_term_arrays(env, &keys[..split], &values[..split])
        .map_err(|_| ConvertError::DuplicateKey)?;
    let mut size = split;
    for (key, value) in keys[split..].iter().zip(&values[split..]) {
        map = map
            .map_put(*key, *value)
            .map_err(|_| ConvertError::DuplicateKey)?;
        size += 1;
        if map.map_size().map_err(|_| ConvertError::DuplicateKey)? != size {
            return Err(ConvertError::DuplicateKey);
        }
    }
    Ok(map)
}

fn set_to_term<'a>(env: Env<'a>, set: &Bound<'_, PyAny>, depth: usize) -> Result<Term<'a>> {
    let mut keys = Vec::new();
    let iter = if let Ok(s) = set.cast::<PySet>() {
        s.iter().collect::<Vec<_>>()
    } else if let Ok(s) = set.cast::<PyFrozenSet>() {
        s.iter().collect::<Vec<_>>()
    } else {
        set.try_iter()?.collect::<PyResult<Vec<_>>>()?
    };
    for element in iter {
        keys.push(py_to_term(env, &element, depth + 1)?);
    }
    let empty = Term::list_new_empty(env);
    let values = vec![empty; keys.len()];
    let elements = make_map(env, &keys, &values)?;
    Ok(elixir_struct(
        env,
        atoms::mapset_module(),
        &[(atoms::map(), elements), (atoms::version(), 2.encode(env))],
    ))
}

/// `%Module{field: value, ...}`: a map with `__struct__` and the fields.
pub fn elixir_struct<'a>(
    env: Env<'a>,
    module: rustler::Atom,
    fields: &[(rustler::Atom, Term<'a>)],
) -> Term<'a> {
    let mut keys = Vec::with_capacity(fields.len() + 1);
    let mut values = Vec::with_capacity(fields.len() + 1);
    keys.push(atoms::__struct__().to_term(env));
    values.push(module.to_term(env));
    for (key, value) in fields {
        keys.push(key.to_term(env));
        values.push(*value);
    }
    Term::map_from_term_arrays(env, &keys, &values).expect("struct fields are distinct atoms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bignum_etf_round_trips_small_and_large_forms() {
        let small = vec![1u8; 9];
        let etf = bignum_etf(true, &small).unwrap();
        assert_eq!(&etf[..4], &[131, 110, 9, 1]);
        assert_eq!(parse_bignum_etf(&etf), Some((true, small.as_slice())));

        let large = vec![7u8; 300];
        let etf = bignum_etf(false, &large).unwrap();
        assert_eq!(&etf[..7], &[131, 111, 0, 0, 1, 44, 0]);
        assert_eq!(parse_bignum_etf(&etf), Some((false, large.as_slice())));
    }

    #[test]
    fn truncated_etf_is_rejected() {
        assert_eq!(parse_bignum_etf(&[131, 110, 5, 0, 1, 2]), None);
        assert_eq!(parse_bignum_etf(&[131, 97, 5]), None);
    }
}
