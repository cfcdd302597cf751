//! Own-GIL contexts: a context on a sub-interpreter of its own, with its
//! own GIL (PEP 684, Python 3.12 and later), served by a thread of its own.
//!
//! Every other context shares the main interpreter and its one GIL, so
//! CPU-bound Python code in two of them takes turns. An own-GIL context's
//! interpreter runs in parallel with the main one and with every other
//! own-GIL context.
//!
//! # The thread and its interpreter
//!
//! [`start`] spawns the thread; the thread, attached to no interpreter yet,
//! creates the sub-interpreter with `Py_NewInterpreterFromConfig` (own GIL,
//! its own allocator, single-phase-init extension modules refused), which
//! leaves the new interpreter's first thread state current *and* bound as
//! this thread's `PyGILState` state. That binding is what lets PyO3 work
//! here unchanged: `Python::attach` (`PyGILState_Ensure`) re-enters this
//! thread's own sub-interpreter state, never the main interpreter's. The
//! thread then serves the requests of the context's scope (the runtime
//! routes them here, see [`route`]) until the context stops, and ends the
//! interpreter with `Py_EndInterpreter` on this same thread.
//!
//! # What never crosses interpreters
//!
//! Objects of one interpreter must not be used in another (two GILs could
//! touch one reference count at once). Handles remember their interpreter
//! and are refused elsewhere (`convert::handles`); dropped handles are
//! released by their own interpreter (`interpreters::release`); exception
//! classes raised from Rust are the sub-interpreter's own (`interpreters`,
//! `sandbox`); PyO3's classes (`erlang.Pid`, `erlang.Term`, buffers) are
//! main-interpreter only, so such terms are refused on the way in.
//!
//! # Sandbox
//!
//! The thread is put under the kernel filter before it creates the
//! interpreter. The audit hook (`PySys_AddAuditHook`) is process-wide and
//! sees every interpreter's events; the guards on unaudited C functions
//! patch static method tables, which every interpreter's modules are made
//! from. `allow_fork`/`allow_exec` stay enabled in the interpreter's
//! configuration so that refusals come from the sandbox, with its messages,
//! as in the main interpreter.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use pyo3::prelude::*;
use rustler::{LocalPid, OwnedEnv};

use crate::callbacks;
use crate::errors::Failure;
use crate::interpreters;
use crate::interrupt::{self, Interruptible, SUB_INTERPRETER_BASE};
use crate::job::{JobState, Request};
use crate::memory;
use crate::ops::Executor;
use crate::panics;
use crate::reply::{self, Outcome};
use crate::sandbox;
use crate::serving::{self, ServingThread};
use crate::subinterp_module;
use crate::thread_priority;
use crate::type_slots;

mod helping;

pub(crate) use crate::thread_priority::ThreadPriority;

/// Whether this build can give contexts their own GIL (Python 3.12+).
pub(crate) const SUPPORTED: bool = cfg!(Py_3_12);

/// Stack of the context's thread: conversion of nested values recurses.
const THREAD_STACK: usize = 256 * 1024 * 1024;

enum Message {
    Run(Request),
    Stop,
}

/// The way to an own-GIL context's thread.
struct Route {
    sender: Sender<Message>,
    index: usize,
    interruptible: Arc<Interruptible>,
}

/// The running own-GIL contexts, by scope key.
static ROUTES: Mutex<Option<HashMap<u64, Arc<Route>>>> = Mutex::new(None);

/// Own-GIL context threads alive now (their interpreter not yet ended).
static THREADS: AtomicUsize = AtomicUsize::new(0);

static NEXT_INDEX: AtomicUsize = AtomicUsize::new(SUB_INTERPRETER_BASE);

/// An own-GIL context, as the Elixir side holds it. Stopping it, or
/// dropping the last reference (the context process died), ends its thread
/// and interpreter.
pub(crate) struct OwnGilContext {
    scope: u64,
}

#[rustler::resource_impl]
impl rustler::Resource for OwnGilContext {}

impl Drop for OwnGilContext {
    fn drop(&mut self) {
        stop(self.scope);
    }
}

