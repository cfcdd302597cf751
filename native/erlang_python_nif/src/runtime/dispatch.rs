//! Who runs which request: a shared queue, a queue per worker, and the
//! parking of idle workers.
//!
//! Requests bound to a worker (a context's, or a scope's) go on that
//! worker's own queue: C extensions such as numpy can break when objects
//! move between OS threads. Every other request goes on the shared queue,
//! which any worker takes from when it is free, so a worker stuck in a long
//! call (even one whose caller timed out long ago) holds up nobody but the
//! requests bound to it. A worker takes its own requests first.
//!
//! Waking: a worker with nothing to do spins for as long as its
//! [`SpinBudget`] says, then sets its bit in `idle` and parks (a futex wait,
//! `std::thread::park`). A submitter pushes, then wakes the worker the
//! request is bound to, or for an unbound request one idle worker, or
//! failing that one that waits for a callback's answer (it serves requests
//! meanwhile, but is already in the middle of one). Both sides publish
//! first and look second, with a full fence between, so either the worker
//! sees the request or the submitter sees the bit: no wake-up is lost.

use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::wait_strategy::{spin_until, Spin, SpinBudget};
use crate::interrupt::Interruptible;
use crate::job::Request;

/// One queue: crossbeam's unbounded channel used only through `try_`
/// operations (lock-free, many producers and consumers); parking is ours.
struct Queue {
    sender: Sender<Request>,
    receiver: Receiver<Request>,
}

impl Queue {
    fn new() -> Self {
        let (sender, receiver) = crossbeam_channel::unbounded();
        Queue { sender, receiver }
    }
}

/// What the pool knows of one worker thread.
pub(super) struct Slot {
    /// Requests bound to this worker.
    own: Queue,
    thread: OnceLock<Thread>,
    pub(super) interruptible: Arc<Interruptible>,
    /// Nanoseconds since the pool's epoch at which the worker's outermost
    /// running request started; 0 while it is free.
    busy_since_ns: AtomicU64,
    /// Nanoseconds spent running requests, finished ones only.
    busy_total_ns: AtomicU64,
    /// Requests run to the end (nested ones included).
    completed: AtomicU64,
    /// How this worker's waits for a request ended (see [`WaitCounts`]).
    waits: WaitCounts,
}

/// How a worker's waits for a request ended, counted so that whether the
/// worker spins on a given machine can be seen rather than guessed. A
/// request already queued when the worker looked is no wait and counts in
/// none of these. Written by the worker only.
#[derive(Default)]
struct WaitCounts {
    /// A request came while it spun: no wake-up needed.
    caught_spinning: AtomicU64,
    /// It spun, nothing came, it parked and was woken.
    parked_after_spin: AtomicU64,
    /// It parked at once, as recent requests came too late to spin for.
    parked_slow_arrivals: AtomicU64,
    /// No core was free (other work, one core), but requests had been
    /// coming within microseconds: it spun briefly (`BRIEF_SPIN`) and one
    /// came.
    caught_brief_spin: AtomicU64,
    /// It parked as no core was free: at once, or after a brief spin that
    /// nothing came in.
    parked_no_free_core: AtomicU64,
    /// Of the waits that spun, those that were probes (it spun although
    /// requests had come slowly), and those of them that caught one.
    probes: AtomicU64,
    probes_caught: AtomicU64,
}

/// A worker's figures, for `ErlangPython.pool_stats/0`.
pub(super) struct SlotStats {
    pub(super) queued: usize,
    pub(super) busy: bool,
    pub(super) busy_us: u64,
    pub(super) completed: u64,
    pub(super) caught_spinning: u64,
    pub(super) parked_after_spin: u64,
    pub(super) parked_slow_arrivals: u64,
    pub(super) caught_brief_spin: u64,
    pub(super) parked_no_free_core: u64,
    pub(super) probes: u64,
    pub(super) probes_caught: u64,
}

pub(super) struct Dispatch {
    epoch: Instant,
    shared: Queue,
    slots: Vec<Slot>,
    /// Bit i: worker i is parked with nothing to do.
    idle: AtomicU64,
    /// Bit i: worker i is parked waiting for a callback's answer.
    waiting: AtomicU64,
    /// Requests queued and not yet taken, on all queues.
    pub(super) queued: AtomicUsize,
}

/// At most this many workers: the parking masks are 64 bits.
pub(super) const MAX_WORKERS: usize = 64;

