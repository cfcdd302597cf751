//! Channels: bounded queues between Erlang processes and Python code.
//!
//! A channel is a NIF resource (an Erlang reference) holding a FIFO of
//! encoded items. Erlang pushes with `channel_send/2` (it never blocks: a
//! full channel answers `:busy`, that is the back-pressure), Python pops
//! with a blocking `receive()` that waits with the GIL released, a
//! non-blocking `try_receive()`, or `await async_receive()`, which parks an
//! asyncio future until a [`Waker`] pipe becomes readable. Erlang can also
//! pop (`channel_try_receive/1`) and wait (`channel_register_sync_waiter/1`,
//! answered with a `channel_data_ready` or `channel_closed` message).
//!
//! Two kinds share the queue: term channels store each item as external
//! term format (the byte count of that encoding is what `max_size` bounds);
//! byte channels store binaries as they are. Closing stops new items but
//! keeps the queued ones: readers drain them first, then see "closed".
//!
//! Nothing here runs Python on a scheduler: the Erlang-facing NIFs only lock
//! a mutex, copy bytes and write one byte to a pipe.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rustler::{Binary, Encoder, Env, LocalPid, OwnedEnv, ResourceArc, Term};

use crate::pytypes::{Interrupted, OpaqueTerm};
use crate::terms::binary_term;
use crate::{capsule, convert, messaging, serving};

mod atoms {
    rustler::atoms! {
        ok,
        error,
        busy,
        closed,
        empty,
        size,
        length,
        max_size,
        kind,
        term,
        bytes,
        waiter_exists,
        channel_data_ready,
        channel_closed,
        erlang_python_channel_writable,
        erlang_python_fd_ready,
        read,
        ready,
    }
}

/// What a channel carries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Any Erlang term, stored as external term format.
    Term,
    /// Binaries, stored as they are.
    Bytes,
}

pub(crate) struct Channel {
    kind: Kind,
    /// Names the channel in `{:erlang_python_channel_writable, id}` messages.
    id: u64,
    state: Mutex<State>,
    /// Signalled on every push and on close: wakes blocked Python readers.
    readable: Condvar,
}

struct State {
    items: VecDeque<Vec<u8>>,
    /// Bytes queued (sum of the items' lengths).
    size: usize,
    /// 0: unbounded.
    max_size: usize,
    closed: bool,
    /// The one Erlang process waiting for data, told once by message.
    sync_waiter: Option<LocalPid>,
    /// Asyncio loops waiting for data, each told once through its pipe.
    wakers: Vec<Arc<WakerPipe>>,
    /// Erlang producers refused with `:busy`, told once when room frees.
    writers: Vec<LocalPid>,
    /// Erlang event queues waiting for data (`ErlangPython.EventQueue`),
    /// each told once with `{:erlang_python_fd_ready, callback_id, :read}`.
    loop_waiters: Vec<(LocalPid, u64)>,
}

#[rustler::resource_impl]
impl rustler::Resource for Channel {}

/// Outcome of a push.
pub(crate) enum Pushed {
    Ok,
    Busy,
    Closed,
}

/// Outcome of a pop.
pub(crate) enum Popped {
    Item(Vec<u8>),
    Empty,
    Closed,
}

