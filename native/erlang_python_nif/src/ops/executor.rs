//! Runs a request's [`Op`] on a worker thread, holding the GIL.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule, PyString, PyTuple};
use rustler::{Term, TermType};

use super::cache::{CodeCache, Mode, ModuleCache, Name, NameCache};
use super::inputs::{bad, code_text, keyword_args, name_text, positional_args};
use super::op::Op;
use crate::atoms;
use crate::convert;
use crate::errors::Failure;
use crate::interpreters;
use crate::registry;
use crate::reply::Outcome;

type OpResult<'py> = Result<Outcome<'py>, Failure>;

/// What a worker thread keeps across requests, and the code that runs them.
///
/// Methods take `&self`: a request may run while another is suspended on
/// this thread (a callback into Elixir serving nested requests), so state is
/// borrowed only briefly, never across running Python code.
#[derive(Default)]
pub(crate) struct Executor {
    code: CodeCache,
    names: NameCache,
    modules: ModuleCache,
}

impl Executor {
    /// Decodes and runs a request term.
    pub(crate) fn execute<'py>(&self, py: Python<'py>, op: Term<'_>) -> OpResult<'py> {
        let op = Op::from_term(op).ok_or_else(|| bad("malformed request"))?;
        self.run(py, op, None)
    }

    /// Runs `op` with `scope` as its globals (a context), or `__main__`'s.
    fn run<'py>(
        &self,
        py: Python<'py>,
        op: Op<'_>,
        scope: Option<&Bound<'py, PyDict>>,
    ) -> OpResult<'py> {
        match op {
            Op::Ping => Ok(Outcome::Pong),
            #[cfg(feature = "diagnostics")]
            Op::DiagnosticPanic => panic!("diagnostic panic requested"),
            #[cfg(feature = "diagnostics")]
            Op::DiagnosticPackedWords => {
                let words = convert::packed_held_words();
                // SAFETY: the GIL is held; a new reference or NULL with an
                // exception set, which from_owned_ptr_or_err turns into one.
                let words =
                    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromSize_t(words))? };
                Ok(Outcome::Value(words))
            }
            Op::Call(module, function, args, kwargs) => {
                self.call(py, module, function, args, kwargs, scope)
            }
            Op::Eval(code, locals) => self.eval(py, code, locals, scope),
            Op::Exec(code) => self.exec(py, code, scope),
            Op::Context(globals, inner) => {
                let globals = convert::to_python(py, globals)?
                    .cast_into::<PyDict>()
                    .map_err(|_| bad("not a context"))?;
                self.run(py, *inner, Some(&globals))
            }
            // decode: false: whatever the value, a handle to it.
            Op::Raw(inner) => match self.run(py, *inner, scope)? {
                Outcome::Value(value) | Outcome::ValueThenFree(value, _) => {
                    Ok(Outcome::Handle(value))
                }
                other => Ok(other),
            },
            Op::Arrays(inner) => match self.run(py, *inner, scope)? {
                Outcome::Value(value) | Outcome::ValueThenFree(value, _) => {
                    Ok(Outcome::WithArrays(value))
                }
                other => Ok(other),
            },
            Op::Getattr(object, name) => {
                let object = convert::to_python(py, object)?;
                let name = name_text(name, "attribute")?;
                Ok(Outcome::Value(object.getattr(name.as_str())?))
            }
            Op::CallMethod(object, name, args, kwargs) => {
                let object = convert::to_python(py, object)?;
                let name = name_text(name, "method")?;
                let args = positional_args(py, args)?;
                let kwargs = keyword_args(py, kwargs)?;
                let value = object
                    .getattr(name.as_str())?
                    .call(&args, kwargs.as_ref())?;
                Ok(Outcome::ValueThenFree(value, args.into_any()))
            }
            Op::Repr(object, limit) => {
                let object = convert::to_python(py, object)?;
                let text = object.repr()?.to_string_lossy().into_owned();
                let shown = match text.char_indices().nth(limit) {
                    Some((cut, _)) => format!("{}...", &text[..cut]),
                    None => text,
                };
                Ok(Outcome::Value(PyString::new(py, &shown).into_any()))
            }
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
        let module = self.names.name(py, module, "module")?;
        let function = self.names.name(py, function, "function")?;
        let target = match scope {
            // In a context, __main__ means the context's own namespace.
            Some(globals) if module.is_main && !function.dotted => {
                match globals.get_item(function.text.bind(py))? {
                    Some(found) => found,
                    None => resolve(py, &self.modules, &module, &function)?,
                }
            }
            _ => resolve(py, &self.modules, &module, &function)?,
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
        let compiled = self.code.compile(py, source.clone(), Mode::Eval)?;
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
        // The lambda cache holds functions bound to __main__'s globals; in a
        // context the cached code makes a function bound to the context's
        // namespace, so `globals()` in the expression is that namespace.
        let lambda = match scope {
            None => self.lambda(py, &source, &names, &main)?,
            Some(_) => self.lambda_in(py, &source, &names, &main)?,
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
        if let Some(function) = self.code.get(py, &key) {
            return Ok(Some(function));
        }
        let Some(code) = self.lambda_code(py, source, names)? else {
            return Ok(None);
        };
        let function = run_code(py, &code, main)?;
        self.code.remember(key, &function);
        Ok(Some(function))
    }

    /// The same lambda as a function of `globals` (a context's namespace),
    /// made from cached code at each call.
    fn lambda_in<'py>(
        &self,
        py: Python<'py>,
        source: &str,
        names: &str,
        globals: &Bound<'py, PyDict>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let key = (Mode::LambdaCode(names.to_string()), source.to_string());
        let code = match self.code.get(py, &key) {
            Some(code) => code,
            None => match self.lambda_code(py, source, names)? {
                Some(code) => {
                    self.code.remember(key, &code);
                    code
                }
                None => return Ok(None),
            },
        };
        Ok(Some(run_code(py, &code, globals)?))
    }

    /// The code of `lambda <names>: (<source>)`; `None` when a name is not
    /// an identifier (or is a keyword).
    fn lambda_code<'py>(
        &self,
        py: Python<'py>,
        source: &str,
        names: &str,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
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
        Ok(Some(self.code.compile(py, wrapped, Mode::Eval)?))
    }

    fn exec<'py>(
        &self,
        py: Python<'py>,
        code: Term<'_>,
        scope: Option<&Bound<'py, PyDict>>,
    ) -> OpResult<'py> {
        let source = code_text(code)?;
        let compiled = self.code.compile(py, source, Mode::Exec)?;
        let main = globals(py, scope)?;
        run_code(py, &compiled, &main)?;
        Ok(Outcome::Ok)
    }
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

/// `__main__.__dict__`: where `exec` defines names and `call(:__main__, ...)`
/// finds them. Found without the import system ([`interpreters::loaded_module`]),
/// which raised and cleared an AttributeError for `__main__` on every lookup.
fn main_dict(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let main = interpreters::loaded_module(py, "__main__")?;
    Ok(main.cast_into::<PyModule>().map_err(PyErr::from)?.dict())
}

/// Finds `function` (possibly dotted, `"path.join"`) in `module`. A name
/// missing from `__main__` that is a registered Erlang function resolves to
/// that function (`py:call('__main__', Name, Args)` in erlang_python).
fn resolve<'py>(
    py: Python<'py>,
    modules: &ModuleCache,
    module: &Name,
    function: &Name,
) -> PyResult<Bound<'py, PyAny>> {
    let module_obj = modules.get(py, module.text.bind(py))?;
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