/// Starts the thread and its interpreter for scope `scope`, with `paths` as
/// its `sys.path`, the thread scheduled as `priority` says (see
/// [`priority`]). Returns once the interpreter is ready, or why it is not.
pub(crate) fn start(
    scope: u64,
    paths: Vec<String>,
    priority: ThreadPriority,
) -> Result<OwnGilContext, String> {
    if !SUPPORTED {
        return Err(format!(
            "own-GIL contexts need Python 3.12 or later (this is Python {})",
            env!("ERLANG_PYTHON_VERSION")
        ));
    }
    if routes(|routes| routes.contains_key(&scope)) {
        return Err("this scope already has an own-GIL context".into());
    }
    serving::register_sub_interpreter_helper(&helping::OwnGilHelper);
    let (sender, receiver) = crossbeam_channel::unbounded::<Message>();
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
    let index = NEXT_INDEX.fetch_add(1, Ordering::Relaxed);
    let interruptible = Arc::new(Interruptible::default());
    let thread_slot = interruptible.clone();
    THREADS.fetch_add(1, Ordering::AcqRel);
    let spawned = std::thread::Builder::new()
        .name("erlang_python_own_gil".into())
        .stack_size(THREAD_STACK)
        .spawn(move || {
            if let Err(why) = thread_priority::apply_to_current_thread(priority) {
                let _ = ready_tx.send(Err(why));
                THREADS.fetch_sub(1, Ordering::AcqRel);
                return;
            }
            let _ = panics::catch(|| serve(scope, index, thread_slot, paths, receiver, ready_tx));
            THREADS.fetch_sub(1, Ordering::AcqRel);
        });
    if let Err(err) = spawned {
        THREADS.fetch_sub(1, Ordering::AcqRel);
        return Err(format!("could not spawn an own-GIL context thread: {err}"));
    }
    ready_rx
        .recv()
        .map_err(|_| "the own-GIL context thread exited during start".to_string())??;
    let route = Arc::new(Route {
        sender,
        index,
        interruptible,
    });
    routes(|routes| routes.insert(scope, route));
    Ok(OwnGilContext { scope })
}

/// Ends scope `scope`'s context: its thread finishes the request it runs,
/// drops the queued ones (their callers get no reply and time out... unless
/// they were cancelled first) and ends the interpreter. False when there
/// was none.
pub(crate) fn stop(scope: u64) -> bool {
    match routes(|routes| routes.remove(&scope)) {
        Some(route) => {
            let _ = route.sender.send(Message::Stop);
            true
        }
        None => false,
    }
}

/// Why [`route`] did not queue a request.
pub(crate) enum Refused {
    /// `max_queue` requests already wait for the context's thread.
    Full,
    /// The scope has no own-GIL context (any more).
    Gone,
}

/// Queues `request` for scope `scope`'s own-GIL context, unless `max_queue`
/// requests already wait there (its caller then gets `:overloaded`, as from
/// the shared workers' queue).
pub(crate) fn route(scope: u64, request: Request, max_queue: usize) -> Result<(), Refused> {
    let Some(route) = routes(|routes| routes.get(&scope).cloned()) else {
        return Err(Refused::Gone);
    };
    // A callback's own request, awaited by a Python thread of this context
    // that made the callback: that thread runs it (the context's thread may
    // be the one joining it, see `helping`).
    let Some(request) = callbacks::divert_to(scope, request) else {
        return Ok(());
    };
    // The channel holds only what the thread has not taken yet. Concurrent
    // submitters may each pass the check at the limit, so the bound is
    // exceeded by at most their number.
    if route.sender.len() >= max_queue.max(1) {
        return Err(Refused::Full);
    }
    route
        .sender
        .send(Message::Run(request))
        .map_err(|_| Refused::Gone)
}

/// Whether scope `scope` is an own-GIL context's.
pub(crate) fn is_own_gil(scope: u64) -> bool {
    routes(|routes| routes.contains_key(&scope))
}

/// Interrupts what scope `scope`'s own-GIL context runs now; `None` when
/// the scope is not an own-GIL context's.
pub(crate) fn interrupt_scope(scope: u64) -> Option<bool> {
    let route = routes(|routes| routes.get(&scope).cloned())?;
    Some(route.interruptible.runs_scope(scope) && interrupt::request_scope(route.index, scope))
}

