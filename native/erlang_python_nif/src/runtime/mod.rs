//! The worker threads that own the interpreter, and their queues.
//!
//! NIFs never run Python on a BEAM scheduler. `submit` copies the request's
//! terms into a process-independent environment, pushes it on a worker's
//! crossbeam channel and returns; the worker runs it holding the GIL and
//! sends `{ref, result}` to the caller (see [`crate::job`] for the state
//! machine that keeps a late reply from reaching a caller that gave up).
//!
//! | file              | what                                                 |
//! |-------------------|------------------------------------------------------|
//! | `inline_copy.rs`  | whether a request may be copied on a normal scheduler |
//! | `worker_thread.rs`| one worker: its loop, re-entrant for callbacks       |
//! | `pool.rs`         | start-up, choosing a worker, the queue limit, scopes |
//!
//! Each file uses only files listed above it.

mod inline_copy;
mod pool;
mod worker_thread;

pub(crate) use inline_copy::fits_inline;
pub(crate) use pool::{
    interrupt_scope, is_started, queue_length, set_max_queue, start, submit, worker_count,
    StartOptions, SubmitError,
};
