//! NIF core of erlang_python: CPython embedded in the BEAM.
//!
//! This file holds the NIF entry points and nothing else. They never run
//! Python: they validate, copy terms and hand work to the worker threads
//! ([`runtime`]), which own the interpreter and answer with messages.
//!
//! # Layers
//!
//! Each module uses only modules of lower layers (or of its own layer that
//! are listed before it), so the import graph has no cycle. The crate's
//! `tests/layering.rs` checks this on every `cargo test` and prints the
//! `use crate::` edges of each module.
//!
//! | layer | module            | concern                                          |
//! |-------|-------------------|--------------------------------------------------|
//! | 0     | [`atoms`]         | every atom the NIF creates                       |
//! |       | [`memory`]        | allocation accounting and memory ceilings        |
//! |       | [`panics`]        | catching panics at NIF and thread boundaries     |
//! |       | [`messaging`]     | sending from threads the VM does not manage      |
//! |       | [`sandbox`]       | kernel filter, audit hook, guards on C functions |
//! |       | [`stack_guard`]   | stack room for recursive walks                   |
//! |       | [`python_config`] | starting CPython from a `PyConfig`               |
//! |       | [`etf`]           | the external term format <-> Python (shared codec) |
//! |       | [`arena_cache`]   | reusing the memory of Python's freed arenas      |
//! |       | [`wait_strategy`] | whether a waiting thread spins, and how long     |
//! |       | [`shm_ring`]      | shared-memory rings with futex doorbells         |
//! |       | [`thread_priority`] | how threads that run Python are scheduled      |
//! |       | [`type_slots`]    | what a Python object's type slots say of it     |
//! |       | [`name_hasher`]   | the name caches' cheap hasher                    |
//! | 1     | [`terms`]         | terms owned by Rust, Elixir struct shapes        |
//! |       | [`fd`]            | descriptors handed over, watched by the VM       |
//! |       | [`fd_watch`]      | descriptor readiness as messages (event queues)  |
//! |       | [`interpreters`]  | which interpreter runs; what each one owns       |
//! |       | [`isolated_channel`] | the VM's end of an isolated worker's rings    |
//! |       | [`isolated_guard`] | releasing isolated workers' objects on GC       |
//! | 2     | [`pytypes`]       | `erlang.Pid`, `erlang.Term`, Python exceptions   |
//! |       | [`buffer`]        | byte buffers Python reads as files (`PyBuffer`)  |
//! |       | [`capsule`]       | channel references as Python capsules            |
//! | 3     | [`convert`]       | term <-> Python conversion, object handles       |
//! | 4     | [`errors`]        | failures as the error terms Elixir sees          |
//! |       | [`interrupt`]     | the interrupter thread and its worker slots      |
//! | 5     | [`job`]           | a request and its state machine                  |
//! |       | [`registry`]      | Elixir functions callable from Python, by name   |
//! |       | [`kept_reply`]    | async calls' replies, kept until awaited         |
//! |       | [`polled_reply`]  | replies a polling caller takes from the job      |
//! | 6     | [`reply`]         | answering a request                              |
//! |       | [`serving`]       | the worker thread, seen from code running on it  |
//! | 7     | [`awaitable`]     | replies that come later, from the asyncio loop   |
//! |       | [`schedule`]      | `erlang.schedule*` continuations a call returns  |
//! |       | [`ops`]           | the request format (`ops::Op`) and its executor  |
//! |       | [`callbacks`]     | Python calling Elixir                            |
//! |       | [`channel`]       | bounded queues between Erlang and Python         |
//! | 8     | [`erlang_module`] | `_erlang_native`, behind Python's `erlang`       |
//! |       | [`subinterp_module`] | `erlang` in own-GIL contexts (C API)          |
//! | 9     | [`interpreter`]   | starting CPython inside the VM                   |
//! |       | [`own_gil`]       | contexts on a sub-interpreter with its own GIL   |
//! | 10    | [`runtime`]       | the worker pool: start, submit, the thread loop  |
//! | 11    | this file         | NIF entry points                                 |
//!
//! `sandbox/patches.rs` and `sandbox/seccomp.rs` are longer than the ~400
//! lines other files keep to: each is one table (the guarded C functions;
//! the filter's rules and their BPF) that reads best in one place.

