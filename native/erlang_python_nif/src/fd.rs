//! File descriptors handed from Erlang to Python, and watched by the VM.
//!
//! Erlang accepts a connection and hands its descriptor over: `dup_fd`
//! gives the receiver a descriptor of its own, so each side closes its copy
//! when it likes. A reactor (`ErlangPython.Reactor`) then asks the VM's own
//! poller (`enif_select`) to tell it when a descriptor is readable or
//! writable; no thread of ours blocks in `poll`. A *watch* is the resource
//! `enif_select` needs: one per watched descriptor, found again by number,
//! so selecting a descriptor twice reuses the registration and closing a
//! watched descriptor first takes it out of the poller (closing it under
//! the poller would let a reused number be reported to the wrong owner).
//!
//! Closing refuses the VM's own descriptors (0-2, its pollsets, what it had
//! open when Python started: `sandbox::belongs_to_vm`), from Erlang as the
//! sandbox refuses them from Python.
//!
//! The small `fd_*` helpers exist because the original's test suites and
//! users drive descriptors directly; reads and writes run on dirty I/O
//! schedulers, since a descriptor handed to us may be in blocking mode.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Mutex;

use rustler::sys::{
    c_int, c_void, ErlNifEnv, ErlNifResourceType, ErlNifResourceTypeInit, ERL_NIF_SELECT_READ,
    ERL_NIF_SELECT_STOP, ERL_NIF_SELECT_WRITE,
};
use rustler::{Atom, Binary, Encoder, Env, NewBinary, Term};

use crate::atoms;
use crate::sandbox;

rustler::atoms! {
    read,
    write,
    ebadf,
    eagain,
    einval,
    emfile,
    enfile,
    epipe,
    eperm,
    eacces,
    enotsock,
    enotconn,
    econnreset,
    econnrefused,
    eaddrinuse,
    vm_descriptor,
    select_failed,
}

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

/// The errno of the last failed call, as the atom Erlang's `inet` uses.
fn last_error<'a>(env: Env<'a>) -> Term<'a> {
    error_term(env, std::io::Error::last_os_error())
}

fn error_term<'a>(env: Env<'a>, error: std::io::Error) -> Term<'a> {
    let reason = match error.raw_os_error() {
        Some(libc::EBADF) => ebadf().encode(env),
        Some(libc::EAGAIN) => eagain().encode(env),
        Some(libc::EINVAL) => einval().encode(env),
        Some(libc::EMFILE) => emfile().encode(env),
        Some(libc::ENFILE) => enfile().encode(env),
        Some(libc::EPIPE) => epipe().encode(env),
        Some(libc::EPERM) => eperm().encode(env),
        Some(libc::EACCES) => eacces().encode(env),
        Some(libc::ENOTSOCK) => enotsock().encode(env),
        Some(libc::ENOTCONN) => enotconn().encode(env),
        Some(libc::ECONNRESET) => econnreset().encode(env),
        Some(libc::ECONNREFUSED) => econnrefused().encode(env),
        Some(libc::EADDRINUSE) => eaddrinuse().encode(env),
        Some(other) => other.encode(env),
        None => error.to_string().encode(env),
    };
    (atoms::error(), reason).encode(env)
}

fn ok<'a, T: Encoder>(env: Env<'a>, value: T) -> Term<'a> {
    (atoms::ok(), value).encode(env)
}

/// Whether `fd` names an open descriptor.
fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1
}

/// A new descriptor for what `fd` is open on, close-on-exec, owned by
/// whoever receives it.
#[rustler::nif]
fn dup_fd(env: Env<'_>, fd: i64) -> Term<'_> {
    let Ok(fd) = RawFd::try_from(fd) else {
        return (atoms::error(), ebadf()).encode(env);
    };
    if fd < 0 {
        return (atoms::error(), ebadf()).encode(env);
    }
    // SAFETY: F_DUPFD_CLOEXEC creates a new descriptor and touches nothing else.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if copy < 0 {
        return last_error(env);
    }
    ok(env, copy)
}

