//! What a worker keeps across requests: compiled code, interned names and
//! the modules it has found initialized.
//!
//! The caches are bounded by emptying them when full: sources and names
//! repeat, so they refill with the hot ones. They are `RefCell`s borrowed
//! only briefly, never across running Python code, because a request may
//! run while another is suspended on the same thread (a callback into
//! Elixir serving nested requests).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::hash::BuildHasherDefault;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;
use rustler::Term;

use super::inputs::name_text;
use crate::errors::Failure;
use crate::name_hasher::NameHasher;

/// Compiled code objects kept per source text; cleared when full.
const CODE_CACHE_LIMIT: usize = 1024;

/// How a source text is compiled.
#[derive(Hash, PartialEq, Eq)]
pub(super) enum Mode {
    Eval,
    Exec,
    /// An expression wrapped as a lambda of these comma-separated names:
    /// the function, bound to `__main__`.
    Lambda(String),
    /// The same, as the code that makes the function: a context binds it
    /// to its own namespace at each call.
    LambdaCode(String),
}

/// Compiled code objects and eval lambdas, by mode and source.
#[derive(Default)]
pub(super) struct CodeCache {
    entries: RefCell<HashMap<(Mode, String), Py<PyAny>>>,
}

impl CodeCache {
    /// The cached object for `key`, if any.
    pub(super) fn get<'py>(
        &self,
        py: Python<'py>,
        key: &(Mode, String),
    ) -> Option<Bound<'py, PyAny>> {
        self.entries
            .borrow()
            .get(key)
            .map(|found| found.bind(py).clone())
    }

    /// `source` compiled in `mode` (the lambda modes compile as an expression).
    pub(super) fn compile<'py>(
        &self,
        py: Python<'py>,
        source: String,
        mode: Mode,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = (mode, source);
        if let Some(code) = self.get(py, &key) {
            return Ok(code);
        }
        let start = match key.0 {
            Mode::Eval | Mode::Lambda(_) | Mode::LambdaCode(_) => ffi::Py_eval_input,
            Mode::Exec => ffi::Py_file_input,
        };
        // code_text rejected interior NULs, so this cannot fail.
        let c_source = CString::new(key.1.as_str()).expect("no NUL in source");
        // SAFETY: both strings are valid NUL-terminated C strings for the
        // call; the result is a new reference or NULL with an exception set.
        let code = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                ffi::Py_CompileString(c_source.as_ptr(), c"<string>".as_ptr(), start),
            )?
        };
        self.remember(key, &code);
        Ok(code)
    }

    /// Caches a compiled code object or lambda; the cache is bounded by
    /// emptying it when full (sources repeat, so it refills with the hot ones).
    pub(super) fn remember(&self, key: (Mode, String), value: &Bound<'_, PyAny>) {
        let mut cache = self.entries.borrow_mut();
        if cache.len() >= CODE_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, value.clone().unbind());
    }
}

/// A validated name, ready for Python.
pub(super) struct Name {
    pub(super) text: Py<PyString>,
    pub(super) dotted: bool,
    pub(super) is_main: bool,
}

impl Name {
    fn clone_ref(&self, py: Python<'_>) -> Name {
        Name {
            text: self.text.clone_ref(py),
            dotted: self.dotted,
            is_main: self.is_main,
        }
    }
}

/// Atom names cached at most (cleared when full).
const ATOM_NAME_LIMIT: usize = 4096;

/// Module and function names given as atoms, as Python strings. An atom
/// names the same text for the VM's life (atoms are never freed), so its
/// term word is a stable key: hashing it is one multiply, where `Atom`'s
/// own `Hash` asks the VM for a hash and runs SipHash over it, twice per
/// call.
#[derive(Default)]
pub(super) struct NameCache {
    atom_names: RefCell<HashMap<rustler::sys::ErlNifTerm, Name, BuildHasherDefault<NameHasher>>>,
}

