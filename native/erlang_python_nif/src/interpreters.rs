//! Which interpreter the calling thread runs in, and what each interpreter
//! owns: its exception types and the references Elixir dropped.
//!
//! Contexts with their own GIL (`own_gil`) run on sub-interpreters. Python
//! objects must never cross interpreters: with one GIL per interpreter, two
//! threads may touch the same reference count at once. So nothing here is
//! cached process-wide as a Python object:
//!
//! * the exceptions `erlang.Interrupted`, `erlang.CallbackError` and
//!   `erlang.ProcessError` of a sub-interpreter are classes made in it
//!   ([`register`]); the main interpreter keeps PyO3's (`pytypes`);
//! * a handle's object is released by a thread of the interpreter that made
//!   it: [`release`] queues the pointer and [`drain`] decrements it later,
//!   on that interpreter's thread, with its GIL. (PyO3's own reference pool
//!   is process-wide and decrements whatever it holds under whichever GIL
//!   the next attaching thread takes, so handles do not use it.)
//!
//! Interpreter ids are CPython's (`PyInterpreterState_GetID`): 0 is the main
//! interpreter, and ids are never reused, so an id outlives its interpreter
//! safely: [`forget`] marks it ended, and a reference released after that is
//! dropped without touching memory that interpreter has freed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use rustler::LocalPid;

/// The main interpreter's id.
pub(crate) const MAIN: i64 = 0;

/// The interpreter the calling thread is attached to.
pub(crate) fn current(_py: Python<'_>) -> i64 {
    // SAFETY: the thread is attached (`py`), so it has a current thread state
    // and PyInterpreterState_Get cannot fail.
    unsafe { ffi::PyInterpreterState_GetID(ffi::PyInterpreterState_Get()) }
}

/// Whether the calling thread runs in the main interpreter.
pub(crate) fn is_main(py: Python<'_>) -> bool {
    current(py) == MAIN
}

/// `$text`, a literal, as a Python `str` for an attribute or method name:
/// in the main interpreter PyO3's interned object (made once for the
/// process, its hash kept, so a look-up by it starts with a pointer
/// compare); in an own-GIL sub-interpreter a new one, as objects must not
/// cross interpreters. Building the name each time cost 0.8 us a UUID made
/// from Elixir (six names) on the development VM.
macro_rules! py_name {
    ($py:expr, $text:literal) => {{
        let py: pyo3::Python<'_> = $py;
        if $crate::interpreters::is_main(py) {
            pyo3::intern!(py, $text).clone()
        } else {
            pyo3::types::PyString::new(py, $text)
        }
    }};
}
pub(crate) use py_name;

/// The module `name` as the calling thread's interpreter has it in
/// `sys.modules`, imported only when missing there.
///
/// A lookup in `sys.modules` as a dict ([`sys_module`]), for modules asked
/// for on every request or every value: `py.import` calls `__import__` (its
/// arguments built and parsed each time), and it and `PyImport_GetModule`
/// then check that the module has finished initializing through its
/// `__spec__`. For `__main__`, whose `__spec__` is None, that check raised
/// and cleared a formatted AttributeError on every call: 2.2 us of the
/// worker's 4.6 us per `eval("1 + 1")` on the development VM. (The modules
/// asked for here are imported at start, not by another thread meanwhile.)
pub(crate) fn loaded_module<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    match sys_module(py, name)? {
        Some(module) => Ok(module),
        None => Ok(py.import(name)?.into_any()),
    }
}

/// The module `name` if this interpreter's `sys.modules` has it (never
/// imports it): one dict lookup, for checks made once per converted value.
pub(crate) fn sys_module<'py>(py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    // SAFETY: the thread is attached (`py`); PyImport_GetModuleDict returns
    // a borrowed reference to this interpreter's `sys.modules` (NULL only
    // before it exists), and the Bound takes a reference of its own.
    let Some(modules) =
        (unsafe { Bound::from_borrowed_ptr_or_opt(py, ffi::PyImport_GetModuleDict()) })
    else {
        return Ok(None);
    };
    let modules = modules.cast_into::<PyDict>().map_err(PyErr::from)?;
    modules.get_item(name)
}