impl Channel {
    pub(crate) fn new(kind: Kind, max_size: usize) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Channel {
            kind,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            state: Mutex::new(State {
                items: VecDeque::new(),
                size: 0,
                max_size,
                closed: false,
                sync_waiter: None,
                wakers: Vec::new(),
                writers: Vec::new(),
                loop_waiters: Vec::new(),
            }),
            readable: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queue half-updated
        // (every update is a push or pop plus a counter), so a poisoned lock
        // is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item` unless the channel is closed or the item would take it
    /// past `max_size`. An item larger than `max_size` is accepted into an
    /// empty channel, or it could never be sent. `env` is the caller's
    /// process-bound environment when called from a NIF.
    pub(crate) fn push(&self, item: Vec<u8>, env: Option<Env<'_>>) -> Pushed {
        let (waiter, wakers, loops) = {
            let mut state = self.lock();
            if state.closed {
                return Pushed::Closed;
            }
            if state.max_size > 0
                && !state.items.is_empty()
                && state.size + item.len() > state.max_size
            {
                return Pushed::Busy;
            }
            state.size += item.len();
            state.items.push_back(item);
            (
                state.sync_waiter.take(),
                std::mem::take(&mut state.wakers),
                std::mem::take(&mut state.loop_waiters),
            )
        };
        self.readable.notify_one();
        wake(waiter, atoms::channel_data_ready(), &wakers, env);
        wake_loops(&loops, env);
        Pushed::Ok
    }

    pub(crate) fn pop(&self, env: Option<Env<'_>>) -> Popped {
        let mut state = self.lock();
        match state.items.pop_front() {
            Some(item) => {
                state.size -= item.len();
                let writers = std::mem::take(&mut state.writers);
                drop(state);
                self.tell_writers(writers, env);
                Popped::Item(item)
            }
            None if state.closed => Popped::Closed,
            None => Popped::Empty,
        }
    }

    /// Tells producers that were refused with `:busy` that room freed.
    fn tell_writers(&self, writers: Vec<LocalPid>, env: Option<Env<'_>>) {
        if writers.is_empty() {
            return;
        }
        let message = (atoms::erlang_python_channel_writable(), self.id);
        match env {
            Some(env) => {
                for pid in &writers {
                    let _ = env.send(pid, message);
                }
            }
            None => {
                let mut owned = OwnedEnv::new();
                for pid in &writers {
                    let _ = messaging::build_and_send(&mut owned, pid, |env| {
                        Ok::<_, ()>(message.encode(env))
                    });
                }
            }
        }
    }

    /// Closes the channel; `false` if it already was. Queued items stay.
    pub(crate) fn close(&self, env: Option<Env<'_>>) -> bool {
        let (waiter, wakers, writers, loops) = {
            let mut state = self.lock();
            if state.closed {
                return false;
            }
            state.closed = true;
            (
                state.sync_waiter.take(),
                std::mem::take(&mut state.wakers),
                std::mem::take(&mut state.writers),
                std::mem::take(&mut state.loop_waiters),
            )
        };
        self.readable.notify_all();
        wake(waiter, atoms::channel_closed(), &wakers, env);
        wake_loops(&loops, env);
        self.tell_writers(writers, env);
        true
    }

    /// Waits (the caller has released the GIL) until an item or close, or
    /// until `until`; then pops. `Empty` means the deadline passed.
    fn pop_blocking(&self, until: Instant) -> Popped {
        let mut state = self.lock();
        loop {
            if let Some(item) = state.items.pop_front() {
                state.size -= item.len();
                let writers = std::mem::take(&mut state.writers);
                drop(state);
                self.tell_writers(writers, None);
                return Popped::Item(item);
            }
            if state.closed {
                return Popped::Closed;
            }
            let now = Instant::now();
            if now >= until {
                return Popped::Empty;
            }
            state = self
                .readable
                .wait_timeout(state, until - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

/// Tells the waiters that the channel changed. Runs without the lock.
fn wake(
    waiter: Option<LocalPid>,
    message: rustler::Atom,
    wakers: &[Arc<WakerPipe>],
    env: Option<Env<'_>>,
) {
    for waker in wakers {
        waker.ring();
    }
    let Some(pid) = waiter else { return };
    match env {
        Some(env) => {
            let _ = env.send(&pid, message);
        }
        None => {
            let _ = messaging::build_and_send(&mut OwnedEnv::new(), &pid, |env| {
                Ok::<_, ()>(message.encode(env))
            });
        }
    }
}

/// Tells waiting event queues the channel is readable (an item or close).
fn wake_loops(loops: &[(LocalPid, u64)], env: Option<Env<'_>>) {
    let mut owned = None;
    for (pid, callback_id) in loops {
        let event = (atoms::erlang_python_fd_ready(), *callback_id, atoms::read());
        match env {
            Some(env) => {
                let _ = env.send(pid, event);
            }
            None => {
                let owned = owned.get_or_insert_with(OwnedEnv::new);
                let _ = messaging::build_and_send(owned, pid, |env| Ok::<_, ()>(event.encode(env)));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// NIFs (registered in lib.rs)

#[rustler::nif]
fn channel_new(kind: rustler::Atom, max_size: usize) -> ResourceArc<Channel> {
    let kind = if kind == atoms::bytes() {
        Kind::Bytes
    } else {
        Kind::Term
    };
    ResourceArc::new(Channel::new(kind, max_size))
}

/// `:ok`, `:busy` or `{:error, :closed}`. A byte channel takes binaries only
/// (`{:error, :not_binary}` otherwise is raised as badarg by the facade).
#[rustler::nif]
fn channel_send<'a>(env: Env<'a>, channel: ResourceArc<Channel>, item: Term<'a>) -> Term<'a> {
    let encoded = match channel.kind {
        Kind::Term => item.to_binary().as_slice().to_vec(),
        Kind::Bytes => match Binary::from_term(item) {
            Ok(binary) => binary.as_slice().to_vec(),
            Err(_) => return (atoms::error(), atoms::bytes()).encode(env),
        },
    };
    match channel.push(encoded, Some(env)) {
        Pushed::Ok => atoms::ok().encode(env),
        Pushed::Busy => atoms::busy().encode(env),
        Pushed::Closed => (atoms::error(), atoms::closed()).encode(env),
    }
}

/// `{:ok, item}`, `{:error, :empty}` or, once closed and drained,
/// `{:error, :closed}`.
#[rustler::nif]
fn channel_try_receive<'a>(env: Env<'a>, channel: ResourceArc<Channel>) -> Term<'a> {
    match channel.pop(Some(env)) {
        Popped::Item(item) => match decode_item(env, channel.kind, &item) {
            Some(term) => (atoms::ok(), term).encode(env),
            None => (atoms::error(), atoms::term()).encode(env),
        },
        Popped::Empty => (atoms::error(), atoms::empty()).encode(env),
        Popped::Closed => (atoms::error(), atoms::closed()).encode(env),
    }
}

fn decode_item<'a>(env: Env<'a>, kind: Kind, item: &[u8]) -> Option<Term<'a>> {
    match kind {
        Kind::Term => env.binary_to_term(item).map(|(term, _)| term),
        Kind::Bytes => Some(binary_term(env, item)),
    }
}

#[rustler::nif]
fn channel_close(env: Env<'_>, channel: ResourceArc<Channel>) -> rustler::Atom {
    channel.close(Some(env));
    atoms::ok()
}

/// `%{size: bytes_queued, length: items, max_size: n, closed: bool, kind: :term | :bytes}`.
#[rustler::nif]
fn channel_info<'a>(env: Env<'a>, channel: ResourceArc<Channel>) -> rustler::NifResult<Term<'a>> {
    let state = channel.lock();
    let kind = match channel.kind {
        Kind::Term => atoms::term(),
        Kind::Bytes => atoms::bytes(),
    };
    let keys = [
        atoms::size().encode(env),
        atoms::length().encode(env),
        atoms::max_size().encode(env),
        atoms::closed().encode(env),
        atoms::kind().encode(env),
    ];
    let values = [
        state.size.encode(env),
        state.items.len().encode(env),
        state.max_size.encode(env),
        state.closed.encode(env),
        kind.encode(env),
    ];
    Term::map_from_term_arrays(env, &keys, &values)
}

/// Makes the caller the channel's Erlang waiter: it gets `channel_data_ready`
/// at the next item (at once if one is queued) or `channel_closed` at close.
/// One waiter at a time: `{:error, :waiter_exists}` otherwise.
#[rustler::nif]
fn channel_register_sync_waiter(env: Env<'_>, channel: ResourceArc<Channel>) -> Term<'_> {
    let pid = env.pid();
    let mut state = channel.lock();
    if state.sync_waiter.is_some() || !state.loop_waiters.is_empty() {
        return (atoms::error(), atoms::waiter_exists()).encode(env);
    }
    if !state.items.is_empty() {
        drop(state);
        let _ = env.send(&pid, atoms::channel_data_ready());
    } else if state.closed {
        drop(state);
        let _ = env.send(&pid, atoms::channel_closed());
    } else {
        state.sync_waiter = Some(pid);
    }
    atoms::ok().encode(env)
}

/// Makes the caller, an event queue, wait for the next item or close: it
/// gets `{:erlang_python_fd_ready, callback_id, :read}` once (at once if an
/// item is queued or the channel closed). `{:error, :waiter_exists}` while an
/// Erlang process waits (`channel_register_sync_waiter`).
#[rustler::nif]
fn channel_wait_loop(env: Env<'_>, channel: ResourceArc<Channel>, callback_id: u64) -> Term<'_> {
    let pid = env.pid();
    let mut state = channel.lock();
    if state.sync_waiter.is_some() {
        return (atoms::error(), atoms::waiter_exists()).encode(env);
    }
    if !state.items.is_empty() || state.closed {
        drop(state);
        let _ = env.send(
            &pid,
            (atoms::erlang_python_fd_ready(), callback_id, atoms::read()),
        );
    } else if !state.loop_waiters.contains(&(pid, callback_id)) {
        state.loop_waiters.push((pid, callback_id));
    }
    atoms::ok().encode(env)
}

/// Withdraws the event-queue waits registered under `callback_id` (by the
/// queue; its owner cancels them, so any queue's).
#[rustler::nif]
fn channel_cancel_wait_loop(channel: ResourceArc<Channel>, callback_id: u64) -> rustler::Atom {
    channel
        .lock()
        .loop_waiters
        .retain(|(_, id)| *id != callback_id);
    atoms::ok()
}

/// After `:busy`: registers the caller for one
/// `{:erlang_python_channel_writable, id}` message, sent at the next read or
/// at close. `{:ready, id}` when there is room (or the channel closed) now;
/// `{:ok, id}` when registered.
#[rustler::nif]
fn channel_wait_writable(env: Env<'_>, channel: ResourceArc<Channel>) -> (rustler::Atom, u64) {
    let mut state = channel.lock();
    // A refused item fits once the queue is empty; any read may make room.
    if state.closed || state.items.is_empty() {
        return (atoms::ready(), channel.id);
    }
    let pid = env.pid();
    if !state.writers.contains(&pid) {
        state.writers.push(pid);
    }
    (atoms::ok(), channel.id)
}

/// Withdraws the caller as waiter (after a timeout); `true` if it was one.
#[rustler::nif]
fn channel_cancel_sync_waiter(env: Env<'_>, channel: ResourceArc<Channel>) -> bool {
    let mut state = channel.lock();
    if state.sync_waiter == Some(env.pid()) {
        state.sync_waiter = None;
        true
    } else {
        false
    }
}

// ---------------------------------------------------------------------------
// Python side: `_erlang_native.ChannelHandle` and `_erlang_native.Waker`,
// wrapped by `erlang.channel`.

pyo3::create_exception!(
    erlang,
    ChannelClosed,
    pyo3::exceptions::PyException,
    "The channel is closed and every item queued before the close was read."
);
pyo3::create_exception!(
    erlang,
    ByteChannelClosed,
    ChannelClosed,
    "The byte channel is closed and every chunk queued before the close was read."
);

/// The native side of `erlang.Channel` / `erlang.ByteChannel`.
#[pyclass(module = "erlang", name = "ChannelHandle", frozen)]
pub(crate) struct ChannelHandle {
    channel: ResourceArc<Channel>,
}

/// Read end and write end of a non-blocking pipe. The channel writes a byte
/// to ring it; an asyncio loop watches the read end. The descriptors close
/// when the last holder (loop or channel) drops it, so a channel never
/// writes to a descriptor number that was reused.
pub(crate) struct WakerPipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl WakerPipe {
    fn new() -> std::io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are fresh descriptors we own.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(WakerPipe { read, write })
    }

    /// Makes the read end readable. A full pipe is already readable, so a
    /// failed write loses nothing.
    fn ring(&self) {
        let byte = 1u8;
        // SAFETY: writes one byte from a valid local to a descriptor we own.
        let _ = unsafe { libc::write(self.write.as_raw_fd(), (&byte as *const u8).cast(), 1) };
    }

    fn drain(&self) {
        let mut sink = [0u8; 256];
        // SAFETY: reads into a valid local buffer from a descriptor we own;
        // the descriptor is non-blocking, so this ends at EAGAIN.
        while unsafe { libc::read(self.read.as_raw_fd(), sink.as_mut_ptr().cast(), sink.len()) } > 0
        {
        }
    }
}

/// A wake-up pipe for one asyncio loop (`loop.add_reader(waker.fileno(), ...)`).
#[pyclass(module = "erlang", name = "Waker", frozen)]
pub(crate) struct Waker {
    pipe: Arc<WakerPipe>,
}

#[pymethods]
impl Waker {
    #[new]
    fn py_new() -> PyResult<Self> {
        let pipe = WakerPipe::new().map_err(|e| PyOSError::new_err(e.to_string()))?;
        Ok(Waker {
            pipe: Arc::new(pipe),
        })
    }

    fn fileno(&self) -> i32 {
        self.pipe.read.as_raw_fd()
    }

    /// Empties the pipe after a wake-up.
    fn drain(&self) {
        self.pipe.drain()
    }
}

/// The channel behind an `erlang.Term` holding a channel reference.
fn channel_of(reference: &Bound<'_, PyAny>) -> PyResult<ResourceArc<Channel>> {
    let not_a_channel = || {
        PyTypeError::new_err(format!(
            "expected a channel reference (from py_channel:new/0 or ErlangPython.Channel.new/1), got {}",
            convert::type_name(reference)
        ))
    };
    if let Ok(handle) = reference.cast::<ChannelHandle>() {
        return Ok(handle.get().channel.clone());
    }
    let env = OwnedEnv::new();
    env.run(|env| {
        let term = match reference.cast::<OpaqueTerm>() {
            Ok(opaque) => opaque.get().to_term(env),
            Err(_) => capsule::to_term(env, reference).ok_or_else(not_a_channel)?,
        };
        term.decode::<ResourceArc<Channel>>()
            .map_err(|_| not_a_channel())
    })
}

/// A conversion failure as the Python exception it stands for.
fn convert_error(err: convert::ConvertError) -> PyErr {
    match err {
        convert::ConvertError::Python(err) => err,
        other => PyValueError::new_err(format!("cannot convert this value: {other:?}")),
    }
}

thread_local! {
    /// Scratch environment for decoding items on this thread.
    static DECODE_ENV: std::cell::RefCell<OwnedEnv> = std::cell::RefCell::new(OwnedEnv::new());
}

impl ChannelHandle {
    fn closed_error(&self) -> PyErr {
        match self.channel.kind {
            Kind::Term => ChannelClosed::new_err("the channel is closed"),
            Kind::Bytes => ByteChannelClosed::new_err("the byte channel is closed"),
        }
    }

    fn to_python<'py>(&self, py: Python<'py>, item: Vec<u8>) -> PyResult<Bound<'py, PyAny>> {
        match self.channel.kind {
            Kind::Bytes => Ok(PyBytes::new(py, &item).into_any()),
            Kind::Term => DECODE_ENV.with(|cell| {
                let mut owned = cell.borrow_mut();
                let result = owned.run(|env| match env.binary_to_term(&item) {
                    Some((term, _)) => convert::to_python(py, term).map_err(convert_error),
                    None => Err(PyValueError::new_err("corrupt channel item")),
                });
                owned.clear();
                result
            }),
        }
    }

    fn encode(&self, item: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
        match self.channel.kind {
            Kind::Bytes => {
                let buffer = pyo3::buffer::PyBuffer::<u8>::get(item).map_err(|_| {
                    PyTypeError::new_err(format!(
                        "a byte channel carries bytes-like objects, got {}",
                        convert::type_name(item)
                    ))
                })?;
                buffer.to_vec(item.py())
            }
            Kind::Term => {
                let owned = OwnedEnv::new();
                owned.run(|env| {
                    convert::to_term(env, item)
                        .map(|term| term.to_binary().as_slice().to_vec())
                        .map_err(convert_error)
                })
            }
        }
    }
}

#[pymethods]
impl ChannelHandle {
    #[new]
    fn py_new(reference: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(ChannelHandle {
            channel: channel_of(reference)?,
        })
    }

    /// `(True, item)` or `(False, None)` when empty; raises once closed and drained.
    fn poll<'py>(&self, py: Python<'py>) -> PyResult<(bool, Bound<'py, PyAny>)> {
        match self.channel.pop(None) {
            Popped::Item(item) => Ok((true, self.to_python(py, item)?)),
            Popped::Empty => Ok((false, py.None().into_bound(py))),
            Popped::Closed => Err(self.closed_error()),
        }
    }

    /// Blocks, with the GIL released, until an item arrives (returned), the
    /// channel is closed and drained (raises), `timeout` seconds pass
    /// (raises TimeoutError), or the call is interrupted.
    #[pyo3(signature = (timeout=None))]
    fn receive<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        if let Popped::Item(item) = self.channel.pop(None) {
            return self.to_python(py, item);
        }
        let deadline = match timeout {
            Some(secs) if secs.is_finite() && secs >= 0.0 => {
                Some(Instant::now() + Duration::from_secs_f64(secs))
            }
            Some(_) => {
                return Err(PyValueError::new_err(
                    "timeout must be a finite number >= 0",
                ))
            }
            None => None,
        };
        // Wait in short ticks so that a cancelled call (its Elixir caller
        // timed out or exited) stops waiting.
        let tick = Duration::from_millis(50);
        loop {
            if serving::current().is_some_and(|thread| thread.innermost_cancelled()) {
                return Err(Interrupted::new_err(
                    "the call was interrupted while waiting on a channel",
                ));
            }
            let now = Instant::now();
            let until = match deadline {
                Some(deadline) if deadline <= now => {
                    return Err(pyo3::exceptions::PyTimeoutError::new_err(
                        "no channel item within the timeout",
                    ))
                }
                Some(deadline) => deadline.min(now + tick),
                None => now + tick,
            };
            let channel = self.channel.clone();
            match py.detach(move || channel.pop_blocking(until)) {
                Popped::Item(item) => return self.to_python(py, item),
                Popped::Closed => return Err(self.closed_error()),
                Popped::Empty => py.check_signals()?,
            }
        }
    }

