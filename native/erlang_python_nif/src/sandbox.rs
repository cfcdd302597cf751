//! The sandbox that keeps Python from forking, replacing, stopping or
//! hijacking the signals of the BEAM process.
//!
//! Two mechanisms, both in place before any user code runs:
//!
//! * a PEP 578 audit hook (Rust with the C calling convention), installed
//!   with `PySys_AddAuditHook` *before* the interpreter starts, so it sees
//!   every audited operation and cannot be removed. It blocks fork/exec/
//!   spawn/subprocess events (the contract in guides/security.md), `kill`
//!   aimed at the VM's own process, `signal.pthread_kill`, and `ctypes`
//!   lookups and calls of dangerous libc functions;
//! * for C functions CPython does not audit (`_posixsubprocess.fork_exec`,
//!   `os._exit`, `os.abort`, `signal.signal`, ...), the function's entry in
//!   its module's `PyMethodDef` table is pointed at a blocker. Every function
//!   object made from that table, now or after a re-import, calls the
//!   blocker; Python code cannot undo that without native code.
//!
//! Every refusal is a `RuntimeError` whose text is
//! `"<event> is blocked in Erlang VM context.\n<why>\n<what to do instead>"`.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_long, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use pyo3::ffi;

/// Why an operation is refused; each kind has its own explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// fork/exec/spawn: the contract's message.
    Fork,
    /// Would end the VM process.
    Terminate,
    /// Would send a signal to the VM's own process.
    SignalSelf,
    /// Would replace the VM's signal handlers.
    SignalHandler,
}

const HEAD: &str = " is blocked in Erlang VM context.\n";

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::Fork,
        Kind::Terminate,
        Kind::SignalSelf,
        Kind::SignalHandler,
    ];

    fn tail(self) -> &'static str {
        match self {
            Kind::Fork => {
                "fork()/exec() would corrupt the Erlang runtime.\n\
                 Use Erlang ports (open_port/2) for subprocess management."
            }
            Kind::Terminate => {
                "It would terminate the whole Erlang VM.\n\
                 Stop the VM from Erlang (init:stop/0, System.stop/1) instead."
            }
            Kind::SignalSelf => {
                "It would send a signal to the Erlang VM's own process.\n\
                 Manage the VM from Erlang (os:set_signal/2, init:stop/0) instead."
            }
            Kind::SignalHandler => {
                "Signal handlers belong to the Erlang VM.\n\
                 Handle signals at the VM level (os:set_signal/2) instead."
            }
        }
    }
}

/// The full text of the RuntimeError raised for `event`.
pub fn block_message(event: &str, kind: Kind) -> String {
    format!("{event}{HEAD}{}", kind.tail())
}

/// If `message` is exactly one of the sandbox's messages, the event it names.
pub fn blocked_event(message: &str) -> Option<&str> {
    let (event, rest) = message.split_once(HEAD)?;
    let valid_event = !event.is_empty() && !event.contains(char::is_whitespace);
    (valid_event && Kind::ALL.iter().any(|kind| kind.tail() == rest)).then_some(event)
}

// ---------------------------------------------------------------------------
// Audit events
// ---------------------------------------------------------------------------

/// Events blocked by exact name (the contract's table).
const FORK_EVENTS: &[&str] = &[
    "os.fork",
    "os.forkpty",
    "os.system",
    "os.popen",
    "os.posix_spawn",
    "os.posix_spawnp",
    "subprocess.Popen",
];

/// Prefixes: CPython raises `os.exec` for every `exec*`; our Python-side
/// wrappers raise `os.spawnv`, `os.spawnlp`, ... by name.
const FORK_EVENT_PREFIXES: &[&str] = &["os.exec", "os.spawn"];

/// The kind of block for an audit event, judged by its name only.
pub fn event_kind(event: &str) -> Option<Kind> {
    (FORK_EVENTS.contains(&event) || FORK_EVENT_PREFIXES.iter().any(|p| event.starts_with(p)))
        .then_some(Kind::Fork)
}