/// Own-GIL context threads alive now, and sub-interpreters registered.
pub(crate) fn running() -> (usize, usize) {
    (THREADS.load(Ordering::Acquire), interpreters::running())
}

fn routes<R>(f: impl FnOnce(&mut HashMap<u64, Arc<Route>>) -> R) -> R {
    let mut routes = ROUTES.lock().unwrap_or_else(|p| p.into_inner());
    f(routes.get_or_insert_with(HashMap::new))
}

/// The thread's body: create the interpreter, serve, end the interpreter.
fn serve(
    scope: u64,
    index: usize,
    interruptible: Arc<Interruptible>,
    paths: Vec<String>,
    receiver: Receiver<Message>,
    ready: Sender<Result<(), String>>,
) {
    if let Err(why) = sandbox::confine_current_thread() {
        let _ = ready.send(Err(why));
        return;
    }
    interruptible.bind_to_current_thread();
    let thread_state = match subinterpreter::create() {
        Ok(thread_state) => thread_state,
        Err(why) => {
            let _ = ready.send(Err(why));
            return;
        }
    };
    let setup = Python::attach(|py| -> PyResult<()> {
        interpreters::register(py)?;
        // SAFETY: the new interpreter's GIL is held, on a confined thread,
        // before any user code runs.
        unsafe { sandbox::guard_sub_interpreter(py) }?;
        subinterp_module::install(py)?;
        let path = py.import("sys")?.getattr("path")?;
        path.call_method0("clear")?;
        for entry in &paths {
            path.call_method1("append", (entry.as_str(),))?;
        }
        interrupt::register_sub_interpreter(py, index, interruptible.clone());
        helping::enter(py, scope);
        Ok(())
    });
    if let Err(err) = setup {
        let why = Python::attach(|py| format!("{}", err.value(py)));
        drop(err);
        interrupt::unregister_sub_interpreter(index);
        Python::attach(|py| {
            helping::leave(py);
            interpreters::forget(py);
            sandbox::forget_sub_interpreter(py);
        });
        // SAFETY: this thread's own sub-interpreter state is current, with
        // its GIL held, and nothing of it is used after this.
        unsafe { subinterpreter::end(thread_state) };
        let _ = ready.send(Err(format!("could not set up the interpreter: {why}")));
        return;
    }
    // SAFETY: the GIL of this thread's interpreter is held since it was
    // created; released while waiting for requests, re-taken by
    // Python::attach (PyGILState_Ensure, bound to this very thread state).
    let saved = unsafe { pyo3::ffi::PyEval_SaveThread() };
    let _ = ready.send(Ok(()));

    // Reachable from code running on this thread (callbacks wait through
    // it, `erlang.self()` asks it): leaked for `serving`, which wants a
    // 'static, and taken back once the interpreter has ended, when no
    // Python code can run on this thread any more.
    let thread: &'static ContextThread = Box::leak(Box::new(ContextThread {
        index,
        interruptible: interruptible.clone(),
        replies: RefCell::new(OwnedEnv::new()),
        executor: RefCell::new(Some(Executor::default())),
        receiver,
        running: RefCell::new(Vec::new()),
        stop_requested: Cell::new(false),
    }));
    serving::register_current(thread);
    while !thread.stop_requested.get() {
        let Ok(Message::Run(first)) = thread.receiver.recv() else {
            break;
        };
        Python::attach(|py| {
            interpreters::drain(py);
            thread.handle(py, first);
            // Drain what is already queued under this one acquisition.
            while !thread.stop_requested.get() {
                match thread.receiver.try_recv() {
                    Ok(Message::Run(next)) => thread.handle(py, next),
                    Ok(Message::Stop) => thread.stop_requested.set(true),
                    Err(_) => break,
                }
            }
        });
    }
    // No interrupt may enter the interpreter from here: unregistered with
    // its GIL released (an interrupt in progress waits for that GIL).
    interrupt::unregister_sub_interpreter(index);
    // SAFETY: `saved` is this thread's sub-interpreter state, saved above.
    unsafe { pyo3::ffi::PyEval_RestoreThread(saved) };
    Python::attach(|py| {
        helping::leave(py);
        forget_dummy_thread(py);
        // Its caches hold objects of this interpreter.
        thread.executor.borrow_mut().take();
        interpreters::forget(py);
        sandbox::forget_sub_interpreter(py);
        // Requests that arrived after Stop: their callers see the context
        // gone (they hold a dead context's scope) and get no reply.
        while thread.receiver.try_recv().is_ok() {}
    });
    // SAFETY: the sub-interpreter's state is current and its GIL held; no
    // object of it is referenced from Rust any more (handles still held by
    // Elixir were marked ended by `interpreters::forget` and are never
    // dereferenced again).
    unsafe { subinterpreter::end(saved) };
    // SAFETY: `thread` came from Box::leak above; the interpreter has ended,
    // so no code on this thread can reach it through `serving` any more,
    // and this is its last use.
    drop(unsafe { Box::from_raw(thread as *const ContextThread as *mut ContextThread) });
}

