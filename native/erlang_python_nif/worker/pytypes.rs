//! `erlang.Pid` and `erlang.Term` in the worker: the external-format bytes
//! of the Erlang term, written back unchanged when the value returns. The
//! worker never interprets them (a pid is only ever handed back to the VM,
//! which sends to it).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// An Erlang process identifier living in the worker.
#[pyclass(module = "erlang", name = "Pid", frozen)]
pub(crate) struct Pid {
    pub(crate) raw: Vec<u8>,
}

#[pymethods]
impl Pid {
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Pid>()
            .is_ok_and(|other| other.get().raw == self.raw)
    }

    fn __hash__(&self) -> u64 {
        hash(&self.raw)
    }

    fn __repr__(&self) -> String {
        "<erlang.Pid>".to_string()
    }
}

/// Any other Erlang term with no Python type (reference, port, fun,
/// bitstring, improper list).
#[pyclass(module = "erlang", name = "Term", frozen)]
pub(crate) struct OpaqueTerm {
    pub(crate) raw: Vec<u8>,
}

#[pymethods]
impl OpaqueTerm {
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<OpaqueTerm>()
            .is_ok_and(|other| other.get().raw == self.raw)
    }

    fn __hash__(&self) -> u64 {
        hash(&self.raw)
    }

    fn __repr__(&self) -> String {
        "<erlang.Term>".to_string()
    }

    /// The term in the external format (`:erlang.binary_to_term/1` reads it).
    fn to_external<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let mut bytes = Vec::with_capacity(self.raw.len() + 1);
        bytes.push(crate::codec::VERSION);
        bytes.extend_from_slice(&self.raw);
        PyBytes::new(py, &bytes)
    }
}

fn hash(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}
