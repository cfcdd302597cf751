//! The watch resource: what `enif_select` registers for a descriptor.
//!
//! One watch per watched descriptor, found again by number, so selecting a
//! descriptor twice reuses the registration and closing a watched
//! descriptor first takes it out of the poller (closing it under the
//! poller would let a reused number be reported to the wrong owner). The
//! watch type is opened by hand in `load`: rustler's resources cannot have
//! the `stop` callback `enif_select` requires.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Mutex;

use rustler::sys::{
    c_int, c_void, ErlNifEnv, ErlNifResourceType, ErlNifResourceTypeInit, ERL_NIF_SELECT_READ,
    ERL_NIF_SELECT_STOP, ERL_NIF_SELECT_WRITE,
};
use rustler::{Atom, Encoder, Env, Term};

use super::result::{
    bad_descriptor, descriptor, is_open, ok, read, select_failed, vm_descriptor, write,
};
use crate::{atoms, sandbox};

// enif_select's result bits (erl_nif.h): the stop callback ran inside the
// call, or will run later on a scheduler.
const SELECT_STOP_CALLED: c_int = 1 << 0;
const SELECT_STOP_SCHEDULED: c_int = 1 << 1;

/// A watched descriptor: the object `enif_select` registers.
struct Watch {
    fd: RawFd,
    /// Whether stopping the watch closes the descriptor (it was handed to
    /// a reactor, or `fd_close` was asked to close it while watched).
    owned: AtomicBool,
    /// Set once the descriptor was closed through this watch.
    closed: AtomicBool,
    /// Whether the process that owns the watch is monitored: if it dies
    /// without closing the descriptor, the watch closes it (`watch_down`).
    monitored: AtomicBool,
}

impl Watch {
    fn close_if_owned(&self) {
        if self.owned.load(Ordering::Acquire) && !self.closed.swap(true, Ordering::AcqRel) {
            // SAFETY: the descriptor was handed to us to close, and the
            // `closed` flag makes this the only close through this watch.
            unsafe { libc::close(self.fd) };
        }
    }
}

static WATCH_TYPE: AtomicPtr<ErlNifResourceType> = AtomicPtr::new(std::ptr::null_mut());

/// Watches by descriptor number, each holding one resource reference
/// (`enif_keep_resource`) until the watch is stopped.
static WATCHES: Mutex<Option<HashMap<RawFd, usize>>> = Mutex::new(None);

fn watches() -> std::sync::MutexGuard<'static, Option<HashMap<RawFd, usize>>> {
    WATCHES.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens the watch resource type, with the `stop` callback `enif_select`
/// requires. Called from the NIF library's `load`.
pub(crate) fn on_load(env: Env<'_>) -> bool {
    let init = ErlNifResourceTypeInit {
        dtor: watch_dtor as *const rustler::sys::ErlNifResourceDtor,
        stop: watch_stop as *const rustler::sys::ErlNifResourceStop,
        down: watch_down as *const rustler::sys::ErlNifResourceDown,
    };
    let mut tried = rustler::sys::ErlNifResourceFlags::ERL_NIF_RT_CREATE;
    // SAFETY: called from `load` with its environment; the name is a
    // NUL-terminated static string and `init` outlives the call (the VM
    // copies it).
    let opened = unsafe {
        rustler::sys::enif_open_resource_type_x(
            env.as_c_arg(),
            c"erlang_python_fd_watch".as_ptr(),
            &init,
            rustler::sys::ErlNifResourceFlags::ERL_NIF_RT_CREATE,
            &mut tried,
        )
    };
    if opened.is_null() {
        return false;
    }
    WATCH_TYPE.store(opened as *mut ErlNifResourceType, Ordering::Release);
    true
}

unsafe extern "C" fn watch_dtor(_env: *mut ErlNifEnv, object: *mut c_void) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the VM calls this once, when the last reference to a
        // watch created by `watch_for` is gone; it was initialised there.
        let watch = unsafe { std::ptr::read(object as *mut Watch) };
        watch.close_if_owned();
    });
}