mod arena_cache;
mod atoms;
mod awaitable;
mod buffer;
mod callbacks;
mod capsule;
mod channel;
mod convert;
mod erlang_module;
mod errors;
// The NIF writes with the shared codec; reading is the worker's alone so far.
#[allow(dead_code)]
mod etf;
mod fd;
mod fd_watch;
mod interpreter;
mod interpreters;
mod interrupt;
mod isolated_channel;
mod isolated_guard;
mod job;
mod kept_reply;
mod memory;
mod messaging;
mod name_hasher;
mod ops;
mod own_gil;
mod panics;
mod polled_reply;
mod python_config;
mod pytypes;
mod registry;
mod reply;
mod runtime;
mod sandbox;
mod schedule;
mod serving;
mod shm_ring;
mod stack_guard;
mod subinterp_module;
mod terms;
mod thread_priority;
mod type_slots;
// The runtime's file, mounted once here, at layer 0, rather than inside
// `runtime` (layer 10): the shared-memory rings (layer 0) use it too, and
// the isolated worker mounts the same file. One copy means one free-core
// signal (and one set of its counters) for the whole process.
#[path = "runtime/wait_strategy.rs"]
mod wait_strategy;

use rustler::{Encoder, Env, ResourceArc, Term};

use crate::job::{CancelOutcome, JobHandle};
use crate::runtime::{StartOptions, SubmitError};

/// Worker threads serving requests.
#[rustler::nif]
fn workers() -> usize {
    runtime::worker_count()
}

/// `start(%{priv_dir:, paths:, max_queue:, callback_timeout:, workers:,
/// mapset_version:})`, every key required (`ErlangPython.Runtime` holds the defaults).
/// Runs on a dirty scheduler: initializing CPython takes tens of milliseconds.
#[rustler::nif(schedule = "DirtyIo")]
fn start(env: Env<'_>, options: StartOptions) -> Term<'_> {
    match runtime::start(options) {
        Ok(true) => atoms::ok().encode(env),
        Ok(false) => (atoms::ok(), atoms::already_started()).encode(env),
        Err(text) => (atoms::error(), (atoms::python_init_failed(), text)).encode(env),
    }
}

/// Whether the worker threads are running.
#[rustler::nif]
fn started() -> bool {
    runtime::is_started()
}

/// Queues `op` (an `ErlangPython.Request`) and returns a job handle at once;
/// the caller then receives `{reference, result}`. A request too large to
/// copy within a normal scheduler's time slice is refused with `:too_large`:
/// the caller then uses `submit_dirty/2`, which copies it on a dirty
/// scheduler.
#[rustler::nif]
fn submit<'a>(env: Env<'a>, reference: Term<'a>, op: Term<'a>) -> Term<'a> {
    let Some(cells) = runtime::inline_cells(op) else {
        return atoms::too_large().encode(env);
    };
    queue(env, reference, op, cells)
}

/// `submit/2` for a caller that polls for its reply (`poll_reply/1`)
/// rather than waiting in `receive`: a small reply is left in the job for
/// it (see `polled_reply`). Same answers as `submit/2`.
#[rustler::nif]
fn submit_polled<'a>(env: Env<'a>, reference: Term<'a>, op: Term<'a>) -> Term<'a> {
    let Some(cells) = runtime::inline_cells(op) else {
        return atoms::too_large().encode(env);
    };
    queue_as(env, reference, op, cells, true)
}

/// `submit/2` for `ErlangPython.Runtime.request/2`: while the workers spin
/// (`runtime::replies_soon`) the request is queued as by `submit_polled/2` and
/// `{:poll, handle}` is returned; otherwise as by `submit/2` (a plain
/// handle). Deciding here costs one atomic load, and a caller that will not
/// poll makes no other NIF call than a plain one would.
#[rustler::nif]
fn submit_call<'a>(env: Env<'a>, reference: Term<'a>, op: Term<'a>) -> Term<'a> {
    let Some(cells) = runtime::inline_cells(op) else {
        return atoms::too_large().encode(env);
    };
    let polled = runtime::replies_soon();
    let queued = queue_as(env, reference, op, cells, polled);
    // An error is a tuple, a handle never is.
    if polled && !queued.is_tuple() {
        (atoms::poll(), queued).encode(env)
    } else {
        queued
    }
}