/// libc functions that must not be reached through ctypes, by kind.
/// Names are compared after [`normalize_symbol`].
const LIBC_FUNCTIONS: &[(&str, Kind)] = &[
    ("fork", Kind::Fork),
    ("vfork", Kind::Fork),
    ("forkpty", Kind::Fork),
    ("clone", Kind::Fork),
    ("clone3", Kind::Fork),
    ("daemon", Kind::Fork),
    ("execl", Kind::Fork),
    ("execle", Kind::Fork),
    ("execlp", Kind::Fork),
    ("execv", Kind::Fork),
    ("execve", Kind::Fork),
    ("execveat", Kind::Fork),
    ("execvp", Kind::Fork),
    ("execvpe", Kind::Fork),
    ("fexecve", Kind::Fork),
    ("system", Kind::Fork),
    ("popen", Kind::Fork),
    ("posix_spawn", Kind::Fork),
    ("posix_spawnp", Kind::Fork),
    ("syscall", Kind::Fork),
    ("exit", Kind::Terminate),
    ("quick_exit", Kind::Terminate),
    ("abort", Kind::Terminate),
    ("kill", Kind::SignalSelf),
    ("killpg", Kind::SignalSelf),
    ("raise", Kind::SignalSelf),
    ("tgkill", Kind::SignalSelf),
    ("tkill", Kind::SignalSelf),
    ("pthread_kill", Kind::SignalSelf),
    ("alarm", Kind::SignalSelf),
    ("setitimer", Kind::SignalSelf),
    ("signal", Kind::SignalHandler),
    ("sigaction", Kind::SignalHandler),
    ("bsd_signal", Kind::SignalHandler),
    ("sysv_signal", Kind::SignalHandler),
    ("siginterrupt", Kind::SignalHandler),
];

/// `__libc_fork`, `_Fork`, `_IO_popen`, `__sigaction`, `_exit` -> the base name.
pub fn normalize_symbol(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let mut base = lower.trim_start_matches('_');
    for prefix in ["libc_", "io_"] {
        base = base.strip_prefix(prefix).unwrap_or(base);
    }
    base.trim_start_matches('_').to_string()
}

fn libc_kind(symbol: &str) -> Option<Kind> {
    let base = normalize_symbol(symbol);
    LIBC_FUNCTIONS
        .iter()
        .find(|(name, _)| *name == base)
        .map(|(_, kind)| *kind)
}

/// Addresses of the blocked libc functions (all aliases glibc exports), for
/// `ctypes.call_function`, which reports an address, not a name.
fn blocked_addresses() -> &'static HashMap<usize, (&'static str, Kind)> {
    static ADDRESSES: OnceLock<HashMap<usize, (&'static str, Kind)>> = OnceLock::new();
    ADDRESSES.get_or_init(|| {
        let mut found = HashMap::new();
        for (name, kind) in LIBC_FUNCTIONS {
            let extra: &[&str] = match *name {
                "fork" => &["_Fork"],
                "exit" => &["_Exit"],
                _ => &[],
            };
            let variants = [
                name.to_string(),
                format!("_{name}"),
                format!("__{name}"),
                format!("__libc_{name}"),
                format!("_IO_{name}"),
            ];
            for variant in variants
                .iter()
                .map(String::as_str)
                .chain(extra.iter().copied())
            {
                let Ok(c_name) = CString::new(variant) else {
                    continue;
                };
                // SAFETY: dlsym with RTLD_DEFAULT only looks a name up.
                let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c_name.as_ptr()) };
                if !address.is_null() {
                    found.entry(address as usize).or_insert((*name, *kind));
                }
            }
        }
        found
    })
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

type AuditHook = unsafe extern "C" fn(*const c_char, *mut ffi::PyObject, *mut c_void) -> c_int;

extern "C" {
    // pyo3-ffi does not declare it; the signature is CPython's public API
    // (Include/cpython/sysmodule.h): int PySys_AddAuditHook(Py_AuditHookFunction, void*).
    fn PySys_AddAuditHook(hook: Option<AuditHook>, user_data: *mut c_void) -> c_int;
}

