//! The `erlang` module of own-GIL contexts (sub-interpreters), written
//! against CPython's C API.
//!
//! # Why a second module, and what it shares
//!
//! The main interpreter's `erlang` package is Python code (priv/erlang)
//! over `_erlang_native`, a PyO3 `#[pymodule]`. Neither can serve a
//! sub-interpreter with its own GIL: PyO3 refuses to initialize a module in
//! a second interpreter (its module and `#[pyclass]` types are one object
//! per process), and the package imports channels, buffers and the asyncio
//! loop, which are built on those types. So sub-interpreters get this
//! module instead: a multi-phase-init `PyModuleDef` (`Py_mod_exec`) that
//! declares `Py_mod_multiple_interpreters = Py_MOD_PER_INTERPRETER_GIL_SUPPORTED`,
//! made in each interpreter by `install` (as `erlang`, so `import erlang`
//! works there, and as `_erlang_native`, so that `_erlang_impl`'s sandbox
//! wrappers and output routing, which need only `call` and the sandbox's
//! two functions, load in each interpreter too).
//!
//! It shares everything but the glue: each C function takes the PyO3 token
//! of the calling interpreter and calls the very Rust functions the PyO3
//! module's `#[pyfunction]`s call (`callbacks::call`, `callbacks::send`,
//! `registry`, `serving`, `sandbox`). Its classes are the interpreter's own
//! (`interpreters`: `Pid`, the exceptions; `sandbox`: `SandboxBlocked`),
//! kept per interpreter id rather than in module state (`m_size` is 0), so
//! conversion code, which knows the interpreter but not the module, finds
//! them too.
//!
//! What it offers: `call`, `send`, `self`, `is_registered`, `registered`,
//! `is_sandboxed`, attribute access to registered functions
//! (`erlang.my_function(...)`), `Pid`, `CallbackError`, `ProcessError`,
//! `Interrupted`, `SandboxBlocked`. Not channels, buffers, `erlang.Term`,
//! the event loop or log routing: those are main-interpreter features.

use std::ffi::{c_int, c_void};
use std::ptr::null_mut;

use pyo3::exceptions::{PyAttributeError, PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::interpreters::{self, Exception};
use crate::{callbacks, panics, pytypes, registry, sandbox, serving};

/// Runs a module function's body with the calling interpreter's token and
/// turns its result into what CPython expects: a new reference, or NULL
/// with the exception set. Panics stop here (they must not unwind into C).
fn guarded(body: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>>) -> *mut ffi::PyObject {
    // CPython calls module functions with the calling thread attached to
    // the interpreter the module belongs to. Attaching through PyO3 rather
    // than assuming it makes PyO3 count this thread as attached: otherwise
    // a `Py` dropped here (an error raised, a helped request's caches, see
    // `own_gil`) goes to PyO3's process-wide pool and is decremented later
    // by whichever thread attaches next, in whichever interpreter (seen:
    // `free(): invalid pointer`, a Python thread of an own-GIL context
    // calling back while the main interpreter's threads ran). It takes no
    // other GIL: `PyGILState_Ensure` finds the calling thread's own state
    // current (the context's thread is bound to its interpreter's state,
    // and a thread `threading` starts has its state bound too, 3.12+).
    Python::attach(|py| {
        let result = panics::catch(|| body(py))
            .unwrap_or_else(|text| Err(PyRuntimeError::new_err(format!("internal error: {text}"))));
        match result {
            Ok(value) => value.into_ptr(),
            Err(err) => {
                err.restore(py);
                null_mut()
            }
        }
    })
}

/// Borrows an argument CPython passed (NULL for "none given").
///
/// # Safety
/// `object` is NULL or a live object borrowed for the call's duration.
unsafe fn borrowed<'py>(py: Python<'py>, object: *mut ffi::PyObject) -> Option<Bound<'py, PyAny>> {
    // SAFETY: the caller's contract.
    unsafe { Bound::from_borrowed_ptr_or_opt(py, object) }
}

