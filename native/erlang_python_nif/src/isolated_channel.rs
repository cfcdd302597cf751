//! The VM's end of an isolated context's shared-memory channel
//! ([`shm_ring`]): requests go into one ring, replies come out of the other
//! and reach the context's server as messages, `{:isolated_frame, tag,
//! binary}`, sent by a thread of this module, never by a scheduler waiting.
//!
//! Writing: a small frame that fits in the ring is copied by the calling
//! process at once (the common case: a call's request); a large one, or any
//! frame while others wait, goes to this channel's writer thread, which
//! streams it as the worker drains the ring. The binaries are kept alive in
//! the job's environment, not copied.
//!
//! Direct calls: a caller may submit its request straight into the ring
//! (`isolated_channel_call`) when the worker is idle: nothing else in
//! flight, from the server or another caller. Its reply, `{:reply, id,
//! result}`, is sent by the reader thread to the caller as `{ref, frame}`
//! (a binary: results never are), with no hop through the server; or, when
//! replies have been coming within microseconds and a core is free, the
//! call NIF polls the ring briefly and returns the reply itself
//! ([`poll_reply`]): then neither the worker nor the reader thread makes or
//! takes a wake-up. The reader thread and a poller share the ring's reading
//! end (`Inner::rx`); the reader thread waits without it. The server keeps
//! containment: it holds the worker, and when the worker dies it fails every
//! pending direct caller (`isolated_channel_fail`) as it fails its own.
//! Replies that carry new handles (4-tuples) still go to the server, which
//! guards the handles and then takes the caller (`isolated_channel_take`).
//!
//! The worker is untrusted: anything impossible read from the rings closes
//! the channel and the server gets `{:isolated_closed, tag, reason}` (it
//! then kills the worker; its pending callers get the port's exit reason).

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustler::env::SavedTerm;
use rustler::{Binary, Encoder, Env, LocalPid, OwnedBinary, OwnedEnv, ResourceArc, Term};

use crate::shm_ring::{self, Mapping, Writer};
use crate::wait_strategy::{core_signal, cores_free, spin_until_or, Spin, SpinBudget};
use crate::{atoms, messaging, panics};

/// Frames up to this size are copied into the ring by the calling
/// scheduler: well inside a time slice.
const DIRECT_MAX: usize = 64 << 10;

/// The longest frame the VM accepts from a worker (the port's `{:packet, 4}`
/// allowed as much).
const MAX_FRAME: usize = u32::MAX as usize;

struct Outbox {
    /// `None` while the writer thread streams a frame.
    writer: Option<Writer>,
    /// Frames handed to the writer thread and not yet written.
    pending: usize,
}

struct Job {
    env: OwnedEnv,
    parts: SavedTerm,
}

/// Ids of direct calls start here; the server numbers its own requests
/// from 1 and never gets near it.
const DIRECT_BASE: u64 = 1 << 62;

/// A direct call awaiting its reply.
struct Pending {
    caller: LocalPid,
    /// Holds the caller's reference (`reference`), and carries the reply.
    env: OwnedEnv,
    reference: SavedTerm,
    /// The caller gave up (timeout): the reply is dropped, but the request
    /// still occupies the worker.
    cancelled: bool,
    /// When the request went into the ring (for `isolated_channel_stats`).
    sent_at: std::time::Instant,
}

/// Who may put a request into the worker now.
struct Gate {
    pending: HashMap<u64, Pending>,
    next: u64,
    /// The server has requests in the worker.
    server_busy: bool,
    /// The server waits for the direct calls to end (no new one is taken):
    /// it gets `{:isolated_idle, tag}` when they have.
    server_waiting: bool,
    /// The worker died (or the channel closed): no more direct calls.
    dead: bool,
    /// How soon recent polls found their replies (a poll that ran out
    /// counts as twice its length): whether, and how long, a caller polls.
    /// Only polls feed it: a reply the reader thread delivers says little
    /// (its time includes waking that thread).
    /// Made [`SpinBudget::with_probes`]: while replies come slowly, a
    /// call polls now and then anyway, ever more rarely, so quick replies
    /// bring polling back.
    replies: SpinBudget,
    /// Whether direct callers poll: [`Polling`].
    polling: Polling,
}

/// Whether a direct caller polls for its reply.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Polling {
    /// When recent replies came quickly and a core is free (the default).
    Adaptive,
    /// Always, for up to [`FORCED_MAX_SPIN`] (tests and benchmarks only:
    /// the polling path runs on a busy machine too).
    Always,
    /// Never: every reply comes through the reader thread (benchmarks
    /// compare the two).
    Never,
}

struct Inner {
    mapping: Mapping,
    path: String,
    outbox: Mutex<Outbox>,
    jobs: Mutex<Option<crossbeam_channel::Sender<Job>>>,
    gate: Mutex<Gate>,
    /// The server, and the tag of its messages.
    owner: LocalPid,
    tag: u64,
    /// The reading end of the worker's ring: the reader thread's, except
    /// while a direct caller polls for its reply (it then holds it).
    rx: Mutex<shm_ring::Reader>,
    /// Where `rx` stands, for the reader thread's wait (which does not hold
    /// `rx`: a poller may take it meanwhile).
    rx_position: AtomicU64,
    /// Direct calls whose callers took their replies from the ring.
    direct_taken: AtomicU64,
    /// Direct calls whose callers polled for their replies (taken or not).
    direct_polled: AtomicU64,
    /// Direct calls that did not poll for lack of a core: the caller's
    /// thread found other work, or the worker reported it had.
    unpolled_caller_busy: AtomicU64,
    unpolled_worker_busy: AtomicU64,
    /// Direct calls that did not poll because recent polls found their
    /// replies late or not at all ([`PollChoice::SlowReplies`]).
    unpolled_slow: AtomicU64,
    /// Direct calls made, and the nanoseconds from their requests entering
    /// the ring to their replies being sent to them by the reader thread.
    direct_calls: AtomicU64,
    direct_reply_ns: AtomicU64,
}

