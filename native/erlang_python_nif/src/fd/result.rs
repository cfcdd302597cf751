//! Atoms and result terms of the descriptor NIFs.

use std::os::fd::RawFd;

use rustler::{Encoder, Env, Term};

use crate::atoms;

pub(super) use crate::atoms::{read, write};

rustler::atoms! {
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

/// The errno of the last failed call, as the atom Erlang's `inet` uses.
pub(super) fn last_error<'a>(env: Env<'a>) -> Term<'a> {
    error_term(env, std::io::Error::last_os_error())
}

pub(super) fn error_term<'a>(env: Env<'a>, error: std::io::Error) -> Term<'a> {
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

pub(super) fn ok<'a, T: Encoder>(env: Env<'a>, value: T) -> Term<'a> {
    (atoms::ok(), value).encode(env)
}

/// Whether `fd` names an open descriptor.
pub(super) fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1
}

/// `fd` as a descriptor number, if it fits one.
pub(super) fn descriptor(fd: i64) -> Option<RawFd> {
    RawFd::try_from(fd).ok()
}

/// `{error, ebadf}`.
pub(super) fn bad_descriptor(env: Env<'_>) -> Term<'_> {
    (atoms::error(), ebadf()).encode(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustler::sys::c_int;

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
