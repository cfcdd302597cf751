//! Guards on C functions CPython does not audit.
//!
//! Each guarded function's entry in its module's static `PyMethodDef` table
//! is pointed at a trampoline of the same calling convention. Every function
//! object made from that table, now or after a re-import, goes through the
//! trampoline; Python code cannot undo that without native code (and native
//! code on Python's threads still meets the kernel filter). The trampoline
//! refuses, passes the call on to the original, or passes it on with a
//! safer argument (a recursion-limit ceiling, a thread-stack floor).

use std::ffi::{c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;

use super::descriptors;
use super::exception;
use super::policy::Kind;

/// Highest `sys.setrecursionlimit` honoured. Measured on CPython 3.11 in a
/// thread: recursion through C (`__getattr__`, `map`) costs about 0.75 KiB
/// of C stack per level, so 8,000 levels need about 6 MiB, well inside the
/// [`STACK_FLOOR`] every Python thread gets.
pub const RECURSION_CEILING: i64 = 8_000;

/// Smallest stack a thread Python starts may have (and the size of those
/// started with the default, 0).
pub const STACK_FLOOR: i64 = 16 * 1024 * 1024;

// Twice the measured cost per level must fit in the floor.
const _: () = assert!(RECURSION_CEILING * 1536 < STACK_FLOOR);

#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Always refuse.
    Block(Kind),
    /// Refuse when the descriptor in `position` (or passed as `keyword`)
    /// belongs to the VM.
    Descriptor {
        position: usize,
        keyword: &'static str,
    },
    /// Lower the first argument to at most this.
    AtMost(i64),
    /// Raise the first argument to at least this (0 means "the default").
    AtLeast(i64),
}

struct Patch {
    module: &'static str,
    function: &'static str,
    /// The name a refusal reports.
    event: &'static str,
    rule: Rule,
}

const fn block(
    module: &'static str,
    function: &'static str,
    event: &'static str,
    kind: Kind,
) -> Patch {
    Patch {
        module,
        function,
        event,
        rule: Rule::Block(kind),
    }
}

const PATCHES: &[Patch] = &[
    // subprocess's engine; multiprocessing's spawn and forkserver use it too.
    block(
        "_posixsubprocess",
        "fork_exec",
        "_posixsubprocess.fork_exec",
        Kind::Fork,
    ),
    block("posix", "_exit", "os._exit", Kind::Terminate),
    block("posix", "abort", "os.abort", Kind::Terminate),
    block("_signal", "signal", "signal.signal", Kind::SignalHandler),
    block(
        "_signal",
        "siginterrupt",
        "signal.siginterrupt",
        Kind::SignalHandler,
    ),
    block(
        "_signal",
        "raise_signal",
        "signal.raise_signal",
        Kind::SignalSelf,
    ),
    block("_signal", "alarm", "signal.alarm", Kind::SignalSelf),
    block("_signal", "setitimer", "signal.setitimer", Kind::SignalSelf),
    // A pidfd does not say whose it is; the kernel refuses all of them.
    block(
        "_signal",
        "pidfd_send_signal",
        "signal.pidfd_send_signal",
        Kind::SignalSelf,
    ),
    block(
        "faulthandler",
        "enable",
        "faulthandler.enable",
        Kind::SignalHandler,
    ),
    block(
        "faulthandler",
        "register",
        "faulthandler.register",
        Kind::SignalHandler,
    ),
    // Its watchdog thread can end the process (exit=True).
    block(
        "faulthandler",
        "dump_traceback_later",
        "faulthandler.dump_traceback_later",
        Kind::Terminate,
    ),
    // CPython's own crash helpers for its test suite.
    block(
        "faulthandler",
        "_sigsegv",
        "faulthandler._sigsegv",
        Kind::Terminate,
    ),
    block(
        "faulthandler",
        "_sigabrt",
        "faulthandler._sigabrt",
        Kind::Terminate,
    ),
    block(
        "faulthandler",
        "_sigfpe",
        "faulthandler._sigfpe",
        Kind::Terminate,
    ),
    block(
        "faulthandler",
        "_read_null",
        "faulthandler._read_null",
        Kind::Terminate,
    ),
    block(
        "faulthandler",
        "_fatal_error",
        "faulthandler._fatal_error",
        Kind::Terminate,
    ),
    block(
        "faulthandler",
        "_fatal_error_c_thread",
        "faulthandler._fatal_error_c_thread",
        Kind::Terminate,
    ),
    block(
        "faulthandler",
        "_stack_overflow",
        "faulthandler._stack_overflow",
        Kind::Terminate,
    ),
    Patch {
        module: "sys",
        function: "setrecursionlimit",
        event: "sys.setrecursionlimit",
        rule: Rule::AtMost(RECURSION_CEILING),
    },
    Patch {
        module: "_thread",
        function: "stack_size",
        event: "threading.stack_size",
        rule: Rule::AtLeast(STACK_FLOOR),
    },
    Patch {
        module: "posix",
        function: "close",
        event: "os.close",
        rule: Rule::Descriptor {
            position: 0,
            keyword: "fd",
        },
    },
    Patch {
        module: "posix",
        function: "dup2",
        event: "os.dup2",
        rule: Rule::Descriptor {
            position: 1,
            keyword: "fd2",
        },
    },
    // Only the VM's descriptors opened before Python started are known:
    // sparing them would still close the sockets and pipes it opened since.
    // Code that owns a descriptor closes it with os.close.
    block("posix", "closerange", "os.closerange", Kind::Descriptor),
];

