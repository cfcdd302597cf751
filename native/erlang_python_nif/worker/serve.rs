//! The worker's loop: read a message, run it, answer; and, while Python
//! waits for an Elixir callback, keep serving requests that arrive meanwhile
//! (the callback may call back into this context: reentrancy), stashing
//! replies to outer callbacks until their turn.
//!
//! Python runs on this process's main thread, so a timeout's SIGINT raises
//! `erlang.Interrupted` right in the running code (see `startup`). Python
//! threads may call Erlang too: while one awaits its answer, it takes turns
//! reading the port with the main thread (`inbox`).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::etf::{Reader, Writer, VERSION};
use crate::inbox::{self, Next};
use crate::name_hasher::NameHasher;
use crate::protocol::{self, Frame, Incoming};
use crate::type_slots::is_awaitable;
use crate::{handles, sandbox};

// `erlang.CallbackError`: a callback the VM could not answer. Raised here,
// where callbacks wait; `_erlang_native` (`native_module`) gives it a name.
pyo3::create_exception!(erlang, CallbackError, PyException);

/// Callers of the requests running now, innermost last (`erlang.self()`).
static CALLERS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

static NEXT_CALLBACK: AtomicU64 = AtomicU64::new(1);

/// Serves until the VM closes the port.
pub(crate) fn run(py: Python<'_>) -> Result<(), String> {
    protocol::write(protocol::ready()).map_err(|e| e.to_string())?;
    match serve_until(py, None)? {
        // Only an awaited callback's answer ends the loop early.
        Some(_) => Err("a callback answer with no callback awaiting it".into()),
        None => Ok(()),
    }
}

/// Serves what arrives until callback `awaiting`'s answer does (its frame),
/// or, with None, until the VM closes the port (None). Any thread may call
/// this: `inbox` lets one read at a time and passes frames between them.
fn serve_until(py: Python<'_>, awaiting: Option<u64>) -> Result<Option<Frame>, String> {
    let main = crate::startup::on_main_thread();
    loop {
        let frame = match py.detach(|| inbox::next(awaiting, main)) {
            Next::Reply(frame) => return Ok(Some(frame)),
            Next::Request(frame) | Next::Read(Ok(Some(frame))) => frame,
            Next::Read(Ok(None)) => return Ok(None),
            Next::Read(Err(err)) => return Err(format!("reading from the VM: {err}")),
        };
        let answered = match protocol::parse(&frame) {
            Ok(Incoming::Call { .. }) if !main => None,
            Ok(Incoming::Call {
                id,
                caller,
                request,
            }) => {
                serve(py, id, caller, request).map_err(|e| format!("writing a reply: {e}"))?;
                continue;
            }
            Ok(Incoming::CallbackReply { id, .. }) => Some(id),
            Ok(Incoming::Release(ids)) => {
                handles::release(&ids);
                continue;
            }
            Err(err) => return Err(format!("a malformed message from the VM: {err}")),
        };
        match answered {
            Some(id) if Some(id) == awaiting => return Ok(Some(frame)),
            Some(id) => inbox::leave_reply(id, frame),
            // A request a Python thread read: the main thread runs it when
            // it waits for one; when it is busy, this thread does.
            None => {
                if let Some(frame) = inbox::hand_to_main(frame) {
                    if let Ok(Incoming::Call {
                        id,
                        caller,
                        request,
                    }) = protocol::parse(&frame)
                    {
                        serve(py, id, caller, request)
                            .map_err(|e| format!("writing a reply: {e}"))?;
                    }
                }
            }
        }
    }
}

