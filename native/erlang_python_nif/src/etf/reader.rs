//! External format -> Python objects.

use std::marker::PhantomData;

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PySet, PyString};

use super::tags::*;
use super::Forms;

/// A cursor over one external-format term (or a message of several).
pub(crate) struct Reader<'a, F: Forms> {
    buf: &'a [u8],
    pos: usize,
    forms: PhantomData<F>,
}

impl<'a, F: Forms> Reader<'a, F> {
    /// A reader past the version byte of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> PyResult<Self> {
        match buf.first() {
            Some(&VERSION) => Ok(Reader {
                buf,
                pos: 1,
                forms: PhantomData,
            }),
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
                    F::opaque(py, &self.buf[start..self.pos])
                }
            }
            MAP => {
                let arity = self.u32()?;
                self.map(py, start, arity, depth)
            }
            NEW_PID | PID => {
                self.pos = start;
                let raw = self.raw()?;
                F::pid(py, raw)
            }
            _ => {
                self.pos = start;
                let raw = self.raw()?;
                F::opaque(py, raw)
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
                let object = F::handle(py, self)?;
                self.pos = end;
                Ok(Some(object))
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