unsafe extern "C" fn watch_stop(
    _env: *mut ErlNifEnv,
    object: *mut c_void,
    _fd: c_int,
    _is_direct_call: c_int,
) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the VM keeps the watch alive while it is registered, and
        // calls `stop` before it lets go of it.
        let watch = unsafe { &*(object as *const Watch) };
        // The poller no longer knows the descriptor: now it may be closed.
        watch.close_if_owned();
        forget_watch(watch.fd, object);
    });
}

unsafe extern "C" fn watch_down(
    env: *mut ErlNifEnv,
    object: *mut c_void,
    _pid: *const rustler::sys::ErlNifPid,
    _monitor: *const rustler::sys::ErlNifMonitor,
) {
    let _ = std::panic::catch_unwind(|| {
        // The owner (a reactor) died without closing its descriptor: take
        // it out of the poller, and `watch_stop` closes it. Only while the
        // registry still names this watch: once stopped, the number may
        // already belong to another connection.
        // SAFETY: the VM keeps the resource alive during the callback.
        let fd = unsafe { &*(object as *const Watch) }.fd;
        let current = watches().as_ref().and_then(|map| map.get(&fd).copied());
        if current == Some(object as usize) {
            stop(env, object);
        }
    });
}

/// Drops the registry's reference to `object`, if it is still the watch
/// registered for `fd`.
fn forget_watch(fd: RawFd, object: *mut c_void) {
    let mut registry = watches();
    let map = registry.get_or_insert_with(HashMap::new);
    if map.get(&fd) == Some(&(object as usize)) {
        map.remove(&fd);
        drop(registry);
        // SAFETY: releasing the reference taken in `watch_for`.
        unsafe { rustler::sys::enif_release_resource(object) };
    }
}

/// The watch of `fd`, created on first use. Returned with a reference of
/// its own, which the caller turns into a term or releases.
fn watch_for(fd: RawFd, owned: bool) -> Option<*mut c_void> {
    let kind = WATCH_TYPE.load(Ordering::Acquire);
    if kind.is_null() {
        return None;
    }
    let mut registry = watches();
    let map = registry.get_or_insert_with(HashMap::new);
    if let Some(&existing) = map.get(&fd) {
        let object = existing as *mut c_void;
        // SAFETY: the registry holds a reference, so the watch is alive.
        let watch = unsafe { &*(object as *const Watch) };
        if owned {
            watch.owned.store(true, Ordering::Release);
        }
        // SAFETY: a second reference for the caller.
        unsafe { rustler::sys::enif_keep_resource(object) };
        return Some(object);
    }
    // SAFETY: allocating a resource of our type, large enough for a Watch,
    // which is written before anything reads it.
    let object = unsafe { rustler::sys::enif_alloc_resource(kind, std::mem::size_of::<Watch>()) };
    if object.is_null() {
        return None;
    }
    // SAFETY: fresh memory of the right size, aligned as the VM aligns
    // resources (at least 8 bytes; Watch needs 4).
    unsafe {
        std::ptr::write(
            object as *mut Watch,
            Watch {
                fd,
                owned: AtomicBool::new(owned),
                closed: AtomicBool::new(false),
                monitored: AtomicBool::new(false),
            },
        );
        // One reference for the registry, the allocation's for the caller.
        rustler::sys::enif_keep_resource(object);
    }
    map.insert(fd, object as usize);
    Some(object)
}

/// Takes `object`'s descriptor out of the poller; the stop callback (now
/// or later) closes it if owned. A watch the poller never knew is closed
/// here.
fn stop(env: *mut ErlNifEnv, object: *mut c_void) {
    // SAFETY: the caller holds a reference to the watch.
    let watch = unsafe { &*(object as *const Watch) };
    // SAFETY: a stop request for a descriptor registered with this very
    // resource; the VM calls `watch_stop` when it is safe to close.
    let result = unsafe {
        rustler::sys::enif_select(
            env,
            watch.fd,
            ERL_NIF_SELECT_STOP,
            object,
            std::ptr::null(),
            atoms::undefined().as_c_arg(),
        )
    };
    if result < 0 || result & (SELECT_STOP_CALLED | SELECT_STOP_SCHEDULED) == 0 {
        // Never registered (or refused): nothing will call `stop`.
        watch.close_if_owned();
        forget_watch(watch.fd, object);
    }
}