/// CPython (3.13) gives a thread it did not start a "dummy"
/// `threading.Thread` once code asks for the current thread (logging does),
/// and removes it from a thread-local's finalizer: at `Py_EndInterpreter`
/// that runs after `threading`'s globals are gone and prints an ignored
/// `TypeError`. Dropping the thread-local's reference now runs the
/// finalizer while `threading` is whole.
fn forget_dummy_thread(py: Python<'_>) {
    let code = c"import sys
threading = sys.modules.get('threading')
local = getattr(threading, '_thread_local_info', None)
if local is not None:
    local.__dict__.pop('_track_dummy_thread_ref', None)
";
    let scope = pyo3::types::PyDict::new(py);
    if let Err(err) = py.run(code, Some(&scope), None) {
        err.print(py);
    }
}

/// The context's thread while it serves requests.
struct ContextThread {
    index: usize,
    interruptible: Arc<Interruptible>,
    replies: RefCell<OwnedEnv>,
    /// `None` once the interpreter is about to end.
    executor: RefCell<Option<Executor>>,
    receiver: Receiver<Message>,
    /// Requests running, innermost last (several when a callback's wait
    /// serves nested ones).
    running: RefCell<Vec<(LocalPid, Arc<JobState>)>>,
    /// A Stop arrived (perhaps during a callback's wait).
    stop_requested: Cell<bool>,
}

impl ContextThread {
    fn handle(&self, py: Python<'_>, request: Request) {
        if !request.job.start(self.index) {
            return; // the caller gave up before we got to it
        }
        let interruptible = &self.interruptible;
        interruptible.clear_stale(py);
        self.running
            .borrow_mut()
            .push((request.reply_to, request.job.clone()));
        interruptible.set_current_job(py, request.job.id, request.job.scope);
        // Charged to the context's memory account, as on the shared workers.
        let charged_to = memory::enter(request.job.scope);
        let outcome = panics::catch(|| {
            let executor = self.executor.borrow();
            let executor = executor
                .as_ref()
                .expect("the executor lives while requests run");
            request.with_op(|op| executor.execute(py, op))
        })
        .unwrap_or_else(|text| Err(Failure::Internal(text)));
        drop(charged_to);
        let (outer, outer_scope) = {
            let mut running = self.running.borrow_mut();
            running.pop();
            running
                .last()
                .map_or((0, 0), |(_, job)| (job.id, job.scope))
        };
        interruptible.set_current_job(py, outer, outer_scope);
        interruptible.clear_stale(py);
        match self.replies.try_borrow_mut() {
            Ok(mut replies) => answer(py, &mut replies, &request, outcome),
            Err(_) => answer(py, &mut OwnedEnv::new(), &request, outcome),
        }
    }
}

/// Replies to `request` with `outcome`, unless its caller gave up: on the
/// context's thread and on a Python thread that helps (`helping`).
fn answer(
    py: Python<'_>,
    replies: &mut OwnedEnv,
    request: &Request,
    outcome: Result<Outcome<'_>, Failure>,
) {
    if request.job.is_cancelled() {
        return;
    }
    let outcome = match outcome {
        Ok(Outcome::Value(value) | Outcome::ValueThenFree(value, _))
            if type_slots::is_awaitable(&value) =>
        {
            Err(Failure::BadArg(
                "an own-GIL context cannot await a coroutine for you (the asyncio loop \
                     runs in the main interpreter): run it with asyncio.run(...) inside"
                    .into(),
            ))
        }
        other => other,
    };
    reply::send(py, replies, request, &outcome);
}