fn serve(py: Python<'_>, id: u64, caller: &[u8], mut request: Reader<'_>) -> std::io::Result<()> {
    lock(&CALLERS).push(caller.to_vec());
    let outcome = execute(py, &mut request, false).and_then(|outcome| awaited(py, outcome));
    lock(&CALLERS).pop();
    let mut message = protocol::reply(id);
    let mark = message.buf.len();
    let (written, made) = handles::made_during(|| match outcome {
        Ok(Outcome::Ok) => {
            message.atom("ok");
            Ok(())
        }
        Ok(Outcome::Pong) => {
            message.atom("pong");
            Ok(())
        }
        Ok(Outcome::Value(value)) => {
            message.tuple(2);
            message.atom("ok");
            message.python(&value)
        }
        Ok(Outcome::Handle(value)) => {
            message.tuple(2);
            message.atom("ok");
            let (owner, id) = handles::put(&value);
            message.handle(owner, id, &handles::type_name(&value));
            Ok(())
        }
        Err(err) => Err(err),
    });
    match written {
        Ok(()) if !made.is_empty() => protocol::list_handles(&mut message, &made),
        Ok(()) => {}
        Err(err) => {
            // The handles made before the failure stay unknown to the VM.
            handles::release(&made);
            message.buf.truncate(mark);
            error_reason(py, &mut message, &err);
        }
    }
    protocol::write(message)
}

enum Outcome<'py> {
    Ok,
    Pong,
    Value(Bound<'py, PyAny>),
    Handle(Bound<'py, PyAny>),
}

/// A coroutine (any awaitable) a request returns runs to its end on the
/// worker's event loop, as an embedded context's runs on the runtime's
/// loop, and the caller gets its result. (One at a time: the worker serves
/// one request at a time; `decode: false` still gives the coroutine.)
fn awaited<'py>(py: Python<'py>, outcome: Outcome<'py>) -> PyResult<Outcome<'py>> {
    match outcome {
        Outcome::Value(value) if is_awaitable(&value) => {
            static LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            let event_loop = LOOP.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
                let asyncio = py.import("asyncio")?;
                let event_loop = asyncio.call_method0("new_event_loop")?;
                asyncio.call_method1("set_event_loop", (&event_loop,))?;
                Ok(event_loop.unbind())
            })?;
            let result = event_loop
                .bind(py)
                .call_method1("run_until_complete", (value,))?;
            Ok(Outcome::Value(result))
        }
        other => Ok(other),
    }
}

/// Positional arguments as a tuple: a list (what the VM sends) converts
/// in one step.
fn args_tuple<'py>(py: Python<'py>, args: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    match args.cast::<PyList>() {
        Ok(list) => Ok(list.to_tuple()),
        Err(_) => PyTuple::new(py, args.try_iter()?.collect::<PyResult<Vec<_>>>()?),
    }
}

/// Runs one request (the shapes `ErlangPython.Request` builds).
fn execute<'py>(py: Python<'py>, r: &mut Reader<'_>, raw: bool) -> PyResult<Outcome<'py>> {
    let value = |v: Bound<'py, PyAny>| {
        if raw {
            Outcome::Handle(v)
        } else {
            Outcome::Value(v)
        }
    };
    let Ok(arity) = r.tuple() else {
        return Ok(Outcome::Pong);
    };
    match (r.atom()?, arity) {
        ("call", 5) => {
            let module = name(py, r, "module")?;
            let function = name(py, r, "function")?;
            let args = r.python(py)?;
            let kwargs = r.python(py)?;
            let target = resolve(py, &module, &function)?;
            let args = args_tuple(py, &args)?;
            let kwargs = kwargs_dict(&kwargs)?;
            Ok(value(target.call(args, kwargs.as_ref())?))
        }
        ("eval", 3) => {
            let code = r.python(py)?;
            let locals = r.python(py)?;
            Ok(value(eval(py, &code, &locals)?))
        }
        ("exec", 2) => {
            let code = r.python(py)?;
            let builtins = py.import("builtins")?;
            builtins.getattr("exec")?.call1((code, main_dict(py)?))?;
            Ok(Outcome::Ok)
        }
        ("getattr", 3) => {
            let object = r.python(py)?;
            let attribute = name(py, r, "attribute")?;
            Ok(value(object.getattr(attribute)?))
        }
        ("call_method", 5) => {
            let object = r.python(py)?;
            let method = name(py, r, "method")?;
            let args = r.python(py)?;
            let kwargs = r.python(py)?;
            let args = args_tuple(py, &args)?;
            let kwargs = kwargs_dict(&kwargs)?;
            Ok(value(object.getattr(method)?.call(args, kwargs.as_ref())?))
        }
        ("repr", 3) => {
            let object = r.python(py)?;
            let limit: usize = r.python(py)?.extract()?;
            let text: String = object.repr()?.extract()?;
            let cut: String = text.chars().take(limit).collect();
            Ok(Outcome::Value(PyString::new(py, &cut).into_any()))
        }
        ("raw", 2) => execute(py, r, true),
        (other, _) => Err(PyValueError::new_err(format!(
            "isolated contexts do not run {other} requests"
        ))),
    }
}

