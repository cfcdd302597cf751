//! `_erlang_native`: the built-in extension module behind Python's `erlang`
//! package (priv/erlang). It defines the Python types that stand for Erlang
//! terms with no Python counterpart:
//!
//! * `erlang.Pid` for local pids (compares and hashes by pid identity);
//! * `erlang.Term`, an opaque wrapper for references, ports, funs and other
//!   terms, which converts back to the identical Erlang term.
//!
//! The module is registered with `PyImport_AppendInittab` before the
//! interpreter starts, so it needs no file on disk.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rustler::{Env, LocalPid, OwnedEnv, Term};

use crate::{callbacks, runtime, sandbox};

/// An Erlang process identifier living in Python.
#[pyclass(module = "erlang", name = "Pid", frozen)]
pub struct Pid {
    pub pid: LocalPid,
}

#[pymethods]
impl Pid {
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<Pid>() {
            Ok(other) => other.get().pid == self.pid,
            Err(_) => false,
        }
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.pid.hash(&mut hasher);
        hasher.finish()
    }

    fn __repr__(&self) -> String {
        format!("<erlang.Pid {}>", describe(|env| self.pid.encode_in(env)))
    }
}

/// Any Erlang term Python has no natural type for (reference, port, fun,
/// bitstring, improper list). It owns a private copy of the term.
#[pyclass(module = "erlang", name = "Term", frozen)]
pub struct OpaqueTerm {
    held: HeldTerm,
}

/// A term copied into its own process-independent environment.
pub struct HeldTerm {
    env: OwnedEnv,
    term: rustler::env::SavedTerm,
}

// SAFETY: after construction the environment is never cleared or written;
// the only operations on it are reads (enif_make_copy out of it, compares,
// hashing), which ERTS allows from any thread concurrently. It is freed
// once, by Drop, when the Python object dies.
unsafe impl Sync for HeldTerm {}

impl HeldTerm {
    pub fn new(term: Term<'_>) -> Self {
        let env = OwnedEnv::new();
        let term = env.save(term);
        HeldTerm { env, term }
    }

    /// A copy of the held term in `target`.
    pub fn to_term<'b>(&self, target: Env<'b>) -> Term<'b> {
        self.env.run(|own| self.term.load(own).in_env(target))
    }

    fn with_term<R>(&self, f: impl for<'a> FnOnce(Term<'a>) -> R) -> R {
        self.env.run(|own| f(self.term.load(own)))
    }
}

impl OpaqueTerm {
    pub fn new(term: Term<'_>) -> Self {
        OpaqueTerm {
            held: HeldTerm::new(term),
        }
    }

    pub fn to_term<'b>(&self, target: Env<'b>) -> Term<'b> {
        self.held.to_term(target)
    }
}

#[pymethods]
impl OpaqueTerm {
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        let Ok(other) = other.cast::<OpaqueTerm>() else {
            return false;
        };
        let other = other.get();
        // SAFETY: enif_compare only reads both terms; each is valid while
        // its HeldTerm (borrowed here) is alive. No copy into either env.
        self.held.with_term(|a| {
            other.held.with_term(
                |b| unsafe { rustler::sys::enif_compare(a.as_c_arg(), b.as_c_arg()) } == 0,
            )
        })
    }

    fn __hash__(&self) -> u64 {
        self.held.with_term(|t| t.hash_internal(0x5eed))
    }

    fn __repr__(&self) -> String {
        format!("<erlang.Term {}>", describe(|env| self.held.to_term(env)))
    }
}

trait EncodeIn {
    fn encode_in<'a>(&self, env: Env<'a>) -> Term<'a>;
}

impl EncodeIn for LocalPid {
    fn encode_in<'a>(&self, env: Env<'a>) -> Term<'a> {
        rustler::Encoder::encode(self, env)
    }
}

/// Erlang's own printed form of a term (`<0.12.0>`, `#Ref<...>`, `#Port<...>`);
/// rustler's `Debug` for terms formats with `enif_snprintf("%T")`.
fn describe(make: impl for<'a> FnOnce(Env<'a>) -> Term<'a>) -> String {
    let env = OwnedEnv::new();
    env.run(|env| format!("{:?}", make(env)))
}

#[pyfunction]
fn sandbox_active(py: Python<'_>) -> bool {
    sandbox::is_sandboxed(py)
}

/// The exception type the sandbox raises (`erlang.SandboxBlocked`).
#[pyfunction]
fn sandbox_exception(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyType>> {
    sandbox::blocked_type(py)
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the sandbox is not set up"))
}

pyo3::create_exception!(
    erlang,
    CallbackError,
    pyo3::exceptions::PyException,
    "An Erlang function called from Python raised, exited or was killed."
);
pyo3::create_exception!(
    erlang,
    Interrupted,
    pyo3::exceptions::PyBaseException,
    "Raised into running Python code when its Elixir caller timed out, was \
     cancelled or exited. A BaseException: `except Exception:` does not catch it."
);
pyo3::create_exception!(
    erlang,
    ProcessError,
    pyo3::exceptions::PyException,
    "The Erlang process a message was sent to is not alive."
);

/// `erlang.call(name, *args, **kwargs)`: calls the Erlang function
/// registered as `name`. Keyword arguments arrive as a trailing map.
#[pyfunction]
#[pyo3(signature = (name, *args, **kwargs))]
fn call<'py>(
    py: Python<'py>,
    name: &str,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    callbacks::call(py, name, args, kwargs)
}

/// `erlang.send(pid, term)`: sends `term` to a local Erlang process.
#[pyfunction]
fn send(py: Python<'_>, pid: &Bound<'_, PyAny>, message: &Bound<'_, PyAny>) -> PyResult<()> {
    let pid = pid.cast::<Pid>().map_err(|_| {
        PyTypeError::new_err(format!(
            "erlang.send() needs an erlang.Pid, got {}",
            crate::convert::type_name(pid)
        ))
    })?;
    let target = pid.get().pid;
    if callbacks::send(py, target, message)? {
        Ok(())
    } else {
        Err(ProcessError::new_err(format!(
            "process {} is not alive",
            describe(|env| target.encode_in(env))
        )))
    }
}

/// Whether an Erlang function is registered under `name`.
#[pyfunction]
fn is_registered(name: &str) -> bool {
    callbacks::is_registered(name)
}

/// Names of the registered Erlang functions, sorted.
#[pyfunction]
fn registered() -> Vec<String> {
    callbacks::registered_names()
}

/// `erlang.self()`: the Elixir process whose request is running, or None
/// outside a request (in a Python thread of its own, for instance).
#[pyfunction(name = "self")]
fn self_pid() -> Option<Pid> {
    runtime::current_caller().map(|pid| Pid { pid })
}

/// The Python-visible module. Submodules of `erlang` build on these names.
#[pymodule]
pub fn _erlang_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Pid>()?;
    m.add_class::<OpaqueTerm>()?;
    m.add_function(wrap_pyfunction!(sandbox_active, m)?)?;
    m.add_function(wrap_pyfunction!(sandbox_exception, m)?)?;
    m.add_function(wrap_pyfunction!(call, m)?)?;
    m.add_function(wrap_pyfunction!(send, m)?)?;
    m.add_function(wrap_pyfunction!(is_registered, m)?)?;
    m.add_function(wrap_pyfunction!(registered, m)?)?;
    m.add_function(wrap_pyfunction!(self_pid, m)?)?;
    m.add("CallbackError", m.py().get_type::<CallbackError>())?;
    m.add("ProcessError", m.py().get_type::<ProcessError>())?;
    m.add("Interrupted", m.py().get_type::<Interrupted>())?;
    Ok(())
}