/// A polled request's reply: `{:reply, reply}` once the worker has left
/// it (after spinning a few microseconds for it), `:waiting` if not yet,
/// `:sent` when it comes as a message `{reference, reply}` instead.
/// Raises `ArgumentError` in any process but the submitter.
#[rustler::nif]
fn poll_reply<'a>(env: Env<'a>, handle: ResourceArc<JobHandle>) -> rustler::NifResult<Term<'a>> {
    polled_reply::poll(env, &handle)
        .map(|polled| polled_reply::to_term(env, polled))
        .map_err(|()| rustler::Error::BadArg)
}

/// Stops polling: `{:reply, reply}` if it was left already, else `:sent`
/// (it comes as a message). Raises `ArgumentError` in any process but the
/// submitter.
#[rustler::nif]
fn stop_polling<'a>(env: Env<'a>, handle: ResourceArc<JobHandle>) -> rustler::NifResult<Term<'a>> {
    polled_reply::stop(env, &handle)
        .map(|polled| polled_reply::to_term(env, polled))
        .map_err(|()| rustler::Error::BadArg)
}

/// `submit/2` for large requests, on a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn submit_dirty<'a>(env: Env<'a>, reference: Term<'a>, op: Term<'a>) -> Term<'a> {
    // Long lists of scalars travel packed rather than cell by cell.
    let op = ops::Submission::with_packed_args(env, op);
    queue(env, reference, op, usize::MAX)
}

/// `cells`: how many term cells `op` holds (`usize::MAX`: many).
fn queue<'a>(env: Env<'a>, reference: Term<'a>, op: Term<'a>, cells: usize) -> Term<'a> {
    queue_as(env, reference, op, cells, false)
}

/// `polled`: the caller polls for a small reply (`submit_polled/2`).
fn queue_as<'a>(
    env: Env<'a>,
    reference: Term<'a>,
    op: Term<'a>,
    cells: usize,
    polled: bool,
) -> Term<'a> {
    let owner = env.pid();
    match runtime::submit(reference, op, owner, cells, polled) {
        Ok(state) => ResourceArc::new(JobHandle { state, owner }).encode(env),
        Err(SubmitError::NotStarted) => (atoms::error(), atoms::not_started()).encode(env),
        Err(SubmitError::Overloaded) => (atoms::error(), atoms::overloaded()).encode(env),
        Err(SubmitError::Malformed) => {
            (atoms::error(), (atoms::badarg(), "malformed request")).encode(env)
        }
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

/// At await: sends an async call's kept reply to the caller as
/// `{claim, result}`, now or once it is ready (`:claimed`); `:cancelled`
/// when no reply will come, `:delivered` when it was claimed before.
#[rustler::nif]
fn claim_reply<'a>(env: Env<'a>, handle: ResourceArc<JobHandle>, claim: Term<'a>) -> rustler::Atom {
    match kept_reply::claim(env, &handle.state, env.pid(), claim) {
        kept_reply::Claim::Claimed => atoms::claimed(),
        kept_reply::Claim::Cancelled => atoms::cancelled(),
        kept_reply::Claim::Delivered => atoms::delivered(),
    }
}

/// Interrupts whatever Python code the worker threads, and the own-GIL
/// contexts' threads, are running now.
/// False when the runtime is not started.
#[rustler::nif]
fn interrupt() -> bool {
    interrupt::request(0, interrupt::ANY_JOB)
}

/// Interrupts the request of scope `key` (`{:scoped, key, op}`) running
/// now, as a timeout would; false when that scope runs nothing.
#[rustler::nif]
fn interrupt_scope(key: u64) -> bool {
    runtime::interrupt_scope(key)
}

/// Changes the queue limit at run time.
#[rustler::nif]
fn set_max_queue(limit: usize) -> bool {
    runtime::set_max_queue(limit)
}

/// Requests waiting for a worker thread.
#[rustler::nif]
fn queue_length() -> usize {
    runtime::queue_length()
}