/// `code` with `locals` visible, nested scopes (comprehensions, lambdas)
/// included, and `globals()` the context's namespace, as embedded: the
/// locals are the parameters of `lambda <names>: (<code>)`. Keys that are
/// not identifiers fall back to a copy of the namespace with them added.
fn eval<'py>(
    py: Python<'py>,
    code: &Bound<'py, PyAny>,
    locals: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let globals = main_dict(py)?;
    let builtins_eval = py.import("builtins")?.getattr("eval")?;
    let locals = match locals.cast::<PyDict>() {
        Ok(locals) if !locals.is_empty() => locals.clone(),
        _ => return builtins_eval.call1((code, globals)),
    };
    let mut names = Vec::with_capacity(locals.len());
    let mut values = Vec::with_capacity(locals.len());
    for (key, value) in locals.iter() {
        match key.cast::<PyString>() {
            Ok(name) if name.call_method0("isidentifier")?.is_truthy()? => {
                names.push(name.to_str()?.to_string());
                values.push(value);
            }
            _ => {
                let scope = globals.copy()?;
                scope.update(locals.as_mapping())?;
                return builtins_eval.call1((code, scope));
            }
        }
    }
    let source = format!("lambda {}: ({}\n)", names.join(", "), code.str()?.to_str()?);
    let function = builtins_eval.call1((source, globals))?;
    function.call1(PyTuple::new(py, values)?)
}

/// A module, function or attribute name (atom or string) as `str`:
/// interned, and kept by its encoded bytes ([`NAMES`]), so a name the
/// worker saw before costs neither a decode nor a hash.
fn name<'py>(py: Python<'py>, r: &mut Reader<'_>, what: &str) -> PyResult<Bound<'py, PyString>> {
    let raw = r.raw()?;
    let known = lock(&NAMES)
        .as_ref()
        .and_then(|names| names.get(raw).map(|name| name.clone_ref(py)));
    if let Some(name) = known {
        return Ok(name.into_bound(py));
    }
    // Decoded without the lock held: making objects may run a finalizer
    // whose callback serves a request that names something too.
    let mut term = Vec::with_capacity(raw.len() + 1);
    term.push(VERSION);
    term.extend_from_slice(raw);
    let name = Reader::new(&term)?
        .python(py)?
        .cast_into::<PyString>()
        .map_err(|_| {
            PyValueError::new_err(format!("the {what} name must be an atom or a string"))
        })?;
    let name = PyString::intern(py, name.to_str()?);
    let mut names = lock(&NAMES);
    let names = names.get_or_insert_with(HashMap::default);
    if names.len() < MAX_NAMES {
        names.insert(raw.to_vec(), name.clone().unbind());
    }
    Ok(name)
}

/// Names seen in requests, by their external-format bytes.
static NAMES: Mutex<Option<Names>> = Mutex::new(None);

type Names = HashMap<Vec<u8>, Py<PyString>, BuildHasherDefault<NameHasher>>;

/// Names kept at most: requests usually name a few functions; one that
/// names thousands (generated names) decodes those past the limit anew.
const MAX_NAMES: usize = 1024;

fn kwargs_dict<'py>(kwargs: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyDict>>> {
    match kwargs.cast::<PyDict>() {
        Ok(dict) if dict.is_empty() => Ok(None),
        Ok(dict) => Ok(Some(dict.clone())),
        Err(_) if kwargs.is_none() => Ok(None),
        Err(_) => Err(PyValueError::new_err("kwargs must be a map")),
    }
}

/// `__main__`'s namespace: an isolated context's own (its process runs
/// nothing else).
fn main_dict(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    Ok(py.import("__main__")?.dict())
}

