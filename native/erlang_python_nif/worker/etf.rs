//! Erlang's external term format, read into Python objects and written from
//! them, directly: no rustler environment exists in the worker, and nothing
//! goes through a Python codec.
//!
//! The mapping is the embedded one (guides/type-conversion.md): integers
//! exact at any size, `nil`/`:none`/`:undefined` as None, other atoms as
//! `str`, UTF-8 binaries as `str` and others as `bytes` (`{:bytes, bin}`
//! always `bytes`), `%MapSet{}` of either shape as `set`, pids as
//! `erlang.Pid`, and references, ports, funs, bitstrings and improper lists
//! as `erlang.Term`, which write back the identical bytes. Python objects
//! with no Erlang form become handles ([`crate::handles`]).

use std::collections::HashSet;

use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PySet, PyString};

use crate::handles;
use crate::pytypes::{OpaqueTerm, Pid};

/// Nesting deeper than this is refused, as the embedded converters do.
pub(crate) const MAX_DEPTH: usize = 10_000;

pub(crate) const VERSION: u8 = 131;
const NEW_FLOAT: u8 = 70;
const BIT_BINARY: u8 = 77;
const NEW_PID: u8 = 88;
const NEW_PORT: u8 = 89;
const NEWER_REFERENCE: u8 = 90;
const SMALL_INTEGER: u8 = 97;
const INTEGER: u8 = 98;
const FLOAT: u8 = 99;
const ATOM: u8 = 100;
const REFERENCE: u8 = 101;
const PORT: u8 = 102;
const PID: u8 = 103;
const SMALL_TUPLE: u8 = 104;
const LARGE_TUPLE: u8 = 105;
const NIL: u8 = 106;
const STRING: u8 = 107;
const LIST: u8 = 108;
const BINARY: u8 = 109;
const SMALL_BIG: u8 = 110;
const LARGE_BIG: u8 = 111;
const NEW_FUN: u8 = 112;
const EXPORT: u8 = 113;
const NEW_REFERENCE: u8 = 114;
const SMALL_ATOM: u8 = 115;
const MAP: u8 = 116;
const ATOM_UTF8: u8 = 118;
const SMALL_ATOM_UTF8: u8 = 119;
const V4_PORT: u8 = 120;

/// The `%MapSet{}` shape of the running Elixir: `Some(version)` when its
/// struct has a `version` field (Elixir < 1.18), told at start.
static MAPSET_VERSION: std::sync::OnceLock<Option<i64>> = std::sync::OnceLock::new();

pub(crate) fn set_mapset_version(version: Option<i64>) {
    let _ = MAPSET_VERSION.set(version);
}

fn malformed(what: &str) -> PyErr {
    PyValueError::new_err(format!("malformed external term: {what}"))
}

fn too_deep() -> PyErr {
    PyValueError::new_err(format!("nesting deeper than {MAX_DEPTH} levels"))
}

