//! Starting CPython from a `PyConfig`: shared by the NIF (`interpreter`) and
//! the isolated worker executable (`worker/startup.rs`, which includes this
//! file by `#[path]`), so it depends on nothing but pyo3's FFI.

use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;

use pyo3::ffi;

/// `Py_InitializeFromConfig` with Python's defaults, arguments not parsed,
/// faulthandler off (it installs signal handlers, which the sandbox
/// refuses), `executable` set when not empty (so `sys.executable` and the
/// prefixes name the Python we were built against), and CPython's own
/// signal handlers only when `install_signal_handlers` (the worker wants
/// SIGINT; the VM must keep its own).
pub(crate) fn initialize(executable: &str, install_signal_handlers: bool) -> Result<(), String> {
    // SAFETY: the PyConfig API is used as documented: Init, set fields,
    // InitializeFromConfig, Clear; every PyStatus is checked. Callers
    // initialize Python once, before anything else in the process does.
    unsafe {
        let mut config = MaybeUninit::<ffi::PyConfig>::zeroed();
        ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
        let mut config = config.assume_init();
        config.install_signal_handlers = i32::from(install_signal_handlers);
        config.faulthandler = 0;
        config.parse_argv = 0;
        if !executable.is_empty() {
            let exe = CString::new(executable).map_err(|e| e.to_string())?;
            let status =
                ffi::PyConfig_SetBytesString(&mut config, &mut config.executable, exe.as_ptr());
            if ffi::PyStatus_Exception(status) != 0 {
                ffi::PyConfig_Clear(&mut config);
                return Err(status_message("setting the executable", &status));
            }
        }
        let status = ffi::Py_InitializeFromConfig(&config);
        ffi::PyConfig_Clear(&mut config);
        if ffi::PyStatus_Exception(status) != 0 {
            return Err(status_message("Py_InitializeFromConfig", &status));
        }
    }
    Ok(())
}

/// `"<step> failed: <CPython's message>"` for a failed `PyStatus`.
pub(crate) fn status_message(step: &str, status: &ffi::PyStatus) -> String {
    let detail = if status.err_msg.is_null() {
        "no detail".to_string()
    } else {
        // SAFETY: err_msg is a static NUL-terminated string set by CPython.
        unsafe { CStr::from_ptr(status.err_msg) }
            .to_string_lossy()
            .into_owned()
    };
    format!("{step} failed: {detail}")
}
