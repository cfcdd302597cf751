//! Descriptor readiness as messages, for `ErlangPython.EventQueue`.
//!
//! `fd_watch_new` registers interest in one direction of a descriptor; one
//! watcher thread (started on first use, never a BEAM scheduler) polls
//! every armed watch and, when one is ready, disarms it and sends its owner
//! `{:erlang_python_fd_ready, callback_id, :read | :write}`. The owner
//! re-arms it (`fd_watch_arm`) once it has handled the event, so a
//! descriptor that stays readable produces one message per round, not a
//! flood.
//!
//! The same module keeps the descriptors erlang_python created for tests
//! (pipes and loopback TCP sockets, `fd_test_*`): only those may be read,
//! written or closed through it, so no call can close a descriptor the VM
//! itself uses.

use std::collections::HashSet;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rustler::{Binary, Encoder, Env, LocalPid, NewBinary, OwnedEnv, ResourceArc, Term};

use crate::{atoms, messaging, panics};

/// Interest in one direction of one descriptor.
pub(crate) struct FdWatch {
    fd: RawFd,
    write: bool,
    callback_id: u64,
    owner: LocalPid,
    state: Mutex<WatchState>,
}

struct WatchState {
    armed: bool,
    /// Stopped by its user (`fd_watch_arm(watch, false)`): not re-armed
    /// after an event until started again.
    paused: bool,
    /// Released (removed or closed): never armed again.
    released: bool,
}

#[rustler::resource_impl]
impl rustler::Resource for FdWatch {}

impl FdWatch {
    fn lock(&self) -> MutexGuard<'_, WatchState> {
        // Two booleans: consistent whatever panicked while holding it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The watcher thread's list and the pipe that interrupts its poll.
struct Watcher {
    watches: Mutex<Vec<ResourceArc<FdWatch>>>,
    wake_read: RawFd,
    wake_write: RawFd,
}

fn watcher() -> Option<&'static Arc<Watcher>> {
    static WATCHER: OnceLock<Option<Arc<Watcher>>> = OnceLock::new();
    WATCHER
        .get_or_init(|| {
            let (wake_read, wake_write) = new_pipe().ok()?;
            let watcher = Arc::new(Watcher {
                watches: Mutex::new(Vec::new()),
                wake_read,
                wake_write,
            });
            let running = watcher.clone();
            std::thread::Builder::new()
                .name("erlang_python_fd_watch".into())
                .spawn(move || loop {
                    // A panic in one round must not end the thread.
                    let _ = panics::catch(|| poll_round(&running));
                })
                .ok()?;
            Some(watcher)
        })
        .as_ref()
}

impl Watcher {
    fn watches(&self) -> MutexGuard<'_, Vec<ResourceArc<FdWatch>>> {
        self.watches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the watcher rebuild its poll set.
    fn ring(&self) {
        let byte = 1u8;
        // SAFETY: writes one byte from a valid local to our own pipe; a full
        // pipe already wakes the poll, so a failed write loses nothing.
        let _ = unsafe { libc::write(self.wake_write, (&byte as *const u8).cast(), 1) };
    }

    fn add(&self, watch: ResourceArc<FdWatch>) {
        self.watches().push(watch);
        self.ring();
    }
}

/// One poll over the armed watches, then their messages.
fn poll_round(watcher: &Watcher) {
    let armed: Vec<ResourceArc<FdWatch>> = {
        let mut watches = watcher.watches();
        watches.retain(|w| !w.lock().released);
        watches.iter().filter(|w| w.lock().armed).cloned().collect()
    };
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(armed.len() + 1);
    fds.push(libc::pollfd {
        fd: watcher.wake_read,
        events: libc::POLLIN,
        revents: 0,
    });
    for watch in &armed {
        fds.push(libc::pollfd {
            fd: watch.fd,
            events: if watch.write {
                libc::POLLOUT
            } else {
                libc::POLLIN
            },
            revents: 0,
        });
    }
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
    if ready <= 0 {
        return; // EINTR: go round again
    }
    if fds[0].revents != 0 {
        let mut sink = [0u8; 64];
        // SAFETY: reads into a valid local buffer from our own non-blocking pipe.
        while unsafe { libc::read(watcher.wake_read, sink.as_mut_ptr().cast(), sink.len()) } > 0 {}
    }
    let mut owned = OwnedEnv::new();
    for (watch, polled) in armed.iter().zip(&fds[1..]) {
        if polled.revents == 0 {
            continue;
        }
        {
            let mut state = watch.lock();
            // Disarmed or released while we polled: the event is stale.
            if !state.armed || state.released {
                continue;
            }
            state.armed = false;
            if polled.revents & libc::POLLNVAL != 0 {
                state.released = true; // not an open descriptor
            }
        }
        let direction = if watch.write {
            atoms::write()
        } else {
            atoms::read()
        };
        let _ = messaging::build_and_send(&mut owned, &watch.owner, |env| {
            Ok::<_, ()>(
                (
                    atoms::erlang_python_fd_ready(),
                    watch.callback_id,
                    direction,
                )
                    .encode(env),
            )
        });
    }
}

