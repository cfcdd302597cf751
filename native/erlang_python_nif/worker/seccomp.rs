//! The kernel half of a sandboxed worker: a seccomp-BPF filter, installed
//! on every thread of the process once Python is up, that refuses to make
//! a process or replace this one, whatever the technique (ctypes, a
//! foreign `.so`, machine code): the audit hook and the guarded functions
//! refuse with the contract's messages first; this is what holds when
//! code gets past them.
//!
//! The rules are the VM's own first rules (`src/sandbox/seccomp.rs`,
//! `refuse_new_processes`: no fork, vfork, non-thread clone, execve,
//! execveat; clone3 answers ENOSYS; other ABIs refused), and signals to
//! this process only (`process_filter`): its parent is the VM's
//! `erl_child_setup`, whose death ends the VM. Unlike the VM's filter it
//! lets the process exit, signal itself and set limits: a worker is its
//! own process, and ending it is what containment is for. The kernel
//! answers the probes of [`active`] only under this filter, so
//! `erlang.is_sandboxed()` reports what the kernel enforces, not what was
//! asked for.

use crate::sandbox::seccomp;

/// Installs the filter on every thread of this process (TSYNC), after
/// setting no_new_privs (which seccomp requires of unprivileged callers).
pub(crate) fn install() -> Result<(), String> {
    seccomp::install_process_filter()
}

/// Whether the calling thread runs under the filter, by observation.
pub(crate) fn active() -> bool {
    seccomp::active_on_this_thread()
}
