//! Requests of an own-GIL context that a Python thread of that context runs
//! itself while it waits for a callback's answer (`callbacks::divert_to`).
//!
//! The main interpreter's version is `runtime/helping.rs`; this is the same
//! idea inside a sub-interpreter. A request may start Python threads and
//! join them; if such a thread calls an Elixir function that calls back into
//! the same context, the nested request would be queued for the context's
//! thread, which is blocked in `join()`, and wait there until the callback
//! timed out. So the thread that waits for the callback runs the requests
//! of the process running that callback, in its own interpreter (the
//! context's: its thread state, its GIL), and replies as the context's
//! thread would.
//!
//! A request served here cannot be interrupted: the interrupter knows the
//! context's thread only, which runs the request that joins. A caller that
//! times out still gets its timeout, and the late reply is dropped.

use std::collections::HashMap;
use std::sync::Mutex;

use pyo3::prelude::*;
use rustler::OwnedEnv;

use crate::interpreters;
use crate::job::Request;
use crate::ops::helped;
use crate::serving::Helper;

/// A worker index no interrupter slot has: a cancel that finds the job
/// running here interrupts nothing (see the module's note).
const NO_WORKER: usize = usize::MAX;

/// Each own-GIL context's interpreter id, and the context's scope: the key
/// its requests are routed by.
static HOMES: Mutex<Option<HashMap<i64, u64>>> = Mutex::new(None);

fn homes<R>(f: impl FnOnce(&mut HashMap<i64, u64>) -> R) -> R {
    let mut homes = HOMES.lock().unwrap_or_else(|p| p.into_inner());
    f(homes.get_or_insert_with(HashMap::new))
}

/// Records the calling thread's interpreter as scope `scope`'s, as the
/// context starts.
pub(super) fn enter(py: Python<'_>, scope: u64) {
    homes(|homes| homes.insert(interpreters::current(py), scope));
}

/// Forgets the calling thread's interpreter, before it ends.
pub(super) fn leave(py: Python<'_>) {
    homes(|homes| homes.remove(&interpreters::current(py)));
}

/// The own-GIL contexts' [`Helper`].
pub(super) struct OwnGilHelper;

impl Helper for OwnGilHelper {
    fn serve(&self, py: Python<'_>, request: Request) {
        if let Some(outcome) = helped::run(py, &request, NO_WORKER, |_, outcome| outcome) {
            super::answer(py, &mut OwnedEnv::new(), &request, outcome);
        }
    }

    fn home(&self, py: Python<'_>) -> Option<u64> {
        homes(|homes| homes.get(&interpreters::current(py)).copied())
    }
}
