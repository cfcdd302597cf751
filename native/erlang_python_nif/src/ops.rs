//! The operations the runtime thread performs: `call`, `eval`, `exec`, `ping`.
//!
//! Requests arrive as terms (`{:call, module, function, args, kwargs}`,
//! `{:eval, code, locals}`, `{:exec, code}`, `:ping`), built by
//! `ErlangPython`; anything else is answered with `{:badarg, text}`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use rustler::types::tuple::get_tuple;
use rustler::{Binary, Term, TermType};

use crate::atoms;
use crate::convert;
use crate::errors::Failure;
use crate::registry;
use crate::reply::Outcome;

type OpResult<'py> = Result<Outcome<'py>, Failure>;

/// Compiled code objects kept per source text; cleared when full.
const CODE_CACHE_LIMIT: usize = 1024;

#[derive(Hash, PartialEq, Eq)]
enum Mode {
    Eval,
    Exec,
    /// An expression wrapped as a lambda of these comma-separated names.
    Lambda(String),
}

/// State owned by the runtime thread across requests.
///
/// Methods take `&self`: a request may run while another is suspended on
/// this thread (a callback into Elixir serving nested requests), so state is
/// borrowed only briefly, never across running Python code.
pub struct Worker {
    code_cache: RefCell<HashMap<(Mode, String), Py<PyAny>>>,
    /// Module and function names given as atoms, as Python strings. An atom
    /// names the same text for the VM's life, so it is a stable key.
    atom_names: RefCell<HashMap<rustler::Atom, Name>>,
}

/// A validated name, ready for Python.
struct Name {
    text: Py<PyString>,
    dotted: bool,
    is_main: bool,
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

impl Worker {
    pub fn new() -> Self {
        Worker {
            code_cache: RefCell::new(HashMap::new()),
            atom_names: RefCell::new(HashMap::new()),
        }
    }

    /// A module or function name (atom or UTF-8 binary) as a Python string.
    fn name(&self, py: Python<'_>, term: Term<'_>, what: &str) -> Result<Name, Failure> {
        let atom_key = rustler::Atom::from_term(term).ok();
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

    pub fn execute<'py>(&self, py: Python<'py>, op: Term<'_>) -> OpResult<'py> {
        self.execute_in(py, op, None)
    }

    /// Runs `op` with `scope` as its globals (a context), or `__main__`'s.
    fn execute_in<'py>(
        &self,
        py: Python<'py>,
        op: Term<'_>,
        scope: Option<&Bound<'py, PyDict>>,
    ) -> OpResult<'py> {
        if op == atoms::ping().to_term(op.get_env()) {
            return Ok(Outcome::Pong);
        }
        if op == atoms::diagnostic_panic().to_term(op.get_env()) {
            // Diagnostic: proves a panic on this thread becomes an error
            // reply and the thread keeps serving (see test/robustness_test.exs).
            panic!("diagnostic panic requested");
        }
        let parts = match op.get_type() {
            TermType::Tuple => get_tuple(op).map_err(|_| bad("malformed request"))?,
            _ => return Err(bad("malformed request")),
        };
        let is = |tag: &Term<'_>, atom: rustler::Atom| atom == *tag;
        match parts.as_slice() {
            [tag, module, function, args, kwargs] if is(tag, atoms::call()) => {
                self.call(py, *module, *function, *args, *kwargs, scope)
            }
            [tag, code, locals] if is(tag, atoms::eval()) => self.eval(py, *code, *locals, scope),
            [tag, code] if is(tag, atoms::exec()) => self.exec(py, *code, scope),
            [tag, context, inner] if is(tag, atoms::context()) => {
                let globals = convert::to_python(py, *context)?
                    .cast_into::<PyDict>()
                    .map_err(|_| bad("not a context"))?;
                self.execute_in(py, *inner, Some(&globals))
            }
            // decode: false: whatever the value, a handle to it.
            [tag, inner] if is(tag, atoms::raw()) => match self.execute_in(py, *inner, scope)? {
                Outcome::Value(value) | Outcome::ValueThenFree(value, _) => {
                    Ok(Outcome::Handle(value))
                }
                other => Ok(other),
            },
            [tag, object, name] if is(tag, atoms::getattr()) => {
                let object = convert::to_python(py, *object)?;
                let name = name_text(*name, "attribute")?;
                Ok(Outcome::Value(object.getattr(name.as_str())?))
            }
            [tag, object, name, args, kwargs] if is(tag, atoms::call_method()) => {
                let object = convert::to_python(py, *object)?;
                let name = name_text(*name, "method")?;
                let args = positional_args(py, *args)?;
                let kwargs = keyword_args(py, *kwargs)?;
                let value = object
                    .getattr(name.as_str())?
                    .call(&args, kwargs.as_ref())?;
                Ok(Outcome::ValueThenFree(value, args.into_any()))
            }
            [tag, object, limit] if is(tag, atoms::repr()) => {
                let object = convert::to_python(py, *object)?;
                let limit: usize = limit
                    .decode()
                    .map_err(|_| bad("limit must be an integer"))?;
                let text = object.repr()?.to_string_lossy().into_owned();
                let shown = match text.char_indices().nth(limit) {
                    Some((cut, _)) => format!("{}...", &text[..cut]),
                    None => text,
                };
                Ok(Outcome::Value(PyString::new(py, &shown).into_any()))
            }
            _ => Err(bad("malformed request")),
        }
    }