impl Inner {
    fn close(&self) {
        self.mapping.close();
        lock(&self.jobs).take();
        // The worker unlinks the file once mapped; this covers a worker
        // that never got that far.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The channel, as the resource the server holds.
pub(crate) struct Channel {
    inner: Arc<Inner>,
}

#[rustler::resource_impl]
impl rustler::Resource for Channel {}

impl Drop for Channel {
    fn drop(&mut self) {
        self.inner.close();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn describe(error: &shm_ring::Error) -> String {
    match error {
        shm_ring::Error::Closed => "closed".into(),
        shm_ring::Error::Corrupt(why) => format!("corrupt shared memory: {why}"),
        shm_ring::Error::NoMemory(n) => format!("no memory for a frame of {n} bytes"),
    }
}

/// `isolated_channel_open(owner, tag)`: `{:ok, channel, path}` (the worker
/// maps `path`), or `{:error, text}` when no shared memory can be made (the
/// server then uses the port's pipes).
#[rustler::nif(schedule = "DirtyIo")]
fn isolated_channel_open<'a>(env: Env<'a>, owner: LocalPid, tag: u64) -> Term<'a> {
    match open(owner, tag) {
        Ok((channel, path)) => (atoms::ok(), channel, path).encode(env),
        Err(text) => (atoms::error(), text).encode(env),
    }
}

fn open(owner: LocalPid, tag: u64) -> Result<(ResourceArc<Channel>, String), String> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = format!("/dev/shm/erlang_python-{}-{n}", std::process::id());
    let mapping = Mapping::create(&path, shm_ring::CAPACITY).map_err(|e| format!("{path}: {e}"))?;
    let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
    let rx = mapping.reader(shm_ring::TO_VM);
    let inner = Arc::new(Inner {
        outbox: Mutex::new(Outbox {
            writer: Some(mapping.writer(shm_ring::TO_WORKER)),
            pending: 0,
        }),
        mapping,
        path: path.clone(),
        jobs: Mutex::new(Some(jobs)),
        gate: Mutex::new(Gate {
            pending: HashMap::new(),
            next: DIRECT_BASE,
            server_busy: false,
            server_waiting: false,
            dead: false,
            replies: SpinBudget::with_probes(),
            polling: Polling::Adaptive,
        }),
        rx: Mutex::new(rx),
        owner,
        tag,
        rx_position: AtomicU64::new(0),
        direct_taken: AtomicU64::new(0),
        direct_polled: AtomicU64::new(0),
        unpolled_caller_busy: AtomicU64::new(0),
        unpolled_worker_busy: AtomicU64::new(0),
        unpolled_slow: AtomicU64::new(0),
        direct_calls: AtomicU64::new(0),
        direct_reply_ns: AtomicU64::new(0),
    });
    let reading = inner.clone();
    std::thread::Builder::new()
        .name("ep-isolated-rx".into())
        .spawn(move || {
            let _ = panics::catch(|| read_loop(&reading, owner, tag));
        })
        .map_err(|e| e.to_string())?;
    let writing = inner.clone();
    std::thread::Builder::new()
        .name("ep-isolated-tx".into())
        .spawn(move || {
            let _ = panics::catch(|| write_loop(&writing, queue));
        })
        .map_err(|e| e.to_string())?;
    Ok((ResourceArc::new(Channel { inner }), path))
}

/// Delivers each frame from the worker: a direct call's reply to its
/// caller, anything else to `owner` (the server), until the channel closes.
fn read_loop(inner: &Inner, owner: LocalPid, tag: u64) {
    let mut owned = OwnedEnv::new();
    let mut budget = SpinBudget::default();
    loop {
        let position = || inner.rx_position.load(Ordering::Acquire);
        let received = inner
            .mapping
            .wait_beyond(shm_ring::TO_VM, position, &mut budget)
            .and_then(|()| {
                let mut rx = lock(&inner.rx);
                // A polling caller may have taken what woke us.
                if rx.readable(&inner.mapping)? == 0 {
                    return Ok(None);
                }
                let frame = rx.recv(&inner.mapping, MAX_FRAME, try_binary);
                inner.rx_position.store(rx.position(), Ordering::Release);
                frame.map(Some)
            });
        match received {
            Ok(None) => {}
            Ok(Some(frame)) => {
                if let Some(id) = direct_reply_id(&frame) {
                    deliver_direct(inner, id, frame, &owner, tag, &mut owned);
                    continue;
                }
                let sent = messaging::build_and_send(&mut owned, &owner, |env| {
                    Ok::<_, ()>((atoms::isolated_frame(), tag, frame.release(env)).encode(env))
                });
                if sent != Ok(true) {
                    inner.close();
                    return;
                }
            }
            Err(shm_ring::Error::Closed) => return,
            Err(error) => {
                inner.close();
                let _ = messaging::build_and_send(&mut owned, &owner, |env| {
                    Ok::<_, ()>((atoms::isolated_closed(), tag, describe(&error)).encode(env))
                });
                return;
            }
        }
    }
}

const REPLY_PREFIX: &[u8] = b"\x83\x68\x03\x77\x05reply\x6e\x08\x00";
/// The bytes [`direct_reply_id`] looks at.
const REPLY_HEAD: usize = REPLY_PREFIX.len() + 8;

/// The id of `{:reply, id, result}` when `id` is a direct call's (the
/// worker writes it as an 8-byte SMALL_BIG); None for anything else,
/// including replies listing new handles (a 4-tuple: the server's).
fn direct_reply_id(frame: &[u8]) -> Option<u64> {
    let rest = frame.strip_prefix(REPLY_PREFIX)?;
    let id = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    (id >= DIRECT_BASE).then_some(id)
}

/// Sends a direct call's reply frame to its caller as `{ref, frame}` (dropped
/// when the caller gave up), and tells a waiting server the worker is free.
fn deliver_direct(
    inner: &Inner,
    id: u64,
    frame: OwnedBinary,
    owner: &LocalPid,
    tag: u64,
    owned: &mut OwnedEnv,
) {
    let (entry, idle) = {
        let mut gate = lock(&inner.gate);
        let entry = gate.pending.remove(&id);
        let idle = gate.pending.is_empty() && gate.server_waiting;
        (entry, idle)
    };
    if let Some(mut entry) = entry.filter(|entry| !entry.cancelled) {
        let reference = entry.reference;
        // The caller decodes the frame (`:erlang.binary_to_term/2`, on its
        // own scheduler): building a term here, off the schedulers, would
        // hit erlang/otp#8208 for maps over 128 keys before OTP 27.3.
        let _ = messaging::build_and_send(&mut entry.env, &entry.caller, |env| {
            Ok::<_, ()>((reference.load(env), frame.release(env)).encode(env))
        });
        let ns = entry.sent_at.elapsed().as_nanos() as u64;
        inner.direct_reply_ns.fetch_add(ns, Ordering::Relaxed);
    }
    if idle {
        let _ = messaging::build_and_send(owned, owner, |env| {
            Ok::<_, ()>((atoms::isolated_idle(), tag).encode(env))
        });
    }
}

/// A binary of `len` bytes, or None when the VM has no memory for it (a
/// worker's length field must not abort the VM, as `OwnedBinary::new` would).
fn try_binary(len: usize) -> Option<OwnedBinary> {
    let mut raw = std::mem::MaybeUninit::<rustler::sys::ErlNifBinary>::uninit();
    // SAFETY: enif_alloc_binary fills `raw` when it returns true; only
    // then is it read, and the OwnedBinary owns (and frees) it from there.
    unsafe {
        if rustler::sys::enif_alloc_binary(len, raw.as_mut_ptr()) == 0 {
            return None;
        }
        Some(OwnedBinary::from_raw(raw.assume_init()))
    }
}

/// Streams the frames too large (or too early) for the calling process.
fn write_loop(inner: &Inner, queue: crossbeam_channel::Receiver<Job>) {
    for job in queue {
        let mut writer = match lock(&inner.outbox).writer.take() {
            Some(writer) => writer,
            None => return,
        };
        let written = job.env.run(|env| {
            let parts = binaries(job.parts.load(env)).ok_or(shm_ring::Error::Closed)?;
            let slices: Vec<&[u8]> = parts.iter().map(|b| b.as_slice()).collect();
            writer.send(&inner.mapping, &slices)
        });
        let mut outbox = lock(&inner.outbox);
        outbox.writer = Some(writer);
        outbox.pending -= 1;
        drop(outbox);
        if written.is_err() {
            inner.close();
            return;
        }
    }
}

/// A binary, or a list of binaries (what `:erlang.term_to_iovec/1` gives).
fn binaries(term: Term<'_>) -> Option<Vec<Binary<'_>>> {
    if let Ok(binary) = term.decode::<Binary>() {
        return Some(vec![binary]);
    }
    term.decode::<Vec<Binary>>().ok()
}

/// `isolated_channel_write(channel, iodata)`: queues one frame (a binary or
/// a list of binaries) for the worker: `:ok`, or `{:error, reason}` once the
/// channel is closed.
#[rustler::nif]
fn isolated_channel_write<'a>(
    env: Env<'a>,
    channel: ResourceArc<Channel>,
    frame: Term<'a>,
) -> Term<'a> {
    let Some(parts) = binaries(frame) else {
        return (atoms::error(), atoms::badarg()).encode(env);
    };
    let inner = &channel.inner;
    let len: usize = parts.iter().map(|b| b.len()).sum();
    let mut outbox = lock(&inner.outbox);
    if outbox.pending == 0 && len <= DIRECT_MAX {
        if let Some(writer) = outbox.writer.as_mut() {
            match writer.fits(&inner.mapping, len) {
                Ok(true) => {
                    let slices: Vec<&[u8]> = parts.iter().map(|b| b.as_slice()).collect();
                    return match writer.send(&inner.mapping, &slices) {
                        Ok(()) => atoms::ok().encode(env),
                        Err(error) => failed(env, inner, &error),
                    };
                }
                Ok(false) => {}
                Err(error) => {
                    drop(outbox);
                    return failed(env, inner, &error);
                }
            }
        }
    }
    let jobs = lock(&inner.jobs);
    let Some(jobs) = jobs.as_ref() else {
        return (atoms::error(), atoms::closed()).encode(env);
    };
    let job_env = OwnedEnv::new();
    let parts = job_env.save(frame);
    if jobs
        .send(Job {
            env: job_env,
            parts,
        })
        .is_err()
    {
        return (atoms::error(), atoms::closed()).encode(env);
    }
    outbox.pending += 1;
    atoms::ok().encode(env)
}