/// Whether the audit hook has been installed in this OS process.
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Acquire)
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
        || bytes.starts_with(b"signal.");
    if !interesting {
        return 0;
    }
    let Ok(name) = std::str::from_utf8(bytes) else {
        return 0;
    };
    // SAFETY: audit hooks run with the GIL held, and `args` is the event's
    // argument tuple, borrowed for the duration of the call.
    let verdict = unsafe { judge(name, args) };
    match verdict {
        Some((reported, kind)) => {
            // SAFETY: as above, the GIL is held.
            unsafe { raise_blocked(&reported, kind) };
            -1
        }
        None => 0,
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
        "os.kill" => {
            let (pid, signal) = unsafe { (int_arg(args, 0)?, int_arg(args, 1)?) };
            // pid 0 and -1 reach our own process too, as does our group.
            // SAFETY: getpid/getpgrp have no preconditions.
            let (me, group) = unsafe { (libc::getpid() as c_long, libc::getpgrp() as c_long) };
            let hits_us = pid == me || pid == 0 || pid == -1 || pid == -group;
            (signal != 0 && hits_us).then(|| (event.to_string(), Kind::SignalSelf))
        }
        "os.killpg" => {
            let (pgid, signal) = unsafe { (int_arg(args, 0)?, int_arg(args, 1)?) };
            // SAFETY: getpgrp has no preconditions.
            let group = unsafe { libc::getpgrp() } as c_long;
            (signal != 0 && (pgid == group || pgid == 0))
                .then(|| (event.to_string(), Kind::SignalSelf))
        }
        // Always a thread of this very process; signal 0 only checks it exists.
        "signal.pthread_kill" => {
            let signal = unsafe { int_arg(args, 1)? };
            (signal != 0).then(|| (event.to_string(), Kind::SignalSelf))
        }
        "ctypes.dlsym" | "ctypes.dlsym/handle" => {
            let symbol = unsafe { str_arg(args, 1)? };
            libc_kind(&symbol).map(|kind| (format!("ctypes.{symbol}"), kind))
        }
        "ctypes.call_function" => {
            let address = unsafe { int_arg(args, 0)? } as usize;
            blocked_addresses()
                .get(&address)
                .map(|(name, kind)| (format!("ctypes.{name}"), *kind))
        }
        _ => None,
    }
}