/// The exceptions a sub-interpreter's code can see raised from Rust.
#[derive(Clone, Copy)]
pub(crate) enum Exception {
    Interrupted,
    CallbackError,
    ProcessError,
}

/// What one sub-interpreter owns. The types are objects *of that
/// interpreter*: touched only with its GIL.
struct SubInterpreter {
    interrupted: Py<PyType>,
    callback_error: Py<PyType>,
    process_error: Py<PyType>,
    /// Its `erlang.Pid` ([`pid`]).
    pid: Py<PyType>,
}

struct Table {
    subs: BTreeMap<i64, SubInterpreter>,
    /// Object pointers to decrement, by interpreter (main included).
    released: BTreeMap<i64, Vec<usize>>,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    subs: BTreeMap::new(),
    released: BTreeMap::new(),
});

/// Whether some object waits in `released` (a cheap check before locking).
static RELEASED_ANY: AtomicBool = AtomicBool::new(false);

fn table() -> std::sync::MutexGuard<'static, Table> {
    TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes the exception classes of the sub-interpreter the calling thread
/// runs in. Called once, as that interpreter starts.
pub(crate) fn register(py: Python<'_>) -> PyResult<()> {
    let make = |name: &str, base: Bound<'_, PyType>, doc: &str| -> PyResult<Py<PyType>> {
        let namespace = pyo3::types::PyDict::new(py);
        namespace.set_item("__module__", "erlang")?;
        namespace.set_item("__doc__", doc)?;
        let builtins = py.import("builtins")?;
        let class = builtins
            .getattr("type")?
            .call1((name, (base,), namespace))?
            .cast_into::<PyType>()?;
        Ok(class.unbind())
    };
    let sub = SubInterpreter {
        interrupted: make(
            "Interrupted",
            py.get_type::<pyo3::exceptions::PyBaseException>(),
            "Raised into running Python code when its Elixir caller timed out, was cancelled or exited.",
        )?,
        callback_error: make(
            "CallbackError",
            py.get_type::<pyo3::exceptions::PyException>(),
            "An Erlang function called from Python raised, exited or was killed.",
        )?,
        process_error: make(
            "ProcessError",
            py.get_type::<pyo3::exceptions::PyException>(),
            "The Erlang process a message was sent to is not alive.",
        )?,
        pid: pid::make_type(py)?,
    };
    table().subs.insert(current(py), sub);
    Ok(())
}

/// The sub-interpreter's own class for `which`; `None` in the main
/// interpreter (which uses PyO3's classes) or before [`register`].
pub(crate) fn exception_type<'py>(py: Python<'py>, which: Exception) -> Option<Bound<'py, PyType>> {
    let id = current(py);
    if id == MAIN {
        return None;
    }
    let table = table();
    let sub = table.subs.get(&id)?;
    let class = match which {
        Exception::Interrupted => &sub.interrupted,
        Exception::CallbackError => &sub.callback_error,
        Exception::ProcessError => &sub.process_error,
    };
    // The class belongs to the interpreter whose GIL this thread holds.
    Some(class.bind(py).clone())
}

/// Gives up a strong reference to `object`, made in interpreter `owner`,
/// from any thread (a scheduler running a resource destructor, usually):
/// the owner's thread decrements it at its next [`drain`].
pub(crate) fn release(owner: i64, object: Py<PyAny>) {
    let pointer = object.into_ptr() as usize;
    let mut table = table();
    if owner != MAIN && !table.subs.contains_key(&owner) {
        // That interpreter has ended and freed its memory: nothing to do.
        return;
    }
    table.released.entry(owner).or_default().push(pointer);
    RELEASED_ANY.store(true, Ordering::Release);
}