impl Dispatch {
    pub(super) fn new(workers: usize) -> Self {
        let workers = workers.clamp(1, MAX_WORKERS);
        Dispatch {
            epoch: Instant::now(),
            shared: Queue::new(),
            slots: (0..workers)
                .map(|_| Slot {
                    own: Queue::new(),
                    thread: OnceLock::new(),
                    interruptible: Arc::default(),
                    busy_since_ns: AtomicU64::new(0),
                    busy_total_ns: AtomicU64::new(0),
                    completed: AtomicU64::new(0),
                    waits: WaitCounts::default(),
                })
                .collect(),
            idle: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
        }
    }

    pub(super) fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Called by worker `index` on its own thread as it starts.
    pub(super) fn register_thread(&self, index: usize) {
        let _ = self.slots[index].thread.set(std::thread::current());
    }

    /// Queues `request`, bound to worker `bound` or for any worker, and
    /// wakes a worker to run it if one is parked.
    pub(super) fn push(&self, request: Request, bound: Option<usize>) {
        match bound {
            Some(index) => {
                let _ = self.slots[index].own.sender.send(request);
                fence(Ordering::SeqCst);
                let bit = 1u64 << index;
                let parked =
                    (self.idle.load(Ordering::SeqCst) | self.waiting.load(Ordering::SeqCst)) & bit;
                if parked != 0 {
                    self.wake(index);
                }
            }
            None => {
                let _ = self.shared.sender.send(request);
                fence(Ordering::SeqCst);
                if !self.claim_and_wake(&self.idle) {
                    self.claim_and_wake(&self.waiting);
                }
            }
        }
    }

    /// Wakes one worker whose bit is set in `mask`, clearing the bit so the
    /// next unbound request wakes another. False when none was parked.
    fn claim_and_wake(&self, mask: &AtomicU64) -> bool {
        let mut bits = mask.load(Ordering::SeqCst);
        while bits != 0 {
            let index = bits.trailing_zeros() as usize;
            let bit = 1u64 << index;
            let before = mask.fetch_and(!bit, Ordering::SeqCst);
            if before & bit != 0 {
                self.wake(index);
                return true;
            }
            bits = before & !bit;
        }
        false
    }

    fn wake(&self, index: usize) {
        if let Some(thread) = self.slots[index].thread.get() {
            thread.unpark();
        }
    }

    /// The next request for worker `index` if one is queued: its own first.
    fn take(&self, index: usize) -> Option<Request> {
        let request = self.slots[index]
            .own
            .receiver
            .try_recv()
            .or_else(|_| self.shared.receiver.try_recv())
            .ok()?;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        Some(request)
    }

    /// The next request for worker `index`, waiting for one as long as it
    /// takes: spinning while `budget` says it pays, parked otherwise.
    /// Called without the GIL.
    pub(super) fn next(&self, index: usize, budget: &mut SpinBudget) -> Request {
        let began = Instant::now();
        let (request, parked) = self.next_unrecorded(index, budget, began);
        budget.record_wait(
            request.queued_at().saturating_duration_since(began),
            !parked,
        );
        request
    }

