//! Replies a polling caller takes from the job instead of its mailbox.
//!
//! When a worker spins and a core is free, the caller waits for its reply
//! on its scheduler for a few microseconds instead of being suspended. A
//! reply sent as a message then costs most of the round trip: `enif_send`
//! from a thread the VM does not manage, and the caller fetching it from
//! its signal queue, took ~2 us of a ~2.5 us hand-off in a probe on this
//! VM, against ~0.4 us for a flag in shared memory (see bench/latency.exs).
//! So a request submitted as polled has its reply left in the job, in an
//! environment of its own, and the caller's poll copies it out.
//!
//! The states of `JobState::poll`, and who moves them:
//!
//! | from      | to        | by                                             |
//! |-----------|-----------|------------------------------------------------|
//! | `POLLING` | `DEPOSITED` | the worker, reply left in `PollSlot::deposited` |
//! | `POLLING` | `UNPOLLED`  | the caller giving up polling ([`stop`]), or the worker for a reply too large to copy on a scheduler |
//! | `DEPOSITED` | `TAKEN`   | the caller ([`poll`], [`stop`])                |
//!
//! Exactly one side wins each race: a worker that finds `UNPOLLED` sends a
//! message as for any request, and a caller that finds `DEPOSITED` takes
//! the reply, so it arrives exactly once. The job is still committed
//! (`JobState::finish`) before anything is left or sent, so a cancel that
//! wins gets no reply in either form. Only the submitting process may
//! take a reply (the job handle names it); a reply left and never taken
//! (the caller died) is freed with the job.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rustler::{Encoder, Env, OwnedEnv, Term};

use crate::atoms;
use crate::job::{recycle_env, spare_env, JobHandle, JobState, Request};
use crate::messaging::send_owned;
use crate::terms::cells_within;
use crate::wait_strategy::spin_until_or;

/// The reply goes as a message (every request not submitted as polled).
pub(crate) const UNPOLLED: u8 = 0;
/// The caller polls: the worker leaves the reply in the job.
pub(crate) const POLLING: u8 = 1;
/// The reply is in the job, not taken yet.
pub(crate) const DEPOSITED: u8 = 2;
/// The caller took the reply.
pub(crate) const TAKEN: u8 = 3;

/// Most term cells a reply may hold to be left for a polling caller: its
/// poll copies it on a normal scheduler. Larger replies go as messages
/// (a message's terms are handed over without a copy).
const DEPOSIT_CELLS: usize = 256;

/// Deepest nesting of a reply left for a polling caller.
const DEPOSIT_DEPTH: usize = 16;

/// How long one [`poll`] spins on its scheduler, while a worker runs the
/// request, before it answers `:waiting` (the caller then yields, and polls
/// again a bounded number of times): about a short call's whole run.
const POLL_SPIN: Duration = Duration::from_micros(3);

/// How long one [`poll`] spins while the request still waits in a queue: a
/// spinning worker takes it within a microsecond, but behind other
/// callers' requests the reply is far off, and a longer spin would only
/// burn the scheduler (100 callers, workers forced to spin, load 4-5:
/// 9.6-10.8 us of CPU per call with the full spin, 5.3-8.6 with this).
const QUEUED_SPIN: Duration = Duration::from_nanos(500);

/// Marks a new job as polled, before its request is queued.
pub(crate) fn expect_poll(job: &JobState) {
    job.polled.poll.store(POLLING, Ordering::Relaxed);
}

/// Worker side: whether the caller of `job` is polling for its reply (it
/// may stop at any time; [`deposit`] settles that race).
pub(crate) fn is_polled(job: &JobState) -> bool {
    job.polled.poll.load(Ordering::Acquire) == POLLING
}