    fn call<'py>(
        &self,
        py: Python<'py>,
        module: Term<'_>,
        function: Term<'_>,
        args: Term<'_>,
        kwargs: Term<'_>,
        scope: Option<&Bound<'py, PyDict>>,
    ) -> OpResult<'py> {
        let module = self.name(py, module, "module")?;
        let function = self.name(py, function, "function")?;
        let target = match scope {
            // In a context, __main__ means the context's own namespace.
            Some(globals) if module.is_main && !function.dotted => {
                match globals.get_item(function.text.bind(py))? {
                    Some(found) => found,
                    None => resolve(py, &module, &function)?,
                }
            }
            _ => resolve(py, &module, &function)?,
        };
        let args = positional_args(py, args)?;
        let kwargs = keyword_args(py, kwargs)?;
        let value = target.call(&args, kwargs.as_ref())?;
        // Freeing large arguments (a million ints) takes a while: do it after
        // the reply is on its way.
        Ok(Outcome::ValueThenFree(value, args.into_any()))
    }

    fn eval<'py>(
        &self,
        py: Python<'py>,
        code: Term<'_>,
        locals: Term<'_>,
        scope: Option<&Bound<'py, PyDict>>,
    ) -> OpResult<'py> {
        let source = code_text(code)?;
        let main = globals(py, scope)?;
        let has_locals = match locals.get_type() {
            TermType::Map => locals.map_size().unwrap_or(0) > 0,
            TermType::Atom if locals == atoms::nil().to_term(locals.get_env()) => false,
            _ => return Err(bad("locals must be a map")),
        };
        // Compiling the plain expression first (cached) also reports syntax
        // errors with the caller's own line numbers.
        let compiled = self.compile(py, source.clone(), Mode::Eval)?;
        if !has_locals {
            return Ok(Outcome::Value(run_code(py, &compiled, &main)?));
        }
        let locals = convert::to_python(py, locals)?
            .cast_into::<PyDict>()
            .map_err(PyErr::from)?;
        let mut names = String::new();
        let mut values = Vec::with_capacity(locals.len());
        for (key, value) in locals.iter() {
            let Ok(key) = key.cast_into::<PyString>() else {
                return self.eval_in_copy(py, &compiled, &main, &locals);
            };
            names.push_str(key.to_str()?);
            names.push(',');
            values.push(value);
        }
        // The lambda cache holds functions bound to __main__'s globals, so a
        // context takes the copying path.
        let lambda = match scope {
            None => self.lambda(py, &source, &names, &main)?,
            Some(_) => None,
        };
        match lambda {
            // Locals are the parameters of `lambda <names>: (<expr>)`, so
            // nested scopes (comprehensions, lambdas) see them, and nothing
            // is copied per call.
            Some(function) => Ok(Outcome::Value(function.call1(PyTuple::new(py, values)?)?)),
            // Keys that are not identifiers: a private copy of __main__'s
            // namespace with the locals added.
            None => self.eval_in_copy(py, &compiled, &main, &locals),
        }
    }

    fn eval_in_copy<'py>(
        &self,
        py: Python<'py>,
        compiled: &Bound<'py, PyAny>,
        main: &Bound<'py, PyDict>,
        locals: &Bound<'py, PyDict>,
    ) -> OpResult<'py> {
        let scope = main.copy()?;
        scope.update(locals.as_mapping())?;
        Ok(Outcome::Value(run_code(py, compiled, &scope)?))
    }

    /// `lambda <names>: (<source>)` as a function of `__main__`, compiled
    /// once per source and names; `None` when a name is not an identifier.
    fn lambda<'py>(
        &self,
        py: Python<'py>,
        source: &str,
        names: &str,
        main: &Bound<'py, PyDict>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let key = (Mode::Lambda(names.to_string()), source.to_string());
        if let Some(function) = self.code_cache.borrow().get(&key) {
            return Ok(Some(function.bind(py).clone()));
        }
        let keyword = py.import("keyword")?;
        let parameters: Vec<&str> = names.split(',').filter(|n| !n.is_empty()).collect();
        for name in &parameters {
            let text = PyString::new(py, name);
            let identifier: bool = text.call_method0("isidentifier")?.extract()?;
            let reserved: bool = keyword.call_method1("iskeyword", (text,))?.extract()?;
            if !identifier || reserved {
                return Ok(None);
            }
        }
        let wrapped = format!("lambda {}: (\n{}\n)", parameters.join(", "), source);
        let code = self.compile(py, wrapped, Mode::Eval)?;
        let function = run_code(py, &code, main)?;
        self.remember(key, &function);
        Ok(Some(function))
    }

    fn exec<'py>(
        &self,
        py: Python<'py>,
        code: Term<'_>,
        scope: Option<&Bound<'py, PyDict>>,
    ) -> OpResult<'py> {
        let source = code_text(code)?;
        let compiled = self.compile(py, source, Mode::Exec)?;
        let main = globals(py, scope)?;
        run_code(py, &compiled, &main)?;
        Ok(Outcome::Ok)
    }

    fn compile<'py>(
        &self,
        py: Python<'py>,
        source: String,
        mode: Mode,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = (mode, source);
        if let Some(code) = self.code_cache.borrow().get(&key) {
            return Ok(code.bind(py).clone());
        }
        let start = match key.0 {
            Mode::Eval | Mode::Lambda(_) => ffi::Py_eval_input,
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
}