/// A cursor over one external-format term (or a message of several).
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader past the version byte of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> PyResult<Self> {
        match buf.first() {
            Some(&VERSION) => Ok(Reader { buf, pos: 1 }),
            _ => Err(malformed("no version byte")),
        }
    }

    fn take(&mut self, n: usize) -> PyResult<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len());
        let end = end.ok_or_else(|| malformed("truncated"))?;
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> PyResult<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> PyResult<usize> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }

    fn u32(&mut self) -> PyResult<usize> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn peek(&self) -> PyResult<u8> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| malformed("truncated"))
    }

    /// The arity of a tuple.
    pub(crate) fn tuple(&mut self) -> PyResult<usize> {
        match self.u8()? {
            SMALL_TUPLE => Ok(self.u8()? as usize),
            LARGE_TUPLE => self.u32(),
            _ => Err(malformed("expected a tuple")),
        }
    }

    /// The text of an atom, when the next term is one.
    pub(crate) fn atom(&mut self) -> PyResult<&'a str> {
        let len = match self.u8()? {
            SMALL_ATOM_UTF8 | SMALL_ATOM => self.u8()? as usize,
            ATOM_UTF8 | ATOM => self.u16()?,
            _ => return Err(malformed("expected an atom")),
        };
        std::str::from_utf8(self.take(len)?).map_err(|_| malformed("atom text"))
    }

    /// A non-negative integer that fits 64 bits.
    pub(crate) fn u64(&mut self) -> PyResult<u64> {
        match self.u8()? {
            SMALL_INTEGER => Ok(self.u8()? as u64),
            INTEGER => {
                let b = self.take(4)?;
                u64::try_from(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .map_err(|_| malformed("negative id"))
            }
            SMALL_BIG => {
                let n = self.u8()? as usize;
                let sign = self.u8()?;
                let digits = self.take(n)?;
                if sign != 0 || n > 8 {
                    return Err(malformed("id out of range"));
                }
                let mut le = [0u8; 8];
                le[..n].copy_from_slice(digits);
                Ok(u64::from_le_bytes(le))
            }
            _ => Err(malformed("expected an integer")),
        }
    }

    /// A list of non-negative integers.
    pub(crate) fn u64_list(&mut self) -> PyResult<Vec<u64>> {
        match self.u8()? {
            NIL => Ok(Vec::new()),
            STRING => {
                let n = self.u16()?;
                Ok(self.take(n)?.iter().map(|&b| b as u64).collect())
            }
            LIST => {
                let n = self.u32()?;
                let items = (0..n).map(|_| self.u64()).collect::<PyResult<Vec<_>>>()?;
                match self.u8()? {
                    NIL => Ok(items),
                    _ => Err(malformed("improper list")),
                }
            }
            _ => Err(malformed("expected a list")),
        }
    }

    /// The bytes of the next term, unread (pids, references, funs).
    pub(crate) fn raw(&mut self) -> PyResult<&'a [u8]> {
        let start = self.pos;
        self.skip()?;
        Ok(&self.buf[start..self.pos])
    }

    /// Moves past the next term.
    fn skip(&mut self) -> PyResult<()> {
        // Iterative: a count of terms still to skip, so no recursion.
        let mut pending: usize = 1;
        while pending > 0 {
            pending -= 1;
            let tag = self.u8()?;
            match tag {
                SMALL_INTEGER => drop(self.take(1)?),
                INTEGER => drop(self.take(4)?),
                FLOAT => drop(self.take(31)?),
                NEW_FLOAT => drop(self.take(8)?),
                SMALL_ATOM_UTF8 | SMALL_ATOM => {
                    let n = self.u8()? as usize;
                    self.take(n)?;
                }
                ATOM_UTF8 | ATOM => {
                    let n = self.u16()?;
                    self.take(n)?;
                }
                SMALL_TUPLE => pending += self.u8()? as usize,
                LARGE_TUPLE => pending += self.u32()?,
                NIL => {}
                STRING => {
                    let n = self.u16()?;
                    self.take(n)?;
                }
                LIST => pending += self.u32()? + 1,
                BINARY => {
                    let n = self.u32()?;
                    self.take(n)?;
                }
                BIT_BINARY => {
                    let n = self.u32()?;
                    self.take(n + 1)?;
                }
                SMALL_BIG => {
                    let n = self.u8()? as usize;
                    self.take(n + 1)?;
                }
                LARGE_BIG => {
                    let n = self.u32()?;
                    self.take(n + 1)?;
                }
                MAP => pending += 2 * self.u32()?,
                NEW_PID => self.skip_then(12)?,
                PID => self.skip_then(9)?,
                NEW_PORT => self.skip_then(8)?,
                V4_PORT => self.skip_then(12)?,
                PORT => self.skip_then(5)?,
                REFERENCE => self.skip_then(5)?,
                NEWER_REFERENCE | NEW_REFERENCE => {
                    let words = self.u16()?;
                    let creation = if tag == NEWER_REFERENCE { 4 } else { 1 };
                    self.skip_then(creation + 4 * words)?;
                }
                NEW_FUN => {
                    let size = self.u32()?;
                    // Size counts itself.
                    self.take(size.checked_sub(4).ok_or_else(|| malformed("fun size"))?)?;
                }
                EXPORT => pending += 3,
                _ => return Err(malformed("unknown tag")),
            }
        }
        Ok(())
    }

    /// Skips a node atom, then `n` bytes.
    fn skip_then(&mut self, n: usize) -> PyResult<()> {
        self.skip()?;
        self.take(n)?;
        Ok(())
    }

    /// The next term as a Python object.
    pub(crate) fn python<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.value(py, 0)
    }

    fn value<'py>(&mut self, py: Python<'py>, depth: usize) -> PyResult<Bound<'py, PyAny>> {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        let start = self.pos;
        match self.u8()? {
            SMALL_INTEGER => Ok(self.u8()?.into_pyobject(py)?.into_any()),
            INTEGER => {
                let b = self.take(4)?;
                Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]])
                    .into_pyobject(py)?
                    .into_any())
            }
            NEW_FLOAT => {
                let b = self.take(8)?;
                let value = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                Ok(value.into_pyobject(py)?.into_any())
            }
            SMALL_BIG | LARGE_BIG => {
                self.pos = start;
                self.bignum(py)
            }
            SMALL_ATOM_UTF8 | SMALL_ATOM | ATOM_UTF8 | ATOM => {
                self.pos = start;
                let text = self.atom()?;
                Ok(atom_to_python(py, text))
            }
            BINARY => {
                let n = self.u32()?;
                Ok(binary_to_python(py, self.take(n)?))
            }
            SMALL_TUPLE | LARGE_TUPLE => {
                self.pos = start;
                let arity = self.tuple()?;
                self.tuple_items(py, arity, depth)
            }
            NIL => Ok(empty_list(py)?),
            STRING => {
                let n = self.u16()?;
                let bytes = self.take(n)?;
                let list = new_list(py, n)?;
                for (index, byte) in bytes.iter().enumerate() {
                    set_list_item(&list, index, byte.into_pyobject(py)?.into_any());
                }
                Ok(list)
            }
            LIST => {
                let n = self.u32()?;
                let list = new_list(py, n)?;
                for index in 0..n {
                    let item = self.value(py, depth + 1)?;
                    set_list_item(&list, index, item);
                }
                if self.peek()? == NIL {
                    self.pos += 1;
                    Ok(list)
                } else {
                    // An improper list: opaque, written back as it came.
                    self.skip()?;
                    opaque(py, &self.buf[start..self.pos])
                }
            }
            MAP => {
                let arity = self.u32()?;
                self.map(py, start, arity, depth)
            }
            NEW_PID | PID => {
                self.pos = start;
                let raw = self.raw()?;
                Ok(Bound::new(py, Pid { raw: raw.to_vec() })?.into_any())
            }
            _ => {
                self.pos = start;
                let raw = self.raw()?;
                opaque(py, raw)
            }
        }
    }

    fn tuple_items<'py>(
        &mut self,
        py: Python<'py>,
        arity: usize,
        depth: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        // `{:bytes, binary}` is always bytes.
        if arity == 2 {
            let mark = self.pos;
            if self.atom().ok() == Some("bytes") && self.peek().ok() == Some(BINARY) {
                self.pos += 1;
                let n = self.u32()?;
                return Ok(PyBytes::new(py, self.take(n)?).into_any());
            }
            self.pos = mark;
        }
        // SAFETY: PyTuple_New returns a new reference or NULL (checked);
        // every slot is filled with a new reference before the tuple is
        // used, and on failure the partly filled tuple is dropped, which
        // CPython allows (empty slots are NULL).
        unsafe {
            let tuple = ffi::PyTuple_New(arity as ffi::Py_ssize_t);
            let tuple = Bound::from_owned_ptr_or_err(py, tuple)?;
            for index in 0..arity {
                let item = self.value(py, depth + 1)?;
                ffi::PyTuple_SET_ITEM(tuple.as_ptr(), index as ffi::Py_ssize_t, item.into_ptr());
            }
            Ok(tuple)
        }
    }

    fn map<'py>(
        &mut self,
        py: Python<'py>,
        start: usize,
        arity: usize,
        depth: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        if (2..=3).contains(&arity) {
            if let Some(value) = self.special_struct(py, arity, depth)? {
                return Ok(value);
            }
            self.pos = start + 5;
        }
        let dict = PyDict::new(py);
        for _ in 0..arity {
            let key = self.value(py, depth + 1)?;
            let value = self.value(py, depth + 1)?;
            dict.set_item(key, value)?;
        }
        if dict.len() != arity {
            return Err(PyValueError::new_err(
                "two keys of the map convert to the same Python key",
            ));
        }
        Ok(dict.into_any())
    }

    /// `%MapSet{}` (either shape) as a set, and isolated handles as their
    /// objects; None for any other map (the reader is then anywhere inside it).
    fn special_struct<'py>(
        &mut self,
        py: Python<'py>,
        arity: usize,
        depth: usize,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let mut module = None;
        let mut fields: Vec<(&str, usize)> = Vec::with_capacity(arity);
        for _ in 0..arity {
            let Ok(key) = self.atom() else {
                return Ok(None);
            };
            let at = self.pos;
            if key == "__struct__" {
                let Ok(name) = self.atom() else {
                    return Ok(None);
                };
                module = Some(name);
            } else {
                fields.push((key, at));
                self.skip()?;
            }
        }
        let end = self.pos;
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, at)| *at)
        };
        match (module, arity) {
            (Some("Elixir.MapSet"), _) => {
                let Some(at) = field("map") else {
                    return Ok(None);
                };
                if arity == 3 && field("version").is_none() {
                    return Ok(None);
                }
                self.pos = at;
                if self.u8()? != MAP {
                    return Ok(None);
                }
                let n = self.u32()?;
                let set = PySet::empty(py)?;
                for _ in 0..n {
                    set.add(self.value(py, depth + 1)?)?;
                    self.skip()?;
                }
                self.pos = end;
                Ok(Some(set.into_any()))
            }
            (Some("Elixir.ErlangPython.Object"), 3) => {
                let (Some(at), Some(_)) = (field("ref"), field("type")) else {
                    return Ok(None);
                };
                self.pos = at;
                // `{:isolated, owner, id}`, or with the VM's release guard last.
                if !matches!(self.tuple(), Ok(3 | 4)) || self.atom().ok() != Some("isolated") {
                    return Err(PyValueError::new_err(
                        "an embedded interpreter's handle cannot be used in an isolated context",
                    ));
                }
                let owner = self.u64()?;
                let id = self.u64()?;
                self.pos = end;
                handles::get(py, owner, id).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn bignum<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let n = match self.u8()? {
            SMALL_BIG => self.u8()? as usize,
            _ => self.u32()?,
        };
        let negative = self.u8()? == 1;
        let magnitude = self.take(n)?;
        let int_type = py.get_type::<pyo3::types::PyInt>();
        let value = int_type.call_method1("from_bytes", (PyBytes::new(py, magnitude), "little"))?;
        if negative {
            value.neg()
        } else {
            Ok(value)
        }
    }
}

