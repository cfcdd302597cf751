//! A request's life: its state machine and what travels to the worker.
//!
//! Every request has a [`JobState`] shared by the worker thread and the
//! caller's handle. The state machine (pending -> running -> done, or ->
//! cancelled) guarantees a reply is sent only if the caller has not given
//! up: a caller that timed out or died never receives a stale message later.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use rustler::env::SavedTerm;
use rustler::{Env, LocalPid, OwnedEnv, Term};

use crate::interrupt;

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;
const CANCELLED: u8 = 3;

/// Where a request stands; shared by the worker thread and the caller's handle.
#[derive(Debug)]
pub(crate) struct JobState {
    /// Unique, never 0 (0 means "any job" to the interrupter).
    pub(crate) id: u64,
    state: AtomicU8,
    /// The worker thread running the job (set as it starts: any free
    /// worker may take a request that is not bound to one).
    worker: AtomicUsize,
    /// The scope the request was submitted in (`ops::Submission`), 0 for
    /// none: lets `interrupt_scope` find the job without knowing its id.
    pub(crate) scope: u64,
    /// An async call's reply, kept here rather than sent until its caller
    /// claims it (`crate::kept_reply`); untouched by other requests.
    pub(crate) kept: Mutex<Kept>,
    /// What a polling caller reads, on cache lines of its own.
    pub(crate) polled: PollSlot,
}

/// A job's part that a polling caller spins on (`crate::polled_reply`),
/// between a cache line's worth of padding on each side: the worker writes
/// `state`, `worker` and the `Arc`'s counts while the caller spins reading
/// `poll`, and on a shared line each of those writes would take the line
/// from the caller, and back. With 64 bytes on each side nothing else
/// (before it in the job, or the next allocation) shares a line with it,
/// wherever the allocation starts.
///
/// Padding rather than `#[repr(align(64))]`: an over-aligned `JobState`
/// makes `Arc::new` allocate with `posix_memalign`, on the submitting
/// scheduler, for every request. glibc's aligned path cost 87 ns per
/// allocation and free against 21 ns for `malloc` (2M pairs of 320 bytes,
/// best of 5, on the development VM), and its split chunks showed in the
/// 100-caller profile as `unlink_chunk` and `malloc_consolidate`.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct PollSlot {
    _apart: Padding,
    /// Whether the caller polls for the reply: one of `polled_reply`'s
    /// states, `UNPOLLED` for most requests.
    pub(crate) poll: AtomicU8,
    /// A polling caller's reply, left here for it to take rather than sent.
    pub(crate) deposited: Deposit,
    _apart_after: Padding,
}

/// A cache line's worth of bytes that nothing reads: it only takes room.
#[derive(Debug)]
struct Padding(#[allow(dead_code)] [u8; 64]);

impl Default for Padding {
    fn default() -> Self {
        Padding([0; 64])
    }
}

/// Where an async call's reply stands (see `crate::kept_reply`).
#[derive(Default)]
pub(crate) enum Kept {
    /// Neither the reply nor a claim has come.
    #[default]
    Nothing,
    /// The reply, waiting for its caller to claim it.
    Reply(OwnedEnv, SavedTerm),
    /// The caller claimed it first: send it to this pid, tagged with this
    /// reference.
    ClaimedBy(LocalPid, OwnedEnv, SavedTerm),
    /// Sent to the caller that claimed it.
    Delivered,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kept::Nothing => "Nothing",
            Kept::Reply(..) => "Reply",
            Kept::ClaimedBy(..) => "ClaimedBy",
            Kept::Delivered => "Delivered",
        })
    }
}

/// A polling caller's reply in its own environment, once the worker has
/// left it in the job (see `crate::polled_reply`). Handed over by
/// `PollSlot::poll`'s states, not by a lock: only the worker moves `poll`
/// to `DEPOSITED`, once, and writes the cell only before that (or takes it
/// back after failing to, once the caller gave up polling); only the
/// caller that moved `poll` from `DEPOSITED` to `TAKEN` reads it. A caller
/// giving up (`POLLING` to `UNPOLLED`) leaves the cell alone. A lock on
/// the line the caller spins on cost the worker two more transfers of that
/// line per reply (its lock and its unlock, each after the caller's next
/// read): 61% of `deposit`'s own time in a profile of sequential calls.
#[derive(Default)]
pub(crate) struct Deposit(UnsafeCell<Option<(OwnedEnv, SavedTerm)>>);

// SAFETY: the cell is only reached through `put`, `take_back` and `take`,
// whose callers hold the states described above, which give one side at a
// time access; the release and acquire of `poll` order its contents
// between the threads. What it holds is `Send` (it moved through a Mutex
// before).
unsafe impl Sync for Deposit {}

