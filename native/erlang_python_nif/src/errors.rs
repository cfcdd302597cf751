//! Turning failures into the error terms Elixir sees.
//!
//! * a Python exception becomes `%ErlangPython.Error{type, message, traceback}`
//!   (built here, ready to raise, so the Elixir side does no per-error work);
//! * a sandbox block becomes `{:sandbox_blocked, event, message}`;
//! * a conversion problem becomes a tagged tuple naming what went wrong.

use pyo3::prelude::*;
use pyo3::types::PyString;
use rustler::{Encoder, Env, Term};

use crate::atoms;
use crate::convert::{ConvertError, MAX_DEPTH};
use crate::sandbox;

/// Anything that can go wrong while serving a request.
#[derive(Debug)]
pub enum Failure {
    Python(PyErr),
    Convert(ConvertError),
    /// A malformed request (wrong argument shape); the text says which.
    BadArg(String),
    /// A Rust panic caught at the thread boundary.
    Internal(String),
}

impl From<PyErr> for Failure {
    fn from(err: PyErr) -> Self {
        Failure::Python(err)
    }
}

impl From<ConvertError> for Failure {
    fn from(err: ConvertError) -> Self {
        match err {
            ConvertError::Python(err) => Failure::Python(err),
            other => Failure::Convert(other),
        }
    }
}

/// The reason term (the part after `:error`) for a failure.
pub fn reason_term<'a>(env: Env<'a>, py: Python<'_>, failure: &Failure) -> Term<'a> {
    match failure {
        Failure::Python(err) => python_error_term(env, py, err),
        Failure::Convert(err) => convert_error_term(env, err),
        Failure::BadArg(text) => (atoms::badarg(), text.as_str()).encode(env),
        Failure::Internal(text) => (atoms::internal_error(), text.as_str()).encode(env),
    }
}

fn convert_error_term<'a>(env: Env<'a>, err: &ConvertError) -> Term<'a> {
    match err {
        ConvertError::TooDeep => (atoms::too_deep(), MAX_DEPTH).encode(env),
        ConvertError::DuplicateKey => atoms::duplicate_key().encode(env),
        ConvertError::IntegerTooLarge(bits) => (atoms::integer_too_large(), *bits).encode(env),
        // Unreachable through From, but keep the mapping total.
        ConvertError::Python(err) => Python::attach(|py| python_error_term(env, py, err)),
    }
}

/// `{:sandbox_blocked, event, message}` or `%ErlangPython.Error{}`.
///
/// Tagged by the exception's seal, never by its text: Python code raising
/// the sandbox's words is an ordinary error.
pub fn python_error_term<'a>(env: Env<'a>, py: Python<'_>, err: &PyErr) -> Term<'a> {
    if let Some((event, message)) = sandbox::blocked_by_sandbox(py, err) {
        return (atoms::sandbox_blocked(), event, message).encode(env);
    }
    let message = exception_message(py, err);
    let type_name = err
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    let traceback = format_traceback(py, err);
    // Interrupts are raised as a bare class (asynchronous exceptions carry
    // no arguments): give them their explanation.
    let message = if message.is_empty() && type_name == "Interrupted" {
        INTERRUPTED_MESSAGE.to_string()
    } else if message.contains(SUBINTERPRETER_REFUSAL) {
        // An extension module built for one interpreter per process, in an
        // own-GIL context: say what to do about it.
        format!("{message} (an own-GIL context is a sub-interpreter: {OWN_GIL_HINT})")
    } else {
        message
    };
    error_struct(env, &type_name, &message, &traceback)
}

/// The message of `erlang.Interrupted`.
/// What CPython's ImportError says of a single-phase-init extension module
/// imported in an interpreter that refuses them (an own-GIL context's).
const SUBINTERPRETER_REFUSAL: &str = "does not support loading in subinterpreters";

/// The advice that goes with it.
pub const OWN_GIL_HINT: &str = "this extension module supports only the main interpreter; \
     import it in a context without own_gil";

pub const INTERRUPTED_MESSAGE: &str =
    "the call was interrupted: its caller timed out, was cancelled or exited";

/// `%ErlangPython.Error{type: ..., message: ..., traceback: ...}`.
pub fn error_struct<'a>(env: Env<'a>, type_name: &str, message: &str, traceback: &str) -> Term<'a> {
    crate::terms::elixir_struct(
        env,
        atoms::error_module(),
        &[
            (atoms::__exception__(), true.encode(env)),
            (atoms::type_(), type_name.encode(env)),
            (atoms::message(), message.encode(env)),
            (atoms::traceback(), traceback.encode(env)),
        ],
    )
}

/// `str(exception)`, falling back to its repr when `__str__` itself fails.
pub fn exception_message(py: Python<'_>, err: &PyErr) -> String {
    let value = err.value(py);
    match value.str() {
        Ok(text) => text.to_string_lossy().into_owned(),
        Err(_) => value
            .repr()
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "<unprintable exception>".into()),
    }
}

/// The formatted Python traceback, as `traceback.format_exception` prints it.
pub fn format_traceback(py: Python<'_>, err: &PyErr) -> String {
    let formatted = (|| -> PyResult<String> {
        let traceback = py.import("traceback")?;
        // Pass the traceback explicitly: on Python < 3.12 PyO3 keeps it apart
        // from the exception value, whose __traceback__ may be unset.
        let lines = traceback.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?;
        let joined = PyString::new(py, "").call_method1("join", (lines,))?;
        joined.extract::<String>()
    })();
    formatted.unwrap_or_default()
}
