//! Starting CPython inside the BEAM process.
//!
//! Order matters and each step exists for a reason:
//! 1. make libpython's symbols global, or C extension modules (`math`,
//!    `_decimal`, numpy) fail to load with undefined symbols: the VM loaded
//!    our NIF, and with it libpython, with `RTLD_LOCAL`;
//! 2. confine this thread (the sandbox's kernel filter) and install the
//!    sandbox audit hook, before any Python code runs;
//! 3. register `_erlang_native`, pre-initialize and install the memory
//!    accounting hooks (`memory`: legal only between the two), then
//!    initialize from a `PyConfig` that does not install signal handlers
//!    (the VM owns signals) and names the interpreter's own executable, so
//!    `sys.prefix`, the stdlib and site-packages are those of the Python we
//!    were built against;
//! 4. put `priv/` on `sys.path` and import `_erlang_impl`.
//!
//! It runs on the thread that becomes worker 0 (`runtime`), which calls it
//! before serving requests.
//!
//! `Py_Finalize` is never called: the interpreter lives as long as the VM.

use std::ffi::{c_void, CStr};
use std::mem::MaybeUninit;

use pyo3::ffi;
use pyo3::prelude::*;

use crate::arena_cache;
use crate::erlang_module::_erlang_native;
use crate::memory;
use crate::python_config;
use crate::sandbox;

/// The Python executable this library was built against.
pub(crate) const BUILD_EXECUTABLE: &str = env!("ERLANG_PYTHON_EXECUTABLE");

/// Initializes the interpreter on the calling thread, which becomes Python's
/// main thread. Returns with the GIL released.
pub(crate) fn initialize(priv_dir: &str, paths: &[String]) -> Result<(), String> {
    promote_libpython_to_global()?;
    sandbox::confine_current_thread()?;
    sandbox::install()?;
    // SAFETY: must run before Py_InitializeFromConfig, which is the case: we
    // are the only code that initializes Python in this process, once.
    if unsafe { ffi::Py_IsInitialized() } != 0 {
        return Err("a Python interpreter is already running in this process".into());
    }
    // SAFETY: before Python starts and before any other allocator hook, so
    // hooks installed later (memory accounting) wrap the cache.
    unsafe { arena_cache::install() };
    pyo3::append_to_inittab!(_erlang_native);
    preinitialize()?;
    // SAFETY: after Py_PreInitialize, before Py_InitializeFromConfig: the
    // one point where CPython lets an allocator be installed.
    unsafe { memory::install() };
    python_config::initialize(BUILD_EXECUTABLE, false)?;

    let setup = Python::attach(|py| -> PyResult<()> {
        // SAFETY: the GIL is held, on a confined thread; runs before any
        // user code.
        unsafe { sandbox::guard_interpreter(py) }?;
        let sys = py.import("sys")?;
        let path = sys.getattr("path")?;
        path.call_method1("insert", (0, priv_dir))?;
        for extra in paths {
            path.call_method1("append", (extra.as_str(),))?;
        }
        py.import("_erlang_impl")?;
        Ok(())
    });
    // SAFETY: this thread holds the GIL since initialization; release it so
    // Python threads can run while the runtime waits for requests. The saved
    // thread state is re-entered by Python::attach (PyGILState_Ensure).
    unsafe { ffi::PyEval_SaveThread() };
    setup.map_err(|err| Python::attach(|py| format!("{}", err.value(py))))
}

fn promote_libpython_to_global() -> Result<(), String> {
    // SAFETY: dladdr only reads the loader's tables for an address inside
    // libpython (any exported function works); dlopen with RTLD_NOLOAD never
    // loads anything new, it only upgrades the already-loaded object to
    // RTLD_GLOBAL. The handle is intentionally never closed.
    unsafe {
        let mut info = MaybeUninit::<libc::Dl_info>::zeroed();
        let symbol = ffi::Py_IsInitialized as *const c_void;
        if libc::dladdr(symbol, info.as_mut_ptr()) == 0 {
            return Err("dladdr could not locate libpython".into());
        }
        let info = info.assume_init();
        if info.dli_fname.is_null() {
            return Err("dladdr returned no file name for libpython".into());
        }
        let handle = libc::dlopen(
            info.dli_fname,
            libc::RTLD_NOW | libc::RTLD_GLOBAL | libc::RTLD_NOLOAD,
        );
        if handle.is_null() {
            let error = libc::dlerror();
            let text = if error.is_null() {
                "unknown error".to_string()
            } else {
                CStr::from_ptr(error).to_string_lossy().into_owned()
            };
            return Err(format!("could not make libpython global: {text}"));
        }
    }
    Ok(())
}

/// Pre-initializes explicitly (`Py_InitializeFromConfig` would do it
/// implicitly, with the same Python defaults), so the memory hooks can be
/// installed after it, wrapping the allocator it chose (`PYTHONMALLOC`).
fn preinitialize() -> Result<(), String> {
    // SAFETY: PyPreConfig is initialised by its own init function and
    // passed by pointer; the returned PyStatus is checked.
    unsafe {
        let mut preconfig = MaybeUninit::<ffi::PyPreConfig>::zeroed();
        ffi::PyPreConfig_InitPythonConfig(preconfig.as_mut_ptr());
        let preconfig = preconfig.assume_init();
        let status = ffi::Py_PreInitialize(&preconfig);
        if ffi::PyStatus_Exception(status) != 0 {
            return Err(python_config::status_message("Py_PreInitialize", &status));
        }
    }
    Ok(())
}
