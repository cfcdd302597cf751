//! The PEP 578 audit hook: the layer that names what is refused.
//!
//! Installed with `PySys_AddAuditHook` before the interpreter starts, so it
//! sees every audited operation. The kernel filter is what makes fork/exec
//! impossible on Python's threads; this hook refuses the audited operations
//! first, with the contract's exact messages, and covers what the kernel
//! cannot judge: which native function a ctypes lookup names, a second copy
//! of a guarded extension module, a `kill` aimed at one of the VM's threads.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_long, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;

use super::exception;
use super::patches;
use super::policy::{event_kind, native_function_variants, native_kind, Kind};

/// The event `is_sandboxed()` raises to see the hook answer.
const PROBE_EVENT: &CStr = c"erlang_python.sandbox.probe";

static INSTALLED: AtomicBool = AtomicBool::new(false);
static PROBE_SEEN: AtomicU64 = AtomicU64::new(0);
static PROBE_NEXT: AtomicU64 = AtomicU64::new(1);

type AuditHook = unsafe extern "C" fn(*const c_char, *mut ffi::PyObject, *mut c_void) -> c_int;

extern "C" {
    // pyo3-ffi does not declare these; the signatures are CPython's public
    // API (Include/sysmodule.h, Include/cpython/sysmodule.h).
    fn PySys_AddAuditHook(hook: Option<AuditHook>, user_data: *mut c_void) -> c_int;
    fn PySys_Audit(event: *const c_char, format: *const c_char, ...) -> c_int;
}

/// Addresses of the blocked native functions (all aliases glibc and
/// libpython export), for `ctypes.call_function`, which reports an address,
/// not a name.
fn blocked_addresses() -> &'static HashMap<usize, (String, Kind)> {
    static ADDRESSES: OnceLock<HashMap<usize, (String, Kind)>> = OnceLock::new();
    ADDRESSES.get_or_init(|| {
        let mut found = HashMap::new();
        for (variant, kind) in native_function_variants() {
            let Ok(c_name) = CString::new(variant.as_str()) else {
                continue;
            };
            // SAFETY: dlsym with RTLD_DEFAULT only looks a name up.
            let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c_name.as_ptr()) };
            if !address.is_null() {
                let base = super::policy::normalize_symbol(&variant);
                found.entry(address as usize).or_insert((base, kind));
            }
        }
        found
    })
}