/// Closes `fd`: at once, or, when the VM's poller watches it, once the
/// poller has let go of it. The VM's own descriptors are refused.
#[rustler::nif]
fn fd_close(env: Env<'_>, fd: i64) -> Term<'_> {
    let Ok(fd) = RawFd::try_from(fd) else {
        return (atoms::error(), ebadf()).encode(env);
    };
    if sandbox::belongs_to_vm(fd as i64) {
        return (atoms::error(), vm_descriptor()).encode(env);
    }
    let watched = watches().as_ref().and_then(|map| map.get(&fd).copied());
    if let Some(object) = watched {
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
        return atoms::ok().encode(env);
    }
    if !is_open(fd) {
        return (atoms::error(), ebadf()).encode(env);
    }
    // SAFETY: the caller asked for this descriptor to be closed; it is not
    // one of the VM's, and no watch of ours refers to it.
    if unsafe { libc::close(fd) } != 0 {
        return last_error(env);
    }
    atoms::ok().encode(env)
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
    let Ok(fd) = RawFd::try_from(fd) else {
        return (atoms::error(), ebadf()).encode(env);
    };
    let flags = if mode == read() {
        ERL_NIF_SELECT_READ
    } else if mode == write() {
        ERL_NIF_SELECT_WRITE
    } else {
        return (atoms::error(), atoms::badarg()).encode(env);
    };
    if !is_open(fd) {
        return (atoms::error(), ebadf()).encode(env);
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

/// Whether `fd` is one of the VM's own descriptors, which nothing here closes.
#[rustler::nif]
fn fd_protected(fd: i64) -> bool {
    sandbox::belongs_to_vm(fd)
}

/// Stops watching (the watch of) `fd` without closing it unless owned:
/// `:ok`, also when it was not watched.
#[rustler::nif]
fn fd_unwatch(env: Env<'_>, fd: i64) -> Atom {
    let watched = RawFd::try_from(fd)
        .ok()
        .and_then(|fd| watches().as_ref().and_then(|map| map.get(&fd).copied()));
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

/// Two connected Unix stream sockets, non-blocking and close-on-exec.
#[rustler::nif]
fn fd_socketpair(env: Env<'_>) -> Term<'_> {
    let mut pair = [0 as c_int; 2];
    // SAFETY: socketpair writes two descriptors into `pair`.
    let made = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    };
    if made != 0 {
        return last_error(env);
    }
    ok(env, (pair[0], pair[1]))
}

/// A pipe `(read end, write end)`, non-blocking and close-on-exec.
#[rustler::nif]
fn fd_pipe(env: Env<'_>) -> Term<'_> {
    let mut pair = [0 as c_int; 2];
    // SAFETY: pipe2 writes two descriptors into `pair`.
    if unsafe { libc::pipe2(pair.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return last_error(env);
    }
    ok(env, (pair[0], pair[1]))
}

/// Up to `max` bytes from `fd`: `{ok, Binary}` (empty at end of file) or
/// `{error, eagain}` when nothing is ready on a non-blocking descriptor.
#[rustler::nif(schedule = "DirtyIo")]
fn fd_read(env: Env<'_>, fd: i64, max: usize) -> Term<'_> {
    let Ok(fd) = RawFd::try_from(fd) else {
        return (atoms::error(), ebadf()).encode(env);
    };
    let mut data = vec![0u8; max.min(16 * 1024 * 1024)];
    // SAFETY: reading into our own buffer of data.len() bytes.
    let got = unsafe { libc::read(fd, data.as_mut_ptr() as *mut c_void, data.len()) };
    if got < 0 {
        return last_error(env);
    }
    let mut binary = NewBinary::new(env, got as usize);
    binary.as_mut_slice().copy_from_slice(&data[..got as usize]);
    let binary: Binary = binary.into();
    ok(env, binary)
}

/// Writes what it can of `data` to `fd`: `{ok, BytesWritten}`.
#[rustler::nif(schedule = "DirtyIo")]
fn fd_write<'a>(env: Env<'a>, fd: i64, data: Binary<'a>) -> Term<'a> {
    let Ok(fd) = RawFd::try_from(fd) else {
        return (atoms::error(), ebadf()).encode(env);
    };
    // SAFETY: writing from a binary that lives for the whole call.
    let sent = unsafe { libc::write(fd, data.as_ptr() as *const c_void, data.len()) };
    if sent < 0 {
        return last_error(env);
    }
    ok(env, sent as usize)
}

/// A listening TCP socket on 127.0.0.1:`port` (0: any free port):
/// `{ok, {Fd, Port}}`.
#[rustler::nif(schedule = "DirtyIo")]
fn fd_tcp_listen(env: Env<'_>, port: u16) -> Term<'_> {
    match TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => {
            let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
            ok(env, (listener.into_raw_fd(), port))
        }
        Err(error) => error_term(env, error),
    }
}

/// A TCP connection to `host`:`port`: `{ok, Fd}`.
#[rustler::nif(schedule = "DirtyIo")]
fn fd_tcp_connect(env: Env<'_>, host: String, port: u16) -> Term<'_> {
    match TcpStream::connect((host.as_str(), port)) {
        Ok(stream) => ok(env, stream.into_raw_fd()),
        Err(error) => error_term(env, error),
    }
}

/// Accepts one connection on listening socket `fd`: `{ok, Fd}`.
#[rustler::nif(schedule = "DirtyIo")]
fn fd_tcp_accept(env: Env<'_>, fd: i64) -> Term<'_> {
    let Ok(fd) = RawFd::try_from(fd) else {
        return (atoms::error(), ebadf()).encode(env);
    };
    if !is_open(fd) {
        return (atoms::error(), ebadf()).encode(env);
    }
    // SAFETY: borrowing the caller's descriptor for one accept; it is given
    // back (into_raw_fd) rather than closed.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    let accepted = listener.accept();
    let _ = listener.into_raw_fd();
    match accepted {
        Ok((stream, _)) => ok(env, stream.into_raw_fd()),
        Err(error) => error_term(env, error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_descriptor_is_not_open() {
        let mut pair = [0 as c_int; 2];
        // SAFETY: test-local pipe.
        assert_eq!(unsafe { libc::pipe(pair.as_mut_ptr()) }, 0);
        assert!(is_open(pair[0]));
        // SAFETY: closing our own pipe.
        unsafe {
            libc::close(pair[0]);
            libc::close(pair[1]);
        }
        assert!(!is_open(pair[0]));
        assert!(!is_open(-1));
    }
}