/// `erlang.call(name, *args, **kwargs)`.
unsafe extern "C" fn call(
    _module: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    guarded(|py| {
        // SAFETY: METH_VARARGS | METH_KEYWORDS: `args` is a tuple, `kwargs`
        // a dict or NULL, both borrowed for the call.
        let (args, kwargs) = unsafe { (borrowed(py, args), borrowed(py, kwargs)) };
        let args = args
            .ok_or_else(|| PyTypeError::new_err("erlang.call() needs a name"))?
            .cast_into::<PyTuple>()?;
        let kwargs = kwargs.map(|k| k.cast_into::<PyDict>()).transpose()?;
        if args.is_empty() {
            return Err(PyTypeError::new_err("erlang.call() needs a name"));
        }
        let name: String = args.get_item(0)?.extract()?;
        let rest = args.get_slice(1, args.len());
        Ok(callbacks::call(py, &name, &rest, kwargs.as_ref())?.unbind())
    })
}

/// `erlang.send(pid, term)`.
unsafe extern "C" fn send(
    _module: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    guarded(|py| {
        // SAFETY: METH_VARARGS: `args` is a tuple borrowed for the call.
        let args = unsafe { borrowed(py, args) }
            .ok_or_else(|| PyTypeError::new_err("erlang.send(pid, term)"))?
            .cast_into::<PyTuple>()?;
        let (pid, message) = match args.len() {
            2 => (args.get_item(0)?, args.get_item(1)?),
            n => {
                return Err(PyTypeError::new_err(format!(
                    "erlang.send() takes 2 arguments ({n} given)"
                )))
            }
        };
        let target = interpreters::pid_value(&pid).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "erlang.send() needs an erlang.Pid, got {}",
                crate::convert::type_name(&pid)
            ))
        })?;
        if callbacks::send(py, target, &message)? {
            Ok(py.None())
        } else {
            Err(pytypes::error(
                py,
                Exception::ProcessError,
                format!("process {} is not alive", pytypes::describe_pid(target)),
            ))
        }
    })
}

/// `erlang.self()`: the Elixir process whose request runs, or None.
unsafe extern "C" fn self_pid(
    _module: *mut ffi::PyObject,
    _unused: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    guarded(|py| match serving::current_caller() {
        Some(pid) => match interpreters::new_pid(py, pid) {
            Some(pid) => Ok(pid?.unbind()),
            None => Err(PyRuntimeError::new_err("erlang.Pid is not set up here")),
        },
        None => Ok(py.None()),
    })
}

/// `erlang.is_registered(name)`.
unsafe extern "C" fn is_registered(
    _module: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    guarded(|py| {
        // SAFETY: METH_O: `name` is a borrowed object.
        let name: String = unsafe { borrowed(py, name) }
            .ok_or_else(|| PyTypeError::new_err("a name is needed"))?
            .extract()?;
        Ok(registry::is_registered(&name)
            .into_pyobject(py)?
            .to_owned()
            .into_any()
            .unbind())
    })
}

/// `erlang.registered()`: registered names, sorted.
unsafe extern "C" fn registered(
    _module: *mut ffi::PyObject,
    _unused: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    guarded(|py| Ok(PyList::new(py, registry::names())?.into_any().unbind()))
}

/// `erlang.is_sandboxed()`.
unsafe extern "C" fn is_sandboxed(
    _module: *mut ffi::PyObject,
    _unused: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    guarded(|py| {
        Ok(sandbox::is_sandboxed(py)
            .into_pyobject(py)?
            .to_owned()
            .into_any()
            .unbind())
    })
}

/// `_erlang_native.sandbox_exception()`: this interpreter's
/// `SandboxBlocked` (what `_erlang_impl._sandbox` imports).
unsafe extern "C" fn sandbox_exception(
    _module: *mut ffi::PyObject,
    _unused: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    guarded(|py| {
        sandbox::blocked_type(py)
            .map(|class| class.into_any().unbind())
            .ok_or_else(|| PyRuntimeError::new_err("the sandbox is not set up"))
    })
}