impl std::fmt::Debug for Deposit {
    // Its contents are not read here: they may be another thread's.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deposit")
    }
}

impl Deposit {
    /// Worker side: leaves the reply, before publishing `DEPOSITED` with
    /// release ordering.
    ///
    /// # Safety
    /// The caller is the job's worker, committing its reply once
    /// (`JobState::finish` succeeded), and has not published `DEPOSITED`:
    /// no other thread reads or writes the cell until it sees `DEPOSITED`.
    pub(crate) unsafe fn put(&self, reply: (OwnedEnv, SavedTerm)) {
        // SAFETY: exclusive access by this function's contract.
        unsafe { *self.0.get() = Some(reply) }
    }

    /// Worker side: takes the reply back after failing to publish it (the
    /// caller moved `poll` to `UNPOLLED` first and never reads the cell).
    ///
    /// # Safety
    /// As for [`Deposit::put`], after `put` and a failed move to `DEPOSITED`.
    pub(crate) unsafe fn take_back(&self) -> Option<(OwnedEnv, SavedTerm)> {
        // SAFETY: exclusive access by this function's contract.
        unsafe { (*self.0.get()).take() }
    }

    /// Caller side: takes the reply.
    ///
    /// # Safety
    /// The caller moved `poll` from `DEPOSITED` to `TAKEN` (acquire): the
    /// worker's write happened before, and it never touches the cell again.
    pub(crate) unsafe fn take(&self) -> Option<(OwnedEnv, SavedTerm)> {
        // SAFETY: exclusive access by this function's contract.
        unsafe { (*self.0.get()).take() }
    }
}

/// What `cancel` found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CancelOutcome {
    /// The reply will never be sent. `was_running`: Python code for it may
    /// be executing right now and should be interrupted.
    Cancelled { was_running: bool },
    /// The reply has been (or is being) sent: the caller must receive it.
    Done,
}

/// The next block of job ids not yet handed to a thread (never 0).
static NEXT_JOB_ID: AtomicU64 = AtomicU64::new(1);

/// Ids a thread takes from [`NEXT_JOB_ID`] at a time: submitting
/// schedulers then share no counter's cache line on every request.
const JOB_ID_BLOCK: u64 = 1024;