impl Worker {
    /// Caches a compiled code object or lambda; the cache is bounded by
    /// emptying it when full (sources repeat, so it refills with the hot ones).
    fn remember(&self, key: (Mode, String), value: &Bound<'_, PyAny>) {
        let mut cache = self.code_cache.borrow_mut();
        if cache.len() >= CODE_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, value.clone().unbind());
    }
}

impl Default for Worker {
    fn default() -> Self {
        Self::new()
    }
}

fn bad(text: &str) -> Failure {
    Failure::BadArg(text.to_string())
}

fn run_code<'py>(
    py: Python<'py>,
    code: &Bound<'py, PyAny>,
    globals: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `code` is a code object from Py_CompileString and `globals` a
    // dict, both alive for the call; the result is a new reference or NULL
    // with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyEval_EvalCode(code.as_ptr(), globals.as_ptr(), globals.as_ptr()),
        )
    }
}

/// The globals a request runs with: its context's, or `__main__`'s.
fn globals<'py>(
    py: Python<'py>,
    scope: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    match scope {
        Some(globals) => Ok(globals.clone()),
        None => main_dict(py),
    }
}

/// `__main__.__dict__`: where `exec` defines names and `call(:__main__, ...)` finds them.
fn main_dict(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let main = py.import("__main__")?;
    Ok(main.dict())
}