const COUNT: usize = 24;
const _: () = assert!(PATCHES.len() == COUNT);

/// Per patch: the original function and its table entry (0 until patched).
static ORIGINALS: [AtomicUsize; COUNT] = [const { AtomicUsize::new(0) }; COUNT];
static ENTRIES: [AtomicUsize; COUNT] = [const { AtomicUsize::new(0) }; COUNT];
static TRAMPOLINES: [AtomicUsize; COUNT] = [const { AtomicUsize::new(0) }; COUNT];

/// The file (device, inode) each guarded module's table lives in, to tell a
/// second copy of it.
static MODULE_FILES: OnceLock<Vec<(&'static str, u64, u64)>> = OnceLock::new();

/// The arguments of a call, in whichever convention it came.
#[derive(Clone, Copy)]
enum Args {
    Tuple {
        args: *mut ffi::PyObject,
        kwargs: *mut ffi::PyObject,
    },
    Fast {
        args: *const *mut ffi::PyObject,
        nargs: ffi::Py_ssize_t,
        kwnames: *mut ffi::PyObject,
    },
    One(*mut ffi::PyObject),
}

impl Args {
    /// Positional argument `index`, or the keyword argument `keyword`.
    ///
    /// # Safety
    /// GIL held; the pointers are those CPython passed for this call.
    unsafe fn get(self, index: usize, keyword: &str) -> Option<*mut ffi::PyObject> {
        // SAFETY: see the function's safety contract: the GIL is held and the pointers are those CPython passed.
        unsafe {
            match self {
                Args::One(arg) => (index == 0 && !arg.is_null()).then_some(arg),
                Args::Tuple { args, kwargs } => {
                    if !args.is_null() && (index as ffi::Py_ssize_t) < ffi::PyTuple_Size(args) {
                        return Some(ffi::PyTuple_GetItem(args, index as ffi::Py_ssize_t));
                    }
                    if kwargs.is_null() || keyword.is_empty() {
                        return None;
                    }
                    let key = CString::new(keyword).ok()?;
                    let found = ffi::PyDict_GetItemString(kwargs, key.as_ptr());
                    (!found.is_null()).then_some(found)
                }
                Args::Fast {
                    args,
                    nargs,
                    kwnames,
                } => {
                    let positional = ffi::PyVectorcall_NARGS(nargs as usize);
                    if (index as ffi::Py_ssize_t) < positional {
                        return Some(*args.add(index));
                    }
                    if kwnames.is_null() || keyword.is_empty() {
                        return None;
                    }
                    for j in 0..ffi::PyTuple_Size(kwnames) {
                        let name = ffi::PyTuple_GetItem(kwnames, j);
                        let text = ffi::PyUnicode_AsUTF8(name);
                        if text.is_null() {
                            ffi::PyErr_Clear();
                            continue;
                        }
                        if CStr::from_ptr(text).to_bytes() == keyword.as_bytes() {
                            return Some(*args.add((positional + j) as usize));
                        }
                    }
                    None
                }
            }
        }
    }
}

/// An integer argument, if it is one that fits.
///
/// # Safety
/// GIL held; `object` a live object.
unsafe fn as_i64(object: *mut ffi::PyObject) -> Option<i64> {
    // SAFETY: see the function's safety contract: the GIL is held and the pointers are those CPython passed.
    unsafe {
        if ffi::PyLong_Check(object) == 0 {
            return None;
        }
        let value = ffi::PyLong_AsLongLong(object);
        if value == -1 && !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        Some(value)
    }
}

enum Verdict {
    Pass,
    Refuse(Kind),
    /// Call the original with this first argument instead (a new reference).
    ReplaceFirst(i64),
}

/// # Safety
/// GIL held; `args` as CPython passed them.
unsafe fn decide(patch: &Patch, args: Args) -> Verdict {
    match patch.rule {
        Rule::Block(kind) => Verdict::Refuse(kind),
        Rule::Descriptor { position, keyword } => {
            // SAFETY: GIL held; `args` are the arguments CPython passed to this call.
            match unsafe { args.get(position, keyword).and_then(|a| as_i64(a)) } {
                Some(fd) if descriptors::belongs_to_vm(fd) => Verdict::Refuse(Kind::Descriptor),
                _ => Verdict::Pass,
            }
        }
        // SAFETY: GIL held; `args` are the arguments CPython passed to this call.
        Rule::AtMost(ceiling) => match unsafe { args.get(0, "").and_then(|a| as_i64(a)) } {
            Some(value) if value > ceiling => Verdict::ReplaceFirst(ceiling),
            _ => Verdict::Pass,
        },
        // SAFETY: GIL held; `args` are the arguments CPython passed to this call.
        Rule::AtLeast(floor) => match unsafe { args.get(0, "").and_then(|a| as_i64(a)) } {
            Some(value) if (0..floor).contains(&value) => Verdict::ReplaceFirst(floor),
            _ => Verdict::Pass,
        },
    }
}

type Varargs = unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::PyObject) -> *mut ffi::PyObject;
type VarargsKw = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *mut ffi::PyObject,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;
type Fast = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *mut *mut ffi::PyObject,
    ffi::Py_ssize_t,
) -> *mut ffi::PyObject;
type FastKw = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    ffi::Py_ssize_t,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