thread_local! {
    /// This thread's block of ids: the next one and the end of the block.
    static JOB_IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A job id no other job has had: unique, never 0.
fn next_job_id() -> u64 {
    JOB_IDS.with(|ids| {
        let (mut next, mut end) = ids.get();
        if next == end {
            next = NEXT_JOB_ID.fetch_add(JOB_ID_BLOCK, Ordering::Relaxed);
            end = next + JOB_ID_BLOCK;
        }
        ids.set((next + 1, end));
        next
    })
}

impl JobState {
    /// A pending job of scope `scope` (0: none).
    pub(crate) fn new(scope: u64) -> Self {
        JobState {
            id: next_job_id(),
            state: AtomicU8::new(PENDING),
            worker: AtomicUsize::new(0),
            scope,
            kept: Mutex::default(),
            polled: PollSlot::default(),
        }
    }

    fn transition(&self, from: u8, to: u8) -> bool {
        self.state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Worker thread `worker`: claim the job. False when it was cancelled
    /// first.
    pub(crate) fn start(&self, worker: usize) -> bool {
        // Stored before the transition publishes it: a cancel that sees the
        // job running interrupts the right worker.
        self.worker.store(worker, Ordering::Relaxed);
        self.transition(PENDING, RUNNING)
    }

    /// Worker thread: commit to replying. False when cancelled meanwhile.
    pub(crate) fn finish(&self) -> bool {
        self.transition(RUNNING, DONE)
    }

    /// Caller side: give up on the reply unless it is already committed.
    pub(crate) fn cancel(&self) -> CancelOutcome {
        loop {
            match self.state.load(Ordering::Acquire) {
                DONE => return CancelOutcome::Done,
                CANCELLED => return CancelOutcome::Cancelled { was_running: false },
                state => {
                    if self.transition(state, CANCELLED) {
                        return CancelOutcome::Cancelled {
                            was_running: state == RUNNING,
                        };
                    }
                }
            }
        }
    }

    /// Cancels, and interrupts the Python code if it is running.
    pub(crate) fn cancel_and_interrupt(&self) -> CancelOutcome {
        let outcome = self.cancel();
        if outcome == (CancelOutcome::Cancelled { was_running: true }) {
            interrupt::request(self.worker.load(Ordering::Relaxed), self.id);
        }
        outcome
    }

    /// Whether no worker has taken the job yet (it waits in a queue).
    pub(crate) fn is_pending(&self) -> bool {
        self.state.load(Ordering::Acquire) == PENDING
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.state.load(Ordering::Acquire) == CANCELLED
    }
}

/// The caller's side of a request, as a NIF resource. Dropping it (the
/// caller died, or forgot the handle) cancels a request that has not replied.
pub(crate) struct JobHandle {
    pub(crate) state: Arc<JobState>,
    /// The process that submitted the request: the only one that may take
    /// a reply left in the job (`crate::polled_reply`).
    pub(crate) owner: LocalPid,
}

#[rustler::resource_impl]
impl rustler::Resource for JobHandle {}

impl Drop for JobHandle {
    fn drop(&mut self) {
        self.state.cancel_and_interrupt();
    }
}

/// One unit of work for a worker thread: the request's terms, copied into
/// an environment of its own, and whom to answer.
pub(crate) struct Request {
    /// `Some` until the request is dropped (then it goes back to
    /// [`spare_envs`]), or until a polled reply takes it ([`Self::take_own_env`]).
    env: RefCell<Option<OwnedEnv>>,
    reference: SavedTerm,
    op: SavedTerm,
    pub(crate) reply_to: LocalPid,
    pub(crate) job: Arc<JobState>,
    queued_at: Instant,
    /// Small enough for its reply to be built in its own environment.
    small: bool,
}

/// Requests of at most this many term cells are answered from their own
/// environment: the reply then needs no environment of its own, no copy
/// of the reference and no heap fragment of its own (ERTS gives an
/// environment's first fragment 200 words, which a small request leaves
/// mostly free). What the request held goes to the caller with the reply,
/// as garbage its next collection frees; larger requests are freed on the
/// worker as before.
const SMALL_REQUEST_CELLS: usize = 64;

impl Request {
    /// Copies `reference` and `op` (of `cells` term cells) out of the
    /// caller's environment.
    pub(crate) fn new(
        reference: Term<'_>,
        op: Term<'_>,
        reply_to: LocalPid,
        job: Arc<JobState>,
        cells: usize,
    ) -> Self {
        let env = spare_env();
        let reference = env.save(reference);
        let op = env.save(op);
        Request {
            env: RefCell::new(Some(env)),
            reference,
            op,
            reply_to,
            job,
            queued_at: Instant::now(),
            small: cells <= SMALL_REQUEST_CELLS,
        }
    }

    /// For a small request, runs `f` in the request's own environment with
    /// the caller's reference: the reply may be built and sent from there.
    /// `None` for a larger one (build the reply elsewhere, with
    /// [`Self::reference_in`]). Once a message built there is sent, the
    /// request's terms are invalid: only dropping the request follows.
    pub(crate) fn in_own_env<R>(
        &self,
        f: impl for<'a> FnOnce(Env<'a>, Term<'a>) -> R,
    ) -> Option<R> {
        self.small
            .then(|| self.env().run(|env| f(env, self.reference.load(env))))
    }

    /// For a small request, its own environment, given away for a reply to
    /// be built and left in (`crate::polled_reply`): the request's terms stay
    /// in it as garbage, and the environment's heap fragment, allocated by the
    /// submitting scheduler with room to spare, holds the reply too. So the
    /// reply costs no allocation on the worker, and the caller that takes it
    /// frees the fragment on the scheduler that allocated it. `None` for a
    /// larger request. Only [`Self::reference_in`] may follow, with the
    /// returned environment.
    pub(crate) fn take_own_env(&self) -> Option<OwnedEnv> {
        if self.small {
            self.env.borrow_mut().take()
        } else {
            None
        }
    }

    /// Gives back the environment [`Self::take_own_env`] took, when building
    /// the reply in it failed (a panic): the request's terms are still in it,
    /// so the error reply that follows can be built and addressed as usual.
    pub(crate) fn restore_own_env(&self, env: OwnedEnv) {
        *self.env.borrow_mut() = Some(env);
    }

    /// When the request was made (tells a waiting worker how soon work came).
    pub(crate) fn queued_at(&self) -> Instant {
        self.queued_at
    }

    pub(crate) fn job_id(&self) -> u64 {
        self.job.id
    }

    /// Runs `f` on the request's operation term.
    pub(crate) fn with_op<R>(&self, f: impl for<'a> FnOnce(Term<'a>) -> R) -> R {
        self.env().run(|env| f(self.op.load(env)))
    }

    /// A copy of the caller's reference in `target` (the reference itself
    /// once [`Self::take_own_env`] gave the request's environment away:
    /// `target` must then be that environment).
    pub(crate) fn reference_in<'a>(&self, target: Env<'a>) -> Term<'a> {
        match &*self.env.borrow() {
            Some(env) => env.run(|env| self.reference.load(env).in_env(target)),
            None => self.reference.load(target),
        }
    }

    fn env(&self) -> std::cell::Ref<'_, OwnedEnv> {
        std::cell::Ref::map(self.env.borrow(), |env| {
            env.as_ref()
                .expect("a request's environment lives as long as it")
        })
    }
}

