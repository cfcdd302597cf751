//! The Python types and exceptions that stand for Erlang things in Python.
//!
//! * `erlang.Pid` for local pids (compares and hashes by pid identity);
//! * `erlang.Term`, an opaque wrapper for references, ports, funs and other
//!   terms, which converts back to the identical Erlang term;
//! * `erlang.CallbackError`, `erlang.Interrupted`, `erlang.ProcessError`.
//!
//! They live low in the crate because conversion, callbacks and the
//! interrupter all need them; the module that exposes them to Python is
//! `erlang_module`, near the top.

use pyo3::prelude::*;
use rustler::{Encoder, LocalPid, Term};

use crate::interpreters::{self, Exception};
use crate::terms::{describe, HeldTerm};

/// An Erlang process identifier living in Python.
#[pyclass(module = "erlang", name = "Pid", frozen)]
pub(crate) struct Pid {
    pub(crate) pid: LocalPid,
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
        format!("<erlang.Pid {}>", describe_pid(self.pid))
    }
}

/// `<0.12.0>`: how Erlang prints `pid`.
pub(crate) fn describe_pid(pid: LocalPid) -> String {
    describe(|env| pid.encode(env))
}

/// Any Erlang term Python has no natural type for (reference, port, fun,
/// bitstring, improper list). It owns a private copy of the term.
#[pyclass(module = "erlang", name = "Term", frozen)]
pub(crate) struct OpaqueTerm {
    held: HeldTerm,
}

impl OpaqueTerm {
    pub(crate) fn new(term: Term<'_>) -> Self {
        OpaqueTerm {
            held: HeldTerm::new(term),
        }
    }

    pub(crate) fn to_term<'b>(&self, target: rustler::Env<'b>) -> Term<'b> {
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

/// `which` raised with `message`, as the class of the interpreter the
/// calling thread runs in: a sub-interpreter has classes of its own
/// (`interpreters`), and a class of another interpreter must never be used.
pub(crate) fn error(py: Python<'_>, which: Exception, message: impl Into<String>) -> PyErr {
    let message = message.into();
    match interpreters::exception_type(py, which) {
        Some(class) => PyErr::from_type(class, message),
        None => match which {
            Exception::Interrupted => Interrupted::new_err(message),
            Exception::CallbackError => CallbackError::new_err(message),
            Exception::ProcessError => ProcessError::new_err(message),
        },
    }
}

/// The class of `erlang.Interrupted` in the calling thread's interpreter.
pub(crate) fn interrupted_type(py: Python<'_>) -> Bound<'_, pyo3::types::PyType> {
    interpreters::exception_type(py, Exception::Interrupted)
        .unwrap_or_else(|| py.get_type::<Interrupted>())
}