/// The pool's queue lengths and busy time (`ErlangPython.pool_stats/0`),
/// or `nil` before start.
#[rustler::nif]
fn pool_stats() -> Option<runtime::PoolStats> {
    runtime::stats()
}

/// CPU time this OS process has used so far, every thread's (schedulers,
/// workers, threads that ended), in microseconds: the kernel's exact run
/// time, where `/proc/self/stat` counts 10 ms ticks. The benchmarks'
/// "CPU per call" (`bench/machine.exs`); cheap enough for any scheduler
/// (one system call).
#[rustler::nif]
fn process_cpu_us() -> Option<u64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, ours, and reads nothing.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    (status == 0).then(|| now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000)
}

/// Binds `name` to a fun of one argument (the argument list) or to
/// `{module, function}`. Replaces an earlier binding of the same name.
#[rustler::nif]
fn register_function(name: String, target: Term<'_>) -> rustler::Atom {
    registry::register(name, target);
    atoms::ok()
}

/// Removes a binding; `true` if there was one.
#[rustler::nif]
fn unregister_function(name: String) -> bool {
    registry::unregister(&name)
}

/// Names bound with `register_function`, sorted.
#[rustler::nif]
fn registered_functions() -> Vec<String> {
    registry::names()
}

/// What `name` is bound to (a fun or `{module, function}`), or `nil`: an
/// isolated context's server runs its worker's callbacks itself.
#[rustler::nif]
fn registered_function<'a>(env: Env<'a>, name: String) -> Term<'a> {
    match registry::lookup(&name) {
        Some(held) => held.to_term(env),
        None => atoms::nil().encode(env),
    }
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

/// Names the process about to run callback `id` (made from a Python thread
/// of its own): its requests go to that thread while it waits.
#[rustler::nif]
fn callback_runner(id: u64, runner: rustler::LocalPid) -> rustler::Atom {
    callbacks::set_runner(id, runner);
    atoms::ok()
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

/// `{supported, free_threaded}`: whether contexts can have their own GIL
/// (Python 3.12+), and whether this Python is a free-threaded build.
#[rustler::nif]
fn own_gil_support() -> (bool, bool) {
    (own_gil::SUPPORTED, cfg!(Py_GIL_DISABLED))
}

/// Starts scope `scope`'s own-GIL context: a thread scheduled as `priority`
/// says and a sub-interpreter with `paths` as `sys.path`. On a dirty
/// scheduler: creating an interpreter takes milliseconds.
#[rustler::nif(schedule = "DirtyIo")]
fn own_gil_start(
    env: Env<'_>,
    scope: u64,
    paths: Vec<String>,
    priority: own_gil::ThreadPriority,
) -> Term<'_> {
    if !runtime::is_started() {
        return (atoms::error(), atoms::not_started()).encode(env);
    }
    match panics::catch(|| own_gil::start(scope, paths, priority)).unwrap_or_else(Err) {
        Ok(context) => (atoms::ok(), ResourceArc::new(context)).encode(env),
        Err(text) => (atoms::error(), text).encode(env),
    }
}

/// Ends scope `scope`'s own-GIL context; false when it has none.
#[rustler::nif]
fn own_gil_stop(scope: u64) -> bool {
    own_gil::stop(scope)
}

/// `{threads, interpreters}`: own-GIL context threads alive and
/// sub-interpreters not yet ended.
#[rustler::nif]
fn own_gil_running() -> (usize, usize) {
    own_gil::running()
}

/// A release guard for handle `id` of isolated worker `os_pid`: when the
/// VM frees it, `server` gets `{:isolated_release, os_pid, id}`.
#[rustler::nif]
fn isolated_release_guard(
    server: rustler::LocalPid,
    os_pid: u64,
    id: u64,
) -> ResourceArc<isolated_guard::ReleaseGuard> {
    ResourceArc::new(isolated_guard::ReleaseGuard::new(server, os_pid, id))
}

/// Library load: resource types rustler cannot declare (the descriptor
/// watch needs the `stop` callback `enif_select` requires).
fn load(env: Env<'_>, _info: Term<'_>) -> bool {
    fd::on_load(env)
}

rustler::init!("Elixir.ErlangPython.Native", load = load);
