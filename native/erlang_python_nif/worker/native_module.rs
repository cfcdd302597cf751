//! `_erlang_native` in an isolated worker: the same names the embedded
//! module gives Python's `erlang` package (priv/erlang), reaching Elixir
//! through the port instead of the NIF.
//!
//! Channels and buffers are NIF queues shared with the VM's memory: they do
//! not exist in a worker, and their types only refuse to be made.

use pyo3::exceptions::{PyBaseException, PyException, PyNotImplementedError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::pytypes::{OpaqueTerm, Pid};
use crate::serve::CallbackError;
use crate::{handles, protocol, sandbox, serve, startup};

pyo3::create_exception!(erlang, ProcessError, PyException);
pyo3::create_exception!(erlang, Interrupted, PyBaseException);
pyo3::create_exception!(erlang, ChannelClosed, PyException);
pyo3::create_exception!(erlang, ByteChannelClosed, PyException);

/// The name of the output function (`_erlang_impl._io`): a Python thread
/// of its own writes to standard error instead (see `call`).
const OUTPUT_FUNCTION: &str = "__erlang_python_output__";

/// Names the isolated server answers itself: the registered functions.
const REGISTERED: &str = "__erlang_python_isolated_registered__";

/// Whether the sandbox holds for the calling thread: the audit hook and
/// guards are on, and the kernel filter answers (as the embedded check).
#[pyfunction]
fn sandbox_active() -> bool {
    startup::sandboxed() && crate::seccomp::active()
}

/// `erlang.SandboxBlocked`: the sandbox's own type; a look-alike when the
/// context allows subprocesses (nothing raises it then).
#[pyfunction]
fn sandbox_exception(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    if let Some(blocked) = sandbox::blocked_type(py) {
        return Ok(blocked);
    }
    static UNUSED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    UNUSED
        .get_or_try_init(py, || -> PyResult<Py<PyType>> {
            let builtins = py.import("builtins")?;
            let bases = (
                builtins.getattr("RuntimeError")?,
                builtins.getattr("PermissionError")?,
            );
            let namespace = PyDict::new(py);
            namespace.set_item("__module__", "erlang")?;
            let made = builtins
                .getattr("type")?
                .call1(("SandboxBlocked", bases, namespace))?;
            Ok(made.cast_into::<PyType>()?.unbind())
        })
        .map(|t| t.bind(py).clone())
}

#[pyfunction]
#[pyo3(signature = (name, *args, **kwargs))]
fn call<'py>(
    py: Python<'py>,
    name: &str,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    if name == OUTPUT_FUNCTION && args.len() == 2 && !startup::on_main_thread() {
        // Output of a thread of its own goes to standard error, as an
        // embedded one goes to the console.
        let text: String = args.get_item(1)?.extract()?;
        eprint!("{text}");
        return Ok(py.None().into_bound(py));
    }
    serve::callback(py, name, args, kwargs)
}

#[pyfunction]
fn send(pid: &Bound<'_, PyAny>, message: &Bound<'_, PyAny>) -> PyResult<()> {
    let pid = pid.cast::<Pid>().map_err(|_| {
        PyTypeError::new_err(format!(
            "erlang.send() needs an erlang.Pid, got {}",
            crate::handles::type_name(pid)
        ))
    })?;
    let mut frame = protocol::send(&pid.get().raw);
    let (encoded, made) = handles::made_during(|| frame.python(message));
    if let Err(err) = encoded {
        handles::release(&made);
        return Err(err);
    }
    if !made.is_empty() {
        protocol::list_handles(&mut frame, &made);
    }
    protocol::write(frame).map_err(|e| ProcessError::new_err(e.to_string()))
}

fn registered_names(py: Python<'_>) -> PyResult<Vec<String>> {
    serve::callback(py, REGISTERED, &PyTuple::empty(py), None)?.extract()
}

#[pyfunction]
fn is_registered(py: Python<'_>, name: &str) -> PyResult<bool> {
    Ok(registered_names(py)?.iter().any(|n| n == name))
}

#[pyfunction]
fn registered(py: Python<'_>) -> PyResult<Vec<String>> {
    registered_names(py)
}

/// How many objects Elixir holds handles to in this worker (they are
/// released as the VM garbage-collects the handles).
#[pyfunction]
fn isolated_handle_count() -> usize {
    handles::count()
}

#[pyfunction(name = "self")]
fn self_pid() -> Option<Pid> {
    serve::current_caller().map(|raw| Pid { raw })
}

/// Stands for a NIF-only type (channels, buffers): cannot be made here.
#[pyclass(module = "erlang")]
struct Unavailable;

#[pymethods]
impl Unavailable {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Err(PyNotImplementedError::new_err(
            "channels and buffers are not available in isolated contexts: they are queues in \
             the VM's memory (see guides/isolation.md)",
        ))
    }
}

#[pymodule]
pub(crate) fn _erlang_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Pid>()?;
    m.add_class::<OpaqueTerm>()?;
    m.add_function(wrap_pyfunction!(sandbox_active, m)?)?;
    m.add_function(wrap_pyfunction!(sandbox_exception, m)?)?;
    m.add_function(wrap_pyfunction!(call, m)?)?;
    m.add_function(wrap_pyfunction!(send, m)?)?;
    m.add_function(wrap_pyfunction!(is_registered, m)?)?;
    m.add_function(wrap_pyfunction!(registered, m)?)?;
    m.add_function(wrap_pyfunction!(self_pid, m)?)?;
    m.add_function(wrap_pyfunction!(isolated_handle_count, m)?)?;
    m.add("CallbackError", py.get_type::<CallbackError>())?;
    m.add("ProcessError", py.get_type::<ProcessError>())?;
    m.add("Interrupted", py.get_type::<Interrupted>())?;
    m.add("ChannelClosed", py.get_type::<ChannelClosed>())?;
    m.add("ByteChannelClosed", py.get_type::<ByteChannelClosed>())?;
    let unavailable = py.get_type::<Unavailable>();
    for name in ["ChannelHandle", "PyBuffer", "Waker"] {
        m.add(name, &unavailable)?;
    }
    m.add("ISOLATED", true)?;
    Ok(())
}
