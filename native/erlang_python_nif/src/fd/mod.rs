//! File descriptors handed from Erlang to Python, and watched by the VM.
//!
//! Erlang accepts a connection and hands its descriptor over: `dup_fd`
//! gives the receiver a descriptor of its own, so each side closes its copy
//! when it likes. A reactor (`ErlangPython.Reactor`) then asks the VM's own
//! poller (`enif_select`) to tell it when a descriptor is readable or
//! writable; no thread of ours blocks in `poll`.
//!
//! Closing refuses the VM's own descriptors (0-2, its pollsets, what it had
//! open when Python started: `sandbox::belongs_to_vm`), from Erlang as the
//! sandbox refuses them from Python.
//!
//! | file           | what                                                     |
//! |----------------|----------------------------------------------------------|
//! | `result.rs`    | atoms and `{ok, _}` / `{error, Posix}` results            |
//! | `watch.rs`     | the watch resource `enif_select` needs, and selecting     |
//! | `ownership.rs` | duplicating and closing descriptors (never the VM's)      |
//! | `io.rs`        | small reads, writes and sockets for tests and users       |
//! | `udp.rs`       | UDP sockets: open, send to, receive from, broadcast       |
//!
//! Each file uses only files listed above it.

mod io;
mod ownership;
mod result;
mod udp;
mod watch;

pub(crate) use watch::on_load;