/// The guard of patch `I`, for every convention.
///
/// # Safety
/// Called by CPython, with the GIL held, through the patched table entry,
/// with arguments of the convention `args` says.
unsafe fn guarded<const I: usize>(slf: *mut ffi::PyObject, args: Args) -> *mut ffi::PyObject {
    let patch = &PATCHES[I];
    // SAFETY: GIL held; `args` are the arguments CPython passed to this call.
    let verdict = match std::panic::catch_unwind(|| unsafe { decide(patch, args) }) {
        Ok(verdict) => verdict,
        Err(_) => Verdict::Refuse(Kind::Guarded),
    };
    let original = ORIGINALS[I].load(Ordering::Acquire);
    match verdict {
        Verdict::Refuse(kind) => {
            // SAFETY: CPython calls C functions with the GIL held.
            let py = unsafe { Python::assume_attached() };
            exception::raise(py, patch.event, kind);
            std::ptr::null_mut()
        }
        // SAFETY: `original` was saved from this entry, whose convention `args` matches; GIL held.
        Verdict::Pass => unsafe { call_original(original, slf, args, None) },
        Verdict::ReplaceFirst(value) => {
            let replacement = unsafe { ffi::PyLong_FromLongLong(value) };
            if replacement.is_null() {
                return std::ptr::null_mut();
            }
            // SAFETY: `original` was saved from this entry, whose convention `args` matches; GIL held.
            let result = unsafe { call_original(original, slf, args, Some(replacement)) };
            unsafe { ffi::Py_DECREF(replacement) };
            result
        }
    }
}