/// Decrements the references released for the calling thread's
/// interpreter. Worker threads call it as they take the GIL.
pub(crate) fn drain(py: Python<'_>) {
    if !RELEASED_ANY.load(Ordering::Acquire) {
        return;
    }
    let pointers = {
        let mut table = table();
        let pointers = table.released.remove(&current(py)).unwrap_or_default();
        if table.released.is_empty() {
            RELEASED_ANY.store(false, Ordering::Release);
        }
        pointers
    };
    for pointer in pointers {
        // SAFETY: each pointer is a strong reference given up by `release`
        // for an object of this interpreter, whose GIL is held (`py`); it is
        // decremented exactly once, here.
        unsafe { ffi::Py_DECREF(pointer as *mut ffi::PyObject) };
    }
}

/// The calling thread's sub-interpreter is about to end: releases what it
/// owns here, and makes later releases of its objects no-ops.
pub(crate) fn forget(py: Python<'_>) {
    let id = current(py);
    // One lock for both: a release racing with this either lands before
    // (and is decremented here) or finds the interpreter gone (and drops
    // the pointer), never in a queue nobody drains.
    let (pointers, removed) = {
        let mut table = table();
        let pointers = table.released.remove(&id).unwrap_or_default();
        if table.released.is_empty() {
            RELEASED_ANY.store(false, Ordering::Release);
        }
        (pointers, table.subs.remove(&id))
    };
    for pointer in pointers {
        // SAFETY: as in `drain`: references to this interpreter's objects,
        // its GIL held, each decremented once.
        unsafe { ffi::Py_DECREF(pointer as *mut ffi::PyObject) };
    }
    // Dropped with this interpreter's GIL held, outside the table's lock.
    drop(removed);
}