fn failed<'a>(env: Env<'a>, inner: &Inner, error: &shm_ring::Error) -> Term<'a> {
    if *error != shm_ring::Error::Closed {
        inner.close();
    }
    (atoms::error(), describe(error)).encode(env)
}

/// `isolated_channel_close(channel)`: wakes and ends both threads; the
/// worker, if alive, sees the channel closed.
#[rustler::nif]
fn isolated_channel_close(channel: ResourceArc<Channel>) -> rustler::Atom {
    lock(&channel.inner.gate).dead = true;
    channel.inner.close();
    atoms::ok()
}

/// `isolated_channel_call(channel, ref, iodata)`: submits a request frame
/// (`{:call, id, caller, request}` with a placeholder id, see
/// `ErlangPython.Isolated.Protocol.direct_call/2`) straight into the worker
/// when nothing else is in it: `{:ok, id}`; the reply comes to the calling
/// process as `{ref, result}`. `:busy` when the worker is taken (the caller
/// goes through the server), `:closed` once the worker is gone.
#[rustler::nif]
fn isolated_channel_call<'a>(
    env: Env<'a>,
    channel: ResourceArc<Channel>,
    reference: Term<'a>,
    frame: Term<'a>,
) -> Term<'a> {
    let Some(parts) = binaries(frame) else {
        return (atoms::error(), atoms::badarg()).encode(env);
    };
    let inner = &channel.inner;
    let len: usize = parts.iter().map(|b| b.len()).sum();
    let mut gate = lock(&inner.gate);
    if gate.dead {
        return atoms::closed().encode(env);
    }
    // A waiting server goes first: direct calls in a tight loop would
    // otherwise keep its queue waiting for ever.
    if gate.server_busy || gate.server_waiting || !gate.pending.is_empty() {
        return atoms::busy().encode(env);
    }
    let mut outbox = lock(&inner.outbox);
    // Only a frame the ring takes whole right now goes direct: a large one
    // is the server's (its writer thread streams it).
    if outbox.pending > 0 || len > DIRECT_MAX {
        return atoms::busy().encode(env);
    }
    let Some(writer) = outbox.writer.as_mut() else {
        return atoms::busy().encode(env);
    };
    match writer.fits(&inner.mapping, len) {
        Ok(true) => {}
        Ok(false) => return atoms::busy().encode(env),
        Err(error) => {
            drop(outbox);
            drop(gate);
            return failed(env, inner, &error);
        }
    }
    let id = gate.next;
    gate.next += 1;
    // The frame's id is patched in place: `parts[0]` starts with
    // `{:call, <placeholder>`, the placeholder an 8-byte SMALL_BIG.
    let head = parts[0].as_slice();
    let Some(at) = placeholder_at(head) else {
        return (atoms::error(), atoms::badarg()).encode(env);
    };
    let mut patched = head.to_vec();
    patched[at..at + 8].copy_from_slice(&id.to_le_bytes());
    let slices: Vec<&[u8]> = std::iter::once(&patched[..])
        .chain(parts[1..].iter().map(|b| b.as_slice()))
        .collect();
    let pending_env = OwnedEnv::new();
    let saved = pending_env.save(reference);
    gate.pending.insert(
        id,
        Pending {
            caller: env.pid(),
            env: pending_env,
            reference: saved,
            cancelled: false,
            sent_at: std::time::Instant::now(),
        },
    );
    inner.direct_calls.fetch_add(1, Ordering::Relaxed);
    let limits = match gate.polling {
        Polling::Always => Some(FORCED_LIMITS),
        Polling::Never => None,
        Polling::Adaptive => adaptive_poll(inner, &mut gate),
    };
    // Before the request is visible: the worker must see the poll when it
    // writes the reply.
    let poll = limits.map(|limits| (ReplyPoll::begin(inner), limits));
    let sent = writer.send(&inner.mapping, &slices);
    let request_end = writer.position();
    drop(outbox);
    drop(gate);
    if let Err(error) = sent {
        drop(poll);
        lock(&inner.gate).pending.remove(&id);
        return failed(env, inner, &error);
    }
    if let Some((poll, limits)) = poll {
        if let Some((frame, gap)) = poll_reply(poll, id, request_end, limits) {
            if take_pending(env, inner, id, gap).is_some() {
                return (atoms::reply(), frame.release(env)).encode(env);
            }
            // The caller was answered meanwhile (the worker's death failed
            // it): that answer is in its mailbox; the frame is dropped.
        }
    }
    (atoms::ok(), id).encode(env)
}

