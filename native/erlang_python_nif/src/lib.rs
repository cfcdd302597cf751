//! NIF core of erlang_python: CPython embedded in the BEAM.
//!
//! The NIFs here are thin and never run Python: they validate, copy terms and
//! hand work to the runtime thread ([`runtime`]), which owns the interpreter.
//!
//! | concern                          | module            |
//! |----------------------------------|-------------------|
//! | NIF entry points                 | this file         |
//! | runtime thread, queue, replies   | [`runtime`]       |
//! | call / eval / exec               | [`ops`]           |
//! | interpreter start-up             | [`interpreter`]   |
//! | sandbox: kernel filter, hook     | [`sandbox`]       |
//! | stack room for recursive walks   | [`stack_guard`]   |
//! | term <-> Python conversion       | [`convert`]       |
//! | error terms                      | [`errors`]        |
//! | Python types for Erlang terms    | [`python_module`] |

pub mod atoms;
pub mod callbacks;
pub mod convert;
pub mod deferred;
pub mod errors;
pub mod handles;
pub mod interpreter;
pub mod interrupt;
pub mod messaging;
pub mod ops;
pub mod python_module;
pub mod runtime;
pub mod sandbox;
pub mod stack_guard;

use rustler::{Encoder, Env, NifResult, ResourceArc, Term};

use crate::interpreter::StartConfig;
use crate::runtime::{CancelOutcome, JobHandle, SubmitError};

/// Worker threads serving requests.
#[rustler::nif]
fn workers() -> usize {
    runtime::worker_count()
}

/// `start(%{priv_dir: binary, paths: [binary], max_queue: pos_integer})`.
/// Runs on a dirty scheduler: initializing CPython takes tens of milliseconds.
#[rustler::nif(schedule = "DirtyIo")]
fn start<'a>(env: Env<'a>, options: Term<'a>) -> NifResult<Term<'a>> {
    let priv_dir: String = options
        .map_get(rustler::types::atom::Atom::from_str(env, "priv_dir")?)?
        .decode()?;
    let paths: Vec<String> = options
        .map_get(rustler::types::atom::Atom::from_str(env, "paths")?)
        .and_then(|t| t.decode())
        .unwrap_or_default();
    let max_queue: usize = options
        .map_get(rustler::types::atom::Atom::from_str(env, "max_queue")?)
        .and_then(|t| t.decode())
        .unwrap_or(usize::MAX);
    let callback_timeout: u64 = options
        .map_get(rustler::types::atom::Atom::from_str(
            env,
            "callback_timeout",
        )?)
        .and_then(|t| t.decode())
        .unwrap_or(30_000);
    callbacks::set_timeout(std::time::Duration::from_millis(callback_timeout));
    let workers: usize = options
        .map_get(rustler::types::atom::Atom::from_str(env, "workers")?)
        .and_then(|t| t.decode())
        .unwrap_or(1);
    let config = StartConfig { priv_dir, paths };
    Ok(
        match runtime::start(config, max_queue.max(1), workers.clamp(1, 64)) {
            Ok(true) => atoms::ok().encode(env),
            Ok(false) => (atoms::ok(), atoms::already_started()).encode(env),
            Err(text) => (atoms::error(), (atoms::python_init_failed(), text)).encode(env),
        },
    )
}

/// Whether the runtime thread is running.
#[rustler::nif]
fn started() -> bool {
    runtime::is_started()
}

/// Queues `op` and returns a job handle at once; the caller then receives
/// `{reference, result}`. A request too large to copy within a normal
/// scheduler's time slice is refused with `:too_large`: the caller then uses
/// `submit_dirty/2`, which copies it on a dirty scheduler.
#[rustler::nif]
fn submit<'a>(env: Env<'a>, reference: Term<'a>, op: Term<'a>) -> Term<'a> {
    if !runtime::fits_inline(op) {
        return atoms::too_large().encode(env);
    }
    queue(env, reference, op)
}