fn atom_to_python<'py>(py: Python<'py>, text: &str) -> Bound<'py, PyAny> {
    match text {
        "true" => pyo3::types::PyBool::new(py, true).to_owned().into_any(),
        "false" => pyo3::types::PyBool::new(py, false).to_owned().into_any(),
        "nil" | "none" | "undefined" => py.None().into_bound(py),
        "nan" => pyo3::types::PyFloat::new(py, f64::NAN).into_any(),
        "infinity" => pyo3::types::PyFloat::new(py, f64::INFINITY).into_any(),
        "neg_infinity" => pyo3::types::PyFloat::new(py, f64::NEG_INFINITY).into_any(),
        other => PyString::new(py, other).into_any(),
    }
}

fn binary_to_python<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyAny> {
    match std::str::from_utf8(bytes) {
        Ok(text) => PyString::new(py, text).into_any(),
        Err(_) => PyBytes::new(py, bytes).into_any(),
    }
}

fn opaque<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    Ok(Bound::new(py, OpaqueTerm { raw: raw.to_vec() })?.into_any())
}

fn new_list(py: Python<'_>, len: usize) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: PyList_New returns a new reference or NULL (checked). Its
    // slots are NULL until set_list_item fills them, which CPython
    // tolerates in a list no Python code has seen yet.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyList_New(len as ffi::Py_ssize_t)) }
}