impl NameCache {
    /// A module or function name (atom or UTF-8 binary) as a Python string.
    pub(super) fn name(&self, py: Python<'_>, term: Term<'_>, what: &str) -> Result<Name, Failure> {
        let atom_key = rustler::Atom::from_term(term)
            .ok()
            .map(|atom| atom.as_c_arg());
        if let Some(key) = atom_key {
            if let Some(name) = self.atom_names.borrow().get(&key) {
                return Ok(name.clone_ref(py));
            }
        }
        let text = name_text(term, what)?;
        let name = Name {
            text: PyString::intern(py, &text).unbind(),
            dotted: text.contains('.'),
            is_main: text == "__main__",
        };
        if let Some(key) = atom_key {
            let mut names = self.atom_names.borrow_mut();
            if names.len() >= ATOM_NAME_LIMIT {
                names.clear();
            }
            names.insert(key, name.clone_ref(py));
        }
        Ok(name)
    }
}

/// Modules kept at most by a [`ModuleCache`]; emptied when full.
const MODULE_CACHE_LIMIT: usize = 1024;

/// Modules this worker has found fully initialized in `sys.modules`.
///
/// `PyImport_GetModule` checks, on every call, that the module it finds is
/// not still being imported by another thread (two attribute lookups on
/// its `__spec__`): a few percent of a small call's time on the worker. A
/// module seen initialized once stays initialized, so when `sys.modules`
/// gives an object found here, one dict lookup is enough. A module replaced
/// in `sys.modules` (a new import after `del`, a reload that swaps it) is
/// another object, checked the slow way once. The modules are held, so no
/// other object can take an address found here. Per worker, like the other
/// caches: Python objects never cross interpreters.
#[derive(Default)]
pub(super) struct ModuleCache {
    initialized: RefCell<HashMap<usize, Py<PyAny>>>,
}

impl ModuleCache {
    /// The module `name` in `sys.modules`, importing it only when missing.
    pub(super) fn get<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: attached (`py`); PyImport_GetModuleDict returns the
        // interpreter's borrowed `sys.modules` dict (never NULL once the
        // interpreter runs), and PyDict_GetItemWithError a borrowed value
        // or NULL. No Python code runs between the lookup and the
        // increment below that could drop the value (str keys compare
        // without it; the RefCell is borrowed only after the lookup).
        let found = unsafe {
            let modules = ffi::PyImport_GetModuleDict();
            if modules.is_null() {
                std::ptr::null_mut()
            } else {
                ffi::PyDict_GetItemWithError(modules, name.as_ptr())
            }
        };
        if !found.is_null() && self.initialized.borrow().contains_key(&(found as usize)) {
            // SAFETY: `found` is a live borrowed reference (see above).
            return Ok(unsafe { Bound::from_borrowed_ptr(py, found) });
        }
        // A lookup error (a key whose comparison raised) goes the slow way.
        let _ = PyErr::take(py);
        let module = import(py, name)?;
        let mut initialized = self.initialized.borrow_mut();
        if initialized.len() >= MODULE_CACHE_LIMIT {
            initialized.clear();
        }
        initialized.insert(module.as_ptr() as usize, module.clone().unbind());
        Ok(module)
    }
}

/// A module from `sys.modules` (which waits for one another thread is
/// still importing), importing it only when missing.
fn import<'py>(py: Python<'py>, name: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: PyImport_GetModule takes a borrowed str and returns a new
    // reference, or NULL (with or without an exception set).
    let cached = unsafe { ffi::PyImport_GetModule(name.as_ptr()) };
    if !cached.is_null() {
        // SAFETY: non-NULL new reference, owned by the Bound from here on.
        return Ok(unsafe { Bound::from_owned_ptr(py, cached) });
    }
    if let Some(err) = PyErr::take(py) {
        return Err(err);
    }
    Ok(py.import(name.to_str()?)?.into_any())
}
