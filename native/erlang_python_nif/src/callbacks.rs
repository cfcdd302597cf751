//! Python calling back into Elixir.
//!
//! Functions registered from Elixir live in [`crate::registry`], so Python
//! can ask whether a name exists without a round trip. Calling one:
//!
//! 1. the Python thread converts the arguments and sends
//!    `{:erlang_python_callback, id, target, args, kwargs, caller}` to the
//!    dispatcher process (`ErlangPython.Callbacks`), which runs the target in
//!    a new process (keyword arguments travel apart from the positional ones,
//!    so a target can tell them from a positional dict);
//! 2. the answer comes back through the `callback_reply` NIF, which puts it
//!    on this call's own channel;
//! 3. meanwhile the waiting thread has released the GIL. If it is a
//!    worker thread ([`crate::serving`]), it keeps serving requests while it
//!    waits, so Python -> Elixir -> Python -> ... nests without deadlock;
//!    it spins for the answer only while that pays (the worker's wait
//!    strategy decides), and otherwise parks until `callback_reply` wakes
//!    it.
//!
//! A call that gets no answer in time raises `TimeoutError`; its pending
//! entry is removed, and a late answer is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use pyo3::exceptions::{PyNameError, PyTimeoutError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rustler::env::SavedTerm;
use rustler::{Encoder, LocalPid, OwnedEnv, Term};

use crate::atoms;
use crate::convert;
use crate::errors::Failure;
use crate::interpreters::Exception;
use crate::job::Request;
use crate::messaging::build_and_send;
use crate::pytypes;
use crate::registry;
use crate::serving;
use crate::terms::HeldTerm;

/// An answer from Elixir: the term `{:ok, value}` or `{:error, text}`.
pub struct Answer {
    env: OwnedEnv,
    term: SavedTerm,
    arrived: Instant,
}

/// Where an answer goes: the call's channel, and the worker thread to wake
/// if the call waits on one (a plain Python thread blocks on the channel).
struct Waiter {
    sender: Sender<Answer>,
    worker: Option<std::thread::Thread>,
    /// A plain Python thread's call: where requests of the process running
    /// the callback go ([`divert`]), once the dispatcher names it.
    requests: Option<Sender<Request>>,
    runner: Option<LocalPid>,
    /// Which of the runner's requests go there: those routed by this key
    /// (`serving::Helper::home`: the shared workers', or an own-GIL
    /// context's), the ones the thread's interpreter can run.
    home: u64,
}

type Pending = Mutex<HashMap<u64, Waiter>>;

fn pending() -> &'static Pending {
    static PENDING: OnceLock<Pending> = OnceLock::new();
    PENDING.get_or_init(Default::default)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Waiters with a runner: while 0, [`divert`] costs one load.
static RUNNERS: AtomicUsize = AtomicUsize::new(0);
static DISPATCHER: Mutex<Option<LocalPid>> = Mutex::new(None);
/// Set when the runtime starts, from `ErlangPython.Runtime`'s configuration
/// (the default lives there); callbacks cannot happen before.
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(0);

pub(crate) fn pending_count() -> usize {
    pending().lock().unwrap_or_else(|p| p.into_inner()).len()
}

pub(crate) fn set_dispatcher(pid: LocalPid) {
    *DISPATCHER.lock().unwrap_or_else(|p| p.into_inner()) = Some(pid);
}

pub(crate) fn set_timeout(timeout: Duration) {
    TIMEOUT_MS.store(timeout.as_millis() as u64, Ordering::Relaxed);
}

/// Called by the `callback_reply` NIF: hands the answer to the waiting call.
/// Returns false when nobody waits any more (timed out, or a second answer).
pub(crate) fn deliver(id: u64, answer: Term<'_>) -> bool {
    let Some(waiter) = remove(id) else {
        return false;
    };
    let env = OwnedEnv::new();
    let term = env.save(answer);
    let arrived = Instant::now();
    let sent = waiter.sender.send(Answer { env, term, arrived }).is_ok();
    if let Some(worker) = waiter.worker {
        worker.unpark();
    }
    sent
}

fn remove(id: u64) -> Option<Waiter> {
    let waiter = pending()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id)?;
    if waiter.runner.is_some() {
        RUNNERS.fetch_sub(1, Ordering::AcqRel);
    }
    Some(waiter)
}