/// Worker side, for a polled job: builds the reply with `build` in an
/// environment of its own and, once the job is committed to done, leaves
/// it for the caller, or sends `{reference, reply}` when the caller
/// stopped polling meanwhile or the reply is too large to be copied by a
/// poll. Nothing happens when the job was cancelled.
pub(crate) fn deposit(request: &Request, build: impl for<'a> FnOnce(Env<'a>) -> Term<'a>) {
    // A small request's own environment has room for the reply: a spare
    // one would allocate a heap fragment here for any reply that is not an
    // immediate, and the caller's poll would free it on its scheduler (an
    // allocation and a free across threads per call, measured per call in
    // the VM's eheap_alloc counters: this made `operator.add` slower taken
    // from the job than sent as a message, while `ping`'s atom was faster).
    let own = request.take_own_env();
    let from_request = own.is_some();
    let owned = own.unwrap_or_else(spare_env);
    let built = catch_unwind(AssertUnwindSafe(|| {
        owned.run(|env| {
            let result = build(env);
            owned.save(result)
        })
    }));
    let saved = match built {
        Ok(saved) => saved,
        Err(panic) => {
            // The caller (`reply::send`) answers with an error instead,
            // which needs the request's reference: its environment goes back.
            if from_request {
                request.restore_own_env(owned);
            }
            resume_unwind(panic)
        }
    };
    let job = &request.job;
    let small = owned.run(|env| small_enough(saved.load(env)));
    if !small {
        // Sent instead: the caller's next poll says so.
        let _ = job.polled.poll.compare_exchange(
            POLLING,
            UNPOLLED,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
    // Committed only now that the reply exists: from here on the caller's
    // cancel() answers :done and the reply reaches it one way or the other.
    if !job.finish() {
        recycle_env(owned);
        return;
    }
    if small {
        // SAFETY: this worker committed the job just above, once, and has
        // not published DEPOSITED: the caller reads the cell only after the
        // release below (giving up polling meanwhile leaves it alone).
        unsafe { job.polled.deposited.put((owned, saved)) };
        if job
            .polled
            .poll
            .compare_exchange(POLLING, DEPOSITED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return;
        }
        // The caller stopped polling first: it waits for a message.
        // SAFETY: the move to DEPOSITED failed, so the caller never reads
        // the cell; it is still this worker's.
        let taken = unsafe { job.polled.deposited.take_back() };
        let Some((owned, saved)) = taken else { return };
        send_from(request, owned, saved);
        return;
    }
    send_from(request, owned, saved);
}

/// Sends `{reference, reply}` to the request's caller from `owned`, which
/// holds the reply, then keeps the environment for reuse.
fn send_from(request: &Request, owned: OwnedEnv, saved: rustler::env::SavedTerm) {
    owned.run(|env| {
        let message = (request.reference_in(env), saved.load(env)).encode(env);
        send_owned(env, &request.reply_to, message);
    });
    recycle_env(owned);
}

/// Whether `term` holds at most [`DEPOSIT_CELLS`] cells, nested at most
/// [`DEPOSIT_DEPTH`] deep. Walks no further than that.
fn small_enough(term: Term<'_>) -> bool {
    cells_within(term, DEPOSIT_CELLS, DEPOSIT_DEPTH).is_some()
}

/// What the caller's poll found.
pub(crate) enum Polled<'a> {
    /// The reply, copied into the caller's environment.
    Reply(Term<'a>),
    /// Not yet: the caller may poll again.
    Waiting,
    /// The reply comes (or came) as a message `{reference, reply}`.
    Sent,
}

/// Caller side (a NIF on a normal scheduler): the reply if the worker has
/// left it, waiting for it up to [`POLL_SPIN`] ([`QUEUED_SPIN`] while the
/// request is still queued). `Err(())` when `env`'s
/// process is not the one that submitted the request.
pub(crate) fn poll<'a>(env: Env<'a>, handle: &JobHandle) -> Result<Polled<'a>, ()> {
    owned_by_caller(env, handle)?;
    let job = &handle.state;
    let settled = |state: u8| state != POLLING;
    let state = job.polled.poll.load(Ordering::Acquire);
    let state = if settled(state) {
        state
    } else {
        // A request still queued gets the short spin; one a worker takes
        // meanwhile gets the full one (the caller usually polls first
        // while a spinning worker is picking the request up).
        spin_until_or(
            Instant::now(),
            POLL_SPIN,
            || Some(job.polled.poll.load(Ordering::Acquire)).filter(|&state| settled(state)),
            |elapsed| elapsed >= QUEUED_SPIN && job.is_pending(),
        )
        .unwrap_or(POLLING)
    };
    Ok(match state {
        POLLING => Polled::Waiting,
        DEPOSITED => take(env, job),
        _ => Polled::Sent,
    })
}

/// Caller side: stops polling. The reply if the worker left it already;
/// otherwise it will come as a message (`Sent`).
pub(crate) fn stop<'a>(env: Env<'a>, handle: &JobHandle) -> Result<Polled<'a>, ()> {
    owned_by_caller(env, handle)?;
    let job = &handle.state;
    Ok(
        match job.polled.poll.compare_exchange(
            POLLING,
            UNPOLLED,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Err(DEPOSITED) => take(env, job),
            _ => Polled::Sent,
        },
    )
}

fn owned_by_caller(env: Env<'_>, handle: &JobHandle) -> Result<(), ()> {
    if env.pid() == handle.owner {
        Ok(())
    } else {
        Err(())
    }
}

/// Takes the deposited reply (once: a second taker finds it gone and is
/// told it was sent, which cannot happen through `ErlangPython.Runtime`).
fn take<'a>(env: Env<'a>, job: &JobState) -> Polled<'a> {
    if job
        .polled
        .poll
        .compare_exchange(DEPOSITED, TAKEN, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Polled::Sent;
    }
    // SAFETY: this caller moved `poll` from DEPOSITED to TAKEN just above
    // (acquire): the worker's write is visible and it is done with the cell.
    let deposit = unsafe { job.polled.deposited.take() };
    match deposit {
        Some((owned, saved)) => {
            let reply = owned.run(|held| saved.load(held).in_env(env));
            recycle_env(owned);
            Polled::Reply(reply)
        }
        None => Polled::Sent,
    }
}

/// `{:reply, reply}`, `:waiting` or `:sent`, for Elixir.
pub(crate) fn to_term<'a>(env: Env<'a>, polled: Polled<'a>) -> Term<'a> {
    match polled {
        Polled::Reply(reply) => (atoms::reply(), reply).encode(env),
        Polled::Waiting => atoms::waiting().encode(env),
        Polled::Sent => atoms::sent().encode(env),
    }
}