    /// Queues `item` from Python: `"ok"`, `"busy"`; raises when closed.
    fn send(&self, item: &Bound<'_, PyAny>) -> PyResult<&'static str> {
        let encoded = self.encode(item)?;
        match self.channel.push(encoded, None) {
            Pushed::Ok => Ok("ok"),
            Pushed::Busy => Ok("busy"),
            Pushed::Closed => Err(self.closed_error()),
        }
    }

    /// Registers `waker` to be rung at the next item or close. `False` when
    /// that already happened (nothing registered: poll again).
    fn wait_async(&self, waker: &Bound<'_, Waker>) -> bool {
        let mut state = self.channel.lock();
        if !state.items.is_empty() || state.closed {
            return false;
        }
        let pipe = &waker.get().pipe;
        if !state.wakers.iter().any(|w| Arc::ptr_eq(w, pipe)) {
            state.wakers.push(pipe.clone());
        }
        true
    }

    /// Drops `waker`'s registration (its waiting coroutine was cancelled).
    fn cancel_wait(&self, waker: &Bound<'_, Waker>) {
        let pipe = &waker.get().pipe;
        self.channel.lock().wakers.retain(|w| !Arc::ptr_eq(w, pipe));
    }

    fn close(&self) -> bool {
        self.channel.close(None)
    }

    #[getter]
    fn closed(&self) -> bool {
        self.channel.lock().closed
    }

    /// Items queued.
    fn __len__(&self) -> usize {
        self.channel.lock().items.len()
    }

    /// Bytes queued.
    #[getter]
    fn size(&self) -> usize {
        self.channel.lock().size
    }

    #[getter]
    fn is_bytes(&self) -> bool {
        self.channel.kind == Kind::Bytes
    }
}

/// Adds the channel classes to `_erlang_native`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    capsule::set_channel_check(|term| term.decode::<ResourceArc<Channel>>().is_ok());
    m.add_class::<ChannelHandle>()?;
    m.add_class::<Waker>()?;
    m.add("ChannelClosed", m.py().get_type::<ChannelClosed>())?;
    m.add("ByteChannelClosed", m.py().get_type::<ByteChannelClosed>())?;
    Ok(())
}