/// `pid` as an `erlang.Pid` of the calling thread's sub-interpreter; `None`
/// in the main interpreter (PyO3's class is used there).
pub(crate) fn new_pid(py: Python<'_>, pid: LocalPid) -> Option<PyResult<Bound<'_, PyAny>>> {
    let class = pid_type(py)?;
    Some(pid::new(&class, pid))
}

/// The pid behind a sub-interpreter's `erlang.Pid`; `None` for anything
/// else (and always in the main interpreter).
pub(crate) fn pid_value(object: &Bound<'_, PyAny>) -> Option<LocalPid> {
    let class = pid_type(object.py())?;
    pid::value(&class, object)
}

/// The calling thread's sub-interpreter's `erlang.Pid`; `None` in the main one.
pub(crate) fn pid_type(py: Python<'_>) -> Option<Bound<'_, PyType>> {
    let id = current(py);
    if id == MAIN {
        return None;
    }
    let table = table();
    Some(table.subs.get(&id)?.pid.bind(py).clone())
}

/// `erlang.Pid` for sub-interpreters: a heap type made in each of them
/// from one static spec (PyO3's `#[pyclass]` types are one object per
/// process, made in the main interpreter).
mod pid {
    use std::ffi::{c_int, c_void};
    use std::hash::{Hash, Hasher};

    use pyo3::ffi;
    use pyo3::prelude::*;
    use pyo3::types::{PyString, PyType};
    use rustler::{Encoder, LocalPid};

    /// The instance layout: the object header, then the pid.
    #[repr(C)]
    struct PidObject {
        header: ffi::PyObject,
        pid: LocalPid,
    }

    static mut SLOTS: [ffi::PyType_Slot; 5] = [
        ffi::PyType_Slot {
            slot: ffi::Py_tp_richcompare,
            pfunc: richcompare as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_hash,
            pfunc: hash as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_repr,
            pfunc: repr as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_doc,
            pfunc: c"An Erlang process identifier.".as_ptr() as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: 0,
            pfunc: std::ptr::null_mut(),
        },
    ];

    static mut SPEC: ffi::PyType_Spec = ffi::PyType_Spec {
        name: c"erlang.Pid".as_ptr(),
        basicsize: std::mem::size_of::<PidObject>() as c_int,
        itemsize: 0,
        // Not instantiable from Python: only the NIF makes pids.
        flags: (ffi::Py_TPFLAGS_DEFAULT
            | ffi::Py_TPFLAGS_IMMUTABLETYPE
            | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION) as _,
        // SAFETY (of the cast in `make_type`): a static, never moved.
        slots: std::ptr::null_mut(),
    };

    pub(super) fn make_type(py: Python<'_>) -> PyResult<Py<PyType>> {
        // SAFETY: the spec and its slots are statics that live for the
        // process; CPython only reads them (and copies what the type keeps),
        // under the GIL of the interpreter this runs in. `slots` is set to
        // the same static array on every call, before the read.
        unsafe {
            let spec = &raw mut SPEC;
            (*spec).slots = (&raw mut SLOTS).cast();
            let class = ffi::PyType_FromSpec(spec);
            Ok(Bound::from_owned_ptr_or_err(py, class)?
                .cast_into::<PyType>()?
                .unbind())
        }
    }

    pub(super) fn new<'py>(
        class: &Bound<'py, PyType>,
        pid: LocalPid,
    ) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: `class` is this interpreter's Pid type, whose instances
        // have the PidObject layout; PyType_GenericAlloc returns a zeroed,
        // initialized object of it (or NULL with an exception set), whose
        // `pid` field is written before anyone can see it.
        unsafe {
            let object = ffi::PyType_GenericAlloc(class.as_ptr().cast(), 0);
            let object = Bound::from_owned_ptr_or_err(class.py(), object)?;
            std::ptr::write(&raw mut (*object.as_ptr().cast::<PidObject>()).pid, pid);
            Ok(object)
        }
    }

    pub(super) fn value(class: &Bound<'_, PyType>, object: &Bound<'_, PyAny>) -> Option<LocalPid> {
        // SAFETY: an object whose type is exactly this interpreter's Pid
        // type (no subclass can exist: the type is immutable and not
        // instantiable) has the PidObject layout.
        unsafe {
            if ffi::Py_TYPE(object.as_ptr()) != class.as_ptr().cast() {
                return None;
            }
            Some((*object.as_ptr().cast::<PidObject>()).pid)
        }
    }

    /// # Safety
    /// Called by CPython with a live object of this type.
    unsafe fn pid_of(object: *mut ffi::PyObject) -> LocalPid {
        // SAFETY: the caller's contract.
        unsafe { (*object.cast::<PidObject>()).pid }
    }

    unsafe extern "C" fn richcompare(
        a: *mut ffi::PyObject,
        b: *mut ffi::PyObject,
        op: c_int,
    ) -> *mut ffi::PyObject {
        // SAFETY: CPython calls this with the GIL held, `a` of this type and
        // `b` any live object; NotImplemented/True/False are immortal
        // singletons returned with a new reference as the protocol wants.
        unsafe {
            let same_type = ffi::Py_TYPE(a) == ffi::Py_TYPE(b);
            if !same_type || (op != ffi::Py_EQ && op != ffi::Py_NE) {
                return ffi::Py_NewRef(ffi::Py_NotImplemented());
            }
            let equal = pid_of(a) == pid_of(b);
            ffi::PyBool_FromLong(c_int::from(equal == (op == ffi::Py_EQ)).into())
        }
    }

    unsafe extern "C" fn hash(object: *mut ffi::PyObject) -> ffi::Py_hash_t {
        // SAFETY: called by CPython on a live object of this type.
        let pid = unsafe { pid_of(object) };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        pid.hash(&mut hasher);
        // -1 means "error" to CPython.
        match hasher.finish() as ffi::Py_hash_t {
            -1 => -2,
            value => value,
        }
    }

    unsafe extern "C" fn repr(object: *mut ffi::PyObject) -> *mut ffi::PyObject {
        // SAFETY: called by CPython, GIL held, on a live object of this type.
        unsafe {
            let pid = pid_of(object);
            let text = format!(
                "<erlang.Pid {}>",
                crate::terms::describe(|env| pid.encode(env))
            );
            let py = Python::assume_attached();
            PyString::new(py, &text).into_ptr()
        }
    }
}

/// Sub-interpreters running now.
pub(crate) fn running() -> usize {
    table().subs.len()
}