/// A module or function name given as an atom or a UTF-8 binary.
fn name_text(term: Term<'_>, what: &str) -> Result<String, Failure> {
    let text = match term.get_type() {
        TermType::Atom => term.atom_to_string().map_err(|_| bad(what))?,
        TermType::Binary => {
            let bin = Binary::from_term(term)
                .map_err(|_| bad(&format!("{what} name must be an atom or a string")))?;
            String::from_utf8(bin.as_slice().to_vec())
                .map_err(|_| bad(&format!("{what} name is not valid UTF-8")))?
        }
        _ => return Err(bad(&format!("{what} name must be an atom or a string"))),
    };
    if text.is_empty() {
        return Err(bad(&format!("{what} name is empty")));
    }
    if text.contains('\0') {
        return Err(bad(&format!("{what} name contains a NUL byte")));
    }
    Ok(text)
}

/// Python source given as a UTF-8 binary.
fn code_text(term: Term<'_>) -> Result<String, Failure> {
    let bin = Binary::from_term(term).map_err(|_| bad("code must be a string"))?;
    let text =
        String::from_utf8(bin.as_slice().to_vec()).map_err(|_| bad("code is not valid UTF-8"))?;
    if text.contains('\0') {
        return Err(bad("code contains a NUL byte"));
    }
    Ok(text)
}

/// Finds `function` (possibly dotted, `"path.join"`) in `module`. A name
/// missing from `__main__` that is a registered Erlang function resolves to
/// that function (`py:call('__main__', Name, Args)` in erlang_python).
fn resolve<'py>(py: Python<'py>, module: &Name, function: &Name) -> PyResult<Bound<'py, PyAny>> {
    let module_obj = import(py, module.text.bind(py))?;
    if !function.dotted {
        return match module_obj.getattr(function.text.bind(py)) {
            Ok(found) => Ok(found),
            Err(err) => {
                let name = function.text.bind(py).to_str()?;
                if module.is_main && registry::is_registered(name) {
                    py.import("erlang")?.getattr("Function")?.call1((name,))
                } else {
                    Err(err)
                }
            }
        };
    }
    let mut target = module_obj;
    for part in function.text.bind(py).to_str()?.split('.') {
        target = target.getattr(part)?;
    }
    Ok(target)
}

/// A module from `sys.modules`, importing it only when missing.
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

fn positional_args<'py>(py: Python<'py>, args: Term<'_>) -> Result<Bound<'py, PyTuple>, Failure> {
    let Ok(len) = args.list_length() else {
        return Err(bad("args must be a list"));
    };
    let items = args
        .into_list_iterator()
        .map_err(|_| bad("args must be a list"))?;
    // SAFETY: PyTuple_New returns a new reference or NULL with an exception
    // set; each slot is filled once with a new reference, which
    // PyTuple_SET_ITEM steals. A slot left NULL after an error is fine for
    // tuple_dealloc (it uses Py_XDECREF).
    let tuple =
        unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyTuple_New(len as ffi::Py_ssize_t))? };
    for (index, item) in items.enumerate() {
        let value = convert::to_python(py, item)?;
        unsafe {
            ffi::PyTuple_SET_ITEM(tuple.as_ptr(), index as ffi::Py_ssize_t, value.into_ptr());
        }
    }
    Ok(tuple.cast_into::<PyTuple>().map_err(PyErr::from)?)
}

fn keyword_args<'py>(
    py: Python<'py>,
    kwargs: Term<'_>,
) -> Result<Option<Bound<'py, PyDict>>, Failure> {
    match kwargs.get_type() {
        TermType::Map if kwargs.map_size().unwrap_or(0) == 0 => Ok(None),
        TermType::Map => {
            let dict = convert::to_python(py, kwargs)?;
            Ok(Some(dict.cast_into::<PyDict>().map_err(PyErr::from)?))
        }
        TermType::Atom if kwargs == atoms::nil().to_term(kwargs.get_env()) => Ok(None),
        _ => Err(bad("kwargs must be a map")),
    }
}