fn resolve<'py>(
    py: Python<'py>,
    module: &Bound<'py, PyString>,
    function: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: PyImport_GetModule takes a borrowed str and returns a new
    // reference or NULL; a NULL with an exception set is that exception.
    let cached = unsafe { pyo3::ffi::PyImport_GetModule(module.as_ptr()) };
    let mut target = if cached.is_null() {
        if let Some(err) = PyErr::take(py) {
            return Err(err);
        }
        py.import(module.to_str()?)?.into_any()
    } else {
        // SAFETY: a non-NULL new reference, owned from here on.
        unsafe { Bound::from_owned_ptr(py, cached) }
    };
    let path = function.to_str()?;
    if !path.contains('.') {
        return target.getattr(function);
    }
    for part in path.split('.') {
        target = target.getattr(part)?;
    }
    Ok(target)
}

/// `{:error, reason}` for a Python exception, as the embedded runtime
/// answers: the sandbox's refusals as `{:sandbox_blocked, event, message}`,
/// anything else as `%ErlangPython.Error{}`.
fn error_reason(py: Python<'_>, message: &mut Writer, err: &PyErr) {
    message.tuple(2);
    message.atom("error");
    if crate::startup::sandboxed() {
        if let Some((event, text)) = sandbox::blocked_by_sandbox(py, err) {
            message.tuple(3);
            message.atom("sandbox_blocked");
            message.binary(event.as_bytes());
            message.binary(text.as_bytes());
            return;
        }
    }
    let type_name = err
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    let text = err
        .value(py)
        .str()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let traceback = traceback(py, err);
    message.map(5);
    message.atom("__struct__");
    message.atom("Elixir.ErlangPython.Error");
    message.atom("__exception__");
    message.atom("true");
    message.atom("type");
    message.binary(type_name.as_bytes());
    message.atom("message");
    message.binary(text.as_bytes());
    message.atom("traceback");
    message.binary(traceback.as_bytes());
}

fn traceback(py: Python<'_>, err: &PyErr) -> String {
    (|| -> PyResult<String> {
        let lines = py.import("traceback")?.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?;
        PyString::new(py, "")
            .call_method1("join", (lines,))?
            .extract()
    })()
    .unwrap_or_default()
}

/// `erlang.call(name, *args, **kwargs)` from Python: asks the VM to run the
/// registered function and serves whatever arrives until its answer does.
pub(crate) fn callback<'py>(
    py: Python<'py>,
    name: &str,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let id = NEXT_CALLBACK.fetch_add(1, Ordering::Relaxed);
    let mut message = protocol::callback(id, name);
    let extra = usize::from(kwargs.is_some_and(|k| !k.is_empty()));
    let (encoded, made) = handles::made_during(|| -> PyResult<()> {
        message.list(args.len() + extra);
        for arg in args.iter() {
            message.python(&arg)?;
        }
        if let Some(kwargs) = kwargs.filter(|k| !k.is_empty()) {
            message.python(kwargs.as_any())?;
        }
        message.end_list(args.len() + extra);
        Ok(())
    });
    if let Err(err) = encoded {
        handles::release(&made);
        return Err(err);
    }
    if !made.is_empty() {
        protocol::list_handles(&mut message, &made);
    }
    inbox::await_reply(id);
    let answer = protocol::write(message)
        .map_err(|e| e.to_string())
        .and_then(|()| serve_until(py, Some(id)));
    inbox::forget(id);
    let frame = match answer {
        Ok(Some(frame)) => frame,
        Ok(None) => return Err(CallbackError::new_err("the VM closed the isolated context")),
        Err(err) => return Err(CallbackError::new_err(err)),
    };
    let Ok(Incoming::CallbackReply { mut answer, .. }) = protocol::parse(&frame) else {
        return Err(CallbackError::new_err("a malformed callback reply"));
    };
    answer.tuple()?;
    match answer.atom()? {
        "ok" => answer.python(py),
        _ => {
            let text = answer.python(py)?;
            Err(CallbackError::new_err(text.str()?.to_string()))
        }
    }
}

/// The raw pid of the innermost running request's caller.
pub(crate) fn current_caller() -> Option<Vec<u8>> {
    lock(&CALLERS).last().cloned()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