/// How long a direct caller polls for its reply by default
/// ([`choose_poll`]), counting why when it does not.
fn adaptive_poll(inner: &Inner, gate: &mut Gate) -> Option<PollLimits> {
    let worker_lacks_core = || inner.mapping.reader_lacks_core(shm_ring::TO_WORKER);
    let counter = match choose_poll(&mut gate.replies, cores_free, worker_lacks_core) {
        PollChoice::Poll(limits) => return Some(limits),
        PollChoice::SlowReplies => &inner.unpolled_slow,
        PollChoice::CallerBusy => &inner.unpolled_caller_busy,
        PollChoice::WorkerBusy => &inner.unpolled_worker_busy,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    None
}

/// Whether a direct caller polls for its reply by default, and why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PollChoice {
    /// Poll within these limits.
    Poll(PollLimits),
    /// Recent polls found their replies late, or missed them.
    SlowReplies,
    /// Other work keeps the caller's thread off a core.
    CallerBusy,
    /// The worker process reported other work keeping it off a core.
    WorkerBusy,
}

/// A direct caller polls while recent replies came soon enough for a spin
/// (`replies`, [`SpinBudget::decide_with`]), or when they did not as the
/// budget's probe (made [`SpinBudget::with_probes`]: after 4 slow calls,
/// then ever more rarely, up to one in 1,024, and from 4 again once a poll
/// catches its reply, so quick replies bring polling back), and only when
/// its thread has a core (`caller_free`, asked on the call before a probe
/// too) and the worker last reported one too.
///
/// It polls within [`ADAPTIVE_LIMITS`], not for the budget's
/// twice-the-typical reply: the alternative, waiting in `receive`, often
/// leaves the scheduler busy-waiting for work anyway, and a reply that
/// comes just after a shorter poll costs a whole reader-thread hop (and
/// counted as a miss, it stopped the next poll). The budget learns the
/// worker's service time only (from its taking the request to its reply),
/// never the wake-up of a parked worker, which [`TAKE_MAX_SPIN`] covers:
/// polling only when the whole reply came quickly kept both sides parked
/// for good, because the worker parks when requests come slowly and
/// requests come slowly when no caller polls; a caught poll sends the
/// next request at once, the worker catches it spinning, and replies fall
/// to a few microseconds. A poll that runs out counts as twice its length.
fn choose_poll(
    replies: &mut SpinBudget,
    caller_free: impl FnOnce() -> bool,
    worker_lacks_core: impl FnOnce() -> bool,
) -> PollChoice {
    match replies.decide_with(caller_free) {
        Spin::For(_) => replies.spins_for(CALLER_MAX_SPIN),
        Spin::NoFreeCore => return PollChoice::CallerBusy,
        Spin::SlowArrivals => return PollChoice::SlowReplies,
    }
    if worker_lacks_core() {
        return PollChoice::WorkerBusy;
    }
    PollChoice::Poll(ADAPTIVE_LIMITS)
}

