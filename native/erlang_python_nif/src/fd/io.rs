//! Small reads, writes and sockets: the original's test suites and users
//! drive descriptors directly (`py_nif`'s `fd_*` and `*_test_*` helpers,
//! `ErlangPython.EventQueue.TestFd`). Reads and writes run on dirty I/O
//! schedulers, since a descriptor handed to us may be in blocking mode, and
//! refuse the VM's own descriptors (reading its stdin could hold a dirty
//! I/O scheduler for good; writing to its pipes or stdout corrupts them).
//! Every descriptor made here is non-blocking and close-on-exec, as event
//! loops expect.

use std::net::{TcpListener, TcpStream};
use std::os::fd::{FromRawFd, IntoRawFd};

use rustler::sys::{c_int, c_void};
use rustler::{Binary, Encoder, Env, NewBinary, Term};

use super::result::{
    bad_descriptor, descriptor, error_term, is_open, last_error, ok, vm_descriptor,
};
use crate::{atoms, sandbox};

/// `fd` as a descriptor this module may read or write: `Err` with the
/// error term when it is not one, or is the VM's own.
pub(super) fn usable(env: Env<'_>, fd: i64) -> Result<std::os::fd::RawFd, Term<'_>> {
    let fd = descriptor(fd).ok_or_else(|| bad_descriptor(env))?;
    if sandbox::belongs_to_vm(fd as i64) {
        return Err((atoms::error(), vm_descriptor()).encode(env));
    }
    Ok(fd)
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
    let fd = match usable(env, fd) {
        Ok(fd) => fd,
        Err(error) => return error,
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
    let fd = match usable(env, fd) {
        Ok(fd) => fd,
        Err(error) => return error,
    };
    // SAFETY: writing from a binary that lives for the whole call.
    let sent = unsafe { libc::write(fd, data.as_ptr() as *const c_void, data.len()) };
    if sent < 0 {
        return last_error(env);
    }
    ok(env, sent as usize)
}

/// A listening TCP socket on 127.0.0.1:`port` (0: any free port):
/// `{ok, {Fd, Port}}`. Accepting on it never waits (`eagain`).
#[rustler::nif(schedule = "DirtyIo")]
fn fd_tcp_listen(env: Env<'_>, port: u16) -> Term<'_> {
    let bound = TcpListener::bind(("127.0.0.1", port))
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener));
    match bound {
        Ok(listener) => {
            let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
            ok(env, (listener.into_raw_fd(), port))
        }
        Err(error) => error_term(env, error),
    }
}

/// A TCP connection to `host`:`port`, made before returning: `{ok, Fd}`.
#[rustler::nif(schedule = "DirtyIo")]
fn fd_tcp_connect(env: Env<'_>, host: String, port: u16) -> Term<'_> {
    let connected = TcpStream::connect((host.as_str(), port))
        .and_then(|stream| stream.set_nonblocking(true).map(|()| stream));
    match connected {
        Ok(stream) => ok(env, stream.into_raw_fd()),
        Err(error) => error_term(env, error),
    }
}

/// Accepts one connection on listening socket `fd`: `{ok, Fd}`, or
/// `{error, eagain}` when none is pending on a non-blocking listener.
#[rustler::nif(schedule = "DirtyIo")]
fn fd_tcp_accept(env: Env<'_>, fd: i64) -> Term<'_> {
    let Some(fd) = descriptor(fd) else {
        return bad_descriptor(env);
    };
    if !is_open(fd) {
        return bad_descriptor(env);
    }
    // SAFETY: borrowing the caller's descriptor for one accept; it is given
    // back (into_raw_fd) rather than closed.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    let accepted = listener
        .accept()
        .and_then(|(stream, peer)| stream.set_nonblocking(true).map(|()| (stream, peer)));
    let _ = listener.into_raw_fd();
    match accepted {
        Ok((stream, _)) => ok(env, stream.into_raw_fd()),
        Err(error) => error_term(env, error),
    }
}