/// Asks the VM to send the caller `{select, Watch, undefined, ready_input
/// | ready_output}` once `fd` is readable (`:read`) or writable (`:write`);
/// one message per call. `owned`: stopping the watch closes `fd`.
#[rustler::nif]
fn fd_select<'a>(env: Env<'a>, fd: i64, mode: Atom, owned: bool) -> Term<'a> {
    let Some(fd) = descriptor(fd) else {
        return bad_descriptor(env);
    };
    let flags = if mode == read() {
        ERL_NIF_SELECT_READ
    } else if mode == write() {
        ERL_NIF_SELECT_WRITE
    } else {
        return (atoms::error(), atoms::badarg()).encode(env);
    };
    if !is_open(fd) {
        return bad_descriptor(env);
    }
    if owned && sandbox::belongs_to_vm(fd as i64) {
        return (atoms::error(), vm_descriptor()).encode(env);
    }
    let Some(object) = watch_for(fd, owned) else {
        return (atoms::error(), select_failed()).encode(env);
    };
    // SAFETY: `object` is a live watch (we hold a reference); the message
    // goes to the calling process.
    let result = unsafe {
        rustler::sys::enif_select(
            env.as_c_arg(),
            fd,
            flags,
            object,
            std::ptr::null(),
            atoms::undefined().encode(env).as_c_arg(),
        )
    };
    // SAFETY: `object` is live; monitoring the calling process, once.
    let watch = unsafe { &*(object as *const Watch) };
    if owned && result >= 0 && !watch.monitored.swap(true, Ordering::AcqRel) {
        let mut caller = std::mem::MaybeUninit::<rustler::sys::ErlNifPid>::uninit();
        // SAFETY: enif_self fills `caller` in a process-bound environment
        // (a NIF call's); the monitor handle itself is not needed.
        unsafe {
            if !rustler::sys::enif_self(env.as_c_arg(), caller.as_mut_ptr()).is_null() {
                rustler::sys::enif_monitor_process(
                    env.as_c_arg(),
                    object,
                    caller.as_ptr(),
                    std::ptr::null_mut(),
                );
            }
        }
    }
    // SAFETY: the term keeps the watch alive for as long as Erlang holds it.
    let term = unsafe {
        Term::new(
            env,
            rustler::sys::enif_make_resource(env.as_c_arg(), object),
        )
    };
    // SAFETY: the reference `watch_for` returned; the term holds its own.
    unsafe { rustler::sys::enif_release_resource(object) };
    if result < 0 {
        return (atoms::error(), select_failed()).encode(env);
    }
    ok(env, term)
}

/// Stops watching (the watch of) `fd` without closing it unless owned:
/// `:ok`, also when it was not watched.
#[rustler::nif]
fn fd_unwatch(env: Env<'_>, fd: i64) -> Atom {
    let watched =
        descriptor(fd).and_then(|fd| watches().as_ref().and_then(|map| map.get(&fd).copied()));
    if let Some(object) = watched {
        let object = object as *mut c_void;
        // SAFETY: keep the watch alive while we stop it.
        unsafe { rustler::sys::enif_keep_resource(object) };
        stop(env.as_c_arg(), object);
        // SAFETY: the reference taken above.
        unsafe { rustler::sys::enif_release_resource(object) };
    }
    atoms::ok()
}

/// Closes `fd` through its watch, if it has one: the poller lets go of it
/// first. False when `fd` is not watched.
pub(super) fn close_watched(env: Env<'_>, fd: RawFd) -> bool {
    let watched = watches().as_ref().and_then(|map| map.get(&fd).copied());
    let Some(object) = watched else {
        return false;
    };
    let object = object as *mut c_void;
    // SAFETY: the registry's reference keeps the watch alive; we take
    // one more for the duration of the stop.
    unsafe { rustler::sys::enif_keep_resource(object) };
    // SAFETY: as above.
    let watch = unsafe { &*(object as *const Watch) };
    watch.owned.store(true, Ordering::Release);
    stop(env.as_c_arg(), object);
    // SAFETY: the reference taken above.
    unsafe { rustler::sys::enif_release_resource(object) };
    true
}