/// A caller's poll of the reply ring: while it lasts the worker does not
/// ring the doorbell; ended (and a frame that came meanwhile announced to
/// the reader thread) when dropped, on every way out of a direct call.
struct ReplyPoll<'a> {
    inner: &'a Inner,
}

impl<'a> ReplyPoll<'a> {
    fn begin(inner: &'a Inner) -> Self {
        inner.mapping.begin_poll(shm_ring::TO_VM);
        inner.direct_polled.fetch_add(1, Ordering::Relaxed);
        ReplyPoll { inner }
    }
}

impl Drop for ReplyPoll<'_> {
    fn drop(&mut self) {
        let position = self.inner.rx_position.load(Ordering::Acquire);
        self.inner.mapping.end_poll(shm_ring::TO_VM, position);
    }
}

/// How long a direct caller polls, on its scheduler: first for the worker
/// to take its request (`take`), then for the reply (`reply`, from the
/// moment the caller saw the request taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PollLimits {
    take: Duration,
    reply: Duration,
}

impl PollLimits {
    /// Whether a poll that began `polled` ago is over: the worker has not
    /// taken the request within `take`, or took it (`since_taken` ago)
    /// and has not replied within `reply`.
    fn exceeded(self, polled: Duration, since_taken: Option<Duration>) -> bool {
        match since_taken {
            None => polled >= self.take,
            Some(since) => since >= self.reply,
        }
    }
}

/// The longest a direct caller polls for its reply once the worker took
/// its request. A scheduler whose process waits in `receive` for the
/// reply spins anyway when it goes idle (the VM's scheduler busy wait) and
/// must then be woken by the reader thread; polling here, as briefly,
/// takes the reply with no thread woken on either side. Kept well under
/// the VM's 1 ms NIF budget, and only when recent replies came this
/// quickly and a core is free.
const CALLER_MAX_SPIN: Duration = Duration::from_micros(20);

/// The longest a direct caller polls for the worker to take its request. A
/// spinning worker takes it at once; a parked one must be woken first,
/// which on a virtual machine whose other vCPU is idle costs 40-70 us (a
/// halted vCPU is woken by the host; a C pipe ping-pong, two wake-ups,
/// measured p50 87 us, p90 143 us). A caller that gave up sooner waited
/// for the reader thread's message, another such wake-up, and its next
/// request came too late for the worker to spin for it: both sides parked
/// on every call. Polling through the wake-up, the next request follows
/// the reply within microseconds, the worker (whose gaps are stamped by
/// the writer, see `shm_ring`) catches it spinning, and the calls after
/// it wake nobody. Under the VM's 1 ms NIF budget with [`CALLER_MAX_SPIN`].
const TAKE_MAX_SPIN: Duration = Duration::from_micros(200);

/// The limits of a default poll ([`Polling::Adaptive`]).
const ADAPTIVE_LIMITS: PollLimits = PollLimits {
    take: TAKE_MAX_SPIN,
    reply: CALLER_MAX_SPIN,
};

