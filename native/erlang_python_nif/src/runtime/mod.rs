//! The worker threads that own the interpreter, and their queues.
//!
//! NIFs never run Python on a BEAM scheduler. `submit` copies the request's
//! terms into a process-independent environment, queues it (for the
//! context's worker, or for any) and returns; a worker runs it holding the GIL and
//! sends `{ref, result}` to the caller (see [`crate::job`] for the state
//! machine that keeps a late reply from reaching a caller that gave up).
//!
//! | file              | what                                                 |
//! |-------------------|------------------------------------------------------|
//! | `inline_copy.rs`  | whether a request may be copied on a normal scheduler |
//! | `wait_strategy.rs`| whether a waiting thread spins first, and how long   |
//! | `core_signal.rs`  | whether other work keeps a thread off a core (part of `wait_strategy`) |
//! | `dispatch.rs`     | the shared and per-worker queues, parking, figures   |
//! | `worker_thread.rs`| one worker: its loop, re-entrant for callbacks       |
//! | `helping.rs`      | a blocked worker's requests, run by a waiting Python thread |
//! | `pool.rs`         | start-up, placing requests, the queue limit, scopes, stats |
//!
//! Each file uses only files listed above it.

mod dispatch;
mod helping;
mod inline_copy;
mod pool;
// Mounted at the crate's root (lib.rs): the rings below the runtime use it too.
use crate::wait_strategy;
mod worker_thread;

pub(crate) use inline_copy::inline_cells;
pub(crate) use pool::{
    interrupt_scope, is_started, queue_length, set_max_queue, start, stats, submit, worker_count,
    PoolStats, StartOptions, SubmitError,
};
pub(crate) use wait_strategy::replies_soon;