fn empty_list(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    new_list(py, 0)
}

fn set_list_item(list: &Bound<'_, PyAny>, index: usize, item: Bound<'_, PyAny>) {
    // SAFETY: `list` was made by new_list with more than `index` slots and
    // is not yet visible to Python; SET_ITEM steals the new reference.
    unsafe { ffi::PyList_SET_ITEM(list.as_ptr(), index as ffi::Py_ssize_t, item.into_ptr()) }
}

/// Builds one external-format message.
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    /// A message, with room for the packet's 4-byte length in front.
    pub(crate) fn message() -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&[0, 0, 0, 0, VERSION]);
        Writer { buf }
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
            if ffi::PyFloat_Check(ptr) != 0 {
                self.float(ffi::PyFloat_AsDouble(ptr));
                return Ok(());
            }
            if ffi::PyUnicode_Check(ptr) != 0 {
                let mut size: ffi::Py_ssize_t = 0;
                let data = ffi::PyUnicode_AsUTF8AndSize(ptr, &mut size);
                if data.is_null() {
                    return Err(PyErr::fetch(py));
                }
                self.binary(std::slice::from_raw_parts(data as *const u8, size as usize));
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
        if let Ok(pid) = obj.cast::<Pid>() {
            self.raw(&pid.get().raw);
            return Ok(());
        }
        if let Ok(term) = obj.cast::<OpaqueTerm>() {
            self.raw(&term.get().raw);
            return Ok(());
        }
        let (owner, id) = handles::put(obj);
        self.handle(owner, id, &handles::type_name(obj));
        Ok(())
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
        if len > u32::MAX as usize {
            return Err(PyOverflowError::new_err("integer too large"));
        }
        let bytes = magnitude.call_method1("to_bytes", (len, "little"))?;
        let bytes = bytes.cast::<PyBytes>()?.as_bytes();
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
        // the VM refuses to decode: refuse here, with a clear message.
        let mut seen: HashSet<Vec<u8>> = HashSet::with_capacity(dict.len());
        for (key, value) in dict.iter() {
            let at = self.buf.len();
            self.value(&key, depth + 1)?;
            if !seen.insert(self.buf[at..].to_vec()) {
                return Err(PyValueError::new_err(format!(
                    "two keys of the dict convert to the same Erlang term ({})",
                    key.repr()?
                )));
            }
            self.value(&value, depth + 1)?;
        }
        Ok(())
    }

    fn set(&mut self, set: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
        let items: Vec<Bound<'_, PyAny>> = match set.cast::<PySet>() {
            Ok(set) => set.iter().collect(),
            Err(_) => set.cast::<PyFrozenSet>()?.iter().collect(),
        };
        let version = MAPSET_VERSION.get().copied().flatten();
        self.map(if version.is_some() { 3 } else { 2 });
        self.atom("__struct__");
        self.atom("Elixir.MapSet");
        self.atom("map");
        self.map(items.len());
        for item in &items {
            self.value(item, depth + 1)?;
            self.buf.push(NIL);
        }
        if let Some(version) = version {
            self.atom("version");
            self.int(version);
        }
        Ok(())
    }
}