/// Installs the audit hook. Must run before the interpreter initializes.
pub fn install() -> Result<(), String> {
    if INSTALLED.load(Ordering::Acquire) {
        return Ok(());
    }
    blocked_addresses();
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

/// Whether the hook is installed and still answers: raises a probe event
/// with a fresh number and checks the hook saw it. A hook unlinked from the
/// runtime, or whose function pointer was replaced, fails this.
pub fn effective(_py: Python<'_>) -> bool {
    if !INSTALLED.load(Ordering::Acquire) {
        return false;
    }
    let nonce = PROBE_NEXT.fetch_add(1, Ordering::Relaxed);
    // SAFETY: the GIL is held (`_py`); the format "K" takes one unsigned
    // long long, which we pass.
    let rc = unsafe { PySys_Audit(PROBE_EVENT.as_ptr(), c"K".as_ptr(), nonce) };
    if rc != 0 {
        // A Python-level hook raised: clear it, the answer is still ours.
        // SAFETY: GIL held.
        unsafe { ffi::PyErr_Clear() };
    }
    PROBE_SEEN.load(Ordering::Acquire) == nonce
}

unsafe extern "C" fn audit_hook(
    event: *const c_char,
    args: *mut ffi::PyObject,
    _user_data: *mut c_void,
) -> c_int {
    // Runs for every audited operation (imports, opens, compiles...): the
    // common case must cost a couple of byte compares.
    if event.is_null() {
        return 0;
    }
    // SAFETY: CPython passes a NUL-terminated event name valid for this call.
    let bytes = unsafe { CStr::from_ptr(event) }.to_bytes();
    let interesting = bytes.starts_with(b"os.")
        || bytes.starts_with(b"subprocess.")
        || bytes.starts_with(b"ctypes.")
        || bytes.starts_with(b"signal.")
        || bytes.starts_with(b"resource.")
        || bytes == b"import"
        || bytes == PROBE_EVENT.to_bytes();
    if !interesting {
        return 0;
    }
    let Ok(name) = std::str::from_utf8(bytes) else {
        return 0;
    };
    // SAFETY: audit hooks run with the GIL held, and `args` is the event's
    // argument tuple, borrowed for the duration of the call.
    let verdict = std::panic::catch_unwind(|| unsafe { judge(name, args) });
    match verdict {
        Ok(Some((reported, kind))) => {
            // SAFETY: as above, the GIL is held.
            let py = unsafe { Python::assume_attached() };
            exception::raise(py, &reported, kind);
            -1
        }
        Ok(None) => 0,
        // A bug in judging must not let the operation through silently.
        Err(_) => {
            // SAFETY: as above, the GIL is held.
            let py = unsafe { Python::assume_attached() };
            exception::raise(py, name, Kind::Guarded);
            -1
        }
    }
}

/// Decides whether an audited operation is refused; returns the name to
/// report and the kind of block.
///
/// # Safety
/// The GIL must be held and `args` must be a tuple (or NULL).
unsafe fn judge(event: &str, args: *mut ffi::PyObject) -> Option<(String, Kind)> {
    if let Some(kind) = event_kind(event) {
        return Some((event.to_string(), kind));
    }
    match event {
        "erlang_python.sandbox.probe" => {
            // SAFETY: the GIL is held and `args` is the event's argument tuple (this function's contract).
            let nonce = unsafe { int_arg(args, 0)? };
            PROBE_SEEN.store(nonce as u64, Ordering::Release);
            None
        }
        "os.kill" => {
            // SAFETY: the GIL is held and `args` is the event's argument tuple (this function's contract).
            let (pid, signal) = unsafe { (int_arg(args, 0)?, int_arg(args, 1)?) };
            (signal != 0 && hits_vm(pid)).then(|| (event.to_string(), Kind::SignalSelf))
        }
        "os.killpg" => {
            // SAFETY: the GIL is held and `args` is the event's argument tuple (this function's contract).
            let (pgid, signal) = unsafe { (int_arg(args, 0)?, int_arg(args, 1)?) };
            // SAFETY: getpgrp has no preconditions.
            let group = unsafe { libc::getpgrp() } as c_long;
            (signal != 0 && (pgid == group || pgid == 0))
                .then(|| (event.to_string(), Kind::SignalSelf))
        }
        // Always a thread of this very process; signal 0 only checks it exists.
        "signal.pthread_kill" => {
            // SAFETY: the GIL is held and `args` is the event's argument tuple (this function's contract).
            let signal = unsafe { int_arg(args, 1)? };
            (signal != 0).then(|| (event.to_string(), Kind::SignalSelf))
        }
        "resource.setrlimit" => Some((event.to_string(), Kind::Limits)),
        // prlimit(pid, resource[, limits]): a read without limits.
        "resource.prlimit" => {
            // SAFETY: the GIL is held and `args` is the event's argument tuple (this function's contract).
            let sets = unsafe { item(args, 2) }.is_some_and(|limits| !is_none(limits));
            sets.then(|| (event.to_string(), Kind::Limits))
        }
        // `_imp.create_dynamic` reports (name, path, ...): refuse a second
        // copy of a guarded extension module, whose tables are unguarded.
        "import" => {
            // SAFETY: the GIL is held and `args` is the event's argument tuple (this function's contract).
            let path = unsafe { str_arg(args, 1)? };
            let name = unsafe { str_arg(args, 0)? };
            let base = name.rsplit('.').next().unwrap_or(&name);
            patches::second_copy(base, &path)
                .map(|_| ("_imp.create_dynamic".to_string(), Kind::Guarded))
        }
        "ctypes.dlsym" | "ctypes.dlsym/handle" => {
            // SAFETY: the GIL is held and `args` is the event's argument tuple (this function's contract).
            let symbol = unsafe { str_arg(args, 1)? };
            native_kind(&symbol).map(|kind| (format!("ctypes.{symbol}"), kind))
        }
        "ctypes.call_function" => {
            // SAFETY: the GIL is held and `args` is the event's argument tuple (this function's contract).
            let address = unsafe { int_arg(args, 0)? } as usize;
            blocked_addresses()
                .get(&address)
                .map(|(name, kind)| (format!("ctypes.{name}"), *kind))
        }
        _ => None,
    }
}

/// Whether a signal to `pid` reaches the VM: its pid, any of its threads
/// (Linux accepts a thread id), pid 0, -1, its process group, its
/// `erl_child_setup`.
fn hits_vm(pid: c_long) -> bool {
    // SAFETY: getpid/getpgrp have no preconditions.
    let (me, group) = unsafe { (libc::getpid() as c_long, libc::getpgrp() as c_long) };
    if pid == me || pid == 0 || pid == -1 || pid == -group {
        return true;
    }
    if super::child_setup().is_some_and(|child| pid == child as c_long || pid == -(child as c_long))
    {
        return true;
    }
    pid > 0 && std::path::Path::new(&format!("/proc/self/task/{pid}")).exists()
}

/// Item `index` of the argument tuple, borrowed.
///
/// # Safety
/// GIL held; `args` a tuple or NULL.
unsafe fn item(args: *mut ffi::PyObject, index: ffi::Py_ssize_t) -> Option<*mut ffi::PyObject> {
    // SAFETY: GIL held; `args` is non-NULL here and checked to be a tuple before it is indexed.
    if args.is_null() || unsafe { ffi::PyTuple_Check(args) } == 0 {
        return None;
    }
    if index >= unsafe { ffi::PyTuple_Size(args) } {
        return None;
    }
    // SAFETY: GIL held; `args` is non-NULL here and checked to be a tuple before it is indexed.
    let item = unsafe { ffi::PyTuple_GetItem(args, index) };
    if item.is_null() {
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    Some(item)
}

fn is_none(object: *mut ffi::PyObject) -> bool {
    // SAFETY: Py_None returns the immortal None singleton.
    object == unsafe { ffi::Py_None() }
}

/// Item `index` of the argument tuple as an integer, if it is one.
///
/// # Safety
/// GIL held; `args` a tuple or NULL.
unsafe fn int_arg(args: *mut ffi::PyObject, index: ffi::Py_ssize_t) -> Option<c_long> {
    // SAFETY: the GIL is held and `args` is the event's argument tuple (this function's contract).
    let item = unsafe { item(args, index)? };
    if unsafe { ffi::PyLong_Check(item) } == 0 {
        return None;
    }
    // SAFETY: GIL held; `item` is a live object borrowed from the argument tuple.
    let value = unsafe { ffi::PyLong_AsLong(item) };
    if value == -1 && !unsafe { ffi::PyErr_Occurred() }.is_null() {
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    Some(value)
}

/// Item `index` of the argument tuple as a string, if it is one.
///
/// # Safety
/// GIL held; `args` a tuple or NULL.
unsafe fn str_arg(args: *mut ffi::PyObject, index: ffi::Py_ssize_t) -> Option<String> {
    // SAFETY: the GIL is held and `args` is the event's argument tuple (this function's contract).
    let item = unsafe { item(args, index)? };
    if unsafe { ffi::PyUnicode_Check(item) } == 0 {
        return None;
    }
    // SAFETY: GIL held; `item` is a live object borrowed from the argument tuple.
    let data = unsafe { ffi::PyUnicode_AsUTF8(item) };
    if data.is_null() {
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    Some(
        // SAFETY: `data` is the NUL-terminated UTF-8 buffer of a live str, valid while the tuple is.
        unsafe { CStr::from_ptr(data) }
            .to_string_lossy()
            .into_owned(),
    )
}