/// Calls the original C function, optionally with a new first positional
/// argument (borrowed for the call).
///
/// # Safety
/// `original` is the function pointer saved from the table entry whose
/// convention `args` matches; GIL held.
unsafe fn call_original(
    original: usize,
    slf: *mut ffi::PyObject,
    args: Args,
    first: Option<*mut ffi::PyObject>,
) -> *mut ffi::PyObject {
    if original == 0 {
        // SAFETY: see the function's safety contract: the GIL is held and the pointers are those CPython passed.
        unsafe {
            ffi::PyErr_SetString(
                ffi::PyExc_RuntimeError,
                c"sandbox: original function missing".as_ptr(),
            )
        };
        return std::ptr::null_mut();
    }
    // SAFETY (block): `original` has the signature of `args`' convention
    // (the trampoline was chosen from the entry's flags); argument arrays
    // and tuples are rebuilt only to swap the first positional item.
    unsafe {
        match args {
            Args::One(arg) => {
                let f: Varargs = std::mem::transmute::<usize, Varargs>(original);
                f(slf, first.unwrap_or(arg))
            }
            Args::Tuple { args, kwargs } => {
                let tuple = match first {
                    Some(first) if !args.is_null() && ffi::PyTuple_Size(args) > 0 => {
                        // A fresh tuple (a full slice would be `args` itself).
                        let size = ffi::PyTuple_Size(args);
                        let copy = ffi::PyTuple_New(size);
                        if copy.is_null() {
                            return std::ptr::null_mut();
                        }
                        // PyTuple_SetItem steals the new references.
                        ffi::PyTuple_SetItem(copy, 0, ffi::Py_NewRef(first));
                        for i in 1..size {
                            ffi::PyTuple_SetItem(
                                copy,
                                i,
                                ffi::Py_NewRef(ffi::PyTuple_GetItem(args, i)),
                            );
                        }
                        copy
                    }
                    // METH_NOARGS functions get NULL: pass it on as it came.
                    _ => ffi::Py_XNewRef(args),
                };
                let result = if kwargs.is_null() {
                    let f: Varargs = std::mem::transmute::<usize, Varargs>(original);
                    f(slf, tuple)
                } else {
                    let f: VarargsKw = std::mem::transmute::<usize, VarargsKw>(original);
                    f(slf, tuple, kwargs)
                };
                ffi::Py_XDECREF(tuple);
                result
            }
            Args::Fast {
                args,
                nargs,
                kwnames,
            } => {
                let positional = ffi::PyVectorcall_NARGS(nargs as usize);
                let total = positional
                    + if kwnames.is_null() {
                        0
                    } else {
                        ffi::PyTuple_Size(kwnames)
                    };
                let mut copied: Vec<*mut ffi::PyObject> = if total > 0 {
                    std::slice::from_raw_parts(args, total as usize).to_vec()
                } else {
                    Vec::new()
                };
                if let (Some(first), true) = (first, positional > 0) {
                    copied[0] = first;
                }
                let pointer = if copied.is_empty() {
                    args
                } else {
                    copied.as_ptr()
                };
                // Only `fast_kw` comes here; `fast` has its own path.
                let f: FastKw = std::mem::transmute::<usize, FastKw>(original);
                f(slf, pointer, positional, kwnames)
            }
        }
    }
}