/// Module `__getattr__` (PEP 562): `erlang.my_function(...)` calls the
/// Erlang function registered as `my_function`.
unsafe extern "C" fn module_getattr(
    module: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    guarded(|py| {
        // SAFETY: METH_O: `name` is borrowed; `module` is the module object
        // this function was bound to, alive while it runs.
        let (module, name) = unsafe { (borrowed(py, module), borrowed(py, name)) };
        let (module, name) = (
            module.ok_or_else(|| PyRuntimeError::new_err("no module"))?,
            name.ok_or_else(|| PyTypeError::new_err("a name is needed"))?,
        );
        let text: String = name.extract()?;
        if text.starts_with("__") {
            return Err(PyAttributeError::new_err(format!(
                "module 'erlang' has no attribute '{text}'"
            )));
        }
        let partial = py.import("functools")?.getattr("partial")?;
        Ok(partial.call1((module.getattr("call")?, text))?.unbind())
    })
}

/// `Py_mod_exec`: adds the interpreter's own classes to the module.
unsafe extern "C" fn exec(module: *mut ffi::PyObject) -> c_int {
    // SAFETY: CPython runs exec slots with the module's interpreter's GIL
    // held, `module` alive and borrowed.
    let py = unsafe { Python::assume_attached() };
    let added = panics::catch(|| -> PyResult<()> {
        // SAFETY: as above.
        let module = unsafe { Bound::from_borrowed_ptr(py, module) };
        for (name, which) in [
            ("Interrupted", Exception::Interrupted),
            ("CallbackError", Exception::CallbackError),
            ("ProcessError", Exception::ProcessError),
        ] {
            let class = interpreters::exception_type(py, which)
                .ok_or_else(|| PyRuntimeError::new_err("the interpreter is not set up"))?;
            module.setattr(name, class)?;
        }
        let pid = interpreters::pid_type(py)
            .ok_or_else(|| PyRuntimeError::new_err("the interpreter is not set up"))?;
        module.setattr("Pid", pid)?;
        if let Some(blocked) = sandbox::blocked_type(py) {
            module.setattr("SandboxBlocked", blocked)?;
        }
        Ok(())
    })
    .unwrap_or_else(|text| Err(PyRuntimeError::new_err(text)));
    match added {
        Ok(()) => 0,
        Err(err) => {
            err.restore(py);
            -1
        }
    }
}

const fn method(
    name: &'static std::ffi::CStr,
    function: ffi::PyMethodDefPointer,
    flags: c_int,
    doc: &'static std::ffi::CStr,
) -> ffi::PyMethodDef {
    ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: function,
        ml_flags: flags,
        ml_doc: doc.as_ptr(),
    }
}

// The tables CPython reads. `static mut` because the C structs hold raw
// pointers (not Sync); nothing writes them after start, and CPython only
// reads them.
static mut METHODS: [ffi::PyMethodDef; 10] = [
    method(
        c"call",
        ffi::PyMethodDefPointer {
            PyCFunctionWithKeywords: call,
        },
        ffi::METH_VARARGS | ffi::METH_KEYWORDS,
        c"call(name, *args, **kwargs): calls the Erlang function registered as name.",
    ),
    method(
        c"send",
        ffi::PyMethodDefPointer { PyCFunction: send },
        ffi::METH_VARARGS,
        c"send(pid, term): sends term to a local Erlang process.",
    ),
    method(
        c"self",
        ffi::PyMethodDefPointer {
            PyCFunction: self_pid,
        },
        ffi::METH_NOARGS,
        c"self(): the Elixir process whose request is running, or None.",
    ),
    method(
        c"is_registered",
        ffi::PyMethodDefPointer {
            PyCFunction: is_registered,
        },
        ffi::METH_O,
        c"is_registered(name): whether an Erlang function is registered as name.",
    ),
    method(
        c"registered",
        ffi::PyMethodDefPointer {
            PyCFunction: registered,
        },
        ffi::METH_NOARGS,
        c"registered(): the registered names, sorted.",
    ),
    method(
        c"is_sandboxed",
        ffi::PyMethodDefPointer {
            PyCFunction: is_sandboxed,
        },
        ffi::METH_NOARGS,
        c"is_sandboxed(): whether the sandbox holds for this thread.",
    ),
    // The two names `_erlang_impl._sandbox` reads from `_erlang_native`.
    method(
        c"sandbox_active",
        ffi::PyMethodDefPointer {
            PyCFunction: is_sandboxed,
        },
        ffi::METH_NOARGS,
        c"sandbox_active(): whether the sandbox holds for this thread.",
    ),
    method(
        c"sandbox_exception",
        ffi::PyMethodDefPointer {
            PyCFunction: sandbox_exception,
        },
        ffi::METH_NOARGS,
        c"sandbox_exception(): the class of the sandbox's refusals.",
    ),
    method(
        c"__getattr__",
        ffi::PyMethodDefPointer {
            PyCFunction: module_getattr,
        },
        ffi::METH_O,
        c"Registered Erlang functions as attributes.",
    ),
    ffi::PyMethodDef::zeroed(),
];

