//! Python objects -> external format.

use std::collections::HashSet;
use std::marker::PhantomData;

use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PySet};

use super::tags::*;
use super::Forms;

/// Builds one external-format message.
pub(crate) struct Writer<F: Forms> {
    pub(crate) buf: Vec<u8>,
    forms: PhantomData<F>,
    /// For [`Forms::write_other`]: the nesting depth of the object it is
    /// given, and whether that object is (within) a dict key or a set
    /// element, where writing a term the writer did not make itself would
    /// escape the duplicate check.
    other_depth: usize,
    in_key: bool,
}

impl<F: Forms> Writer<F> {
    /// A message, with room for the packet's 4-byte length in front.
    #[allow(dead_code)]
    pub(crate) fn message() -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&[0, 0, 0, 0, VERSION]);
        Writer {
            buf,
            forms: PhantomData,
            other_depth: 0,
            in_key: false,
        }
    }

    /// One term, as `:erlang.binary_to_term/1` reads it.
    #[allow(dead_code)]
    pub(crate) fn term() -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.push(VERSION);
        Writer {
            buf,
            forms: PhantomData,
            other_depth: 0,
            in_key: false,
        }
    }

    /// One term, as [`Writer::term`], written into `buf` (cleared first):
    /// a caller that writes large terms often keeps the memory of the last
    /// one rather than growing (and page-faulting) a fresh vector each time.
    #[allow(dead_code)]
    pub(crate) fn term_in(mut buf: Vec<u8>) -> Self {
        buf.clear();
        buf.push(VERSION);
        Writer {
            buf,
            forms: PhantomData,
            other_depth: 0,
            in_key: false,
        }
    }

    pub(crate) fn tuple(&mut self, arity: usize) {
        if arity <= u8::MAX as usize {
            self.buf.extend_from_slice(&[SMALL_TUPLE, arity as u8]);
        } else {
            self.buf.push(LARGE_TUPLE);
            self.buf.extend_from_slice(&(arity as u32).to_be_bytes());
        }
    }

    pub(crate) fn atom(&mut self, text: &str) {
        // Atoms written here are the protocol's own short names.
        debug_assert!(text.len() <= u8::MAX as usize);
        self.buf
            .extend_from_slice(&[SMALL_ATOM_UTF8, text.len() as u8]);
        self.buf.extend_from_slice(text.as_bytes());
    }

    pub(crate) fn int(&mut self, value: i64) {
        if (0..=255).contains(&value) {
            self.buf.extend_from_slice(&[SMALL_INTEGER, value as u8]);
        } else if let Ok(small) = i32::try_from(value) {
            self.buf.push(INTEGER);
            self.buf.extend_from_slice(&small.to_be_bytes());
        } else {
            let magnitude = value.unsigned_abs().to_le_bytes();
            let used = 8 - magnitude.iter().rev().take_while(|&&b| b == 0).count();
            self.buf
                .extend_from_slice(&[SMALL_BIG, used as u8, u8::from(value < 0)]);
            self.buf.extend_from_slice(&magnitude[..used]);
        }
    }

    pub(crate) fn binary(&mut self, bytes: &[u8]) {
        self.buf.push(BINARY);
        self.buf
            .extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }

    pub(crate) fn raw(&mut self, raw: &[u8]) {
        self.buf.extend_from_slice(raw);
    }

    pub(crate) fn list(&mut self, len: usize) {
        if len == 0 {
            self.buf.push(NIL);
        } else {
            self.buf.push(LIST);
            self.buf.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }

    /// Ends a list begun with [`Writer::list`] (nothing for an empty one).
    pub(crate) fn end_list(&mut self, len: usize) {
        if len > 0 {
            self.buf.push(NIL);
        }
    }

    pub(crate) fn map(&mut self, arity: usize) {
        self.buf.push(MAP);
        self.buf.extend_from_slice(&(arity as u32).to_be_bytes());
    }

    /// `obj` in the embedded mapping; the buffer is unchanged on error.
    pub(crate) fn python(&mut self, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        let mark = self.buf.len();
        let result = self.value(obj, 0);
        if result.is_err() {
            self.buf.truncate(mark);
        }
        result
    }

    fn value(&mut self, obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        let py = obj.py();
        let ptr = obj.as_ptr();
        // SAFETY (the type checks and borrowed reads below): `ptr` is a
        // valid object for this call and the GIL is held; list and tuple
        // items are read by index within their current size, and no Python
        // code runs while a builtin container is walked.
        unsafe {
            if ptr == ffi::Py_None() {
                self.atom("nil");
                return Ok(());
            }
            if ffi::PyBool_Check(ptr) != 0 {
                self.atom(if ptr == ffi::Py_True() {
                    "true"
                } else {
                    "false"
                });
                return Ok(());
            }
            if ffi::PyLong_Check(ptr) != 0 {
                let mut overflow = 0;
                let value = ffi::PyLong_AsLongLongAndOverflow(ptr, &mut overflow);
                if overflow == 0 {
                    if value == -1 && !ffi::PyErr_Occurred().is_null() {
                        return Err(PyErr::fetch(py));
                    }
                    self.int(value);
                    return Ok(());
                }
                return self.bignum(obj);
            }
            // str before float: PyFloat_Check of anything but a float
            // calls PyType_IsSubtype, and str is the commonest key.
            if ffi::PyUnicode_Check(ptr) != 0 {
                let mut size: ffi::Py_ssize_t = 0;
                let data = ffi::PyUnicode_AsUTF8AndSize(ptr, &mut size);
                if data.is_null() {
                    return Err(PyErr::fetch(py));
                }
                self.binary(std::slice::from_raw_parts(data as *const u8, size as usize));
                return Ok(());
            }
            if ffi::PyFloat_Check(ptr) != 0 {
                self.float(ffi::PyFloat_AsDouble(ptr));
                return Ok(());
            }
            if ffi::PyBytes_Check(ptr) != 0 {
                let data = ffi::PyBytes_AsString(ptr);
                let size = ffi::PyBytes_Size(ptr);
                self.binary(std::slice::from_raw_parts(data as *const u8, size as usize));
                return Ok(());
            }
            if ffi::PyByteArray_Check(ptr) != 0 {
                let data = ffi::PyByteArray_AsString(ptr);
                let size = ffi::PyByteArray_Size(ptr);
                self.binary(std::slice::from_raw_parts(data as *const u8, size as usize));
                return Ok(());
            }
            if ffi::PyList_Check(ptr) != 0 {
                let len = ffi::PyList_GET_SIZE(ptr) as usize;
                self.list(len);
                for index in 0..len {
                    if index as ffi::Py_ssize_t >= ffi::PyList_GET_SIZE(ptr) {
                        return Err(PyValueError::new_err("list changed size during conversion"));
                    }
                    let item = pyo3::Borrowed::from_ptr(
                        py,
                        ffi::PyList_GET_ITEM(ptr, index as ffi::Py_ssize_t),
                    );
                    self.value(&item, depth + 1)?;
                }
                self.end_list(len);
                return Ok(());
            }
            if ffi::PyTuple_Check(ptr) != 0 {
                let len = ffi::PyTuple_GET_SIZE(ptr) as usize;
                self.tuple(len);
                for index in 0..len {
                    let item = pyo3::Borrowed::from_ptr(
                        py,
                        ffi::PyTuple_GET_ITEM(ptr, index as ffi::Py_ssize_t),
                    );
                    self.value(&item, depth + 1)?;
                }
                return Ok(());
            }
            if ffi::PyDict_Check(ptr) != 0 {
                return self.dict(obj.cast::<PyDict>()?, depth);
            }
            if ffi::PyAnySet_Check(ptr) != 0 {
                return self.set(obj, depth);
            }
        }
        self.other_depth = depth;
        F::write_other(self, obj)
    }

    /// The nesting depth of the object [`Forms::write_other`] is given.
    #[allow(dead_code)]
    pub(crate) fn other_depth(&self) -> usize {
        self.other_depth
    }

    /// Whether the object [`Forms::write_other`] is given is, or is inside,
    /// a dict key or a set element.
    #[allow(dead_code)]
    pub(crate) fn in_key(&self) -> bool {
        self.in_key
    }

    /// `%ErlangPython.Object{ref: {:isolated, owner, id}, type: type}`.
    pub(crate) fn handle(&mut self, owner: u64, id: u64, type_name: &str) {
        self.map(3);
        self.atom("__struct__");
        self.atom("Elixir.ErlangPython.Object");
        self.atom("ref");
        self.tuple(3);
        self.atom("isolated");
        self.int(owner as i64);
        self.int(id as i64);
        self.atom("type");
        self.binary(type_name.as_bytes());
    }

    fn float(&mut self, value: f64) {
        if value.is_nan() {
            self.atom("nan");
        } else if value == f64::INFINITY {
            self.atom("infinity");
        } else if value == f64::NEG_INFINITY {
            self.atom("neg_infinity");
        } else {
            self.buf.push(NEW_FLOAT);
            self.buf.extend_from_slice(&value.to_be_bytes());
        }
    }

    fn bignum(&mut self, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        let negative = obj.lt(0)?;
        let magnitude = obj.abs()?;
        let bits: usize = magnitude.call_method0("bit_length")?.extract()?;
        let len = bits.div_ceil(8);
        // Checked before `to_bytes` too, so a huge int is never copied.
        if len > F::MAX_BIGNUM_BYTES.min(u32::MAX as usize) {
            return Err(PyOverflowError::new_err("integer too large"));
        }
        let bytes = magnitude.call_method1("to_bytes", (len, "little"))?;
        self.big(negative, bytes.cast::<PyBytes>()?.as_bytes())
    }

    /// A bignum of this little-endian magnitude (no high zero bytes), up to
    /// the forms' `MAX_BIGNUM_BYTES`.
    pub(crate) fn big(&mut self, negative: bool, bytes: &[u8]) -> PyResult<()> {
        let len = bytes.len();
        if len > F::MAX_BIGNUM_BYTES.min(u32::MAX as usize) {
            return Err(PyOverflowError::new_err("integer too large"));
        }
        if len <= u8::MAX as usize {
            self.buf.extend_from_slice(&[SMALL_BIG, len as u8]);
        } else {
            self.buf.push(LARGE_BIG);
            self.buf.extend_from_slice(&(len as u32).to_be_bytes());
        }
        self.buf.push(u8::from(negative));
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn dict(&mut self, dict: &Bound<'_, PyDict>, depth: usize) -> PyResult<()> {
        self.map(dict.len());
        // Distinct Python keys can write the same term ("a" and b"a"), which
        // the VM refuses to decode: refuse here, with a clear message. Keys
        // that are all exact str or int cannot collide (distinct strs are
        // distinct binaries, distinct ints distinct integers, and the two
        // never meet), so only other dicts pay for the check.
        let mut keys_unique = true;
        let mut spans = Vec::with_capacity(dict.len());
        for (key, value) in dict.iter() {
            let at = self.buf.len();
            // SAFETY: `key` is a live object and the GIL is held.
            keys_unique &= unsafe {
                ffi::PyUnicode_CheckExact(key.as_ptr()) != 0
                    || ffi::PyLong_CheckExact(key.as_ptr()) != 0
            };
            let outer = std::mem::replace(&mut self.in_key, true);
            let written = self.value(&key, depth + 1);
            self.in_key = outer;
            written?;
            spans.push((at, self.buf.len()));
            self.value(&value, depth + 1)?;
        }
        match first_duplicate(&self.buf, &spans, keys_unique) {
            Some(index) => match dict.iter().nth(index) {
                Some((key, _)) => Err(PyValueError::new_err(format!(
                    "two keys of the dict convert to the same Erlang term ({})",
                    key.repr()?
                ))),
                None => Err(PyValueError::new_err(
                    "the dict changed size during conversion",
                )),
            },
            None => Ok(()),
        }
    }

    fn set(&mut self, set: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
        let items: Vec<Bound<'_, PyAny>> = match set.cast::<PySet>() {
            Ok(set) => set.iter().collect(),
            Err(_) => set.cast::<PyFrozenSet>()?.iter().collect(),
        };
        let version = super::mapset_version();
        self.map(if version.is_some() { 3 } else { 2 });
        self.atom("__struct__");
        self.atom("Elixir.MapSet");
        self.atom("map");
        self.map(items.len());
        // As for dict keys: distinct elements can write the same term.
        let mut unique = true;
        let mut spans = Vec::with_capacity(items.len());
        for item in &items {
            let at = self.buf.len();
            // SAFETY: `item` is a live object and the GIL is held.
            unique &= unsafe {
                ffi::PyUnicode_CheckExact(item.as_ptr()) != 0
                    || ffi::PyLong_CheckExact(item.as_ptr()) != 0
            };
            let outer = std::mem::replace(&mut self.in_key, true);
            let written = self.value(item, depth + 1);
            self.in_key = outer;
            written?;
            spans.push((at, self.buf.len()));
            self.buf.push(NIL);
        }
        if let Some(index) = first_duplicate(&self.buf, &spans, unique) {
            return Err(PyValueError::new_err(format!(
                "two elements of the set convert to the same Erlang term ({})",
                items[index].repr()?
            )));
        }
        if let Some(version) = version {
            self.atom("version");
            self.int(version);
        }
        Ok(())
    }
}

/// The index of the first of `spans` (terms written in `buf`) whose bytes
/// repeat an earlier one's; none when `unique` says they cannot.
fn first_duplicate(buf: &[u8], spans: &[(usize, usize)], unique: bool) -> Option<usize> {
    if unique {
        return None;
    }
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(spans.len());
    spans
        .iter()
        .position(|&(start, end)| !seen.insert(&buf[start..end]))
}
