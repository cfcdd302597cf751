//! The PEP 578 audit hook that keeps Python from forking or replacing the BEAM.
//!
//! `fork()` in a multi-threaded VM leaves a child with one thread and broken
//! scheduler state; `exec()` replaces the VM outright. The hook is written in
//! Rust with the C calling convention and installed with `PySys_AddAuditHook`
//! *before* the interpreter starts, so it sees every line of Python ever run
//! and Python code cannot remove it (`sys.addaudithook` only appends).
//!
//! The message format is the package's contract (guides/security.md):
//! `"<event> is blocked in Erlang VM context.\n..."`.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::ffi;

/// Second and third lines of every block message.
pub const MESSAGE_TAIL: &str = " is blocked in Erlang VM context.\n\
fork()/exec() would corrupt the Erlang runtime.\n\
Use Erlang ports (open_port/2) for subprocess management.";

static INSTALLED: AtomicBool = AtomicBool::new(false);

type AuditHook = unsafe extern "C" fn(*const c_char, *mut ffi::PyObject, *mut c_void) -> c_int;

extern "C" {
    // pyo3-ffi does not declare it; the signature is CPython's public API
    // (Include/cpython/sysmodule.h): int PySys_AddAuditHook(Py_AuditHookFunction, void*).
    fn PySys_AddAuditHook(hook: Option<AuditHook>, user_data: *mut c_void) -> c_int;
}

/// Events that are blocked by exact name.
const EXACT: &[&str] = &[
    "os.fork",
    "os.forkpty",
    "os.system",
    "os.popen",
    "os.posix_spawn",
    "os.posix_spawnp",
    "subprocess.Popen",
];

/// Events blocked by prefix: CPython raises `os.exec` for every `exec*`, and
/// our Python-side wrappers raise `os.spawnv`, `os.spawnlp`, ... by name.
const PREFIXES: &[&str] = &["os.exec", "os.spawn"];

/// True when `event` is one the sandbox refuses.
pub fn is_blocked(event: &str) -> bool {
    EXACT.contains(&event) || PREFIXES.iter().any(|p| event.starts_with(p))
}

/// The full text of the RuntimeError raised for `event`.
pub fn block_message(event: &str) -> String {
    format!("{event}{MESSAGE_TAIL}")
}

/// If `message` is exactly a sandbox block message, the event it names.
pub fn blocked_event(message: &str) -> Option<&str> {
    let event = message.strip_suffix(MESSAGE_TAIL)?;
    is_blocked(event).then_some(event)
}

/// Whether the hook has been installed in this OS process.
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Acquire)
}

/// Installs the hook. Must run before `Py_InitializeFromConfig`.
pub fn install() -> Result<(), String> {
    if INSTALLED.load(Ordering::Acquire) {
        return Ok(());
    }
    // SAFETY: PySys_AddAuditHook is documented as callable before
    // Py_Initialize; `audit_hook` has exactly the Py_AuditHookFunction
    // signature and lives for the whole process (it is a plain fn).
    let rc = unsafe { PySys_AddAuditHook(Some(audit_hook), std::ptr::null_mut()) };
    if rc != 0 {
        return Err("PySys_AddAuditHook refused the sandbox hook".into());
    }
    INSTALLED.store(true, Ordering::Release);
    Ok(())
}

unsafe extern "C" fn audit_hook(
    event: *const c_char,
    _args: *mut ffi::PyObject,
    _user_data: *mut c_void,
) -> c_int {
    // The hook runs for every audited operation (imports, opens, compiles...),
    // so the common case must be a couple of byte compares.
    if event.is_null() {
        return 0;
    }
    // SAFETY: CPython passes a NUL-terminated event name valid for this call.
    let bytes = unsafe { CStr::from_ptr(event) }.to_bytes();
    if !(bytes.starts_with(b"os.") || bytes.starts_with(b"subprocess.")) {
        return 0;
    }
    let Ok(name) = std::str::from_utf8(bytes) else {
        return 0;
    };
    if !is_blocked(name) {
        return 0;
    }
    let message = block_message(name);
    // The message is built from an event name (no interior NUL: it came from a CStr).
    let Ok(c_message) = std::ffi::CString::new(message) else {
        return 0;
    };
    // SAFETY: audit hooks are called with the GIL held; setting an exception
    // and returning -1 is the documented way to abort the audited operation.
    unsafe { ffi::PyErr_SetString(ffi::PyExc_RuntimeError, c_message.as_ptr()) };
    -1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_the_seed_table_and_nothing_common() {
        for event in [
            "os.fork",
            "os.forkpty",
            "os.system",
            "os.popen",
            "os.exec",
            "os.spawnv",
            "os.spawnlpe",
            "os.posix_spawn",
            "os.posix_spawnp",
            "subprocess.Popen",
        ] {
            assert!(is_blocked(event), "{event} must be blocked");
        }
        for event in [
            "open",
            "import",
            "os.listdir",
            "os.remove",
            "subprocess",
            "os.forkx",
        ] {
            assert!(!is_blocked(event), "{event} must pass");
        }
    }

    #[test]
    fn message_round_trips_to_its_event() {
        let msg = block_message("os.fork");
        assert_eq!(
            msg,
            "os.fork is blocked in Erlang VM context.\nfork()/exec() would corrupt the Erlang runtime.\nUse Erlang ports (open_port/2) for subprocess management."
        );
        assert_eq!(blocked_event(&msg), Some("os.fork"));
        assert_eq!(blocked_event("os.fork is blocked"), None);
        assert_eq!(blocked_event(&block_message("open")), None);
    }
}