unsafe extern "C" fn varargs<const I: usize>(
    slf: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: see the function's safety contract: the GIL is held and the pointers are those CPython passed.
    unsafe {
        guarded::<I>(
            slf,
            Args::Tuple {
                args,
                kwargs: std::ptr::null_mut(),
            },
        )
    }
}

unsafe extern "C" fn varargs_kw<const I: usize>(
    slf: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: called by CPython through the patched entry, GIL held, with this convention's arguments.
    unsafe { guarded::<I>(slf, Args::Tuple { args, kwargs }) }
}

unsafe extern "C" fn single<const I: usize>(
    slf: *mut ffi::PyObject,
    arg: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: called by CPython through the patched entry, GIL held, with this convention's arguments.
    unsafe { guarded::<I>(slf, Args::One(arg)) }
}

unsafe extern "C" fn fast<const I: usize>(
    slf: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    let patch_args = Args::Fast {
        args: args as *const *mut ffi::PyObject,
        nargs,
        kwnames: std::ptr::null_mut(),
    };
    // SAFETY: called by CPython through the patched entry, GIL held, with this convention's arguments.
    unsafe { guarded_fast::<I>(slf, patch_args) }
}

/// A METH_FASTCALL function without keywords: call its original with the
/// keywordless signature.
///
/// # Safety
/// As [`guarded`].
unsafe fn guarded_fast<const I: usize>(slf: *mut ffi::PyObject, args: Args) -> *mut ffi::PyObject {
    let patch = &PATCHES[I];
    // SAFETY: GIL held; `args` are the arguments CPython passed to this call.
    let verdict = match std::panic::catch_unwind(|| unsafe { decide(patch, args) }) {
        Ok(verdict) => verdict,
        Err(_) => Verdict::Refuse(Kind::Guarded),
    };
    let original = ORIGINALS[I].load(Ordering::Acquire);
    let Args::Fast { args, nargs, .. } = args else {
        return std::ptr::null_mut();
    };
    match verdict {
        Verdict::Refuse(kind) => {
            // SAFETY: CPython calls C functions with the GIL held.
            let py = unsafe { Python::assume_attached() };
            exception::raise(py, patch.event, kind);
            std::ptr::null_mut()
        }
        Verdict::Pass | Verdict::ReplaceFirst(_) => {
            let positional = ffi::PyVectorcall_NARGS(nargs as usize);
            // SAFETY: `args` holds `positional` live arguments.
            let mut copied: Vec<*mut ffi::PyObject> = if positional > 0 {
                unsafe { std::slice::from_raw_parts(args, positional as usize) }.to_vec()
            } else {
                Vec::new()
            };
            let mut replacement = std::ptr::null_mut();
            if let Verdict::ReplaceFirst(value) = verdict {
                // SAFETY: GIL held.
                replacement = unsafe { ffi::PyLong_FromLongLong(value) };
                if replacement.is_null() {
                    return std::ptr::null_mut();
                }
                if let Some(slot) = copied.first_mut() {
                    *slot = replacement;
                }
            }
            let pointer = if copied.is_empty() {
                args as *mut *mut ffi::PyObject
            } else {
                copied.as_mut_ptr()
            };
            // SAFETY: the saved original has this signature (METH_FASTCALL).
            let result = unsafe {
                let f: Fast = std::mem::transmute::<usize, Fast>(original);
                f(slf, pointer, positional)
            };
            if !replacement.is_null() {
                // SAFETY: GIL held; we own `replacement`.
                unsafe { ffi::Py_DECREF(replacement) };
            }
            result
        }
    }
}

