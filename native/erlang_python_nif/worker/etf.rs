//! The external term format in the worker: the shared codec ([`crate::codec`],
//! the NIF's `src/etf/`), with the worker's own forms for what plain data has no
//! form for: pids as `erlang.Pid` and references, ports, funs, bitstrings
//! and improper lists as `erlang.Term` (both written back as the identical
//! bytes), and Python objects with no Erlang form as handles
//! ([`crate::handles`]).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::codec;
use crate::handles;
use crate::pytypes::{OpaqueTerm, Pid};

pub(crate) use codec::{set_mapset_version, VERSION};

/// The worker's reader and writer.
pub(crate) type Reader<'a> = codec::Reader<'a, WorkerForms>;
pub(crate) type Writer = codec::Writer<WorkerForms>;

pub(crate) struct WorkerForms;

impl codec::Forms for WorkerForms {
    fn pid<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        Ok(Bound::new(py, Pid { raw: raw.to_vec() })?.into_any())
    }

    fn opaque<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        Ok(Bound::new(py, OpaqueTerm { raw: raw.to_vec() })?.into_any())
    }

    /// Only this worker's handles (`{:isolated, owner, id}`, or with the
    /// VM's release guard last) name objects.
    fn handle<'py>(py: Python<'py>, reference: &mut Reader<'_>) -> PyResult<Bound<'py, PyAny>> {
        if !matches!(reference.tuple(), Ok(3 | 4)) || reference.atom().ok() != Some("isolated") {
            return Err(PyValueError::new_err(
                "an embedded interpreter's handle cannot be used in an isolated context",
            ));
        }
        let owner = reference.u64()?;
        let id = reference.u64()?;
        handles::get(py, owner, id)
    }

    fn write_other(writer: &mut Writer, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        if let Ok(pid) = obj.cast::<Pid>() {
            writer.raw(&pid.get().raw);
            return Ok(());
        }
        if let Ok(term) = obj.cast::<OpaqueTerm>() {
            writer.raw(&term.get().raw);
            return Ok(());
        }
        let (owner, id) = handles::put(obj);
        writer.handle(owner, id, &handles::type_name(obj));
        Ok(())
    }
}