/// How long a caller polls when polling is forced on
/// ([`Polling::Always`], set only by tests and benchmarks), for each of
/// the two waits. Longer than [`ADAPTIVE_LIMITS`]: on a loaded machine a
/// parked worker process can take more than 20 us to answer every time
/// (2,001 calls in a row in a Debian 13 CI run), which left the polling
/// path untried. Still near the VM's 1 ms NIF budget; a reply that comes
/// in microseconds ends the poll as early as ever, so the benchmark's
/// forced row measures the same.
const FORCED_MAX_SPIN: Duration = Duration::from_micros(450);

const FORCED_LIMITS: PollLimits = PollLimits {
    take: FORCED_MAX_SPIN,
    reply: FORCED_MAX_SPIN,
};

/// Polls the reply ring for direct call `id`'s reply (its request ends at
/// `request_end` in the request ring) within `limits`: the frame when it
/// came (consumed) and the worker's service time as the poll saw it (from
/// its taking the request to the reply), None when time ran out, the
/// worker's ring is busy with a large frame, someone else's frame comes
/// first, or the channel closed (the reader thread delivers then, as
/// without a poll).
fn poll_reply(
    poll: ReplyPoll<'_>,
    id: u64,
    request_end: u64,
    limits: PollLimits,
) -> Option<(OwnedBinary, Duration)> {
    let inner = poll.inner;
    let began = Instant::now();
    // The reader thread holds `rx` only while it reads a frame: then the
    // reply comes through it.
    let Ok(mut rx) = inner.rx.try_lock() else {
        return None;
    };
    let wanted = |head: &[u8]| direct_reply_id(head) == Some(id);
    // When this poll saw the worker take the request.
    let taken: Cell<Option<Instant>> = Cell::new(None);
    let frame = spin_until_or(
        began,
        limits.take + limits.reply,
        || {
            match rx.take_if(&inner.mapping, MAX_FRAME, REPLY_HEAD, wanted, try_binary) {
                Ok(shm_ring::Taken::Frame(frame)) => return Some(Some(frame)),
                Ok(shm_ring::Taken::Nothing) if inner.mapping.is_closed() => return Some(None),
                Ok(shm_ring::Taken::Nothing) => {}
                Ok(shm_ring::Taken::Other) | Err(_) => return Some(None),
            }
            if taken.get().is_none() && inner.mapping.read_past(shm_ring::TO_WORKER, request_end) {
                taken.set(Some(Instant::now()));
            }
            None
        },
        |elapsed| limits.exceeded(elapsed, taken.get().map(|at| at.elapsed())),
    )
    .flatten();
    let taken = taken.get();
    inner.rx_position.store(rx.position(), Ordering::Release);
    // The poll ends at the position just stored, with `rx` still held.
    drop(poll);
    drop(rx);
    // A reply found before the take was seen: the worker was that quick.
    let service = taken.unwrap_or(began).elapsed();
    match frame {
        // Recorded with the call's end (`take_pending`).
        Some(frame) => {
            inner.direct_taken.fetch_add(1, Ordering::Relaxed);
            // The clock is read every 64 polls: a catch may read a little
            // past the limit.
            Some((frame, service.min(limits.reply)))
        }
        None => {
            // Not taken within the limit, the worker is worse off than
            // parked (no core, or stopped): a miss all the same.
            lock(&inner.gate).replies.record(2 * service);
            None
        }
    }
}

/// Ends direct call `id` whose caller took its reply after polling for
/// `gap`: Some when it was still pending (nobody else answered its
/// caller). Tells a waiting server the worker is free.
fn take_pending(env: Env<'_>, inner: &Inner, id: u64, gap: Duration) -> Option<()> {
    let (entry, idle) = {
        let mut gate = lock(&inner.gate);
        let entry = gate.pending.remove(&id)?;
        gate.replies.record(gap);
        (entry, gate.pending.is_empty() && gate.server_waiting)
    };
    if idle {
        let _ = env.send(
            &inner.owner,
            (atoms::isolated_idle(), inner.tag).encode(env),
        );
    }
    (!entry.cancelled).then_some(())
}

/// Where the 8 bytes of the id placeholder start in a direct call's first
/// part: `{:call, id, ...` as `Protocol.direct_call/2` writes it.
fn placeholder_at(head: &[u8]) -> Option<usize> {
    const CALL: &[u8] = b"\x83\x68\x04\x77\x04call\x6e\x08\x00";
    head.starts_with(CALL)
        .then_some(CALL.len())
        .filter(|at| head.len() >= at + 8)
}

/// `isolated_channel_cancel(channel, id)`: the caller of direct call `id`
/// gave up. True when the call is still in the worker (its reply will be
/// dropped; the server interrupts it), false when its reply was sent or
/// its caller failed already.
#[rustler::nif]
fn isolated_channel_cancel(channel: ResourceArc<Channel>, id: u64) -> bool {
    match lock(&channel.inner.gate).pending.get_mut(&id) {
        Some(entry) => {
            entry.cancelled = true;
            true
        }
        None => false,
    }
}

/// `isolated_channel_running(channel, id)`: whether direct call `id` is
/// still in the worker.
#[rustler::nif]
fn isolated_channel_running(channel: ResourceArc<Channel>, id: u64) -> bool {
    lock(&channel.inner.gate).pending.contains_key(&id)
}

/// `isolated_channel_take(channel, id)`: for the server, given a direct
/// call's reply that it had to handle (new handles in it): `{caller, ref}`,
/// or nil when the caller gave up; the call is no longer pending.
#[rustler::nif]
fn isolated_channel_take<'a>(env: Env<'a>, channel: ResourceArc<Channel>, id: u64) -> Term<'a> {
    let entry = lock(&channel.inner.gate).pending.remove(&id);
    match entry.filter(|entry| !entry.cancelled) {
        Some(entry) => {
            let reference = entry
                .env
                .run(|owned| entry.reference.load(owned).in_env(env));
            (entry.caller, reference).encode(env)
        }
        None => atoms::nil().encode(env),
    }
}