fn new_pipe() -> std::io::Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

// ---------------------------------------------------------------------------
// Watches (NIFs, registered in lib.rs)

/// Watches `fd` for reading (`write: false`) or writing; the caller gets
/// the readiness messages. Armed at once.
#[rustler::nif]
fn fd_watch_new(
    env: Env<'_>,
    fd: i32,
    write: bool,
    callback_id: u64,
) -> Result<ResourceArc<FdWatch>, rustler::Error> {
    if fd < 0 {
        return Err(rustler::Error::BadArg);
    }
    let watcher = watcher().ok_or(rustler::Error::RaiseAtom("no_watcher"))?;
    let watch = ResourceArc::new(FdWatch {
        fd,
        write,
        callback_id,
        owner: env.pid(),
        state: Mutex::new(WatchState {
            armed: true,
            paused: false,
            released: false,
        }),
    });
    watcher.add(watch.clone());
    Ok(watch)
}

/// Starts (`true`) or stops a watch: `true` unless it was released.
#[rustler::nif]
fn fd_watch_arm(watch: ResourceArc<FdWatch>, armed: bool) -> bool {
    let mut state = watch.lock();
    if state.released {
        return false;
    }
    state.armed = armed;
    state.paused = !armed;
    drop(state);
    if let Some(watcher) = watcher() {
        watcher.ring();
    }
    true
}

/// Re-arms a watch after its event was handled, unless it was stopped or
/// released meanwhile.
#[rustler::nif]
fn fd_watch_rearm(watch: ResourceArc<FdWatch>) -> bool {
    let mut state = watch.lock();
    if state.released || state.paused {
        return false;
    }
    state.armed = true;
    drop(state);
    if let Some(watcher) = watcher() {
        watcher.ring();
    }
    true
}

/// The watch's queue and callback id, and whether it still reports events
/// (neither paused nor released): `{owner, callback_id, live}`.
#[rustler::nif]
fn fd_watch_info(watch: ResourceArc<FdWatch>) -> (LocalPid, u64, bool) {
    let state = watch.lock();
    (
        watch.owner,
        watch.callback_id,
        !state.paused && !state.released,
    )
}

/// Stops the watch for good; closes its descriptor when `close` is true and
/// erlang_python created it (a test descriptor). Idempotent.
#[rustler::nif]
fn fd_watch_release(watch: ResourceArc<FdWatch>, close: bool) -> rustler::Atom {
    let first = {
        let mut state = watch.lock();
        let first = !state.released;
        state.armed = false;
        state.released = true;
        first
    };
    if let Some(watcher) = watcher() {
        watcher.ring();
    }
    if close && first {
        close_owned(watch.fd);
    }
    atoms::ok()
}

// ---------------------------------------------------------------------------
// Test descriptors: pipes and loopback TCP sockets erlang_python created.

fn owned_fds() -> MutexGuard<'static, HashSet<RawFd>> {
    static OWNED: OnceLock<Mutex<HashSet<RawFd>>> = OnceLock::new();
    OWNED
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn own(fd: RawFd) -> RawFd {
    owned_fds().insert(fd);
    fd
}

fn is_owned(fd: RawFd) -> bool {
    owned_fds().contains(&fd)
}

/// Closes `fd` if it is one of ours; `false` otherwise.
fn close_owned(fd: RawFd) -> bool {
    if owned_fds().remove(&fd) {
        // SAFETY: `fd` was created by this module and was still registered,
        // so it is open and no one else closes it.
        unsafe { libc::close(fd) };
        true
    } else {
        false
    }
}

fn errno_atom<'a>(env: Env<'a>) -> Term<'a> {
    let err = std::io::Error::last_os_error();
    let text = match err.raw_os_error() {
        Some(libc::EAGAIN) => "eagain",
        Some(libc::EPIPE) => "epipe",
        Some(libc::ECONNREFUSED) => "econnrefused",
        Some(libc::ECONNRESET) => "econnreset",
        _ => "io_error",
    };
    (
        atoms::error(),
        rustler::Atom::from_str(env, text).unwrap_or(atoms::error()),
    )
        .encode(env)
}