unsafe extern "C" fn fast_kw<const I: usize>(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: see the function's safety contract: the GIL is held and the pointers are those CPython passed.
    unsafe {
        guarded::<I>(
            slf,
            Args::Fast {
                args,
                nargs,
                kwnames,
            },
        )
    }
}

/// The trampoline of patch `index` for a method with `flags`.
fn trampoline_for(index: usize, flags: c_int) -> Option<ffi::PyMethodDefPointer> {
    macro_rules! pick {
        ($($i:literal),*) => {
            match index {
                $($i => Some(if flags & ffi::METH_FASTCALL != 0 {
                    if flags & ffi::METH_KEYWORDS != 0 {
                        ffi::PyMethodDefPointer { PyCFunctionFastWithKeywords: fast_kw::<$i> }
                    } else {
                        ffi::PyMethodDefPointer { PyCFunctionFast: fast::<$i> }
                    }
                } else if flags & ffi::METH_KEYWORDS != 0 {
                    ffi::PyMethodDefPointer { PyCFunctionWithKeywords: varargs_kw::<$i> }
                } else if flags & ffi::METH_O != 0 {
                    ffi::PyMethodDefPointer { PyCFunction: single::<$i> }
                } else {
                    ffi::PyMethodDefPointer { PyCFunction: varargs::<$i> }
                }),)*
                _ => None,
            }
        };
    }
    pick!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23)
}

/// Guards every function of [`PATCHES`] this Python has. Runs once, right
/// after the interpreter starts, before any user code.
///
/// # Safety
/// The GIL must be held.
pub unsafe fn apply() -> Result<(), String> {
    let mut files = Vec::new();
    for (index, patch) in PATCHES.iter().enumerate() {
        // SAFETY: the GIL is held (this function's contract).
        let entry = unsafe { method_entry(patch.module, patch.function) }.map_err(|why| {
            format!(
                "sandbox: cannot guard {}.{}: {why}",
                patch.module, patch.function
            )
        })?;
        let Some(entry) = entry else {
            continue;
        };
        if ENTRIES[index].load(Ordering::Acquire) != 0 {
            continue;
        }
        // SAFETY: `entry` is the live static table entry just found; the GIL is held.
        unsafe { patch_entry(index, entry) }.map_err(|why| {
            format!(
                "sandbox: cannot guard {}.{}: {why}",
                patch.module, patch.function
            )
        })?;
        if let Some(identity) = file_of(entry as *const c_void) {
            if !files.iter().any(|(m, _, _)| *m == patch.module) {
                files.push((patch.module, identity.0, identity.1));
            }
        }
    }
    let _ = MODULE_FILES.set(files);
    Ok(())
}

/// Whether every guard applied is still in place.
pub fn intact() -> bool {
    (0..COUNT).all(|index| {
        let entry = ENTRIES[index].load(Ordering::Acquire);
        if entry == 0 {
            return true;
        }
        let entry = entry as *const ffi::PyMethodDef;
        // SAFETY: `entry` is a static method table entry we patched; it
        // lives as long as its module's shared object, which is never
        // unloaded. Reading the function pointer as an address.
        let current = unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*entry).ml_meth)) };
        // SAFETY: every variant of the union is a function pointer.
        let current = unsafe { current.PyCFunction } as usize;
        current == TRAMPOLINES[index].load(Ordering::Acquire)
    })
}

/// `Some(module)` when `path` is a different file from the one guarded
/// module `name` was loaded from: loading it would bring unguarded tables.
pub fn second_copy(name: &str, path: &str) -> Option<&'static str> {
    let files = MODULE_FILES.get()?;
    let (module, dev, ino) = files.iter().find(|(module, _, _)| *module == name)?;
    let metadata = std::fs::metadata(path).ok()?;
    use std::os::unix::fs::MetadataExt;
    ((metadata.dev(), metadata.ino()) != (*dev, *ino)).then_some(*module)
}