/// `isolated_channel_innermost(channel)`: the caller of the direct call in
/// the worker (its callbacks run with its group leader), or nil.
#[rustler::nif]
fn isolated_channel_innermost<'a>(env: Env<'a>, channel: ResourceArc<Channel>) -> Term<'a> {
    let gate = lock(&channel.inner.gate);
    match gate.pending.values().find(|entry| !entry.cancelled) {
        Some(entry) => entry.caller.encode(env),
        None => atoms::nil().encode(env),
    }
}

/// `isolated_channel_claim(channel, force)`: the server is about to send a
/// request to the worker. `:ok` (direct calls wait meanwhile) when no direct
/// call is in the worker, or with `force` (a callback is awaited: the
/// request may be its reentrant call); else `:busy`, and the server gets
/// `{:isolated_idle, tag}` once the direct calls are done.
#[rustler::nif]
fn isolated_channel_claim(channel: ResourceArc<Channel>, force: bool) -> rustler::Atom {
    let mut gate = lock(&channel.inner.gate);
    if force || gate.pending.is_empty() {
        gate.server_busy = true;
        gate.server_waiting = false;
        atoms::ok()
    } else {
        gate.server_waiting = true;
        atoms::busy()
    }
}

/// `isolated_channel_unclaim(channel)`: the server has nothing in the
/// worker, and nothing queued, any more.
#[rustler::nif]
fn isolated_channel_unclaim(channel: ResourceArc<Channel>) -> rustler::Atom {
    let mut gate = lock(&channel.inner.gate);
    gate.server_busy = false;
    // Its queue emptied while it waited (a request timed out there).
    gate.server_waiting = false;
    atoms::ok()
}

/// `isolated_channel_fail(channel, reason)`: the worker is gone. Every
/// direct caller still waiting gets `{ref, {:error, reason}}`, and no more
/// direct calls are taken.
#[rustler::nif]
fn isolated_channel_fail<'a>(
    env: Env<'a>,
    channel: ResourceArc<Channel>,
    reason: Term<'a>,
) -> rustler::Atom {
    let pending = {
        let mut gate = lock(&channel.inner.gate);
        gate.dead = true;
        std::mem::take(&mut gate.pending)
    };
    for entry in pending.into_values().filter(|entry| !entry.cancelled) {
        let reference = entry
            .env
            .run(|owned| entry.reference.load(owned).in_env(env));
        let _ = env.send(
            &entry.caller,
            (reference, (atoms::error(), reason)).encode(env),
        );
    }
    atoms::ok()
}

/// `isolated_channel_stats(channel)`: counters of the channel, as a flat
/// list of integers `ErlangPython.Isolated.channel_stats/1` names: per ring
/// (to the worker, then to the VM) the `shm_ring::RingStats` fields in
/// order, then direct calls made, the nanoseconds from their requests
/// entering the ring to their replies leaving the reader thread, the calls
/// whose callers took their replies, polled, did not poll as the caller's
/// thread or the worker lacked a core, this OS process's free-core
/// samples and those that showed other work, and the calls that did not
/// poll because recent replies came late.
#[rustler::nif]
fn isolated_channel_stats(channel: ResourceArc<Channel>) -> Vec<u64> {
    let inner = &channel.inner;
    let mut figures = Vec::new();
    for which in [shm_ring::TO_WORKER, shm_ring::TO_VM] {
        let s = inner.mapping.stats(which);
        figures.extend([
            s.frames,
            s.caught_spinning,
            s.parked,
            s.no_spin_slow,
            s.no_spin_busy,
            s.wait_ns,
            s.data_wakes,
            s.space_wakes,
            s.arrival_ns,
        ]);
    }
    figures.push(inner.direct_calls.load(Ordering::Relaxed));
    figures.push(inner.direct_reply_ns.load(Ordering::Relaxed));
    figures.push(inner.direct_taken.load(Ordering::Relaxed));
    figures.push(inner.direct_polled.load(Ordering::Relaxed));
    figures.push(inner.unpolled_caller_busy.load(Ordering::Relaxed));
    figures.push(inner.unpolled_worker_busy.load(Ordering::Relaxed));
    let (samples, other_work) = core_signal::sample_counts();
    figures.extend([samples, other_work]);
    figures.push(inner.unpolled_slow.load(Ordering::Relaxed));
    figures
}