/// Called by the dispatcher (`callback_runner` NIF) before the process
/// running callback `id` starts: when a plain Python thread made the call,
/// that process's requests go to the thread ([`divert`]).
pub(crate) fn set_runner(id: u64, runner: LocalPid) {
    let mut pending = pending().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(waiter) = pending.get_mut(&id) {
        if waiter.requests.is_some() && waiter.runner.is_none() {
            waiter.runner = Some(runner);
            RUNNERS.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// For the pool, as a request is submitted: a request from the process
/// running a callback that a plain Python thread waits for goes to that
/// thread, which runs it while it waits (`None`). The request that started
/// the thread may be joining it, holding its worker: queued there, the
/// callback's call back into the same context would wait for the callback
/// to time out. Any other request comes back.
pub(crate) fn divert(request: Request) -> Option<Request> {
    divert_to(serving::MAIN_HOME, request)
}

/// [`divert`], for a request routed by `home` (an own-GIL context's scope,
/// whose thread may be the one joining): only a thread of that home's
/// interpreter takes it.
pub(crate) fn divert_to(home: u64, request: Request) -> Option<Request> {
    if RUNNERS.load(Ordering::Acquire) == 0 {
        return Some(request);
    }
    let pending = pending().lock().unwrap_or_else(|p| p.into_inner());
    let waiter = pending
        .values()
        .find(|waiter| waiter.runner == Some(request.reply_to) && waiter.home == home);
    match waiter.and_then(|waiter| waiter.requests.as_ref()) {
        Some(requests) => requests.send(request).err().map(|e| e.into_inner()),
        None => Some(request),
    }
}

/// Calls the Elixir function registered as `name` with `args` (and `kwargs`
/// appended as a trailing map when given). Runs on any Python thread.
pub(crate) fn call<'py>(
    py: Python<'py>,
    name: &str,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, pyo3::types::PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    call_waiting(py, name, args, kwargs, Waiting::Serving)
}

/// How a worker thread waits for a callback's answer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// Serving other requests meanwhile, so Elixir may call Python again.
    Serving,
    /// Blocked: for callbacks that never call Python (the log and metadata
    /// functions), made from code that may hold a Python lock a nested
    /// request would also take (`logging` inside `asyncio`'s set-up).
    Blocked,
}

/// [`call`], choosing how a worker thread waits.
pub(crate) fn call_waiting<'py>(
    py: Python<'py>,
    name: &str,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, pyo3::types::PyDict>>,
    waiting: Waiting,
) -> PyResult<Bound<'py, PyAny>> {
    let target = registry::lookup(name).ok_or_else(|| {
        PyNameError::new_err(format!("no Erlang function is registered as '{name}'"))
    })?;
    let dispatcher = DISPATCHER
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .ok_or_else(|| {
            pytypes::error(
                py,
                Exception::CallbackError,
                "the erlang_python callback dispatcher is not running",
            )
        })?;

    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let (sender, receiver) = crossbeam_channel::bounded::<Answer>(1);
    let worker = serving::current().map(|_| std::thread::current());
    // A plain Python thread runs its callback's requests while it waits
    // (see `divert`), if its interpreter has a helper.
    let helping = match (&worker, waiting) {
        (None, Waiting::Serving) => serving::helper_here(py),
        _ => None,
    };
    let (requests, served) = match helping {
        Some((helper, _)) => {
            let (sender, receiver) = crossbeam_channel::unbounded::<Request>();
            (Some(sender), Some((receiver, helper)))
        }
        None => (None, None),
    };
    pending().lock().unwrap_or_else(|p| p.into_inner()).insert(
        id,
        Waiter {
            sender,
            worker,
            requests,
            runner: None,
            home: helping.map_or(serving::MAIN_HOME, |(_, home)| home),
        },
    );
    // Whatever happens below, the pending entry must not outlive this call.
    let _cleanup = RemoveOnDrop(id);

    send_request(py, dispatcher, id, &target, args, kwargs)?;
    let timeout = Duration::from_millis(TIMEOUT_MS.load(Ordering::Relaxed));
    let served = served
        .as_ref()
        .map(|(requests, helper)| (requests, *helper));
    let answer = wait(py, &receiver, served, timeout, waiting)?.ok_or_else(|| {
        PyTimeoutError::new_err(format!(
            "Erlang function '{name}' did not answer within {} ms",
            timeout.as_millis()
        ))
    })?;
    decode_answer(py, name, &answer)
}

struct RemoveOnDrop(u64);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        remove(self.0);
    }
}

fn send_request(
    py: Python<'_>,
    dispatcher: LocalPid,
    id: u64,
    target: &HeldTerm,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, pyo3::types::PyDict>>,
) -> PyResult<()> {
    let sent = build_and_send(&mut OwnedEnv::new(), &dispatcher, |env| {
        let mut terms = Vec::with_capacity(args.len());
        for arg in args.iter() {
            terms.push(convert::to_term(env, &arg)?);
        }
        // A map with string keys; `nil` when there are none.
        let kwargs = match kwargs.filter(|k| !k.is_empty()) {
            Some(kwargs) => convert::to_term(env, kwargs.as_any())?,
            None => atoms::nil().encode(env),
        };
        // The Elixir process whose request led here (none from a Python
        // thread of its own): it receives ports the callback returns, and
        // the callback writes to its group leader.
        let caller = match serving::current_caller() {
            Some(pid) => pid.encode(env),
            None => atoms::nil().encode(env),
        };
        let message = (
            atoms::erlang_python_callback(),
            id,
            target.to_term(env),
            terms,
            kwargs,
            caller,
        );
        Ok::<_, Failure>(message.encode(env))
    })
    .map_err(|failure| failure_to_pyerr(py, failure))?;
    if sent {
        Ok(())
    } else {
        Err(pytypes::error(
            py,
            Exception::CallbackError,
            "the erlang_python callback dispatcher is not running",
        ))
    }
}

