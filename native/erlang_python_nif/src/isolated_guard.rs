//! Release guards for isolated contexts' handles.
//!
//! An isolated worker holds the objects Elixir has handles to, but cannot
//! see the VM's garbage collector. The context's server puts one of these
//! resources inside each handle it hands out (`{:isolated, os_pid, id,
//! guard}`); when the VM frees the last copy, the destructor tells the
//! server `{:isolated_release, os_pid, id}`, and the server tells the worker.

use rustler::{Encoder, Env, LocalPid, Resource};

use crate::atoms;

pub(crate) struct ReleaseGuard {
    /// The isolated context's server.
    server: LocalPid,
    /// The worker process that made the handle: a restarted context's new
    /// worker never gets releases meant for the old one.
    os_pid: u64,
    id: u64,
}

impl ReleaseGuard {
    pub(crate) fn new(server: LocalPid, os_pid: u64, id: u64) -> Self {
        ReleaseGuard { server, os_pid, id }
    }
}

#[rustler::resource_impl]
impl Resource for ReleaseGuard {
    const IMPLEMENTS_DESTRUCTOR: bool = true;

    fn destructor(self, env: Env<'_>) {
        // A callback env: `send` may use it on any scheduler. A server that
        // is gone has nothing left to release (its worker exited with it).
        let message = (atoms::isolated_release(), self.os_pid, self.id);
        let _ = env.send(&self.server, message.encode(env));
    }
}