/// Item `index` of the argument tuple as an integer, if it is one.
///
/// # Safety
/// GIL held; `args` a tuple or NULL.
unsafe fn int_arg(args: *mut ffi::PyObject, index: ffi::Py_ssize_t) -> Option<c_long> {
    if args.is_null() || unsafe { ffi::PyTuple_Check(args) } == 0 {
        return None;
    }
    let item = unsafe { ffi::PyTuple_GetItem(args, index) };
    if item.is_null() {
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
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
    if args.is_null() || unsafe { ffi::PyTuple_Check(args) } == 0 {
        return None;
    }
    let item = unsafe { ffi::PyTuple_GetItem(args, index) };
    if item.is_null() || unsafe { ffi::PyUnicode_Check(item) } == 0 {
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    let data = unsafe { ffi::PyUnicode_AsUTF8(item) };
    if data.is_null() {
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    Some(
        unsafe { CStr::from_ptr(data) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// Sets the RuntimeError for a blocked operation.
///
/// # Safety
/// The GIL must be held.
unsafe fn raise_blocked(event: &str, kind: Kind) {
    // An event name never holds a NUL: it came from a C string or a Python
    // identifier checked by CString::new.
    let Ok(message) = CString::new(block_message(event, kind)) else {
        return;
    };
    unsafe { ffi::PyErr_SetString(ffi::PyExc_RuntimeError, message.as_ptr()) };
}

// ---------------------------------------------------------------------------
// C functions CPython does not audit
// ---------------------------------------------------------------------------

/// (module, function, reported name, kind) of each C function replaced by
/// a blocker at start-up.
const UNAUDITED: &[(&str, &str, &str, Kind)] = &[
    // subprocess's engine; multiprocessing's spawn and forkserver use it too.
    (
        "_posixsubprocess",
        "fork_exec",
        "_posixsubprocess.fork_exec",
        Kind::Fork,
    ),
    ("posix", "_exit", "os._exit", Kind::Terminate),
    ("posix", "abort", "os.abort", Kind::Terminate),
    ("_signal", "signal", "signal.signal", Kind::SignalHandler),
    (
        "_signal",
        "siginterrupt",
        "signal.siginterrupt",
        Kind::SignalHandler,
    ),
    (
        "_signal",
        "raise_signal",
        "signal.raise_signal",
        Kind::SignalSelf,
    ),
    ("_signal", "alarm", "signal.alarm", Kind::SignalSelf),
    ("_signal", "setitimer", "signal.setitimer", Kind::SignalSelf),
];

/// One blocker per `UNAUDITED` entry and calling convention. They ignore
/// their arguments, raise, and return NULL.
unsafe extern "C" fn blocker_varargs<const I: usize>(
    _slf: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let (_, _, name, kind) = UNAUDITED[I];
    // SAFETY: CPython calls C functions with the GIL held.
    unsafe { raise_blocked(name, kind) };
    std::ptr::null_mut()
}

unsafe extern "C" fn blocker_varargs_kw<const I: usize>(
    _slf: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
    _kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let (_, _, name, kind) = UNAUDITED[I];
    // SAFETY: CPython calls C functions with the GIL held.
    unsafe { raise_blocked(name, kind) };
    std::ptr::null_mut()
}

unsafe extern "C" fn blocker_fastcall<const I: usize>(
    _slf: *mut ffi::PyObject,
    _args: *mut *mut ffi::PyObject,
    _nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    let (_, _, name, kind) = UNAUDITED[I];
    // SAFETY: CPython calls C functions with the GIL held.
    unsafe { raise_blocked(name, kind) };
    std::ptr::null_mut()
}

unsafe extern "C" fn blocker_fastcall_kw<const I: usize>(
    _slf: *mut ffi::PyObject,
    _args: *const *mut ffi::PyObject,
    _nargs: ffi::Py_ssize_t,
    _kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let (_, _, name, kind) = UNAUDITED[I];
    // SAFETY: CPython calls C functions with the GIL held.
    unsafe { raise_blocked(name, kind) };
    std::ptr::null_mut()
}

/// The blocker for entry `index` matching a method's calling convention.
fn blocker_for(index: usize, flags: c_int) -> Option<ffi::PyMethodDefPointer> {
    macro_rules! pick {
        ($($i:literal),*) => {
            match index {
                $($i => Some(if flags & ffi::METH_FASTCALL != 0 {
                    if flags & ffi::METH_KEYWORDS != 0 {
                        ffi::PyMethodDefPointer { PyCFunctionFastWithKeywords: blocker_fastcall_kw::<$i> }
                    } else {
                        ffi::PyMethodDefPointer { PyCFunctionFast: blocker_fastcall::<$i> }
                    }
                } else if flags & ffi::METH_KEYWORDS != 0 {
                    ffi::PyMethodDefPointer { PyCFunctionWithKeywords: blocker_varargs_kw::<$i> }
                } else {
                    ffi::PyMethodDefPointer { PyCFunction: blocker_varargs::<$i> }
                }),)*
                _ => None,
            }
        };
    }
    pick!(0, 1, 2, 3, 4, 5, 6, 7)
}

/// Replaces every `UNAUDITED` function with its blocker. Runs once, right
/// after the interpreter starts, before any user code.
///
/// # Safety
/// The GIL must be held.
pub unsafe fn block_unaudited_functions() -> Result<(), String> {
    for (index, (module, function, _, _)) in UNAUDITED.iter().enumerate() {
        unsafe { block_method(index, module, function) }
            .map_err(|why| format!("sandbox: cannot block {module}.{function}: {why}"))?;
    }
    Ok(())
}

/// # Safety
/// The GIL must be held.
unsafe fn block_method(index: usize, module: &str, function: &str) -> Result<(), String> {
    let c_module = CString::new(module).map_err(|e| e.to_string())?;
    let c_function = CString::new(function).map_err(|e| e.to_string())?;
    // SAFETY (block): GIL held; every new reference is released below.
    unsafe {
        let module_obj = ffi::PyImport_ImportModule(c_module.as_ptr());
        if module_obj.is_null() {
            // A Python built without this module has nothing to block.
            ffi::PyErr_Clear();
            return Ok(());
        }
        let function_obj = ffi::PyObject_GetAttrString(module_obj, c_function.as_ptr());
        ffi::Py_DECREF(module_obj);
        if function_obj.is_null() {
            ffi::PyErr_Clear();
            return Ok(());
        }
        let result = if ffi::PyCFunction_Check(function_obj) == 0 {
            Err("not a C function".to_string())
        } else {
            // The method table entry every function object of this name
            // points to, in the module's static table.
            let def = (*(function_obj as *mut ffi::PyCFunctionObject)).m_ml;
            patch_method_def(def, index)
        };
        ffi::Py_DECREF(function_obj);
        result
    }
}

/// Points `def.ml_meth` at the blocker for `index`, keeping its flags.
///
/// # Safety
/// `def` must be a live `PyMethodDef` (static in an extension module); the
/// GIL must be held so no other thread reads it while it changes.
unsafe fn patch_method_def(def: *mut ffi::PyMethodDef, index: usize) -> Result<(), String> {
    if def.is_null() {
        return Err("no method definition".into());
    }
    // SAFETY: `def` is live (caller's contract); reading a field and taking
    // a field's address do not create references to the whole struct.
    let flags = unsafe { (*def).ml_flags };
    let blocker = blocker_for(index, flags).ok_or("no blocker for this index")?;
    let field = unsafe { std::ptr::addr_of_mut!((*def).ml_meth) } as *mut u8;
    // Method tables are usually in writable data; if this one sits in a
    // read-only page (RELRO), open the page for the write and close it again.
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let page = (field as usize) & !(page_size - 1);
    let span = (field as usize + std::mem::size_of::<ffi::PyMethodDefPointer>()) - page;
    let length = span.div_ceil(page_size) * page_size;
    let writable = page_is_writable(page);
    // SAFETY: `page..page + length` covers mapped memory (it holds `def`);
    // adding write permission to our own process's mapping changes no data.
    if !writable
        && unsafe {
            libc::mprotect(
                page as *mut c_void,
                length,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        } != 0
    {
        return Err("mprotect refused".into());
    }
    // SAFETY: the field is writable now; the GIL is held, so no Python
    // thread calls through this entry while it changes, and the new value
    // is a function with the signature `flags` announce.
    unsafe { std::ptr::write_volatile(std::ptr::addr_of_mut!((*def).ml_meth), blocker) };
    if !writable {
        // SAFETY: restores the page's original read-only protection.
        unsafe { libc::mprotect(page as *mut c_void, length, libc::PROT_READ) };
    }
    Ok(())
}

/// Whether the page at `address` is mapped writable, per /proc/self/maps.
fn page_is_writable(address: usize) -> bool {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return false;
    };
    maps.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            return false;
        };
        let Some((start, end)) = range.split_once('-') else {
            return false;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            return false;
        };
        (start..end).contains(&address) && perms.as_bytes().get(1) == Some(&b'w')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_the_contract_events_and_nothing_common() {
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
            assert_eq!(
                event_kind(event),
                Some(Kind::Fork),
                "{event} must be blocked"
            );
        }
        for event in [
            "open",
            "import",
            "os.listdir",
            "os.remove",
            "subprocess",
            "os.forkx",
        ] {
            assert_eq!(event_kind(event), None, "{event} must pass");
        }
    }

    #[test]
    fn fork_message_is_the_contract_text_and_round_trips() {
        let msg = block_message("os.fork", Kind::Fork);
        assert_eq!(
            msg,
            "os.fork is blocked in Erlang VM context.\nfork()/exec() would corrupt the Erlang runtime.\nUse Erlang ports (open_port/2) for subprocess management."
        );
        assert_eq!(blocked_event(&msg), Some("os.fork"));
        for kind in Kind::ALL {
            let msg = block_message("os._exit", kind);
            assert_eq!(blocked_event(&msg), Some("os._exit"));
        }
        assert_eq!(blocked_event("os.fork is blocked"), None);
        assert_eq!(
            blocked_event("a b is blocked in Erlang VM context.\nx"),
            None
        );
    }

    #[test]
    fn glibc_aliases_normalize_to_their_function() {
        for (alias, base) in [
            ("__libc_fork", "fork"),
            ("_Fork", "fork"),
            ("__fork", "fork"),
            ("__clone", "clone"),
            ("_IO_popen", "popen"),
            ("__sigaction", "sigaction"),
            ("__libc_sigaction", "sigaction"),
            ("_exit", "exit"),
            ("_Exit", "exit"),
        ] {
            assert_eq!(normalize_symbol(alias), base);
        }
        assert_eq!(libc_kind("__libc_fork"), Some(Kind::Fork));
        assert_eq!(libc_kind("_exit"), Some(Kind::Terminate));
        assert_eq!(libc_kind("getpid"), None);
        assert_eq!(libc_kind("regexec"), None);
        assert_eq!(libc_kind("pthread_atfork"), None);
    }

    #[test]
    fn every_unaudited_entry_has_blockers_for_each_convention() {
        for index in 0..UNAUDITED.len() {
            for flags in [
                ffi::METH_VARARGS,
                ffi::METH_VARARGS | ffi::METH_KEYWORDS,
                ffi::METH_FASTCALL,
                ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
            ] {
                assert!(blocker_for(index, flags).is_some(), "entry {index}");
            }
        }
    }
}