fn failure_to_pyerr(py: Python<'_>, failure: Failure) -> PyErr {
    match failure {
        Failure::Python(err) => err,
        Failure::Convert(err) => pyo3::exceptions::PyTypeError::new_err(format!(
            "cannot pass this value to Erlang: {err:?}"
        )),
        Failure::BadArg(text) | Failure::Internal(text) => {
            pytypes::error(py, Exception::CallbackError, text)
        }
    }
}

/// Waits for the answer with the GIL released. On a worker thread, serves
/// requests that arrive meanwhile (they may be this callback's own calls
/// back into Python).
fn wait(
    py: Python<'_>,
    receiver: &Receiver<Answer>,
    served: Option<(&Receiver<Request>, &dyn serving::Helper)>,
    timeout: Duration,
    waiting: Waiting,
) -> PyResult<Option<Answer>> {
    let began = Instant::now();
    let deadline = began + timeout;
    let thread = serving::current().filter(|_| waiting == Waiting::Serving);
    let Some(thread) = thread else {
        return Ok(match served {
            Some((served, helper)) => wait_serving_own(py, receiver, served, deadline, helper),
            None => py.detach(|| receiver.recv_deadline(deadline).ok()),
        });
    };
    // The job that made this call may be cancelled while it waits: check
    // every tick, since a pending-call interrupt cannot reach a wait.
    let tick = Duration::from_millis(20);
    let answered = || !receiver.is_empty();
    loop {
        if thread.innermost_cancelled() {
            return Err(pytypes::error(
                py,
                Exception::Interrupted,
                "the call was interrupted while waiting for an Erlang function",
            ));
        }
        if let Ok(answer) = receiver.try_recv() {
            thread.record_answer_gap(answer.arrived.saturating_duration_since(began));
            return Ok(Some(answer));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        if let Some(request) = thread.wait_serving(py, &answered, deadline.min(now + tick)) {
            thread.serve(py, request);
        }
    }
}

/// A Python thread of its own waits for the answer, running the requests
/// of the process that runs its callback meanwhile (see [`divert`]).
fn wait_serving_own(
    py: Python<'_>,
    receiver: &Receiver<Answer>,
    served: &Receiver<Request>,
    deadline: Instant,
    helper: &dyn serving::Helper,
) -> Option<Answer> {
    enum Next {
        Answer(Answer),
        Serve(Request),
        Nothing,
    }
    loop {
        let next = py.detach(|| {
            crossbeam_channel::select! {
                recv(receiver) -> answer => answer.map_or(Next::Nothing, Next::Answer),
                recv(served) -> request => request.map_or(Next::Nothing, Next::Serve),
                default(deadline.saturating_duration_since(Instant::now())) => Next::Nothing,
            }
        });
        match next {
            Next::Answer(answer) => return Some(answer),
            Next::Serve(request) => helper.serve(py, request),
            // Timed out (a closed channel cannot happen while we hold both
            // receivers and the pending entry).
            Next::Nothing => return receiver.try_recv().ok(),
        }
    }
}

fn decode_answer<'py>(py: Python<'py>, name: &str, answer: &Answer) -> PyResult<Bound<'py, PyAny>> {
    answer.env.run(|env| {
        let term = answer.term.load(env);
        let parts = rustler::types::tuple::get_tuple(term).unwrap_or_default();
        match parts.as_slice() {
            [tag, value] if *tag == atoms::ok().to_term(env) => convert::to_python(py, *value)
                .map_err(|err| failure_to_pyerr(py, Failure::from(err))),
            [tag, text] if *tag == atoms::error().to_term(env) => {
                let text: String = text.decode().unwrap_or_else(|_| format!("{text:?}"));
                Err(pytypes::error(
                    py,
                    Exception::CallbackError,
                    format!("Erlang function '{name}' failed: {text}"),
                ))
            }
            _ => Err(pytypes::error(
                py,
                Exception::CallbackError,
                format!("Erlang function '{name}' gave a malformed answer"),
            )),
        }
    })
}

/// `erlang.send(pid, term)`: sends a message from Python to a local process.
/// Returns whether the process was alive to receive it.
pub(crate) fn send(py: Python<'_>, pid: LocalPid, message: &Bound<'_, PyAny>) -> PyResult<bool> {
    build_and_send(&mut OwnedEnv::new(), &pid, |env| {
        convert::to_term(env, message).map_err(Failure::from)
    })
    .map_err(|failure| failure_to_pyerr(py, failure))
}
