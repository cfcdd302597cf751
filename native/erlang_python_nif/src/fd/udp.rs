//! UDP sockets as plain descriptors, for the original's datagram tests and
//! users driving datagram descriptors from Erlang (`py_nif`'s
//! `*_test_udp*` helpers, `ErlangPython.EventQueue.TestFd`). Sockets made
//! here are non-blocking and close-on-exec (std sets both flags); the
//! others take any descriptor but the VM's own, like `io.rs`.

use std::mem::ManuallyDrop;
use std::net::UdpSocket;
use std::os::fd::{FromRawFd, IntoRawFd};

use rustler::{Binary, Encoder, Env, NewBinary, Term};

use super::io::usable;
use super::result::{error_term, ok};
use crate::atoms;

/// Runs `f` on descriptor `fd` seen as a UDP socket, leaving it open.
fn with_socket<'a>(env: Env<'a>, fd: i64, f: impl FnOnce(&UdpSocket) -> Term<'a>) -> Term<'a> {
    match usable(env, fd) {
        // SAFETY: the socket only borrows the caller's descriptor for this
        // call; ManuallyDrop keeps it from being closed, even on a panic.
        Ok(fd) => f(&ManuallyDrop::new(unsafe { UdpSocket::from_raw_fd(fd) })),
        Err(error) => error,
    }
}

/// A UDP socket bound to 127.0.0.1:`port` (0: any free port):
/// `{ok, {Fd, Port}}`.
#[rustler::nif(schedule = "DirtyIo")]
fn fd_udp_open(env: Env<'_>, port: u16) -> Term<'_> {
    let bound = UdpSocket::bind(("127.0.0.1", port))
        .and_then(|socket| socket.set_nonblocking(true).map(|()| socket));
    match bound {
        Ok(socket) => {
            let port = socket.local_addr().map(|a| a.port()).unwrap_or(port);
            ok(env, (socket.into_raw_fd(), port))
        }
        Err(error) => error_term(env, error),
    }
}

/// Sends `data` as one datagram to `host`:`port`: `ok`.
#[rustler::nif(schedule = "DirtyIo")]
fn fd_udp_sendto<'a>(env: Env<'a>, fd: i64, data: Binary<'a>, host: String, port: u16) -> Term<'a> {
    with_socket(env, fd, |socket| {
        match socket.send_to(data.as_slice(), (host.as_str(), port)) {
            Ok(_) => atoms::ok().encode(env),
            Err(error) => error_term(env, error),
        }
    })
}

/// One datagram of at most `max` bytes: `{ok, {Data, {Host, Port}}}`, or
/// `{error, eagain}` when none is waiting.
#[rustler::nif(schedule = "DirtyIo")]
fn fd_udp_recvfrom(env: Env<'_>, fd: i64, max: usize) -> Term<'_> {
    with_socket(env, fd, |socket| {
        let mut buffer = vec![0u8; max.clamp(1, 65_536)];
        match socket.recv_from(&mut buffer) {
            Ok((got, from)) => {
                let mut data = NewBinary::new(env, got);
                data.as_mut_slice().copy_from_slice(&buffer[..got]);
                let data: Binary = data.into();
                ok(env, (data, (from.ip().to_string(), from.port())))
            }
            Err(error) => error_term(env, error),
        }
    })
}

/// Sets SO_BROADCAST on the socket: `ok`.
#[rustler::nif(schedule = "DirtyIo")]
fn fd_udp_broadcast(env: Env<'_>, fd: i64, enabled: bool) -> Term<'_> {
    with_socket(env, fd, |socket| match socket.set_broadcast(enabled) {
        Ok(()) => atoms::ok().encode(env),
        Err(error) => error_term(env, error),
    })
}
