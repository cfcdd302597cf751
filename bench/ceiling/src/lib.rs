//! The ceiling of the design on a given machine: a request handed by a NIF
//! to one OS thread the VM does not manage, which answers at once. No
//! Python, no job state, no timeouts: what is left is what any bridge built
//! this way pays (the brief's rule: Python never runs on a scheduler).
//!
//! Two ways back, as `ErlangPython` has: a message (`enif_send` from the
//! thread), or a flag the caller polls, yielding between looks. And a third
//! it has not: the answers waiting at once sent in one message to a BEAM
//! process that passes each on (what batching replies could gain). The thread
//! spins while a run is on (`start/1` .. `stop/0`), so no wake-up is
//! measured either: the figures are an upper bound for this machine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender, TryRecvError};
use rustler::env::SavedTerm;
use rustler::{Encoder, Env, LocalPid, OwnedEnv, ResourceArc, Term};

rustler::atoms! { ok, pong, not_started }

/// A request answered by message: who to answer, and its reference.
struct ByMessage {
    pid: LocalPid,
    env: OwnedEnv,
    reference: SavedTerm,
}

/// A request answered in place: the caller polls `done`.
pub struct Slot {
    done: AtomicBool,
}

#[rustler::resource_impl]
impl rustler::Resource for Slot {}

enum Request {
    Message(ByMessage),
    Polled(ResourceArc<Slot>),
    /// Answered with others in one message to a relay process, which
    /// sends each caller its answer: batching replies, measured.
    Relayed(ByMessage),
}

/// The BEAM process that passes relayed answers on (`set_relay/1`).
static RELAY: Mutex<Option<LocalPid>> = Mutex::new(None);

/// The answering thread's queue, made by the first `start/0`; the thread
/// lives as long as the VM.
static QUEUE: OnceLock<(Sender<Request>, std::thread::Thread)> = OnceLock::new();

/// Whether the thread spins for requests (between `start/0` and `stop/0`)
/// or sleeps a millisecond at a time.
static SPINNING: AtomicBool = AtomicBool::new(false);

fn serve(requests: Receiver<Request>) {
    let mut relayed: Vec<ByMessage> = Vec::new();
    let mut batch_env = OwnedEnv::new();
    loop {
        let got = requests.try_recv();
        // A batch goes out once no more relayed requests are waiting.
        if !relayed.is_empty() && !matches!(got, Ok(Request::Relayed(_))) {
            send_batch(&mut batch_env, std::mem::take(&mut relayed));
        }
        match got {
            Ok(Request::Relayed(request)) => relayed.push(request),
            Ok(Request::Message(ByMessage {
                pid,
                mut env,
                reference,
            })) => {
                // Off a scheduler: send_and_clear is allowed on this thread.
                let _ = env.send_and_clear(&pid, |env| (reference.load(env), pong()).encode(env));
            }
            Ok(Request::Polled(slot)) => slot.done.store(true, Ordering::Release),
            Err(TryRecvError::Empty) if SPINNING.load(Ordering::Relaxed) => std::hint::spin_loop(),
            Err(TryRecvError::Empty) => std::thread::park_timeout(Duration::from_millis(1)),
            Err(TryRecvError::Disconnected) => return,
        }
    }
}

/// Sends `[{caller, reference}, ...]` to the relay in one message.
fn send_batch(batch_env: &mut OwnedEnv, batch: Vec<ByMessage>) {
    let Some(relay) = *RELAY.lock().unwrap_or_else(|poison| poison.into_inner()) else {
        return; // no relay: the callers time out and say so
    };
    // Off a scheduler: send_and_clear is allowed on this thread.
    let _ = batch_env.send_and_clear(&relay, |env| {
        let pairs: Vec<Term> = batch
            .iter()
            .map(|request| {
                let reference = request
                    .env
                    .run(|own| request.reference.load(own).in_env(env));
                (request.pid, reference).encode(env)
            })
            .collect();
        pairs.encode(env)
    });
}

/// Makes the answering thread spin for requests (starting it the first time).
#[rustler::nif]
fn start() -> rustler::Atom {
    let (_, thread) = QUEUE.get_or_init(|| {
        let (sender, receiver) = unbounded();
        let thread = std::thread::spawn(move || serve(receiver));
        (sender, thread.thread().clone())
    });
    SPINNING.store(true, Ordering::Relaxed);
    thread.unpark();
    ok()
}

/// Names the process that passes relayed answers on.
#[rustler::nif]
fn set_relay(pid: LocalPid) -> rustler::Atom {
    *RELAY.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(pid);
    ok()
}

/// Queues a request answered, through the relay, by `{reference, :pong}`.
#[rustler::nif]
fn submit_relayed<'a>(env: Env<'a>, reference: Term<'a>) -> rustler::Atom {
    let owned = OwnedEnv::new();
    let saved = owned.save(reference);
    if send(Request::Relayed(ByMessage {
        pid: env.pid(),
        env: owned,
        reference: saved,
    })) {
        ok()
    } else {
        not_started()
    }
}

/// Lets it sleep again: its spinning would skew whatever runs next.
#[rustler::nif]
fn stop() -> rustler::Atom {
    SPINNING.store(false, Ordering::Relaxed);
    ok()
}

fn send(request: Request) -> bool {
    QUEUE
        .get()
        .is_some_and(|(sender, _)| sender.send(request).is_ok())
}

/// Queues a request answered by `{reference, :pong}`.
#[rustler::nif]
fn submit<'a>(env: Env<'a>, reference: Term<'a>) -> rustler::Atom {
    let owned = OwnedEnv::new();
    let saved = owned.save(reference);
    let request = Request::Message(ByMessage {
        pid: env.pid(),
        env: owned,
        reference: saved,
    });
    if send(request) {
        ok()
    } else {
        not_started()
    }
}

/// Queues a request answered in place; poll the returned slot.
#[rustler::nif]
fn submit_polled() -> rustler::NifResult<ResourceArc<Slot>> {
    let slot = ResourceArc::new(Slot {
        done: AtomicBool::new(false),
    });
    if send(Request::Polled(slot.clone())) {
        Ok(slot)
    } else {
        Err(rustler::Error::Atom("not_started"))
    }
}

/// Whether the slot's request was answered.
#[rustler::nif]
fn answered(slot: ResourceArc<Slot>) -> bool {
    slot.done.load(Ordering::Acquire)
}

rustler::init!("Elixir.Bench.Ceiling");
