//! What can go wrong converting, and the nesting limit.

use pyo3::exceptions::PyTypeError;
use pyo3::PyErr;

/// Most levels of nested lists, tuples, maps and sets converted either way
/// (`[[1]]` has two levels; scalars do not count).
pub(crate) const MAX_DEPTH: usize = 10_000;

/// Why a value could not be converted.
#[derive(Debug)]
pub(crate) enum ConvertError {
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

pub(super) type Result<T> = std::result::Result<T, ConvertError>;

/// `depth` is the number of containers around `term`; entering one more
/// container than [`MAX_DEPTH`] allows, or than the calling thread's stack
/// has room for (Python threads may have small stacks), is an error.
pub(super) fn enter(depth: usize) -> Result<()> {
    if depth >= MAX_DEPTH || !crate::stack_guard::has_room() {
        Err(ConvertError::TooDeep)
    } else {
        Ok(())
    }
}

/// A term that claimed a type it could not be decoded as.
pub(super) fn internal(what: &str) -> ConvertError {
    ConvertError::Python(PyTypeError::new_err(format!(
        "internal error decoding an Erlang {what}"
    )))
}