    /// The next request, and whether the worker parked for it (its spin,
    /// if any, missed).
    fn next_unrecorded(
        &self,
        index: usize,
        budget: &mut SpinBudget,
        began: Instant,
    ) -> (Request, bool) {
        let decision = budget.decide_and_publish();
        // Already queued: no wait at all (the common case under load).
        if let Some(request) = self.take(index) {
            return (request, false);
        }
        let waits = &self.slots[index].waits;
        let probe = budget.probing();
        if probe {
            bump(&waits.probes);
        }
        let spin = match decision {
            Spin::NoFreeCore => budget.brief_spin(),
            _ => decision.duration(),
        };
        if let Some(request) = self.spin(index, spin, began, &|| false) {
            match decision {
                Spin::For(_) => bump(&waits.caught_spinning),
                Spin::NoFreeCore if !spin.is_zero() => bump(&waits.caught_brief_spin),
                _ => {}
            }
            if probe {
                bump(&waits.probes_caught);
            }
            return (request, false);
        }
        bump(match decision {
            Spin::For(_) => &waits.parked_after_spin,
            Spin::SlowArrivals => &waits.parked_slow_arrivals,
            Spin::NoFreeCore => &waits.parked_no_free_core,
        });
        let bit = 1u64 << index;
        loop {
            self.idle.fetch_or(bit, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if let Some(request) = self.take(index) {
                self.idle.fetch_and(!bit, Ordering::SeqCst);
                return (request, true);
            }
            std::thread::park();
            self.idle.fetch_and(!bit, Ordering::SeqCst);
            if let Some(request) = self.take(index) {
                return (request, true);
            }
        }
    }

    /// Polls for a request (or `done()`) until `spin` has passed since
    /// `began`; looks once when `spin` is zero.
    fn spin(
        &self,
        index: usize,
        spin: Duration,
        began: Instant,
        done: &(dyn Fn() -> bool + Sync),
    ) -> Option<Request> {
        if let Some(request) = self.take(index) {
            return Some(request);
        }
        if spin.is_zero() {
            return None;
        }
        spin_until(began, spin, || {
            if done() {
                return Some(None);
            }
            self.take(index).map(Some)
        })
        .flatten()
    }

    /// For worker `index` waiting for a callback's answer: a request to
    /// serve meanwhile, or `None` once `answered()` may be true or `until`
    /// has passed. Spins for `spin` first. Called without the GIL; the
    /// answer's sender unparks this thread.
    pub(super) fn wait_serving(
        &self,
        index: usize,
        spin: Duration,
        answered: &(dyn Fn() -> bool + Sync),
        until: Instant,
    ) -> Option<Request> {
        if let Some(request) = self.spin(index, spin, Instant::now(), answered) {
            return Some(request);
        }
        let bit = 1u64 << index;
        self.waiting.fetch_or(bit, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let request = if answered() {
            None
        } else {
            self.take(index).or_else(|| {
                std::thread::park_timeout(until.saturating_duration_since(Instant::now()));
                self.take(index)
            })
        };
        self.waiting.fetch_and(!bit, Ordering::SeqCst);
        request
    }

    /// The next request for worker `index` if one is queued (its own
    /// first), without waiting.
    pub(super) fn try_next(&self, index: usize) -> Option<Request> {
        self.take(index)
    }

    /// The current time, as this pool counts it (for busy spans).
    fn now_ns(&self) -> u64 {
        // Never 0, which means "free".
        self.epoch.elapsed().as_nanos() as u64 | 1
    }

    /// Worker `index` starts its outermost request.
    pub(super) fn busy(&self, index: usize) {
        self.slots[index]
            .busy_since_ns
            .store(self.now_ns(), Ordering::Relaxed);
    }

    /// Worker `index` ran a request to the end; counted before its reply
    /// goes out, so a caller holding the reply sees it counted.
    pub(super) fn completed(&self, index: usize) {
        self.slots[index].completed.fetch_add(1, Ordering::Relaxed);
    }

    /// Worker `index` is done with a request, reply sent; `outermost` when
    /// it is free now (the busy span includes encoding the reply, so it
    /// ends a moment after the caller may have it).
    pub(super) fn finished(&self, index: usize, outermost: bool) {
        let slot = &self.slots[index];
        if outermost {
            let since = slot.busy_since_ns.swap(0, Ordering::Relaxed);
            if since != 0 {
                slot.busy_total_ns
                    .fetch_add(self.now_ns().saturating_sub(since), Ordering::Relaxed);
            }
        }
    }

    /// Requests waiting on the shared queue.
    pub(super) fn shared_queued(&self) -> usize {
        self.shared.receiver.len()
    }

    /// Figures for worker `index`; busy time includes the running request.
    pub(super) fn stats(&self, index: usize) -> SlotStats {
        let slot = &self.slots[index];
        let since = slot.busy_since_ns.load(Ordering::Relaxed);
        let running = if since == 0 {
            0
        } else {
            self.now_ns().saturating_sub(since)
        };
        SlotStats {
            queued: slot.own.receiver.len(),
            busy: since != 0,
            busy_us: (slot.busy_total_ns.load(Ordering::Relaxed) + running) / 1_000,
            completed: slot.completed.load(Ordering::Relaxed),
            caught_spinning: slot.waits.caught_spinning.load(Ordering::Relaxed),
            parked_after_spin: slot.waits.parked_after_spin.load(Ordering::Relaxed),
            parked_slow_arrivals: slot.waits.parked_slow_arrivals.load(Ordering::Relaxed),
            caught_brief_spin: slot.waits.caught_brief_spin.load(Ordering::Relaxed),
            parked_no_free_core: slot.waits.parked_no_free_core.load(Ordering::Relaxed),
            probes: slot.waits.probes.load(Ordering::Relaxed),
            probes_caught: slot.waits.probes_caught.load(Ordering::Relaxed),
        }
    }
}

/// Adds one to a counter only its own thread writes (others just read):
/// a load and a store, no locked instruction.
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}
