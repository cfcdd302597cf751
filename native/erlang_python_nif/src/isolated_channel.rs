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
//! The worker is untrusted: anything impossible read from the rings closes
//! the channel and the server gets `{:isolated_closed, tag, reason}` (it
//! then kills the worker; its pending callers get the port's exit reason).

use std::sync::{Arc, Mutex};

use rustler::env::SavedTerm;
use rustler::{Binary, Encoder, Env, LocalPid, OwnedBinary, OwnedEnv, ResourceArc, Term};

use crate::shm_ring::{self, Mapping, Writer};
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

struct Inner {
    mapping: Mapping,
    path: String,
    outbox: Mutex<Outbox>,
    jobs: Mutex<Option<crossbeam_channel::Sender<Job>>>,
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
    let inner = Arc::new(Inner {
        outbox: Mutex::new(Outbox {
            writer: Some(mapping.writer(shm_ring::TO_WORKER)),
            pending: 0,
        }),
        mapping,
        path: path.clone(),
        jobs: Mutex::new(Some(jobs)),
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

/// Delivers each frame from the worker to `owner`, until the channel closes.
fn read_loop(inner: &Inner, owner: LocalPid, tag: u64) {
    let mut reader = inner.mapping.reader(shm_ring::TO_VM);
    let mut owned = OwnedEnv::new();
    loop {
        match reader.recv(&inner.mapping, MAX_FRAME, try_binary) {
            Ok(frame) => {
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
    channel.inner.close();
    atoms::ok()
}