/// `submit/2` for large requests, on a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn submit_dirty<'a>(env: Env<'a>, reference: Term<'a>, op: Term<'a>) -> Term<'a> {
    queue(env, reference, op)
}

fn queue<'a>(env: Env<'a>, reference: Term<'a>, op: Term<'a>) -> Term<'a> {
    match runtime::submit(reference, op, env.pid(), context_worker(op)) {
        Ok(state) => ResourceArc::new(JobHandle { state }).encode(env),
        Err(SubmitError::NotStarted) => (atoms::error(), atoms::not_started()).encode(env),
        Err(SubmitError::Overloaded) => (atoms::error(), atoms::overloaded()).encode(env),
    }
}

/// Requests in a context are pinned to one worker, chosen from the
/// context's identity (its resource address, stable for its life).
fn context_worker(op: Term<'_>) -> Option<usize> {
    let parts = rustler::types::tuple::get_tuple(op).ok()?;
    match parts.as_slice() {
        [tag, context, _] if atoms::context() == *tag => handles::identity(*context),
        _ => None,
    }
}

/// Gives up on a request: `:cancelled` (no reply will come) or `:done` (the
/// reply was committed and the caller must receive it).
/// A cancelled request that is running is interrupted.
#[rustler::nif]
fn cancel(handle: ResourceArc<JobHandle>) -> rustler::Atom {
    match handle.state.cancel_and_interrupt() {
        CancelOutcome::Cancelled { .. } => atoms::cancelled(),
        CancelOutcome::Done => atoms::done(),
    }
}

/// Interrupts whatever Python code the runtime thread is running now.
#[rustler::nif]
fn interrupt() -> bool {
    runtime::is_started() && interrupt::request(0, interrupt::ANY_JOB)
}

/// Changes the queue limit at run time.
#[rustler::nif]
fn set_max_queue(limit: usize) -> bool {
    runtime::set_max_queue(limit)
}

/// Requests waiting for the runtime thread.
#[rustler::nif]
fn queue_length() -> usize {
    runtime::queue_length()
}

/// Binds `name` to a fun of one argument (the argument list) or to
/// `{module, function}`. Replaces an earlier binding of the same name.
#[rustler::nif]
fn register_function(name: String, target: Term<'_>) -> rustler::Atom {
    callbacks::register(name, target);
    atoms::ok()
}

/// Removes a binding; `true` if there was one.
#[rustler::nif]
fn unregister_function(name: String) -> bool {
    callbacks::unregister(&name)
}

/// Names bound with `register_function`, sorted.
#[rustler::nif]
fn registered_functions() -> Vec<String> {
    callbacks::registered_names()
}

/// The process that runs callbacks (`ErlangPython.Callbacks`).
#[rustler::nif]
fn set_callback_handler(pid: rustler::LocalPid) -> rustler::Atom {
    callbacks::set_dispatcher(pid);
    atoms::ok()
}

/// Answers callback `id` with `{:ok, value}` or `{:error, text}`. `false`
/// when nobody waits for it any more (it timed out).
#[rustler::nif]
fn callback_reply(id: u64, answer: Term<'_>) -> bool {
    callbacks::deliver(id, answer)
}

/// Sets the callback timeout, in milliseconds.
#[rustler::nif]
fn set_callback_timeout(ms: u64) -> rustler::Atom {
    callbacks::set_timeout(std::time::Duration::from_millis(ms.max(1)));
    atoms::ok()
}

/// How many callbacks are waiting for an answer right now.
#[rustler::nif]
fn pending_callbacks() -> usize {
    callbacks::pending_count()
}

/// The Python this library was built against: `{executable, "3.11"}`.
#[rustler::nif]
fn build_info() -> (&'static str, &'static str) {
    (interpreter::BUILD_EXECUTABLE, env!("ERLANG_PYTHON_VERSION"))
}

rustler::init!("Elixir.ErlangPython.Native");