/// A non-blocking pipe: `{:ok, {read_fd, write_fd}}`.
#[rustler::nif]
fn fd_test_pipe(env: Env<'_>) -> Term<'_> {
    match new_pipe() {
        Ok((read, write)) => (atoms::ok(), (own(read), own(write))).encode(env),
        Err(_) => errno_atom(env),
    }
}

/// Writes `data` to a test descriptor: `:ok`, `{:error, :ebadf}` for one
/// erlang_python did not create, `{:error, errno}`.
#[rustler::nif]
fn fd_test_write<'a>(env: Env<'a>, fd: i32, data: Binary<'a>) -> Term<'a> {
    if !is_owned(fd) {
        return (atoms::error(), atoms::ebadf()).encode(env);
    }
    let mut rest = data.as_slice();
    while !rest.is_empty() {
        // SAFETY: writes from a live binary's bytes to a descriptor we own.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            return errno_atom(env);
        }
        rest = &rest[n as usize..];
    }
    atoms::ok().encode(env)
}

/// Reads up to `max` bytes: `{:ok, binary}` (empty at end of file),
/// `{:error, :eagain}` when nothing is there yet.
#[rustler::nif]
fn fd_test_read(env: Env<'_>, fd: i32, max: usize) -> Term<'_> {
    if !is_owned(fd) {
        return (atoms::error(), atoms::ebadf()).encode(env);
    }
    let mut buffer = vec![0u8; max.min(1 << 20)];
    // SAFETY: reads into a valid buffer of that length from a descriptor we own.
    let n = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
    if n < 0 {
        return errno_atom(env);
    }
    let mut out = NewBinary::new(env, n as usize);
    out.as_mut_slice().copy_from_slice(&buffer[..n as usize]);
    (atoms::ok(), Binary::from(out)).encode(env)
}

/// Closes a test descriptor: `:ok`, or `{:error, :ebadf}`.
#[rustler::nif]
fn fd_test_close(env: Env<'_>, fd: i32) -> Term<'_> {
    if close_owned(fd) {
        atoms::ok().encode(env)
    } else {
        (atoms::error(), atoms::ebadf()).encode(env)
    }
}

fn loopback(port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn tcp_socket() -> Option<RawFd> {
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    (fd >= 0).then_some(fd)
}

/// A listening TCP socket on 127.0.0.1:`port` (0: any free port):
/// `{:ok, {fd, port}}`.
#[rustler::nif]
fn fd_test_tcp_listener(env: Env<'_>, port: u16) -> Term<'_> {
    let Some(fd) = tcp_socket() else {
        return errno_atom(env);
    };
    let mut address = loopback(port);
    let mut length = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `address` and `length` are valid locals of the sizes given;
    // `fd` is the socket just created.
    let ok = unsafe {
        libc::bind(fd, (&address as *const libc::sockaddr_in).cast(), length) == 0
            && libc::listen(fd, 128) == 0
            && libc::getsockname(
                fd,
                (&mut address as *mut libc::sockaddr_in).cast(),
                &mut length,
            ) == 0
    };
    if !ok {
        let error = errno_atom(env);
        // SAFETY: closes the socket created above, which nothing else holds.
        unsafe { libc::close(fd) };
        return error;
    }
    (atoms::ok(), (own(fd), u16::from_be(address.sin_port))).encode(env)
}

/// A non-blocking connection to `host` (an IPv4 address):`port`, in
/// progress or made: `{:ok, fd}`.
#[rustler::nif]
fn fd_test_tcp_connect<'a>(env: Env<'a>, host: Binary<'a>, port: u16) -> Term<'a> {
    let Some(ip) = std::str::from_utf8(host.as_slice())
        .ok()
        .and_then(|text| text.parse::<std::net::Ipv4Addr>().ok())
    else {
        return (atoms::error(), atoms::badarg()).encode(env);
    };
    let Some(fd) = tcp_socket() else {
        return errno_atom(env);
    };
    let mut address = loopback(port);
    address.sin_addr.s_addr = u32::from(ip).to_be();
    let length = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `address` is a valid sockaddr_in of `length` bytes.
    let rc = unsafe { libc::connect(fd, (&address as *const libc::sockaddr_in).cast(), length) };
    if rc != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINPROGRESS) {
        let error = errno_atom(env);
        // SAFETY: closes the socket created above, which nothing else holds.
        unsafe { libc::close(fd) };
        return error;
    }
    (atoms::ok(), own(fd)).encode(env)
}

/// Accepts a pending connection on a test listener: `{:ok, fd}`, or
/// `{:error, :eagain}` when none is pending.
#[rustler::nif]
fn fd_test_tcp_accept(env: Env<'_>, listener: i32) -> Term<'_> {
    if !is_owned(listener) {
        return (atoms::error(), atoms::ebadf()).encode(env);
    }
    // SAFETY: accept4 on a descriptor we own, without an address buffer.
    let fd = unsafe {
        libc::accept4(
            listener,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd < 0 {
        return errno_atom(env);
    }
    (atoms::ok(), own(fd)).encode(env)
}