impl ServingThread for ContextThread {
    fn wait_serving(
        &self,
        py: Python<'_>,
        answered: &(dyn Fn() -> bool + Sync),
        until: Instant,
    ) -> Option<Request> {
        if self.stop_requested.get() {
            return None;
        }
        let receiver = &self.receiver;
        // Polls every millisecond: an answer's arrival does not wake us.
        let tick = Duration::from_millis(1);
        let message = py.detach(|| loop {
            if answered() {
                return None;
            }
            let now = Instant::now();
            if now >= until {
                return None;
            }
            match receiver.recv_timeout((until - now).min(tick)) {
                Ok(message) => return Some(message),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(tick),
            }
        });
        match message {
            Some(Message::Run(request)) => Some(request),
            Some(Message::Stop) => {
                self.stop_requested.set(true);
                None
            }
            None => None,
        }
    }

    fn record_answer_gap(&self, _gap: Duration) {}

    fn serve(&self, py: Python<'_>, request: Request) {
        self.handle(py, request);
    }

    fn innermost_cancelled(&self) -> bool {
        self.running
            .borrow()
            .last()
            .is_some_and(|(_, job)| job.is_cancelled())
    }

    fn caller(&self) -> Option<LocalPid> {
        self.running.borrow().last().map(|(caller, _)| *caller)
    }
}

/// The two C calls that make and end a sub-interpreter.
mod subinterpreter {
    use pyo3::ffi;

    /// Creates an own-GIL sub-interpreter on the calling thread, which must
    /// be attached to no interpreter; returns its first thread state, current
    /// and holding the new GIL.
    #[cfg(Py_3_12)]
    pub(super) fn create() -> Result<*mut ffi::PyThreadState, String> {
        let config = ffi::PyInterpreterConfig {
            // Its own allocator: required for its own GIL.
            use_main_obmalloc: 0,
            // Enabled so that the sandbox refuses fork and exec with its own
            // messages, as in the main interpreter (the kernel filter and
            // the guards hold here too).
            allow_fork: 1,
            allow_exec: 1,
            allow_threads: 1,
            allow_daemon_threads: 0,
            // Single-phase-init extension modules (numpy today) would share
            // state between interpreters: refuse them at import.
            check_multi_interp_extensions: 1,
            gil: ffi::PyInterpreterConfig_OWN_GIL,
        };
        let mut thread_state: *mut ffi::PyThreadState = std::ptr::null_mut();
        // SAFETY: the main interpreter is initialized (the runtime started
        // it before any context); this thread has no current thread state,
        // which CPython supports (the new interpreter copies the main one's
        // configuration). The status is checked; on success the returned
        // state is current with the new interpreter's GIL held.
        let status = unsafe { ffi::Py_NewInterpreterFromConfig(&mut thread_state, &config) };
        // SAFETY: `status` was just returned by CPython.
        if unsafe { ffi::PyStatus_Exception(status) } != 0 || thread_state.is_null() {
            let detail = if status.err_msg.is_null() {
                "no detail".to_string()
            } else {
                // SAFETY: err_msg is a static NUL-terminated string.
                unsafe { std::ffi::CStr::from_ptr(status.err_msg) }
                    .to_string_lossy()
                    .into_owned()
            };
            return Err(format!("Py_NewInterpreterFromConfig failed: {detail}"));
        }
        Ok(thread_state)
    }

    #[cfg(not(Py_3_12))]
    pub(super) fn create() -> Result<*mut ffi::PyThreadState, String> {
        Err("own-GIL contexts need Python 3.12 or later".into())
    }

    /// Ends the sub-interpreter whose state `thread_state` is.
    ///
    /// # Safety
    /// `thread_state` must be the calling thread's current state, in the
    /// sub-interpreter to end, with its GIL held; nothing of that
    /// interpreter may be used afterwards.
    pub(super) unsafe fn end(thread_state: *mut ffi::PyThreadState) {
        // SAFETY: the caller's contract is Py_EndInterpreter's.
        unsafe { ffi::Py_EndInterpreter(thread_state) };
    }
}