/// An empty environment: a spare one when there is one (see [`spare_envs`]).
pub(crate) fn spare_env() -> OwnedEnv {
    spare_envs()
        .1
        .try_recv()
        .unwrap_or_else(|_| OwnedEnv::new())
}

/// Empties `env` and keeps it for the next request (freed when enough are kept).
pub(crate) fn recycle_env(mut env: OwnedEnv) {
    env.clear();
    let _ = spare_envs().0.try_send(env);
}

/// Environments of finished requests, emptied, for the next requests to
/// copy their terms into: allocating one (and freeing it on another
/// thread) is a good part of what a small request costs the VM.
fn spare_envs() -> &'static (Sender<OwnedEnv>, Receiver<OwnedEnv>) {
    static SPARE: OnceLock<(Sender<OwnedEnv>, Receiver<OwnedEnv>)> = OnceLock::new();
    SPARE.get_or_init(|| crossbeam_channel::bounded(SPARE_ENVS))
}

/// Spare environments kept at most: enough for every request of a burst
/// in flight; past it they are freed.
const SPARE_ENVS: usize = 256;

impl Drop for Request {
    fn drop(&mut self) {
        if let Some(env) = self.env.get_mut().take() {
            // A large request may hold packed lists it never converted.
            if !self.small {
                env.run(|env| crate::convert::release_packed(self.op.load(env)));
            }
            // Emptied here, so a spare holds no term (nor a large binary)
            // of a finished request; the saved terms above are invalid now.
            recycle_env(env);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_is_sent_only_when_not_cancelled() {
        let job = JobState::new(0);
        assert!(job.start(0));
        assert_eq!(job.cancel(), CancelOutcome::Cancelled { was_running: true });
        assert!(!job.finish(), "a cancelled job must not reply");

        let job = JobState::new(0);
        assert!(job.start(0));
        assert!(job.finish());
        assert_eq!(
            job.cancel(),
            CancelOutcome::Done,
            "caller must then receive"
        );
    }

    #[test]
    fn cancelled_before_start_is_skipped() {
        let job = JobState::new(0);
        assert_eq!(
            job.cancel(),
            CancelOutcome::Cancelled { was_running: false }
        );
        assert!(!job.start(0));
        assert_eq!(
            job.cancel(),
            CancelOutcome::Cancelled { was_running: false }
        );
        assert_ne!(JobState::new(0).id, JobState::new(0).id);
    }

    #[test]
    fn job_ids_are_unique_across_threads_and_never_zero() {
        // More than one block per thread, on several threads at once.
        let per_thread = 3 * JOB_ID_BLOCK as usize + 7;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..per_thread)
                        .map(|_| JobState::new(0).id)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut ids: Vec<u64> = threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect();
        assert!(!ids.contains(&0), "0 means any job to the interrupter");
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 4 * per_thread, "a job id was handed out twice");
    }

    #[test]
    fn the_polled_part_has_a_line_to_itself_and_the_job_needs_no_aligned_allocation() {
        let job = JobState::new(0);
        let start = std::ptr::addr_of!(job) as usize;
        let poll = std::ptr::addr_of!(job.polled.poll) as usize - start;
        let deposited_end = std::ptr::addr_of!(job.polled.deposited) as usize - start
            + std::mem::size_of::<Deposit>();
        let others = [
            std::ptr::addr_of!(job.id) as usize - start,
            std::ptr::addr_of!(job.state) as usize - start,
            std::ptr::addr_of!(job.worker) as usize - start,
            std::ptr::addr_of!(job.scope) as usize - start,
            std::ptr::addr_of!(job.kept) as usize - start,
        ];
        // Nothing of the job within a line of the polled fields, and a line
        // after them before the job (and the next allocation) ends.
        for other in others {
            assert!(other + 64 <= poll || other >= deposited_end + 64);
        }
        assert!(std::mem::size_of::<JobState>() >= deposited_end + 64);
        // malloc's own alignment: Arc::new takes glibc's plain path.
        assert!(std::mem::align_of::<JobState>() <= 16);
    }
}
