//! Duplicating and closing descriptors; the VM's own are never closed.

use rustler::{Encoder, Env, Term};

use super::result::{bad_descriptor, descriptor, is_open, last_error, ok, vm_descriptor};
use super::watch::close_watched;
use crate::{atoms, sandbox};

/// A new descriptor for what `fd` is open on, close-on-exec, owned by
/// whoever receives it.
#[rustler::nif]
fn dup_fd(env: Env<'_>, fd: i64) -> Term<'_> {
    let Some(fd) = descriptor(fd) else {
        return bad_descriptor(env);
    };
    if fd < 0 {
        return bad_descriptor(env);
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
    let Some(fd) = descriptor(fd) else {
        return bad_descriptor(env);
    };
    if sandbox::belongs_to_vm(fd as i64) {
        return (atoms::error(), vm_descriptor()).encode(env);
    }
    if close_watched(env, fd) {
        return atoms::ok().encode(env);
    }
    if !is_open(fd) {
        return bad_descriptor(env);
    }
    // SAFETY: the caller asked for this descriptor to be closed; it is not
    // one of the VM's, and no watch of ours refers to it.
    if unsafe { libc::close(fd) } != 0 {
        return last_error(env);
    }
    atoms::ok().encode(env)
}

/// Whether `fd` is one of the VM's own descriptors, which nothing here closes.
#[rustler::nif]
fn fd_protected(fd: i64) -> bool {
    sandbox::belongs_to_vm(fd)
}