#[cfg(Py_3_12)]
const PER_INTERPRETER_GIL_SUPPORTED: *mut c_void = ffi::Py_MOD_PER_INTERPRETER_GIL_SUPPORTED;
// Before 3.12 no sub-interpreter is ever made (`own_gil::SUPPORTED`), so the
// module is never installed; CPython's value keeps the table the same.
#[cfg(not(Py_3_12))]
const PER_INTERPRETER_GIL_SUPPORTED: *mut c_void = 2 as *mut c_void;

static mut SLOTS: [ffi::PyModuleDef_Slot; 3] = [
    ffi::PyModuleDef_Slot {
        slot: ffi::Py_mod_exec,
        value: exec as *mut c_void,
    },
    ffi::PyModuleDef_Slot {
        slot: ffi::Py_mod_multiple_interpreters,
        value: PER_INTERPRETER_GIL_SUPPORTED,
    },
    ffi::PyModuleDef_Slot {
        slot: 0,
        value: null_mut(),
    },
];

static mut MODULE: ffi::PyModuleDef = ffi::PyModuleDef {
    m_base: ffi::PyModuleDef_HEAD_INIT,
    m_name: c"erlang".as_ptr(),
    m_doc: c"Erlang from inside an own-GIL context (a sub-interpreter of erlang_python).".as_ptr(),
    m_size: 0,
    // Set by `install` (pointers to other statics).
    m_methods: null_mut(),
    m_slots: null_mut(),
    m_traverse: None,
    m_clear: None,
    m_free: None,
};

/// Makes the module in the calling thread's sub-interpreter and puts it in
/// `sys.modules` as `erlang`. Once per interpreter, as it starts, after
/// `interpreters::register` and the sandbox's set-up (its classes).
pub(crate) fn install(py: Python<'_>) -> PyResult<()> {
    let spec = py
        .import("importlib.machinery")?
        .getattr("ModuleSpec")?
        .call1(("erlang", py.None()))?;
    // SAFETY: MODULE, METHODS and SLOTS are statics for the process's life,
    // only read by CPython; the two pointer fields are set to the same
    // values on every call, under the GIL, before CPython reads them. The
    // module is made and executed in the interpreter whose GIL is held,
    // and the new reference is owned by the Bound.
    let module = unsafe {
        let definition = &raw mut MODULE;
        (*definition).m_methods = (&raw mut METHODS).cast();
        (*definition).m_slots = (&raw mut SLOTS).cast();
        let module = ffi::PyModule_FromDefAndSpec(definition, spec.as_ptr());
        let module = Bound::from_owned_ptr_or_err(py, module)?;
        if ffi::PyModule_ExecDef(module.as_ptr(), definition) != 0 {
            return Err(PyErr::fetch(py));
        }
        module
    };
    let modules = py.import("sys")?.getattr("modules")?;
    modules.set_item("erlang", &module)?;
    // Also as `_erlang_native`, the name `_erlang_impl`'s sandbox and output
    // modules import their few functions from, so they load here as well.
    modules.set_item("_erlang_native", &module)?;
    Ok(())
}
