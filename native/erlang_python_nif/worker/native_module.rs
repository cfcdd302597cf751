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
use crate::{protocol, sandbox, serve, startup};

pyo3::create_exception!(erlang, CallbackError, PyException);
pyo3::create_exception!(erlang, ProcessError, PyException);
pyo3::create_exception!(erlang, Interrupted, PyBaseException);
pyo3::create_exception!(erlang, ChannelClosed, PyException);
pyo3::create_exception!(erlang, ByteChannelClosed, PyException);

/// The name of the output function (`_erlang_impl._io`): a Python thread
/// of its own writes to standard error instead (see `call`).
const OUTPUT_FUNCTION: &str = "__erlang_python_output__";

/// Names the isolated server answers itself: the registered functions.
const REGISTERED: &str = "__erlang_python_isolated_registered__";

#[pyfunction]
fn sandbox_active() -> bool {
    startup::sandboxed()
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
    if !startup::on_main_thread() {
        // Only the main thread reads the port. Output of a thread of its own
        // goes to standard error, as an embedded one goes to the console.
        if name == OUTPUT_FUNCTION && args.len() == 2 {
            let text: String = args.get_item(1)?.extract()?;
            eprint!("{text}");
            return Ok(py.None().into_bound(py));
        }
        return Err(CallbackError::new_err(
            "in an isolated context only the thread serving requests can call Erlang",
        ));
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
    frame.python(message)?;
    protocol::write(frame).map_err(|e| ProcessError::new_err(e.to_string()))
}

fn registered_names(py: Python<'_>) -> PyResult<Vec<String>> {
    if !startup::on_main_thread() {
        return Ok(Vec::new());
    }
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
            "channels and buffers are not available in isolated contexts",
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