/// `isolated_channel_polling(channel, mode)`: whether direct callers poll
/// for their replies: 0 adaptive (the default), 1 always, 2 never. For
/// tests and benchmarks (`ErlangPython.Isolated.set_reply_polling/2`).
#[rustler::nif]
fn isolated_channel_polling(channel: ResourceArc<Channel>, mode: u8) -> rustler::Atom {
    lock(&channel.inner.gate).polling = match mode {
        1 => Polling::Always,
        2 => Polling::Never,
        _ => Polling::Adaptive,
    };
    atoms::ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    /// Replies that came within `gap` lately.
    fn quick(gap: Duration) -> SpinBudget {
        let mut replies = SpinBudget::with_probes();
        for _ in 0..20 {
            let _ = replies.decide_with(|| true);
            replies.record(gap);
        }
        replies
    }

    /// A caller's core check that answers `free` and counts its calls.
    fn counting(asked: &mut u32, free: bool) -> impl FnMut() -> bool + '_ {
        move || {
            *asked += 1;
            free
        }
    }

    /// Replies that came late.
    fn slow() -> SpinBudget {
        let mut replies = SpinBudget::with_probes();
        for _ in 0..20 {
            replies.record(Duration::from_millis(1));
        }
        replies
    }

    #[test]
    fn quick_replies_with_cores_on_both_sides_poll_up_to_the_cap() {
        let mut replies = quick(3 * US);
        let choice = choose_poll(&mut replies, || true, || false);
        assert_eq!(choice, PollChoice::Poll(ADAPTIVE_LIMITS));
    }

    #[test]
    fn either_side_lacking_a_core_means_no_poll_and_the_caller_is_asked_once() {
        let mut replies = quick(3 * US);
        let mut asked = 0;
        let choice = choose_poll(&mut replies, counting(&mut asked, false), || {
            panic!("the worker is not asked when the caller has no core")
        });
        assert_eq!((choice, asked), (PollChoice::CallerBusy, 1));

        let mut asked = 0;
        let choice = choose_poll(&mut replies, counting(&mut asked, true), || true);
        assert_eq!((choice, asked), (PollChoice::WorkerBusy, 1));
    }

    #[test]
    fn slow_replies_poll_only_as_probes_ever_more_rarely() {
        let mut replies = slow();
        let mut choices = Vec::new();
        let mut asks = 0;
        for _ in 0..28 {
            let mut asked = 0;
            let choice = choose_poll(&mut replies, counting(&mut asked, true), || false);
            asks += asked;
            choices.push(choice);
        }
        let probes: Vec<usize> = (0..choices.len())
            .filter(|&i| choices[i] == PollChoice::Poll(ADAPTIVE_LIMITS))
            .collect();
        // After 4 slow calls, then 8, then 16.
        assert_eq!(probes, [3, 11, 27]);
        assert!(choices
            .iter()
            .all(|&c| c == PollChoice::SlowReplies || c == PollChoice::Poll(ADAPTIVE_LIMITS)));
        // The kernel is sampled only around a probe: on it, and on the call
        // before it (the budget's announcement, unused here).
        assert_eq!(asks, 2 * probes.len() as u32);

        // A probe, too, polls only with a core: without one it waits for
        // the next call that has one.
        let mut replies = slow();
        for _ in 0..3 {
            choose_poll(&mut replies, || true, || false);
        }
        assert_eq!(
            choose_poll(&mut replies, || false, || false),
            PollChoice::CallerBusy
        );
        assert_eq!(
            choose_poll(&mut replies, || true, || false),
            PollChoice::Poll(ADAPTIVE_LIMITS)
        );
    }

    #[test]
    fn a_caught_probe_brings_polling_back() {
        let mut replies = slow();
        for _ in 0..3 {
            assert_eq!(
                choose_poll(&mut replies, || true, || false),
                PollChoice::SlowReplies
            );
        }
        assert_eq!(
            choose_poll(&mut replies, || true, || false),
            PollChoice::Poll(ADAPTIVE_LIMITS)
        );
        // The worker answers quickly again: the probe's poll caught it.
        replies.record(5 * US);
        for _ in 0..10 {
            assert_eq!(
                choose_poll(&mut replies, || true, || false),
                PollChoice::Poll(ADAPTIVE_LIMITS)
            );
            replies.record(5 * US);
        }
    }

    #[test]
    fn a_poll_waits_out_a_parked_workers_wake_up_but_not_a_slow_reply() {
        let limits = ADAPTIVE_LIMITS;
        // A spinning worker takes the request at once: 20 us for the reply.
        assert!(!limits.exceeded(15 * US, Some(15 * US)));
        assert!(limits.exceeded(21 * US, Some(21 * US)));
        // A parked worker took it after a 150 us wake-up: the poll goes on
        // for the reply, 20 us from then.
        assert!(!limits.exceeded(150 * US, None));
        assert!(!limits.exceeded(160 * US, Some(10 * US)));
        assert!(limits.exceeded(171 * US, Some(21 * US)));
        // Never taken: the poll ends at the take limit.
        assert!(limits.exceeded(TAKE_MAX_SPIN, None));
        // The whole poll stays under the VM's 1 ms budget for a NIF, forced
        // or not.
        for limits in [ADAPTIVE_LIMITS, FORCED_LIMITS] {
            assert!(limits.take + limits.reply < Duration::from_millis(1));
        }
    }

    #[test]
    fn a_reply_caught_within_the_cap_is_not_a_miss() {
        // Replies near 8 us: the budget's own spin would be 2 x 8 + 1 us.
        let mut replies = quick(8 * US);
        let poll = choose_poll(&mut replies, || true, || false);
        assert_eq!(poll, PollChoice::Poll(ADAPTIVE_LIMITS));
        // A reply caught at 19 us, within the poll: the next call polls.
        replies.record(19 * US);
        let next = choose_poll(&mut replies, || true, || false);
        assert_eq!(next, PollChoice::Poll(ADAPTIVE_LIMITS));
        // A poll that ran out (counted twice its length) is a miss: the
        // next call does not poll.
        replies.record(2 * CALLER_MAX_SPIN);
        let after_miss = choose_poll(&mut replies, || true, || false);
        assert_eq!(after_miss, PollChoice::SlowReplies);
    }
}