/// (device, inode) of the shared object holding `address`.
fn file_of(address: *const c_void) -> Option<(u64, u64)> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr only reads the loader's tables.
    if unsafe { libc::dladdr(address, info.as_mut_ptr()) } == 0 {
        return None;
    }
    // SAFETY: dladdr succeeded and filled the struct.
    let info = unsafe { info.assume_init() };
    if info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is a NUL-terminated path owned by the loader.
    let path = unsafe { CStr::from_ptr(info.dli_fname) }.to_str().ok()?;
    let path = if path.is_empty() {
        "/proc/self/exe"
    } else {
        path
    };
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.dev(), metadata.ino()))
}

/// The static table entry behind `module.function`, or `None` when this
/// Python has no such function.
///
/// # Safety
/// The GIL must be held.
unsafe fn method_entry(
    module: &str,
    function: &str,
) -> Result<Option<*mut ffi::PyMethodDef>, String> {
    let c_module = CString::new(module).map_err(|e| e.to_string())?;
    let c_function = CString::new(function).map_err(|e| e.to_string())?;
    // SAFETY (block): GIL held; every new reference is released below.
    unsafe {
        let module_obj = ffi::PyImport_ImportModule(c_module.as_ptr());
        if module_obj.is_null() {
            // A Python built without this module has nothing to guard.
            ffi::PyErr_Clear();
            return Ok(None);
        }
        let function_obj = ffi::PyObject_GetAttrString(module_obj, c_function.as_ptr());
        ffi::Py_DECREF(module_obj);
        if function_obj.is_null() {
            ffi::PyErr_Clear();
            return Ok(None);
        }
        let result = if ffi::PyCFunction_Check(function_obj) == 0 {
            Err("not a C function".to_string())
        } else {
            // The entry every function object of this name points to, in
            // the module's static table.
            Ok(Some((*(function_obj as *mut ffi::PyCFunctionObject)).m_ml))
        };
        ffi::Py_DECREF(function_obj);
        result
    }
}

/// Saves `def.ml_meth` and points it at the trampoline for `index`.
///
/// # Safety
/// `def` must be a live `PyMethodDef` (static in an extension module); the
/// GIL must be held so no other thread reads it while it changes.
unsafe fn patch_entry(index: usize, def: *mut ffi::PyMethodDef) -> Result<(), String> {
    if def.is_null() {
        return Err("no method definition".into());
    }
    // SAFETY: `def` is live (caller's contract); reading fields and taking
    // a field's address do not create references to the whole struct.
    let flags = unsafe { (*def).ml_flags };
    let trampoline = trampoline_for(index, flags).ok_or("no trampoline for this index")?;
    // SAFETY: reading the current function pointer out of the union.
    let original = unsafe { (*def).ml_meth.PyCFunction } as usize;
    ORIGINALS[index].store(original, Ordering::Release);
    // SAFETY: every variant of the union is a function pointer.
    TRAMPOLINES[index].store(
        unsafe { trampoline.PyCFunction } as usize,
        Ordering::Release,
    );
    // SAFETY: taking a field's address creates no reference; `def` is live.
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
    unsafe { std::ptr::write_volatile(std::ptr::addr_of_mut!((*def).ml_meth), trampoline) };
    if !writable {
        // SAFETY: restores the page's original read-only protection.
        unsafe { libc::mprotect(page as *mut c_void, length, libc::PROT_READ) };
    }
    ENTRIES[index].store(def as usize, Ordering::Release);
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
    fn every_patch_has_trampolines_for_each_convention() {
        for index in 0..PATCHES.len() {
            for flags in [
                ffi::METH_VARARGS,
                ffi::METH_VARARGS | ffi::METH_KEYWORDS,
                ffi::METH_O,
                ffi::METH_FASTCALL,
                ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
            ] {
                assert!(trampoline_for(index, flags).is_some(), "entry {index}");
            }
        }
        assert!(trampoline_for(PATCHES.len(), ffi::METH_O).is_none());
    }
}
